"""The Tesla client against the simulator over real loopback HTTP, in every mode."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.sources.simcloud import cloud

from fleetlog.sources.tesla import (
    BudgetDeferred,
    Category,
    LimitExceeded,
    RateLimited,
    RefreshTokenSpent,
    TryLater,
    VehicleNotFound,
    VehicleUnavailable,
    WakeNotRequested,
)
from fleetlog.sources.tesla._account import remembered_base
from fleetlog.sources.tesla._auth import TokenEndpoint
from fleetlog.sources.tesla._client import make_auth_http
from fleetlog.store import make_engine, upgrade

MODES = ("owner", "fleet", "myteslamate", "teslemetry")


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> sa.Engine:
    engine = make_engine(f"sqlite:///{tmp_path}/fleetlog.sqlite3")
    upgrade(engine)
    return engine


@pytest.mark.parametrize("mode", MODES)
async def test_list_state_and_vehicle_data_in_every_mode(
    mode: str, tmp_path: Path, sqlite_engine: sa.Engine
) -> None:
    async with cloud(mode, tmp_path) as c:  # type: ignore[arg-type]
        await c.sign_in(sqlite_engine)
        async with await c.account(sqlite_engine) as account:
            client = account.client
            cars = await client.products()
            assert [car.vin for car in cars] == [car.spec.vin for car in c.world.cars]
            car = await client.vehicle(cars[0].vin)
            assert car.state == "online" and car.id == cars[0].id
            data = await client.vehicle_data(car.id)
            assert data["vin"] == car.vin
            drive = data["drive_state"]
            assert isinstance(drive["latitude"], float), "location_data was asked for"
            assert {"charge_state", "vehicle_state", "climate_state"} <= data.keys()
            rows = account.ledger.totals(by="day", per="account")
            by_category = {r.category: r for r in rows}
            assert by_category[Category.DATA].requests == 1
            assert by_category[Category.DATA].billed == (0 if mode == "owner" else 1)
            assert by_category[Category.NONE].billed == 0


async def test_refresh_rotates_single_use_tokens_across_restarts_and_a_spent_token_fails_loudly(
    tmp_path: Path, migrated_engine: sa.Engine
) -> None:
    async with cloud("fleet", tmp_path) as c:
        await c.sign_in(migrated_engine)
        first = await c.account(migrated_engine)
        original_refresh = first.keeper.tokens.refresh_token
        assert original_refresh == c.refresh_token
        await first.aclose()

        # 6 h 1 min later (75 % of 8 h): a new process refreshes at start, and stores first.
        await c.sim.advance(timedelta(hours=6, minutes=1))
        second = await c.account(migrated_engine)
        rotated = second.keeper.tokens.refresh_token
        assert rotated not in (None, original_refresh)
        assert [car.vin for car in await second.client.products()]
        await second.aclose()

        third = await c.account(migrated_engine)  # restored: fresh, no refresh needed
        assert third.keeper.tokens.refresh_token == rotated
        assert third.keeper.health.ok
        await third.aclose()

        # Someone replays the spent token: the token endpoint refuses, with advice.
        async with make_auth_http() as http:
            endpoint = TokenEndpoint(third.profile, http, c.clock)
            with pytest.raises(RefreshTokenSpent) as spent:
                await endpoint.refresh(original_refresh)
        message = str(spent.value)
        assert "single use" in message and "fleetlog login" in message
        assert original_refresh not in message


async def test_another_process_refreshing_first_is_adopted_not_fought(
    tmp_path: Path, sqlite_engine: sa.Engine
) -> None:
    async with cloud("owner", tmp_path) as c:
        await c.sign_in(sqlite_engine)
        running = await c.account(sqlite_engine)
        other = await c.account(sqlite_engine)
        await other.keeper.refresh(reason="another process")
        # `running` still holds the spent refresh token; it must take the vault's pair,
        # which is fresh an hour later: no refresh at all.
        await c.sim.advance(timedelta(hours=1))
        adopted = await running.keeper.refresh(reason="scheduled")
        assert adopted.refresh_token == other.keeper.tokens.refresh_token
        # Later the adopted pair is due: refreshing with *its* token works.
        await c.sim.advance(timedelta(hours=6))
        fresh = await running.keeper.refresh(reason="scheduled")
        assert fresh.refresh_token not in (adopted.refresh_token, c.refresh_token)
        assert running.keeper.health.ok
        assert running.keeper.tokens == fresh
        await running.aclose()
        await other.aclose()


async def test_a_401_refreshes_once_and_retries(tmp_path: Path, sqlite_engine: sa.Engine) -> None:
    async with cloud("fleet", tmp_path) as c:
        await c.sign_in(sqlite_engine)
        async with await c.account(sqlite_engine) as account:
            before = account.keeper.access_token
            await c.sim.advance(timedelta(hours=8, minutes=5))  # expired, refresh not run
            assert await account.client.products()
            assert account.keeper.access_token != before
            statuses = c.ledger()["by_category"]["free"]["by_status"]
            assert statuses == {"200": 2, "401": 1}


async def test_wrong_region_421_switches_to_the_named_base_and_remembers_it(
    tmp_path: Path, sqlite_engine: sa.Engine
) -> None:
    async with cloud("fleet", tmp_path) as c:
        home = c.world.account.region
        other = "na" if home == "eu" else "eu"
        settings = c.settings(TESLA_API_HOST=c.sim.urls[other])
        await c.sign_in(sqlite_engine, settings)
        async with await c.account(sqlite_engine, settings) as account:
            cars = await account.client.products()
            assert cars
            assert account.client.api_base == c.sim.urls[home]
        assert remembered_base(sqlite_engine, c.sim.urls[other]) == c.sim.urls[home]
        async with await c.account(sqlite_engine, settings) as again:
            assert again.client.api_base == c.sim.urls[home]
            await again.client.products()
        assert c.ledger()["by_category"]["free"]["by_status"].get("421") == 1


async def test_429_holds_every_call_until_retry_after(
    tmp_path: Path, sqlite_engine: sa.Engine
) -> None:
    async with cloud("fleet", tmp_path, daily_data_quota=2) as c:
        await c.sign_in(sqlite_engine)
        async with await c.account(sqlite_engine) as account:
            client = account.client
            car = (await client.products())[0]
            await client.vehicle_data(car.id)
            await client.vehicle_data(car.id)
            with pytest.raises(RateLimited) as limited:
                await client.vehicle_data(car.id)
            wait = limited.value.retry_after
            assert wait > 0 and limited.value.retry_at == c.clock.now() + timedelta(seconds=wait)
            calls = c.world.ledger.count()
            # Nothing, not even a free call, goes out before Retry-After.
            await c.sim.advance(wait - 1)
            for call in (client.vehicle_data(car.id), client.vehicle(car.id)):
                with pytest.raises(BudgetDeferred) as deferred:
                    await call
                assert deferred.value.retry_at == limited.value.retry_at
            assert c.world.ledger.count() == calls
            await c.sim.advance(1)
            assert (await client.vehicle(car.id)).vin == car.vin  # the block is lifted
            assert c.world.ledger.count() == calls + 1


async def test_exceeded_limit_backs_off_15_minutes_then_probes_hourly(
    tmp_path: Path, sqlite_engine: sa.Engine
) -> None:
    async with cloud("fleet", tmp_path, billing_limit_usd=0.004) as c:
        await c.sign_in(sqlite_engine)
        async with await c.account(sqlite_engine) as account:
            client = account.client
            car = (await client.products())[0]
            await client.vehicle_data(car.id)
            await client.vehicle_data(car.id)  # $0.004: Tesla disables the app now
            with pytest.raises(LimitExceeded) as disabled:
                await client.vehicle(car.id)
            assert disabled.value.retry_at == c.clock.now() + timedelta(minutes=15)
            state = account.governor.state(c.clock.now())
            assert state.account_disabled and state.blocked_until == disabled.value.retry_at
            calls = c.world.ledger.count()
            await c.sim.advance(14 * 60)
            with pytest.raises(BudgetDeferred):
                await client.products()
            await c.sim.advance(60)
            with pytest.raises(BudgetDeferred):
                await client.vehicle_data(car.id)  # paid calls wait for a successful probe
            with pytest.raises(LimitExceeded) as again:
                await client.products()  # the probe: still disabled
            assert again.value.retry_at == c.clock.now() + timedelta(hours=1)
            assert c.world.ledger.count() == calls + 1
            assert account.ledger.totals(by="month", per="account")


async def test_asleep_car_408_unknown_car_404_and_wake_only_on_request(
    tmp_path: Path, sqlite_engine: sa.Engine
) -> None:
    async with cloud("fleet", tmp_path) as c:
        await c.sign_in(sqlite_engine)
        async with await c.account(sqlite_engine) as account:
            client = account.client
            car = (await client.products())[0]
            for _ in range(24):  # idle cars fall asleep; the free call does not keep them up
                if (await client.vehicle(car.id)).state == "asleep":
                    break
                await c.sim.advance(15 * 60)
            assert (await client.vehicle(car.id)).state == "asleep"
            with pytest.raises(VehicleUnavailable):
                await client.vehicle_data(car.id)
            with pytest.raises(VehicleNotFound):
                await client.vehicle(424242)
            with pytest.raises(WakeNotRequested):
                await client.wake_up(car.id, requested_by=" ")
            woken = await client.wake_up(car.id, requested_by="test: user pressed wake")
            assert woken.vin == car.vin
            await c.sim.advance(61)
            assert (await client.vehicle(car.id)).state == "online"
            assert isinstance(VehicleUnavailable("x", 408), Exception)
            assert not isinstance(VehicleUnavailable("x", 408), TryLater)
