"""The REST API over real loopback sockets: paths, envelopes, units, errors, billing."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fleetlog.sim.server import Faults, SimServer

StartSim = Callable[..., AbstractAsyncContextManager[SimServer]]  # the conftest fixture


VEHICLE_DATA_ALL = (
    "charge_state;climate_state;closures_state;drive_state;gui_settings;location_data;"
    "vehicle_config;vehicle_state;vehicle_data_combo"
)


def client(sim: SimServer, base: str | None = None, token: str | None = None) -> httpx.AsyncClient:
    # A fresh sign-in each time, so tests that jump more than 8 h ahead still get in.
    bearer = token if token is not None else sim.world.initial_tokens().access_token
    return httpx.AsyncClient(
        base_url=base or sim.base_url, headers={"Authorization": f"Bearer {bearer}"}
    )


async def first_car(c: httpx.AsyncClient) -> dict[str, object]:
    r = await c.get("/api/1/vehicles")
    car: dict[str, object] = r.json()["response"][0]
    return car


async def test_status_products_and_vehicle_list(start_sim: StartSim) -> None:
    async with start_sim() as sim, client(sim) as c:
        r = await c.get("/status")
        assert (r.status_code, r.text) == (200, "ok")
        r = await c.get("/api/1/products")
        body = r.json()
        assert r.status_code == 200 and body["count"] == 1
        item = body["response"][0]
        for key in (
            "id",
            "vehicle_id",
            "vin",
            "state",
            "in_service",
            "id_s",
            "display_name",
            "access_type",
        ):
            assert key in item
        assert item["id_s"] == str(item["id"]) and len(item["vin"]) == 17
        assert item["state"] == "online"
        r = await c.get("/api/1/vehicles", params={"page": 1, "per_page": 10})
        body = r.json()
        assert body["count"] == 1 and body["pagination"]["current"] == 1
        by_id = (await c.get(f"/api/1/vehicles/{item['id']}")).json()["response"]
        by_vin = (await c.get(f"/api/1/vehicles/{item['vin']}")).json()["response"]
        assert by_id == by_vin == item
        r = await c.get("/api/1/vehicles/12345")
        assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_vehicle_data_sections_units_and_location(start_sim: StartSim) -> None:
    async with start_sim() as sim, client(sim) as c:
        car = await first_car(c)
        r = await c.get(
            f"/api/1/vehicles/{car['vin']}/vehicle_data", params={"endpoints": VEHICLE_DATA_ALL}
        )
        assert r.status_code == 200
        data = r.json()["response"]
        for section in (
            "charge_state",
            "climate_state",
            "drive_state",
            "gui_settings",
            "vehicle_config",
            "vehicle_state",
        ):
            assert section in data
        truth = sim.world.cars[0].snapshot()
        assert data["vehicle_state"]["odometer"] == pytest.approx(
            truth.odometer_km / 1.609344, abs=1e-3
        )
        assert data["charge_state"]["battery_range"] == pytest.approx(
            truth.rated_range_km / 1.609344, abs=0.01
        )
        assert data["drive_state"]["latitude"] == pytest.approx(truth.position.lat, abs=1e-6)
        assert data["drive_state"]["gps_as_of"] * 1000 == data["drive_state"]["timestamp"]
        assert 1.5 < data["vehicle_state"]["tpms_pressure_fl"] < 3.5  # bar
        assert "df" in data["vehicle_state"] and "locked" in data["vehicle_state"]
        # Without location_data there is no position; sections are filtered.
        r = await c.get(
            f"/api/1/vehicles/{car['id']}/vehicle_data",
            params={"endpoints": "drive_state;charge_state"},
        )
        data = r.json()["response"]
        assert "latitude" not in data["drive_state"] and "longitude" not in data["drive_state"]
        assert "climate_state" not in data and "vehicle_state" not in data
        r = await c.get(f"/api/1/vehicles/{car['id']}/vehicle_data", params={"endpoints": "nope"})
        assert r.status_code == 400


async def test_driving_speed_in_mph_and_power_in_kw(start_sim: StartSim) -> None:
    async with start_sim() as sim, client(sim) as c:
        car = await first_car(c)
        first_drive = sim.world.cars[0].plan.activities[0].start.at
        assert first_drive is not None
        await sim.advance((first_drive - sim.world.now).total_seconds() + 300)
        data = (await c.get(f"/api/1/vehicles/{car['id']}/vehicle_data")).json()["response"]
        snap = sim.world.cars[0].snapshot()
        assert data["drive_state"]["shift_state"] == "D"
        assert snap.speed_kmh is not None
        assert data["drive_state"]["speed"] == round(snap.speed_kmh / 1.609344)
        assert data["drive_state"]["power"] == round(snap.power_kw)


async def test_asleep_car_answers_408_until_woken(start_sim: StartSim) -> None:
    async with start_sim() as sim, client(sim) as c:
        car = await first_car(c)
        await sim.advance(20 * 60)
        assert (await c.get(f"/api/1/vehicles/{car['id']}")).json()["response"]["state"] == "asleep"
        assert (await c.get("/api/1/vehicles")).json()["response"][0]["state"] == "asleep"
        r = await c.get(f"/api/1/vehicles/{car['id']}/vehicle_data")
        assert r.status_code == 408
        assert r.json() == {
            "response": None,
            "error": "vehicle unavailable: vehicle is offline or asleep",
            "error_description": "",
            "txid": r.headers["x-txid"],
        }
        r = await c.post(f"/api/1/vehicles/{car['id']}/wake_up")
        assert r.status_code == 200 and r.json()["response"]["state"] == "asleep"
        await sim.advance(9)
        assert (await c.get(f"/api/1/vehicles/{car['id']}")).json()["response"]["state"] == "asleep"
        await sim.advance(52)
        assert (await c.get(f"/api/1/vehicles/{car['id']}")).json()["response"]["state"] == "online"
        assert (await c.get(f"/api/1/vehicles/{car['id']}/vehicle_data")).status_code == 200
        ledger = sim.world.ledger
        assert ledger.count("data", 408, billed=True) == 1
        assert ledger.count("wake", 200, billed=True) == 1
        assert ledger.count("data", 200, billed=True) == 1
        assert ledger.count("free", billed=True) == 0


async def test_vehicle_data_keeps_the_car_awake_the_vehicle_endpoint_does_not(
    start_sim: StartSim,
) -> None:
    async with start_sim() as sim, client(sim) as c:
        car = await first_car(c)
        for _ in range(6):  # an hour, polled every 10 minutes
            assert (await c.get(f"/api/1/vehicles/{car['id']}/vehicle_data")).status_code == 200
            await sim.advance(600)
        for _ in range(3):
            await c.get(f"/api/1/vehicles/{car['id']}")
            await sim.advance(600)
        assert (await c.get(f"/api/1/vehicles/{car['id']}")).json()["response"]["state"] == "asleep"


async def test_offline_in_the_garage(start_sim: StartSim) -> None:
    async with start_sim(scenario="city-day") as sim:
        window = next(w for w in sim.world.cars[0].plan.windows if w.kind == "offline")
        await sim.advance((window.start - sim.world.now).total_seconds() + 60)
        async with client(sim) as c:
            car = await first_car(c)
            assert car["state"] == "offline"
            assert (await c.get(f"/api/1/vehicles/{car['id']}/vehicle_data")).status_code == 408
            r = await c.post(f"/api/1/vehicles/{car['id']}/wake_up")
            assert r.json()["response"]["state"] == "offline"


async def test_in_service_is_405(start_sim: StartSim) -> None:
    async with start_sim() as sim, client(sim) as c:
        from fleetlog.sim.plan import Window

        car = sim.world.cars[0]
        now = sim.world.now
        car.add_window(Window("service", now + timedelta(seconds=10), now + timedelta(hours=1)))
        await sim.advance(30)
        item = (await c.get(f"/api/1/vehicles/{car.spec.id}")).json()["response"]
        assert item["in_service"] is True
        r = await c.get(f"/api/1/vehicles/{car.spec.id}/vehicle_data")
        assert r.status_code == 405 and r.json()["error"] == "vehicle is currently in service"


async def test_expired_and_invalid_tokens_are_401(start_sim: StartSim) -> None:
    async with start_sim() as sim:
        async with client(sim, token="not-a-token") as c:
            r = await c.get("/api/1/vehicles")
            assert r.status_code == 401 and r.json()["error"] == "invalid bearer token"
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            assert (await c.get("/api/1/vehicles")).status_code == 401
        await sim.advance(28_800)
        async with client(sim, token=sim.env["FLEETLOG_ACCESS_TOKEN"]) as c:
            r = await c.get("/api/1/vehicles")
            assert r.status_code == 401
            assert r.json()["error"] == "token expired (401)"
            assert r.json()["response"] is None


async def test_wrong_region_is_421_with_the_right_base_url(start_sim: StartSim) -> None:
    async with start_sim() as sim:
        assert set(sim.urls) == {"na", "eu"} and sim.world.account.region == "eu"
        async with client(sim, base=sim.urls["na"]) as c:
            r = await c.get("/api/1/vehicles")
            assert r.status_code == 421
            error = r.json()["error"]
            assert error.startswith(f"user out of region, use base URL: {sim.urls['eu']}, see ")
            region = (await c.get("/api/1/users/region")).json()["response"]
            assert region == {"region": "eu", "fleet_api_base_url": sim.urls["eu"]}


async def test_daily_quota_is_429_with_retry_after_and_ratelimit_headers(
    start_sim: StartSim,
) -> None:
    async with start_sim(daily_data_quota=3) as sim:
        car_id = sim.world.cars[0].spec.id
        await sim.advance(3600 * 2)  # 01:00 UTC Monday: the day has 23 h left
        async with client(sim) as c:
            await c.post(f"/api/1/vehicles/{car_id}/wake_up")
            await sim.advance(61)
            for _ in range(3):
                assert (await c.get(f"/api/1/vehicles/{car_id}/vehicle_data")).status_code == 200
            r = await c.get(f"/api/1/vehicles/{car_id}/vehicle_data")
        assert r.status_code == 429
        wait = int(r.headers["Retry-After"])
        assert 0 < wait <= 23 * 3600
        assert r.headers["RateLimit-Limit"] == "3"
        assert r.headers["RateLimit-Remaining"] == "0"
        assert r.headers["RateLimit-Reset"] == str(wait)
        assert r.json()["error"] == f"Retry in {wait} seconds"
        assert sim.world.ledger.count("data", 429, billed=True) == 1  # 429s are billed
        await sim.advance(wait + 1)  # the next UTC day
        async with client(sim) as c:
            await c.post(f"/api/1/vehicles/{car_id}/wake_up")
            await sim.advance(61)
            assert (await c.get(f"/api/1/vehicles/{car_id}/vehicle_data")).status_code == 200


async def test_billing_limit_disables_the_app_with_403(start_sim: StartSim) -> None:
    async with start_sim(billing_limit_usd=0.05) as sim, client(sim) as c:
        car = await first_car(c)
        for _ in range(2):  # 2 wakes = $0.04
            assert (await c.post(f"/api/1/vehicles/{car['id']}/wake_up")).status_code == 200
        for _ in range(5):  # 5 data = $0.01 → $0.05 reached
            assert (await c.get(f"/api/1/vehicles/{car['id']}/vehicle_data")).status_code == 200
        for path in ("/api/1/vehicles", f"/api/1/vehicles/{car['id']}/vehicle_data"):
            r = await c.get(path)
            assert r.status_code == 403
            assert r.json()["error"] == "account disabled: EXCEEDED_LIMIT"
            assert "Retry-After" not in r.headers
        ledger = sim.world.ledger
        assert ledger.month_cost_usd(sim.world.now) == pytest.approx(0.05)
        assert ledger.count("data", 403, billed=False) == 1
        months = ledger.to_json()["months"]
        assert months["2025-03"]["billed"] == {"data": 5, "wake": 2}


async def test_owner_mode_is_not_billed_and_has_no_regions(start_sim: StartSim) -> None:
    async with start_sim(mode="owner", billing_limit_usd=0.001) as sim, client(sim) as c:
        assert list(sim.urls) == ["eu"] and sim.env["TESLA_AUTH_CLIENT_ID"] == "ownerapi"
        car = await first_car(c)
        for _ in range(3):
            assert (await c.get(f"/api/1/vehicles/{car['id']}/vehicle_data")).status_code == 200
        assert sim.world.ledger.count("data", 200, billed=False) == 3


@pytest.mark.parametrize("mode", ["myteslamate", "teslemetry"])
async def test_provider_token_as_bearer_or_query(start_sim: StartSim, mode: str) -> None:
    async with start_sim(mode=mode) as sim:
        token = sim.env["TOKEN"]
        assert (
            sim.env["TESLA_AUTH_PATH"] == "/api/oauth2/v3" and "TESLA_AUTH_CLIENT_ID" not in sim.env
        )
        async with client(sim, token=token) as c:
            assert (await c.get("/api/1/products")).status_code == 200
        async with httpx.AsyncClient(base_url=sim.base_url) as c:
            assert (await c.get("/api/1/products", params={"token": token})).status_code == 200
            r = await c.get("/api/1/products")
            assert (r.status_code, r.json()["error"]) == (401, "missing_token")
            r = await c.get("/api/1/products", params={"token": "wrong"})
            assert (r.status_code, r.json()["error"]) == (401, "invalid_token")
        async with client(sim) as c:  # the owner's access token is not the provider's TOKEN
            assert (await c.get("/api/1/products")).status_code == 401


async def test_fleet_status_and_telemetry_config_lifecycle(start_sim: StartSim) -> None:
    async with start_sim() as sim, client(sim) as c:
        car = await first_car(c)
        vin = str(car["vin"])
        r = await c.post("/api/1/vehicles/fleet_status", json={"vins": [vin]})
        status = r.json()["response"]
        assert status["key_paired_vins"] == [vin] and status["unpaired_vins"] == []
        info = status["vehicle_info"][vin]
        assert info["firmware_version"] == "2025.2.6" and info["fleet_telemetry_version"] == "1.0.0"
        r = await c.get(f"/api/1/vehicles/{vin}/fleet_telemetry_config")
        assert r.json()["response"] == {
            "synced": True,
            "config": None,
            "limit_reached": False,
            "key_paired": True,
        }
        config = {
            "hostname": "telemetry.example",
            "port": 4443,
            "ca": "PEM",
            "fields": {"Soc": {"interval_seconds": 60}},
        }
        await sim.advance(20 * 60)  # asleep: the car cannot fetch the config yet
        r = await c.post(
            "/api/1/vehicles/fleet_telemetry_config", json={"vins": [vin], "config": config}
        )
        assert r.json()["response"]["updated_vehicles"] == 1
        got = (await c.get(f"/api/1/vehicles/{vin}/fleet_telemetry_config")).json()["response"]
        assert got["synced"] is False and got["config"]["hostname"] == "telemetry.example"
        await c.post(f"/api/1/vehicles/{vin}/wake_up")
        await sim.advance(61)
        got = (await c.get(f"/api/1/vehicles/{vin}/fleet_telemetry_config")).json()["response"]
        assert got["synced"] is True
        claims = {"aud": "com.tesla.fleet.TelemetryClient", "iss": "key", **config, "port": 443}
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        r = await c.post(
            "/api/1/vehicles/fleet_telemetry_config_jws",
            json={"vins": [vin], "token": f"h.{payload}.s"},
        )
        assert r.json()["response"]["skipped_vehicles"]["missing_key"] == []
        got = (await c.get(f"/api/1/vehicles/{vin}/fleet_telemetry_config")).json()["response"]
        assert got["config"]["port"] == 443
        errors = (await c.get(f"/api/1/vehicles/{vin}/fleet_telemetry_errors")).json()["response"]
        assert errors == {"fleet_telemetry_errors": []}
        r = await c.delete(f"/api/1/vehicles/{vin}/fleet_telemetry_config")
        assert r.json()["response"] == {"updated_vehicles": 1}
        bad = await c.post(
            "/api/1/vehicles/fleet_telemetry_config", json={"vins": [vin], "config": {}}
        )
        assert bad.status_code == 400
        assert sim.world.ledger.count("data") == 0  # none of these is priced


async def vehicle_data(sim: SimServer, car_id: int) -> dict[str, Any]:
    async with client(sim) as c:
        r = await c.get(f"/api/1/vehicles/{car_id}/vehicle_data")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()["response"]
        return body


async def test_software_update_progress_is_visible(start_sim: StartSim) -> None:
    async with start_sim() as sim:
        car = sim.world.cars[0]
        update = car.plan.updates[0]
        await sim.advance((update.available_at - sim.world.now).total_seconds() + 600)
        su = (await vehicle_data(sim, car.spec.id))["vehicle_state"]["software_update"]
        assert su["status"] == "downloading" and 0 < su["download_perc"] < 100
        await sim.advance((update.install_at - sim.world.now).total_seconds() + 900)
        su = (await vehicle_data(sim, car.spec.id))["vehicle_state"]["software_update"]
        assert su["status"] == "installing" and 0 < su["install_perc"] < 100
        await sim.advance(1200)
        state = (await vehicle_data(sim, car.spec.id))["vehicle_state"]
        assert state["car_version"] == update.version
        assert state["software_update"]["status"] == ""


async def test_faults_5xx_dropped_and_malformed(start_sim: StartSim) -> None:
    async with start_sim(faults=Faults(error_rate=1.0)) as sim, client(sim) as c:
        r = await c.get("/api/1/vehicles")
        assert r.status_code in (500, 503, 504)
        car_id = sim.world.cars[0].spec.id
        await c.get(f"/api/1/vehicles/{car_id}/vehicle_data")
        assert sim.world.ledger.count("data", billed=True) == 0  # 5xx are never billed
    async with start_sim(faults=Faults(drop_rate=1.0)) as sim, client(sim) as c:
        with pytest.raises(httpx.TransportError):
            await c.get("/api/1/vehicles")
    async with start_sim(faults=Faults(malformed_rate=1.0)) as sim, client(sim) as c:
        r = await c.get("/api/1/vehicles")
        assert r.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.text)
    async with start_sim(faults=Faults(latency_s=0.05)) as sim, client(sim) as c:
        assert (await c.get("/api/1/vehicles")).status_code == 200


async def test_ground_truth_on_the_admin_endpoint(start_sim: StartSim, tmp_path: object) -> None:
    async with start_sim(scenario="city-day") as sim, client(sim) as c:
        await sim.advance(24 * 3600)
        truth = (await c.get("/_sim/truth")).json()
        assert truth["scenario"] == "city-day"
        car = truth["cars"][0]
        assert len(car["drives"]) >= 8 and car["charges"] and car["states"]
        drive = car["drives"][0]
        for key in (
            "start",
            "end",
            "path",
            "odometer_start_km",
            "distance_km",
            "soc_start",
            "energy_used_kwh",
        ):
            assert key in drive
        charge = car["charges"][0]
        for key in ("energy_added_kwh", "energy_from_grid_kwh", "peak_kw", "place", "start", "end"):
            assert key in charge
        assert "by_category" in truth["ledger"]
        clock = (await c.get("/_sim/clock")).json()
        assert clock["now"].startswith("2025-05-15T04:00")
