"""Telemetry profiles: only fields fleetlog reads, costs in the expected order, CLI output."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from fleetlog.cli import app
from fleetlog.sources.streaming.fields import KNOWN_FIELDS
from fleetlog.sources.streaming.profiles import PROFILES, fleet_telemetry_config


def test_profiles_use_known_fields_and_rank_by_cost() -> None:
    for profile in PROFILES.values():
        assert set(profile.config()) <= KNOWN_FIELDS
        assert all(spec["interval_seconds"] >= 1 for spec in profile.config().values())
    costs = [PROFILES[n].monthly_usd() for n in ("economy", "balanced", "precise")]
    assert costs == sorted(costs) and costs[0] < 1.0 < costs[-1]
    config = fleet_telemetry_config(PROFILES["precise"], hostname="t.example.com")
    assert config["fields"]["Location"] == {"interval_seconds": 1}
    assert config["prefer_typed"] is True and config["delivery_policy"] == "latest"


def test_cli_prints_the_config_and_the_costs() -> None:
    result = CliRunner().invoke(app, ["telemetry", "config", "--vin", "V1", "--profile", "economy"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["vins"] == ["V1"]
    assert body["config"]["fields"]["Location"]["minimum_delta"] == 50
    assert "$" in result.stderr and "precise" in result.stderr
