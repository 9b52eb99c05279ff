"""Signing in: the three ways tokens get into the vault.

* Tokens the owner already has (``fleetlog login``): stored as they are, then
  checked with one free call (refreshed first if the access token has expired).
* A provider (``TOKEN`` set): TeslaMate's provider sign-in, a refresh with an
  empty refresh token authenticated by ``TOKEN``; the provider answers with tokens.
* The owner's own developer app (``fleetlog login fleet``): the authorization-code
  flow. :class:`FleetSignIn` prints nothing and reads nothing: the CLI shows its URL
  and hands back what the owner pasted.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa

from fleetlog.clock import Clock
from fleetlog.logs import register_secret
from fleetlog.sources.tesla._account import (
    TeslaAccount,
    open_account,
    remember_base,
    token_store,
)
from fleetlog.sources.tesla._auth import (
    TokenEndpoint,
    TokenSet,
    authorize_url,
    code_from_redirect,
    pkce_pair,
)
from fleetlog.sources.tesla._client import TeslaClient, make_api_http, make_auth_http
from fleetlog.sources.tesla._exceptions import AuthFlowError
from fleetlog.sources.tesla._hosts import (
    AUTH_HOST,
    AUTH_HOST_CN,
    AUTH_PATH,
    FLEET_API,
    FLEET_AUTH_HOST,
    FLEET_SCOPES,
    Mode,
    Profile,
    RefreshStyle,
    resolve_profile,
)
from fleetlog.sources.tesla._models import Region, Vehicle
from fleetlog.sources.tesla._pricing import Pricing
from fleetlog.sources.tesla._session import TokenKeeper, TokenStore


@dataclass(frozen=True, slots=True)
class SignedIn:
    """What a successful sign-in found."""

    mode: Mode
    api_base: str
    vehicles: tuple[Vehicle, ...]
    region: Region | None = None
    advice: tuple[str, ...] = ()  # settings the owner should add, in words


async def _verify(account: TeslaAccount) -> tuple[Vehicle, ...]:
    try:
        return tuple(await account.client.products())
    finally:
        await account.aclose()


async def sign_in_with_tokens(
    settings: Any,
    engine: sa.Engine,
    *,
    access_token: str,
    refresh_token: str,
    clock: Clock,
    store: TokenStore | None = None,
    api_http: httpx.AsyncClient | None = None,
    auth_http: httpx.AsyncClient | None = None,
) -> SignedIn:
    """Store the owner's access + refresh token pair, then list the cars with it."""
    access_token, refresh_token = access_token.strip(), refresh_token.strip()
    register_secret(access_token, refresh_token)
    if not access_token or not refresh_token:
        raise AuthFlowError("both an access token and a refresh token are needed")
    if any(c.isspace() for c in access_token + refresh_token):
        raise AuthFlowError("a token contains white space: paste each token on one line")
    store = store or token_store(settings, engine)
    store.save(TokenSet.restored(access_token, refresh_token))
    account = await open_account(
        settings, engine, clock=clock, store=store, api_http=api_http, auth_http=auth_http
    )
    mode, base = account.profile.mode, account.client.api_base
    return SignedIn(mode, base, await _verify(account))


async def sign_in_with_provider(
    settings: Any,
    engine: sa.Engine,
    *,
    clock: Clock,
    store: TokenStore | None = None,
    api_http: httpx.AsyncClient | None = None,
    auth_http: httpx.AsyncClient | None = None,
) -> SignedIn:
    """TeslaMate's provider sign-in: a refresh with an empty token, authenticated by TOKEN."""
    store = store or token_store(settings, engine)
    profile = resolve_profile(settings)
    if not profile.provider_token:
        raise AuthFlowError("no TOKEN is set: the provider sign-in needs your provider's token")
    own_auth = auth_http is None
    http = auth_http or make_auth_http()
    try:
        keeper = TokenKeeper(TokenEndpoint(profile, http, clock), store, clock)
        await keeper.refresh(reason="provider sign-in")
    finally:
        if own_auth:
            await http.aclose()
    account = await open_account(
        settings, engine, clock=clock, store=store, api_http=api_http, auth_http=auth_http
    )
    return SignedIn(profile.mode, account.client.api_base, await _verify(account))


@dataclass(slots=True)
class FleetSignIn:
    """The authorization-code flow for the owner's own developer app."""

    settings: Any
    engine: sa.Engine
    client_id: str
    client_secret: str
    redirect_uri: str
    clock: Clock
    region: str | None = None  # na | eu | cn; None: from the code's prefix, then na
    store: TokenStore | None = None
    api_http: httpx.AsyncClient | None = None
    auth_http: httpx.AsyncClient | None = None
    state: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    _verifier: str = ""
    _challenge: str = ""

    def __post_init__(self) -> None:
        register_secret(self.client_secret)
        if not self.client_id.strip():
            raise AuthFlowError(
                "--client-id is empty: copy it from your app on developer.tesla.com"
            )
        if not self.redirect_uri.startswith(("https://", "http://")):
            raise AuthFlowError(
                "--redirect-uri must be the absolute URL registered with your app, "
                "e.g. https://example.com/callback"
            )
        if self.region is not None and self.region not in FLEET_API:
            raise AuthFlowError(f"--region must be one of {', '.join(FLEET_API)}")
        self._verifier, self._challenge = pkce_pair()

    def _auth_base(self) -> str:
        if self.settings.tesla_auth_host:
            return f"{self.settings.tesla_auth_host}{self.settings.tesla_auth_path or AUTH_PATH}"
        return (AUTH_HOST_CN if self.region == "cn" else AUTH_HOST) + AUTH_PATH

    def _token_base(self) -> str:
        if self.settings.tesla_auth_host:
            return self._auth_base()
        return (AUTH_HOST_CN if self.region == "cn" else FLEET_AUTH_HOST) + AUTH_PATH

    def authorize_url(self) -> str:
        """The URL the owner opens in a browser."""
        return authorize_url(
            client_id=self.client_id,
            redirect_uri=self.redirect_uri,
            state=self.state,
            scopes=FLEET_SCOPES,
            auth_base=self._auth_base(),
            code_challenge=self._challenge,
        )

    async def finish(self, pasted: str) -> SignedIn:
        """Exchange the code from the pasted redirect URL, find the region, store the tokens."""
        code = code_from_redirect(pasted, self.state)
        region = self.region or _region_hint(code) or "na"
        configured = self.settings.tesla_api_host
        audience = configured or FLEET_API[region]
        profile = Profile(
            mode=Mode.FLEET,
            api_base=audience,
            issuer=self._token_base(),
            client_id=self.client_id,
            refresh_style=RefreshStyle.FORM,
            pricing=Pricing(),
        )
        auth_http = self.auth_http or make_auth_http()
        api_http = self.api_http or make_api_http()
        try:
            tokens = await TokenEndpoint(profile, auth_http, self.clock).exchange_code(
                code,
                client_secret=self.client_secret,
                redirect_uri=self.redirect_uri,
                audience=audience,
                code_verifier=self._verifier,
            )
            if tokens.refresh_token is None:
                raise AuthFlowError(
                    "Tesla returned no refresh token: the offline_access scope was not granted; "
                    "sign in again and allow it"
                )
            store = self.store or token_store(self.settings, self.engine)
            store.save(tokens)
            keeper = TokenKeeper(TokenEndpoint(profile, auth_http, self.clock), store, self.clock)
            await keeper.start()
            probe = TeslaClient(profile, keeper, clock=self.clock, http=api_http)
            found = await probe.region()
        finally:
            if self.auth_http is None:
                await auth_http.aclose()
            if self.api_http is None:
                await api_http.aclose()
        run_profile = resolve_profile(self.settings, tokens.access_token)
        if found.base_url != run_profile.api_base:
            remember_base(self.engine, run_profile.api_base, found.base_url)
        advice = []
        if self.settings.tesla_auth_client_id != self.client_id:
            advice.append(f"TESLA_AUTH_CLIENT_ID={self.client_id}")
        if not configured and not self.settings.provider:
            advice.append(f"FLEETLOG_PROVIDER=fleet-{found.region.lower()}")
        account = await open_account(
            self.settings,
            self.engine,
            clock=self.clock,
            store=self.store,
            api_http=self.api_http,
            auth_http=self.auth_http,
        )
        vehicles = await _verify(account)
        return SignedIn(Mode.FLEET, found.base_url, vehicles, found, tuple(advice))


def _region_hint(code: str) -> str | None:
    """Codes carry a region prefix (NA_…, EU_…); sometimes wrongly, so only a hint."""
    prefix = code.split("_", 1)[0].lower()
    return prefix if prefix in FLEET_API else None
