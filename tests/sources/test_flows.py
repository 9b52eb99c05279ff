"""Whole flows over loopback HTTP: provider TOKEN forms and secret-free logs, the ledger
against the simulator's billing counters, the governor under a tight cap, the Fleet sign-in."""

from __future__ import annotations

import itertools
import logging
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from tests.sources.simcloud import cloud

from fleetlog.sources.tesla import (
    AuthFlowError,
    BudgetDeferred,
    Category,
    FleetSignIn,
    Mode,
    VehicleNotFound,
    VehicleUnavailable,
)
from fleetlog.sources.tesla._pricing import usd_to_micro
from fleetlog.store import make_engine, upgrade


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> sa.Engine:
    engine = make_engine(f"sqlite:///{tmp_path}/fleetlog.sqlite3")
    upgrade(engine)
    return engine


@pytest.mark.parametrize("in_query", [False, True], ids=["bearer", "query"])
async def test_token_in_both_forms_and_no_secret_in_any_debug_log(
    in_query: bool, tmp_path: Path, sqlite_engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: fleetlog's, httpx's and httpcore's
    async with cloud("myteslamate", tmp_path) as c:
        provider_token = c.world.options.provider_token
        settings = c.settings(
            TOKEN=f"?token={provider_token}",  # TeslaMate's older provider form
            FLEETLOG_TOKEN_IN_QUERY="true" if in_query else "false",
        )
        assert settings.token == provider_token
        await c.sign_in(sqlite_engine, settings)
        async with await c.account(sqlite_engine, settings) as account:
            client = account.client
            car = (await client.products())[0]
            await client.vehicle(car.id)
            await client.vehicle_data(car.id)
            await account.keeper.refresh(reason="test")
            await c.sim.advance(timedelta(hours=9))
            await account.keeper.refresh(reason="test")
            with pytest.raises(VehicleNotFound):
                await client.vehicle_data(999)
            assert repr(account.keeper.tokens).count("<hidden>") == 2
        issuer = c.world.tokens
        secrets = {provider_token, *issuer._access, *issuer._refresh, *issuer._used_refresh}
    assert len(secrets) >= 5
    text = caplog.text + "\n".join(
        f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records
    )
    assert "tesla call" in text and "HTTP Request" in text, "the logs were captured"
    leaked = [s for s in secrets if s in text]
    assert not leaked, "a secret reached a log line"


async def test_ledger_totals_equal_the_simulators_billing_counters(
    tmp_path: Path, migrated_engine: sa.Engine
) -> None:
    async with cloud("fleet", tmp_path) as c:
        await c.sign_in(migrated_engine)
        async with await c.account(migrated_engine) as account:
            client = account.client
            car = (await client.products())[0]
            await client.vehicles()
            for _ in range(5):
                await client.vehicle_data(car.id)
                await c.sim.advance(30)
            await client.vehicle_data(car.vin, ["charge_state", "location_data"])
            await client.fleet_status([car.vin])
            await client.region()
            with pytest.raises(VehicleNotFound):
                await client.vehicle_data(31337)  # 404 on a priced endpoint: billed
            while (await client.vehicle(car.id)).state != "asleep":
                await c.sim.advance(20 * 60)
            with pytest.raises(VehicleUnavailable):
                await client.vehicle_data(car.id)  # 408: billed too
            await client.wake_up(car.id, requested_by="test")
            await c.sim.advance(90)
            await client.vehicle_data(car.id)
            await client.fleet_telemetry_config(car.vin)
            await client.delete_fleet_telemetry_config(car.vin)

        sim = c.ledger()
        ours = account.ledger.totals(by="month", per="account")
        by_cat = {t.category: t for t in ours}
        month = c.clock.now().strftime("%Y-%m")
        billed = sim["months"][month]["billed"]
        assert by_cat[Category.DATA].billed == billed["data"] == 9
        assert by_cat[Category.WAKE].billed == billed["wake"] == 1
        assert Category.COMMAND not in by_cat and "command" not in billed
        # Every request, billed or not, is in both books.
        sim_calls = {cat: entry["calls"] for cat, entry in sim["by_category"].items()}
        assert by_cat[Category.DATA].requests == sim_calls["data"]
        assert by_cat[Category.WAKE].requests == sim_calls["wake"]
        assert by_cat[Category.NONE].requests == sim_calls["free"]
        cost = sum(t.cost_micro_usd for t in ours)
        assert cost == usd_to_micro(sim["months"][month]["cost_usd"])
        per_car = account.ledger.totals(by="day", per="vehicle")
        assert sum(t.billed for t in per_car) == 10


async def test_governor_keeps_spend_under_a_tight_cap_over_http(
    tmp_path: Path, sqlite_engine: sa.Engine
) -> None:
    # Near the end of March, $0.50 a month is about 9 calls a day (250 over the 29 days left).
    async with cloud("fleet", tmp_path, billing_limit_usd=None) as c:
        settings = c.settings(FLEETLOG_BUDGET_MONTHLY_USD="0.50")
        await c.sign_in(sqlite_engine, settings)
        async with await c.account(sqlite_engine, settings) as account:
            client, governor = account.client, account.governor
            car = (await client.products())[0]
            end = c.clock.now() + timedelta(days=2)
            granted: list = []
            while c.clock.now() < end:
                try:
                    await client.vehicle_data(car.id)
                    granted.append(c.clock.now())
                    await c.sim.advance(60)
                except VehicleUnavailable:
                    granted.append(c.clock.now())
                    await c.sim.advance(60)
                except BudgetDeferred as later:
                    assert later.retry_at > c.clock.now()
                    step = min(later.retry_at, end) - c.clock.now()
                    await c.sim.advance(max(step.total_seconds(), 1))
                # account tokens stay fresh across two days
                if account.keeper.tokens.refresh_due(c.clock.now()) <= c.clock.now():
                    await account.keeper.refresh(reason="test")
            state = governor.state(c.clock.now())
            month_cost = c.ledger()["months"]
            spent_sim = sum(m["cost_usd"] for m in month_cost.values())
            assert spent_sim == pytest.approx(state.spent_usd)
            assert 0 < spent_sim <= 0.50
            gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(granted[3:])]
            assert gaps and min(gaps) > 600, "after the first allowance calls are spread out"
            days = {t.date() for t in granted}
            assert len(days) >= 2, "polling slowed down, it did not stop"


async def test_fleet_sign_in_with_the_authorization_code_flow(
    tmp_path: Path, sqlite_engine: sa.Engine
) -> None:
    async with cloud("fleet", tmp_path) as c:
        settings = c.settings()
        options = c.world.options
        flow = FleetSignIn(
            settings,
            sqlite_engine,
            client_id=options.client_id,
            client_secret=options.client_secret,
            redirect_uri="https://fleetlog.example/callback",
            clock=c.clock,
        )
        url = flow.authorize_url()
        assert "vehicle_location" in url and "offline_access" in url and "state=" in url
        async with httpx.AsyncClient() as browser:
            redirect = (await browser.get(url)).headers["Location"]
        with pytest.raises(AuthFlowError, match="state"):
            await flow.finish(redirect.replace(f"state={flow.state}", "state=forged"))
        signed = await flow.finish(redirect)
        assert signed.mode is Mode.FLEET
        assert signed.region is not None and signed.region.region == c.world.account.region
        assert [v.vin for v in signed.vehicles] == [car.spec.vin for car in c.world.cars]
        with pytest.raises(AuthFlowError, match="expired or was used"):
            await flow.finish(redirect)  # codes are single use
        async with await c.account(sqlite_engine, settings) as account:
            assert await account.client.products()
