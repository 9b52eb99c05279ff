"""Keeping an account signed in: the token keeper.

Rules this module keeps, because breaking any of them locks the owner out:

* A refresh token is single use. The new pair is written to the vault *before* the
  new access token is used; if writing fails, the new pair stays in memory (the old
  refresh token is spent either way) and the write is retried at the next refresh.
* Before spending the refresh token in hand, the keeper re-reads the vault: another
  process (a `fleetlog login`, a second instance) may have refreshed or signed in
  meanwhile, and its tokens win over a refresh with a token that is spent already.
* One refresh at a time (a lock), and a 401 triggers at most one immediate refresh
  per access token: concurrent 401s of the same token share it.

Schedule: at 75 % of the access token's life; after a failure every 5 minutes,
reported in :attr:`TokenKeeper.health` until a refresh succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa

from fleetlog.clock import Clock
from fleetlog.logs import log_event, register_secret
from fleetlog.sources.tesla._auth import TokenEndpoint, TokenSet
from fleetlog.sources.tesla._exceptions import NotSignedIn, RefreshFailed, RefreshTokenSpent
from fleetlog.sources.vault import Vault, load_tokens, save_tokens

log = logging.getLogger(__name__)


class TokenStore(Protocol):
    """Where tokens persist (the vault in production)."""

    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet) -> None: ...


class VaultTokenStore:
    """Tokens in TeslaMate's encrypted ``private.tokens`` row, through the vault."""

    def __init__(self, engine: sa.Engine, vault: Vault) -> None:
        self._engine = engine
        self._vault = vault

    def __repr__(self) -> str:
        return "VaultTokenStore()"

    def load(self) -> TokenSet | None:
        stored = load_tokens(self._engine, self._vault)
        if stored is None:
            return None
        register_secret(stored.access, stored.refresh)
        return TokenSet.restored(stored.access, stored.refresh)

    def save(self, tokens: TokenSet) -> None:
        save_tokens(self._engine, self._vault, tokens.access_token, tokens.refresh_token)


@dataclass(frozen=True, slots=True)
class TokenHealth:
    """For the web app and MQTT: is sign-in healthy, and what happens next."""

    ok: bool
    last_refresh_at: datetime | None
    next_refresh_at: datetime | None
    error: str | None  # the last failure, in words (never a token)
    needs_login: bool  # the refresh token is spent or missing: a person must sign in


class TokenKeeper:
    """Holds the account's current tokens and keeps them fresh (see the module docstring)."""

    def __init__(
        self,
        endpoint: TokenEndpoint,
        store: TokenStore,
        clock: Clock,
        *,
        provider_sign_in: bool = False,
    ) -> None:
        self._endpoint = endpoint
        self._store = store
        self._clock = clock
        self._provider_sign_in = provider_sign_in
        self._tokens: TokenSet | None = None
        self._lock = asyncio.Lock()
        self._unsaved: TokenSet | None = None
        self._health = TokenHealth(False, None, None, "not started", False)

    def __repr__(self) -> str:
        return f"TokenKeeper(issuer={self._endpoint.profile.issuer}, ok={self._health.ok})"

    @property
    def health(self) -> TokenHealth:
        return self._health

    @property
    def tokens(self) -> TokenSet:
        if self._tokens is None:
            raise NotSignedIn()
        return self._tokens

    @property
    def access_token(self) -> str:
        return self.tokens.access_token

    async def start(self) -> TokenSet:
        """Load the stored tokens (provider mode: sign in through the provider if none)."""
        tokens = self._store.load()
        if tokens is None:
            if not self._provider_sign_in:
                raise NotSignedIn("no tokens stored")
            return await self.refresh(reason="provider sign-in")
        self._tokens = tokens
        now = self._clock.now()
        due = tokens.refresh_due(now)
        self._health = TokenHealth(True, None, due, None, False)
        if due <= now:
            return await self.refresh(reason="stored token expired or of unknown age")
        return tokens

    def next_refresh_at(self) -> datetime:
        """When :meth:`run` will refresh next."""
        due = self._health.next_refresh_at
        return due if due is not None else self._clock.now()

    async def refresh(self, *, reason: str, spent_access: str | None = None) -> TokenSet:
        """Refresh now (once, however many callers ask at the same time).

        `spent_access` is the access token a caller saw rejected: if the keeper already
        holds a different one, that one is returned without another refresh.
        """
        async with self._lock:
            now = self._clock.now()
            current = self._tokens
            if (
                spent_access is not None
                and current is not None
                and current.access_token != spent_access
            ):
                return current  # a concurrent caller refreshed already
            # Another process may have refreshed or signed in: its tokens win over ours,
            # whose refresh token it has then spent.
            stored = self._store.load() if self._unsaved is None else None
            if stored is not None and (
                current is None or stored.refresh_token != current.refresh_token
            ):
                log_event(log, logging.INFO, "tesla tokens reloaded", why="changed in the vault")
                self._tokens = current = stored
                self._health = TokenHealth(True, now, stored.refresh_due(now), None, False)
                fresh = stored.refresh_due(now) > now
                if fresh and (spent_access is None or stored.access_token != spent_access):
                    return stored
            refresh_token = current.refresh_token if current is not None else None
            try:
                new = await self._endpoint.refresh(refresh_token)
            except RefreshFailed as exc:
                spent = isinstance(exc, RefreshTokenSpent)
                self._health = TokenHealth(
                    False, self._health.last_refresh_at, exc.retry_at, str(exc), spent
                )
                log_event(
                    log,
                    logging.ERROR if spent else logging.WARNING,
                    "tesla token refresh failed",
                    reason=reason,
                    error=str(exc),
                    retry_at=exc.retry_at,
                )
                raise
            if new.refresh_token is None and refresh_token:
                # Keep the old refresh token only when the server did not rotate it.
                new = TokenSet(new.access_token, refresh_token, new.expires_at, new.issued_at)
            self._persist(new)
            self._tokens = new
            due = new.refresh_due(now)
            self._health = TokenHealth(True, now, due, None, False)
            log_event(log, logging.INFO, "tesla tokens refreshed", reason=reason, next_at=due)
            return new

    def _persist(self, tokens: TokenSet) -> None:
        try:
            self._store.save(tokens)
        except Exception as exc:  # the old refresh token is spent: keep the new pair in memory
            self._unsaved = tokens
            log_event(
                log,
                logging.ERROR,
                "tesla tokens could not be saved; keeping them in memory",
                error=type(exc).__name__,
            )
            return
        self._unsaved = None

    async def run(self) -> None:
        """Refresh on schedule for ever: at 75 % of life, every 5 minutes after a failure."""
        while True:
            delay = (self.next_refresh_at() - self._clock.now()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            # A failure is logged and sets the next attempt 5 minutes on (health shows it).
            with contextlib.suppress(RefreshFailed):
                await self.refresh(reason="scheduled")
