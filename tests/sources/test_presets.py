"""FLEETLOG_PROVIDER presets, and TeslaMate's documented provider settings working as written."""

from __future__ import annotations

import pytest

from fleetlog.config import ConfigError, load_settings
from fleetlog.sources.tesla import Mode, resolve_profile
from fleetlog.sources.tesla._hosts import is_china, issuer_of, trusted_region_switch
from fleetlog.sources.tesla._pricing import TESLEMETRY_RATES, Rates


def profile(**env: str):  # type: ignore[no-untyped-def]
    return resolve_profile(load_settings(env))


def test_teslamates_myteslamate_example_as_written() -> None:
    p = profile(
        TOKEN="mtm-token-123456",
        TESLA_API_HOST="https://api.myteslamate.com",
        TESLA_AUTH_HOST="https://api.myteslamate.com",
        TESLA_AUTH_PATH="/api/oauth2/v3",
    )
    assert p.mode is Mode.PROVIDER and p.provider_token == "mtm-token-123456"
    assert p.token_url == "https://api.myteslamate.com/api/oauth2/v3/token"
    assert p == profile(FLEETLOG_PROVIDER="myteslamate", TOKEN="?token=mtm-token-123456")
    assert "mtm-token" not in repr(p)


def test_teslamates_teslemetry_example_as_written() -> None:
    p = profile(
        TOKEN="tlm-token-123456",
        TESLA_API_HOST="https://api.teslemetry.com",
        TESLA_AUTH_HOST="https://api.teslemetry.com",
        TESLA_AUTH_PATH="/api/oauth2/v3",
    )
    assert p.api_base == "https://api.teslemetry.com" and p.pricing.rates == TESLEMETRY_RATES
    assert p == profile(FLEETLOG_PROVIDER="teslemetry", TOKEN="tlm-token-123456")


def test_fleet_presets_and_explicit_variables_win() -> None:
    eu = profile(FLEETLOG_PROVIDER="fleet-eu", TESLA_AUTH_CLIENT_ID="my-app")
    assert eu.mode is Mode.FLEET and eu.api_base == "https://fleet-api.prd.eu.vn.cloud.tesla.com"
    assert eu.token_url == "https://fleet-auth.prd.vn.cloud.tesla.com/oauth2/v3/token"
    mine = profile(FLEETLOG_PROVIDER="fleet-eu", TESLA_API_HOST="https://proxy.local:4443")
    assert mine.api_base == "https://proxy.local:4443"
    cheap = profile(
        FLEETLOG_PROVIDER="teslemetry", TOKEN="t0k3n-abcdef", FLEETLOG_RATE_DATA_USD="0.001"
    )
    assert cheap.pricing.rates.data == 1000


def test_owner_defaults_and_china_from_the_tokens_issuer() -> None:
    owner = profile()
    assert owner.mode is Mode.OWNER and not owner.pricing.priced
    assert owner.api_base == "https://owner-api.teslamotors.com"
    import base64
    import json

    claims = base64.urlsafe_b64encode(
        json.dumps({"iss": "https://auth.tesla.cn/oauth2/v3"}).encode()
    )
    jwt = "eyJhbGciOiJSUzI1NiJ9." + claims.decode().rstrip("=") + ".sig"
    assert issuer_of(jwt) == "https://auth.tesla.cn/oauth2/v3" and is_china(issuer_of(jwt))
    cn = resolve_profile(load_settings({}), jwt)
    assert cn.api_base == "https://owner-api.vn.cloud.tesla.cn"
    assert issuer_of("qts-opaque") == "https://auth.tesla.com/oauth2/v3"
    assert Rates() == owner.pricing.rates


def test_bad_preset_and_endpoints_are_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match="myteslamate, teslemetry"):
        load_settings({"FLEETLOG_PROVIDER": "tesla"})
    with pytest.raises(ConfigError, match="drive_stat"):
        load_settings({"FLEETLOG_VEHICLE_DATA_ENDPOINTS": "drive_stat;charge_state"})
    with pytest.raises(ConfigError, match="US dollars"):
        load_settings({"FLEETLOG_BUDGET_MONTHLY_USD": "ten"})


@pytest.mark.parametrize(
    ("current", "new", "ok"),
    [
        (
            "https://fleet-api.prd.na.vn.cloud.tesla.com",
            "https://fleet-api.prd.eu.vn.cloud.tesla.com",
            True,
        ),
        ("https://fleet-api.prd.na.vn.cloud.tesla.com", "https://evil.example", False),
        (
            "https://fleet-api.prd.na.vn.cloud.tesla.com",
            "http://fleet-api.prd.eu.vn.cloud.tesla.com",
            False,
        ),
        ("http://127.0.0.1:8001", "http://127.0.0.1:8002", True),
    ],
)
def test_which_421_targets_are_followed(current: str, new: str, ok: bool) -> None:
    assert trusted_region_switch(current, new) is ok
