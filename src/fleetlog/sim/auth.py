"""Accounts and tokens of the simulated cloud: Tesla's OAuth rules, in sim time.

- Access tokens are JWT-shaped (header.claims.signature, HMAC-SHA256 with a per-world
  key) and carry ``iss``, ``aud``, ``sub``, ``scp`` (scopes), ``ou_code`` (region), ``iat``
  and ``exp``; they live ``expires_in`` = 28800 s.
- Refresh tokens carry a region prefix (``EU_…``/``NA_…``), live 90 days and are single use:
  the second use of one fails with 401 ``login_required``.
- Authorization codes (from ``/oauth2/v3/authorize``) are single use, live 10 minutes,
  are bound to client_id and redirect_uri, and check a PKCE S256 challenge when one was given.

Token values come from the world's seeded generator, so a run is reproducible.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random

from fleetlog.sim.errors import OAuthError, Unauthorized
from fleetlog.sim.plan import Region

DEFAULT_SCOPES = (
    "openid",
    "offline_access",
    "user_data",
    "vehicle_device_data",
    "vehicle_location",
    "vehicle_cmds",
    "vehicle_charging_cmds",
)
ACCESS_LIFETIME_S = 28_800
REFRESH_LIFETIME = timedelta(days=90)
CODE_LIFETIME = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Account:
    """A Tesla account that owns the scenario's cars."""

    id: int
    email: str
    full_name: str
    region: Region


@dataclass(frozen=True, slots=True)
class Grant:
    """What a token stands for."""

    account: Account
    client_id: str
    scopes: tuple[str, ...]
    expires: datetime


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str | None
    id_token: str
    expires_in: int
    scopes: tuple[str, ...]

    def to_json(self, state: str | None = None) -> dict[str, object]:
        body: dict[str, object] = {
            "access_token": self.access_token,
            "id_token": self.id_token,
            "expires_in": self.expires_in,
            "token_type": "Bearer",
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if state is not None:
            body["state"] = state
        return body


@dataclass(frozen=True, slots=True)
class _Code:
    grant: Grant
    redirect_uri: str
    code_challenge: str | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer:
    """Issues, checks, rotates and revokes tokens. Times are passed in: no clock here."""

    def __init__(
        self,
        rng: Random,
        issuer: str = "https://auth.tesla.com/oauth2/v3",
        lifetime_s: int = ACCESS_LIFETIME_S,
    ) -> None:
        self._rng = rng
        self._key = rng.randbytes(32)
        self.issuer = issuer
        self.lifetime_s = lifetime_s
        self._access: dict[str, Grant] = {}
        self._refresh: dict[str, Grant] = {}
        self._used_refresh: set[str] = set()
        self._codes: dict[str, _Code] = {}

    def _opaque(self, n: int = 24) -> str:
        return self._rng.randbytes(n).hex()

    def issue(
        self, account: Account, client_id: str, scopes: tuple[str, ...], now: datetime
    ) -> TokenPair:
        """A fresh access token (and a refresh token when ``offline_access`` was granted)."""
        exp = now + timedelta(seconds=self.lifetime_s)
        claims = {
            "iss": self.issuer,
            "aud": [
                "https://fleet-api.prd.na.vn.cloud.tesla.com",
                "https://fleet-api.prd.eu.vn.cloud.tesla.com",
            ],
            "sub": f"{account.id:032x}",
            "scp": list(scopes),
            "ou_code": account.region.upper(),
            "azp": client_id,
            "iat": int(now.timestamp()),
            "exp": int(exp.timestamp()),
            "jti": self._opaque(8),
        }
        head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "sim"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest())
        access = f"{head}.{body}.{sig}"
        self._access[access] = Grant(account, client_id, scopes, exp)
        refresh = None
        if "offline_access" in scopes:
            refresh = f"{account.region.upper()}_{self._opaque(32)}"
            self._refresh[refresh] = Grant(account, client_id, scopes, now + REFRESH_LIFETIME)
        id_claims = json.dumps({"sub": claims["sub"], "email": account.email}).encode()
        id_token = f"{head}.{_b64(id_claims)}.{sig}"
        return TokenPair(access, refresh, id_token, self.lifetime_s, scopes)

    def check_access(self, token: str, now: datetime) -> Grant:
        """The grant behind a bearer token, or 401 as Tesla words it."""
        grant = self._access.get(token)
        if grant is None:
            raise Unauthorized("invalid bearer token")
        if now >= grant.expires:
            raise Unauthorized("token expired (401)")
        return grant

    def refresh(self, token: str, client_id: str | None, now: datetime) -> TokenPair:
        """Rotate a refresh token: the old one is spent, a new pair comes back."""
        if token in self._used_refresh:
            raise OAuthError(401, "login_required", "The refresh_token has already been used.")
        grant = self._refresh.get(token)
        if grant is None:
            raise OAuthError(401, "login_required", "The refresh_token is invalid.")
        if now >= grant.expires:
            raise OAuthError(401, "login_required", "The refresh_token has expired.")
        if client_id is not None and client_id != grant.client_id:
            raise OAuthError(
                400, "unauthorized_client", "client_id does not match the refresh_token."
            )
        del self._refresh[token]
        self._used_refresh.add(token)
        return self.issue(grant.account, grant.client_id, grant.scopes, now)

    def authorize(
        self,
        account: Account,
        client_id: str,
        redirect_uri: str,
        scopes: tuple[str, ...],
        code_challenge: str | None,
        now: datetime,
    ) -> str:
        """A single-use authorization code (the user consented at once)."""
        code = f"{account.region.upper()}_{self._opaque(24)}"
        self._codes[code] = _Code(
            Grant(account, client_id, scopes, now + CODE_LIFETIME), redirect_uri, code_challenge
        )
        return code

    def exchange(
        self,
        code: str,
        client_id: str,
        redirect_uri: str | None,
        code_verifier: str | None,
        now: datetime,
    ) -> TokenPair:
        """Trade an authorization code for tokens."""
        entry = self._codes.pop(code, None)
        if entry is None or now >= entry.grant.expires:
            raise OAuthError(
                400, "invalid_auth_code", "The authorization code is invalid or has expired."
            )
        if client_id != entry.grant.client_id:
            raise OAuthError(
                400, "unauthorized_client", "client_id does not match the authorization code."
            )
        if redirect_uri is not None and redirect_uri != entry.redirect_uri:
            raise OAuthError(
                400,
                "invalid_redirect_url",
                "redirect_uri does not match the authorization request.",
            )
        if entry.code_challenge is not None:
            digest = _b64(hashlib.sha256((code_verifier or "").encode()).digest())
            if digest != entry.code_challenge:
                raise OAuthError(
                    400, "invalid_request", "code_verifier does not match the code_challenge."
                )
        return self.issue(entry.grant.account, client_id, entry.grant.scopes, now)
