"""Tesla's token endpoint and the authorization-code flow (no state, no timers).

Three shapes of token request, one per way of reaching Tesla:

* Owner API: JSON, ``client_id=ownerapi``, ``scope=openid email offline_access``.
* Fleet API (the owner's own developer app): form-encoded as Tesla documents it;
  the code exchange carries ``audience`` (the regional Fleet API base URL).
* Provider (``TOKEN``): the Owner-API JSON shape TeslaMate sends, authenticated with
  ``Authorization: Bearer <TOKEN>``; an empty refresh token asks the provider for the
  owner's tokens (the provider sign-in).

Every token that passes through here is registered with the log redactor first.
Keeping tokens fresh over time is :mod:`fleetlog.sources.tesla._session`'s job.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from fleetlog.clock import Clock
from fleetlog.logs import register_secret
from fleetlog.sources.tesla._exceptions import (
    AuthFlowError,
    RefreshFailed,
    RefreshTokenSpent,
)
from fleetlog.sources.tesla._hosts import (
    AUTH_HOST,
    AUTH_HOST_CN,
    AUTH_PATH,
    FLEET_SCOPES,
    OWNER_SCOPE,
    Profile,
    RefreshStyle,
    jwt_claims,
)

#: TeslaMate retries a failed refresh every 5 minutes; so do we.
REFRESH_RETRY = timedelta(minutes=5)
# Errors that mean "this refresh token will never work again": sign in anew.
_SPENT_ERRORS = {"login_required", "invalid_grant", "invalid_token", "unauthorized_client"}


@dataclass(frozen=True, slots=True, repr=False)
class TokenSet:
    """An access token, its refresh token and when the access token expires."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime | None  # None: unknown (an opaque token restored from the vault)
    issued_at: datetime | None = None

    def __post_init__(self) -> None:
        register_secret(self.access_token, self.refresh_token)

    def __repr__(self) -> str:
        refresh = "<hidden>" if self.refresh_token else "None"
        return (
            f"TokenSet(access_token=<hidden>, refresh_token={refresh}, "
            f"expires_at={self.expires_at!r})"
        )

    @classmethod
    def restored(cls, access_token: str, refresh_token: str | None) -> TokenSet:
        """Tokens read back from the vault: the lifetime comes from the JWT when it has one."""
        claims = jwt_claims(access_token)
        exp, iat = claims.get("exp"), claims.get("iat")
        expires = datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None
        issued = datetime.fromtimestamp(iat, UTC) if isinstance(iat, int | float) else None
        return cls(access_token, refresh_token, expires, issued)

    def refresh_due(self, now: datetime) -> datetime:
        """When to refresh: at 75 % of the access token's life (now, if its life is unknown)."""
        if self.expires_at is None:
            return now
        start = self.issued_at or now
        life = (self.expires_at - start).total_seconds()
        return start + timedelta(seconds=max(0.0, life) * 0.75)


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)[:86]
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    register_secret(verifier)
    return verifier, challenge


def authorize_url(
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    scopes: tuple[str, ...] = FLEET_SCOPES,
    auth_base: str = AUTH_HOST + AUTH_PATH,
    code_challenge: str | None = None,
    china: bool = False,
) -> str:
    """The browser URL where the owner signs in and grants fleetlog's scopes."""
    if auth_base == AUTH_HOST + AUTH_PATH and china:
        auth_base = AUTH_HOST_CN + AUTH_PATH
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "locale": "en-US",
        "prompt": "login",
        "prompt_missing_scopes": "true",
    }
    if code_challenge:
        query["code_challenge"] = code_challenge
        query["code_challenge_method"] = "S256"
    return f"{auth_base}/authorize?{urlencode(query)}"


def code_from_redirect(pasted: str, expected_state: str) -> str:
    """The authorization code from the redirected URL the owner pastes, or the bare code."""
    text = pasted.strip()
    if not text:
        raise AuthFlowError("nothing pasted: paste the whole URL your browser was sent to")
    if "://" not in text and "?" not in text and "=" not in text:
        register_secret(text)
        return text
    query = parse_qs(urlsplit(text).query)
    if "error" in query:
        reason = query.get("error_description", query["error"])[0]
        raise AuthFlowError(f"Tesla refused the sign-in: {reason}")
    code = query.get("code", [""])[0]
    if not code:
        raise AuthFlowError(
            "the pasted URL has no ?code=…: copy the full address of the page Tesla "
            "redirected to (it may show an error page; the address is what counts)"
        )
    register_secret(code)
    state = query.get("state", [""])[0]
    if state != expected_state:
        raise AuthFlowError(
            "the URL's state does not match this sign-in (an old or foreign URL?): start "
            "`fleetlog login fleet` again and use the URL it prints"
        )
    return code


class TokenEndpoint:
    """POSTs to ``<issuer>/token`` in the shape the profile needs."""

    def __init__(self, profile: Profile, http: httpx.AsyncClient, clock: Clock) -> None:
        self.profile = profile
        self._http = http
        self._clock = clock

    @property
    def url(self) -> str:
        return self.profile.token_url

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.profile.provider_token and not self.profile.token_in_query:
            headers["Authorization"] = f"Bearer {self.profile.provider_token}"
        return headers

    def _params(self) -> dict[str, str] | None:
        if self.profile.provider_token and self.profile.token_in_query:
            return {"token": self.profile.provider_token}
        return None

    async def refresh(self, refresh_token: str | None) -> TokenSet:
        """Trade `refresh_token` (spent by this call) for a new token set.

        With a provider (``TOKEN``) an empty `refresh_token` is the provider sign-in.
        """
        p = self.profile
        if not refresh_token and not p.provider_token:
            raise RefreshTokenSpent("no refresh token stored", self._clock.now() + REFRESH_RETRY)
        body: dict[str, str] = {
            "grant_type": "refresh_token",
            "client_id": p.client_id,
            "refresh_token": refresh_token or "",
        }
        if p.refresh_style is RefreshStyle.JSON:
            body["scope"] = OWNER_SCOPE
            return await self._post("refresh", json=body)
        return await self._post("refresh", data=body)

    async def exchange_code(
        self,
        code: str,
        *,
        client_secret: str | None,
        redirect_uri: str,
        audience: str,
        code_verifier: str | None = None,
    ) -> TokenSet:
        """The authorization-code grant of the Fleet API (form-encoded, with `audience`)."""
        register_secret(code, client_secret, code_verifier)
        body = {
            "grant_type": "authorization_code",
            "client_id": self.profile.client_id,
            "code": code,
            "redirect_uri": redirect_uri,
            "audience": audience,
        }
        if client_secret:
            body["client_secret"] = client_secret
        if code_verifier:
            body["code_verifier"] = code_verifier
        return await self._post("code exchange", data=body)

    async def _post(
        self, what: str, *, json: dict[str, str] | None = None, data: dict[str, str] | None = None
    ) -> TokenSet:
        now = self._clock.now()
        retry_at = now + REFRESH_RETRY
        try:
            response = await self._http.post(
                self.url, json=json, data=data, headers=self._headers(), params=self._params()
            )
        except httpx.HTTPError as exc:
            # `from None`: httpx's exception carries the request, which carries the body.
            raise RefreshFailed(
                f"token {what} at {self.url} got no answer ({type(exc).__name__}); "
                f"retrying at {retry_at:%H:%M:%S}",
                retry_at,
            ) from None
        payload = _json_object(response)
        status = response.status_code
        if status >= 400 or "access_token" not in payload:
            error = str(payload.get("error") or "")
            detail = str(payload.get("error_description") or error or f"HTTP {status}")
            if what == "code exchange":
                if error == "invalid_auth_code":
                    raise AuthFlowError(
                        "the authorization code has expired or was used already: codes live a "
                        "few minutes; start `fleetlog login fleet` again"
                    )
                raise AuthFlowError(f"the code exchange failed (HTTP {status}): {detail}")
            if error in _SPENT_ERRORS or (status in (400, 401) and not error):
                raise RefreshTokenSpent(f"HTTP {status} {detail}", retry_at, status)
            raise RefreshFailed(
                f"token refresh at {self.url} failed (HTTP {status}): {detail}; "
                f"retrying at {retry_at:%H:%M:%S}",
                retry_at,
                status,
            )
        return _token_set(payload, now)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return payload if isinstance(payload, dict) else {}


def _token_set(payload: dict[str, Any], now: datetime) -> TokenSet:
    access = payload.get("access_token")
    if not isinstance(access, str) or not access:
        raise RefreshFailed(
            "the token endpoint answered without an access_token", now + REFRESH_RETRY
        )
    refresh = payload.get("refresh_token")
    refresh = refresh if isinstance(refresh, str) and refresh else None
    expires_in = payload.get("expires_in")
    expires_at = (
        now + timedelta(seconds=float(expires_in))
        if isinstance(expires_in, int | float) and expires_in > 0
        else None
    )
    return TokenSet(access, refresh, expires_at, now)
