"""Signing in to Tesla from the web: the same functions as ``fleetlog login``.

* :func:`sign_in` stores a pasted access + refresh token pair (encrypted, through the vault) and
  checks it with one free products call, refreshing first when the access token has expired
  (:func:`fleetlog.sources.tesla.sign_in_with_tokens`). With ``TOKEN`` set it runs the
  provider sign-in instead (:func:`~fleetlog.sources.tesla.sign_in_with_provider`).
* When the check fails, the tokens stored before are put back (unless the failed attempt had
  already refreshed them: a spent refresh token cannot be restored).
* :func:`sign_out` deletes the stored tokens.
* :func:`account_state` says whether tokens are stored, when they were saved and when the access
  token expires, plus the running logger's token health when the runtime provides it.

Tokens are never returned, rendered or logged; error messages are scrubbed of them too.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa

from fleetlog.clock import LoopClock
from fleetlog.sources.tesla import (
    SignedIn,
    TeslaError,
    TokenSet,
    sign_in_with_provider,
    sign_in_with_tokens,
)
from fleetlog.sources.vault import Vault, VaultError, load_or_create_key, load_tokens
from fleetlog.store.errors import StoreError
from fleetlog.store.tables import tokens as tokens_table


class SignInError(Exception):
    """Signing in did not work; the message is for the user and holds no token."""


@dataclass(frozen=True, slots=True)
class Done:
    """A successful sign-in, in words for the page (no tokens)."""

    mode: str
    api_base: str
    cars: list[dict[str, str | None]]

    @classmethod
    def of(cls, signed: SignedIn) -> Done:
        return cls(
            signed.mode.value,
            signed.api_base,
            [{"vin": v.vin, "name": v.display_name, "state": v.state} for v in signed.vehicles],
        )


def _scrub(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<token>")
    return text


def _vault(settings: Any) -> Vault:
    return Vault(load_or_create_key(settings.data_path, settings.encryption_key).value)


def _raw_row(engine: sa.Engine) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(tokens_table)).mappings().first()
    return None if row is None else dict(row)


def _put_back(engine: sa.Engine, raw: dict[str, Any] | None) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(tokens_table))
        if raw is not None:
            conn.execute(sa.insert(tokens_table).values(**raw))


def sign_in(
    settings: Any, engine: sa.Engine, access_token: str = "", refresh_token: str = ""
) -> Done:
    """Store and check a token pair (with ``TOKEN`` set: the provider sign-in). Blocking: run
    it in a worker thread, it runs its own event loop."""
    provider = bool(settings.token)
    if not provider and not (access_token.strip() and refresh_token.strip()):
        raise SignInError("paste both the access token and the refresh token")
    before = _raw_row(engine)
    try:
        if provider:
            signed = asyncio.run(sign_in_with_provider(settings, engine, clock=LoopClock()))
        else:
            signed = asyncio.run(
                sign_in_with_tokens(
                    settings,
                    engine,
                    access_token=access_token,
                    refresh_token=refresh_token,
                    clock=LoopClock(),
                )
            )
    except (TeslaError, VaultError, StoreError, httpx.HTTPError, OSError, ValueError) as exc:
        if not provider:
            _restore_if_unchanged(settings, engine, before, access_token.strip())
        reason = _scrub(str(exc) or type(exc).__name__, access_token, refresh_token)
        raise SignInError(f"Tesla did not accept the sign-in: {reason}") from None
    return Done.of(signed)


def _restore_if_unchanged(
    settings: Any, engine: sa.Engine, before: dict[str, Any] | None, pasted_access: str
) -> None:
    """Undo storing rejected tokens: only if the vault still holds exactly what was pasted."""
    try:
        stored = load_tokens(engine, _vault(settings))
    except (VaultError, StoreError):
        return
    if stored is not None and stored.access == pasted_access:
        _put_back(engine, before)


def sign_out(engine: sa.Engine) -> bool:
    """Delete the stored tokens; whether there were any."""
    with engine.begin() as conn:
        return bool(conn.execute(sa.delete(tokens_table)).rowcount)


def _iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def account_state(settings: Any, engine: sa.Engine, live: Any = None) -> dict[str, Any]:
    """Sign-in state for the page and ``GET /api/tesla/account`` (never a token)."""
    raw = _raw_row(engine)
    out: dict[str, Any] = {
        "signed_in": raw is not None and raw.get("access") is not None,
        "provider_sign_in": bool(settings.token),
        "tokens_saved_at": _iso(raw["updated_at"]) if raw else None,
        "access_token_expires_at": None,
        "error": None,
        "health": None,
    }
    if out["signed_in"]:
        try:
            stored = load_tokens(engine, _vault(settings))
        except (VaultError, StoreError) as exc:
            out["error"] = f"the stored tokens cannot be read: {exc}"
        else:
            if stored is not None:
                expires = TokenSet.restored(stored.access, stored.refresh).expires_at
                out["access_token_expires_at"] = _iso(expires)
    health_of = getattr(live, "account_state", None)
    if callable(health_of):
        health = health_of()
        out["health"] = dict(health) if health else None
    return out


__all__ = ["Done", "SignInError", "account_state", "sign_in", "sign_out"]
