"""Where to talk to: regional hosts, provider presets, issuer and region detection.

One :class:`Profile` says everything about an account's connection: the REST base,
the token endpoint, the client id, how refresh requests are shaped, the provider
token and how calls are priced. It comes from TeslaMate's variables, filled in by a
``FLEETLOG_PROVIDER`` preset where they are unset (explicit variables always win),
and, when even the hosts are unset, from the access token's issuer as TeslaMate does.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from fleetlog.sources.tesla._pricing import TESLEMETRY_RATES, Pricing, Rates, usd_to_micro

OWNER_API = "https://owner-api.teslamotors.com"
OWNER_API_CN = "https://owner-api.vn.cloud.tesla.cn"
AUTH_HOST = "https://auth.tesla.com"
AUTH_HOST_CN = "https://auth.tesla.cn"
AUTH_PATH = "/oauth2/v3"
FLEET_AUTH_HOST = "https://fleet-auth.prd.vn.cloud.tesla.com"
FLEET_API = {
    "na": "https://fleet-api.prd.na.vn.cloud.tesla.com",
    "eu": "https://fleet-api.prd.eu.vn.cloud.tesla.com",
    "cn": "https://fleet-api.prd.cn.vn.cloud.tesla.cn",
}
OWNER_CLIENT_ID = "ownerapi"
OWNER_SCOPE = "openid email offline_access"
FLEET_SCOPES = ("openid", "offline_access", "vehicle_device_data", "vehicle_location")

# Hosts whose 421 "use base URL" answers fleetlog follows. Following any host a response
# names would hand the bearer token to whoever can shape an error body.
_TRUSTED_SUFFIXES = (".vn.cloud.tesla.com", ".vn.cloud.tesla.cn", ".teslemetry.com")


class Mode(StrEnum):
    OWNER = "owner"  # legacy Owner API, client_id=ownerapi, not billed
    FLEET = "fleet"  # the owner's own developer app on the Fleet API
    PROVIDER = "provider"  # a Fleet API proxy that holds the credentials (TOKEN)


class RefreshStyle(StrEnum):
    JSON = "json"  # Owner API shape (and what TeslaMate sends to providers)
    FORM = "form"  # Fleet API token endpoint, form-encoded as documented


@dataclass(frozen=True, slots=True)
class Preset:
    """The hosts and paths of one documented setup."""

    name: str
    api_host: str
    auth_host: str
    auth_path: str
    wss_host: str | None
    rates: Rates
    priced: bool
    help: str


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "owner",
            OWNER_API,
            AUTH_HOST,
            AUTH_PATH,
            "wss://streaming.vn.teslamotors.com",
            Rates(),
            False,
            "legacy Owner API (TeslaMate's default)",
        ),
        Preset(
            "myteslamate",
            "https://api.myteslamate.com",
            "https://api.myteslamate.com",
            "/api/oauth2/v3",
            "wss://streaming.myteslamate.com",
            Rates(),
            True,
            "MyTeslaMate's Fleet API proxy (needs TOKEN)",
        ),
        Preset(
            "teslemetry",
            "https://api.teslemetry.com",
            "https://api.teslemetry.com",
            "/api/oauth2/v3",
            None,
            TESLEMETRY_RATES,
            True,
            "Teslemetry's Fleet API proxy (needs TOKEN)",
        ),
        Preset(
            "fleet-na",
            FLEET_API["na"],
            FLEET_AUTH_HOST,
            AUTH_PATH,
            None,
            Rates(),
            True,
            "own developer app, North America and Asia-Pacific",
        ),
        Preset(
            "fleet-eu",
            FLEET_API["eu"],
            FLEET_AUTH_HOST,
            AUTH_PATH,
            None,
            Rates(),
            True,
            "own developer app, Europe, Middle East and Africa",
        ),
        Preset(
            "fleet-cn",
            FLEET_API["cn"],
            AUTH_HOST_CN,
            AUTH_PATH,
            None,
            Rates(),
            True,
            "own developer app, China (developer.tesla.cn)",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Profile:
    """How one account reaches Tesla (no secrets except the provider token)."""

    mode: Mode
    api_base: str
    issuer: str  # auth host + path; the token endpoint is issuer + "/token"
    client_id: str
    refresh_style: RefreshStyle
    pricing: Pricing
    provider_token: str | None = None
    token_in_query: bool = False

    def __repr__(self) -> str:
        token = "set" if self.provider_token else "unset"
        return (
            f"Profile(mode={self.mode}, api_base={self.api_base}, issuer={self.issuer}, "
            f"client_id={self.client_id}, provider_token={token})"
        )

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"


def jwt_claims(token: str) -> dict[str, Any]:
    """The (unverified) claims of a JWT access token, or {} for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, json.JSONDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def issuer_of(access_token: str | None) -> str:
    """TeslaMate's issuer rule: a JWT's ``iss``, else auth.tesla.com (opaque tokens too)."""
    if access_token:
        iss = jwt_claims(access_token).get("iss")
        if isinstance(iss, str) and urlsplit(iss).scheme == "https":
            return iss.rstrip("/")
    return AUTH_HOST + AUTH_PATH


def is_china(issuer: str) -> bool:
    """Chinese accounts are those whose issuer host ends in .cn."""
    host = urlsplit(issuer).hostname or ""
    return host.endswith(".cn")


def trusted_region_switch(current_base: str, new_base: str) -> bool:
    """Whether fleetlog may move an account's REST calls from `current_base` to `new_base`.

    Tesla's own regional hosts, or another port/path on the host already in use (a
    local proxy or the simulator); never an arbitrary host named in an error body.
    """
    new = urlsplit(new_base)
    cur = urlsplit(current_base)
    if new.scheme not in ("https", "http") or not new.hostname:
        return False
    if new.scheme == "http" and cur.scheme != "http":
        return False  # never downgrade to cleartext
    if new.hostname == cur.hostname:
        return True
    return new.scheme == "https" and new.hostname.endswith(_TRUSTED_SUFFIXES)


def resolve_profile(settings: Any, access_token: str | None = None) -> Profile:
    """The connection profile from settings (TeslaMate's names + FLEETLOG_PROVIDER).

    Precedence per value: the explicit variable, then the preset, then detection from
    the access token's issuer (China → .cn hosts), then the Owner API defaults.
    """
    preset = PRESETS.get(settings.provider) if settings.provider else None
    provider_token: str | None = settings.token
    if settings.tesla_auth_host:
        # fleetlog's documented default path (/oauth2/v3) rather than TeslaMate's empty one.
        path = settings.tesla_auth_path
        if path is None:
            path = preset.auth_path if preset is not None else AUTH_PATH
        issuer = settings.tesla_auth_host + path
    elif preset is not None:
        issuer = preset.auth_host + preset.auth_path
    else:
        issuer = issuer_of(access_token)
    china = is_china(issuer)
    if settings.tesla_api_host:
        api_base = settings.tesla_api_host
    elif preset is not None:
        api_base = preset.api_host
    else:
        api_base = OWNER_API_CN if china else OWNER_API
    client_id: str = settings.tesla_auth_client_id or OWNER_CLIENT_ID

    if provider_token:
        mode = Mode.PROVIDER
    elif client_id != OWNER_CLIENT_ID or (preset is not None and preset.name.startswith("fleet")):
        mode = Mode.FLEET
    else:
        mode = Mode.OWNER
    if provider_token and preset is not None and not preset.priced:
        raise ValueError("FLEETLOG_PROVIDER=owner cannot be combined with TOKEN")

    host = urlsplit(api_base).hostname or ""
    # The Owner API is not billed; the Fleet API is, and so is every provider behind it.
    priced = mode is not Mode.OWNER and not host.startswith("owner-api.")
    rate_attrs = ("rate_data_usd", "rate_wake_usd", "rate_command_usd")
    if any(settings.sources.get(a) == "env" for a in rate_attrs):
        rates = Rates(
            data=usd_to_micro(settings.rate_data_usd),
            wake=usd_to_micro(settings.rate_wake_usd),
            command=usd_to_micro(settings.rate_command_usd),
        )
    elif preset is not None:
        rates = preset.rates
    else:
        rates = TESLEMETRY_RATES if host.endswith("teslemetry.com") else Rates()
    return Profile(
        mode=mode,
        api_base=api_base,
        issuer=issuer,
        client_id=client_id,
        refresh_style=RefreshStyle.FORM if mode is Mode.FLEET else RefreshStyle.JSON,
        pricing=Pricing(rates=rates, priced=priced),
        provider_token=provider_token,
        token_in_query=bool(settings.token_in_query),
    )
