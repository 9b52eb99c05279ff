"""The JSON API, sign-in, CSRF and the exposure rule, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fleetlog.config import load_settings
from fleetlog.store import tables as t
from fleetlog.web import ExposureError, LiveBoard, Outcome, create_app
from fleetlog.web.seed import seed


def _app(engine: sa.Engine, live: Any = None, **env: str) -> TestClient:
    settings = load_settings({"TZ": "Europe/Berlin", "FLEETLOG_WEB_TILE_URL": "off", **env})
    return TestClient(create_app(settings, engine, live=live))


@pytest.fixture
def seeded(migrated_engine: sa.Engine) -> Iterator[sa.Engine]:
    seed(migrated_engine, cars=2, days=12, seed=3)
    yield migrated_engine


def test_lists_and_details(seeded: sa.Engine) -> None:
    client = _app(seeded)
    cars = client.get("/api/cars").json()
    assert [c["id"] for c in cars] == [1, 2]
    assert cars[0]["summary"]["state"] in {"online", "asleep", "offline"}
    assert cars[0]["summary"]["battery_level"] is not None

    drives = client.get("/api/drives", params={"car": 1, "from": ""}).json()
    assert drives["totals"]["count"] == len(drives["drives"]) > 5
    first = drives["drives"][0]
    assert first["distance_km"] > 0 and first["consumption_wh_per_km"] > 50
    detail = client.get(f"/api/drives/{first['id']}").json()
    assert len(detail["positions"]) >= 12
    gpx = client.get(f"/drive/{first['id']}/gpx")
    assert gpx.headers["content-type"].startswith("application/gpx+xml")
    assert gpx.text.count("<trkpt") == len(detail["positions"])

    charges = client.get("/api/charges", params={"car": "all", "from": ""}).json()
    assert charges["totals"]["count"] >= 2
    charge = client.get(f"/api/charges/{charges['charges'][0]['id']}").json()
    assert charge["samples"] and charge["charge"]["energy_added_kwh"] > 0

    # Car 2's window holds none of car 1's drives.
    other = client.get("/api/drives", params={"car": 2, "from": ""}).json()
    assert {d["car_id"] for d in other["drives"]} == {2}
    assert client.get("/api/drives", params={"car": 99}).status_code == 400
    assert client.get("/api/drives", params={"from": "yesterday"}).status_code == 400


def test_analysis_endpoints(seeded: sa.Engine) -> None:
    client = _app(seeded)
    battery = client.get("/api/battery").json()
    assert battery["capacity_now_kwh"] > 60 and battery["charge_levels"]
    eff = client.get("/api/efficiency").json()
    assert 100 < eff["net_wh_per_km"] < 300
    vampire = client.get("/api/vampire").json()
    assert vampire["periods"] and 0 <= vampire["asleep_pct"] <= 100
    segments = client.get("/api/timeline", params={"from": ""}).json()["segments"]
    kinds = {s["kind"] for s in segments}
    assert {"driving", "charging", "asleep"} <= kinds
    starts = [s["start"] for s in segments]
    assert starts == sorted(starts, reverse=True)
    stats = client.get("/api/statistics", params={"period": "week"}).json()["rows"]
    assert sum(r["drives"] for r in stats) > 5
    assert client.get("/api/locations").json()["visited"]
    assert client.get("/api/costs").json()["months"]
    budget = client.get("/api/budget").json()
    assert budget["credit_usd"] == 10.0 and budget["per_car"]
    assert budget["governor"] is None


def test_cost_and_geofences(seeded: sa.Engine) -> None:
    client = _app(seeded)
    charge = client.get("/api/charges", params={"from": ""}).json()["charges"][0]
    r = client.put(f"/api/charges/{charge['id']}/cost", json={"mode": "absolute", "amount": "7.5"})
    assert r.status_code == 200 and float(r.json()["cost"]) == 7.5
    with seeded.connect() as conn:
        stored = conn.execute(
            sa.select(t.charging_processes.c.cost).where(t.charging_processes.c.id == charge["id"])
        ).scalar_one()
    assert float(stored) == 7.5
    r = client.put(f"/api/charges/{charge['id']}/cost", json={"mode": "per_kwh", "amount": "1"})
    assert float(r.json()["cost"]) == pytest.approx(
        max(charge["energy_added_kwh"], charge["energy_used_kwh"]), abs=0.01
    )
    assert client.put("/api/charges/99999/cost", json={"mode": "clear"}).status_code == 404
    assert (
        client.put(
            f"/api/charges/{charge['id']}/cost", json={"mode": "absolute", "amount": "-1"}
        ).status_code
        == 422
    )

    home = client.get("/api/geofences").json()[0]
    created = client.post(
        "/api/geofences",
        json={"name": "Bakery", "latitude": 53.54, "longitude": 10.01, "radius": 40},
    )
    assert created.status_code == 201
    fence_id = created.json()["id"]
    body = {"name": "Bakery 2", "latitude": 53.54, "longitude": 10.01, "radius": 60}
    assert client.put(f"/api/geofences/{fence_id}", json=body).status_code == 200
    names = {f["name"] for f in client.get("/api/geofences").json()}
    assert "Bakery 2" in names and home["name"] in names
    assert client.delete(f"/api/geofences/{fence_id}").status_code == 204
    assert client.delete(f"/api/geofences/{fence_id}").status_code == 404
    bad = {"name": "", "latitude": 0, "longitude": 0}
    assert client.post("/api/geofences", json=bad).status_code == 422


def test_suspend_and_resume(seeded: sa.Engine) -> None:
    assert _app(seeded).put("/api/car/1/logging/suspend").status_code == 503

    board = LiveBoard()

    async def suspend(car_id: int) -> Outcome:
        return Outcome(car_id == 1, None if car_id == 1 else "Doors are open")

    async def resume(car_id: int) -> Outcome:
        return Outcome(True)

    board.on_suspend = suspend
    board.on_resume = resume
    board.publish(1, {"state": "online", "battery_level": 55})
    client = _app(seeded, live=board)
    assert client.put("/api/car/1/logging/suspend").status_code == 204
    refused = client.put("/api/car/2/logging/suspend")
    assert refused.status_code == 412 and refused.json() == {"error": "Doors are open"}
    assert client.put("/api/car/2/logging/resume").status_code == 204
    assert client.put("/api/car/9/logging/resume").status_code == 404
    assert client.get("/api/cars").json()[0]["summary"]["battery_level"] == 55


def test_openapi_documents_the_api(seeded: sa.Engine) -> None:
    client = _app(seeded)
    paths = client.get("/api/openapi.json").json()["paths"]
    for path in ("/api/drives", "/api/car/{car_id}/logging/suspend", "/api/geofences"):
        assert path in paths
    assert "/drives" not in paths  # pages stay out of the API document
    assert "/api/car/{car_id}/logging/resume" in client.get("/api").text


def test_authentication(seeded: sa.Engine) -> None:
    client = _app(seeded, FLEETLOG_WEB_AUTH="ada:s3cret-pass")
    assert client.get("/api/cars").status_code == 401
    page = client.get("/drives", follow_redirects=False)
    assert page.status_code == 303 and "/sign-in?next=/drives" in page.headers["location"]
    basic = base64.b64encode(b"ada:s3cret-pass").decode()
    assert client.get("/api/cars", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    wrong = base64.b64encode(b"ada:nope").decode()
    assert client.get("/api/cars", headers={"Authorization": f"Basic {wrong}"}).status_code == 401

    form = client.get("/sign-in")
    assert "s3cret-pass" not in form.text
    csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
    bad = client.post("/sign-in", data={"csrf": csrf, "user": "ada", "password": "x"})
    assert "Wrong user or password" in bad.text
    ok = client.post(
        "/sign-in",
        data={"csrf": csrf, "user": "ada", "password": "s3cret-pass", "next": "/drives"},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/drives"
    assert client.get("/drives").status_code == 200
    assert "s3cret-pass" not in client.get("/settings").text
    client.post("/sign-out", data={"csrf": csrf})
    assert client.get("/api/cars").status_code == 401

    token = _app(seeded, FLEETLOG_WEB_AUTH="tok-123456")
    assert token.get("/api/cars", headers={"Authorization": "Bearer tok-123456"}).status_code == 200
    assert token.get("/api/cars", headers={"Authorization": "Bearer other"}).status_code == 401


def test_forms_need_the_csrf_token(seeded: sa.Engine) -> None:
    client = _app(seeded)
    data = {
        "unit_of_length": "mi",
        "unit_of_temperature": "F",
        "unit_of_pressure": "psi",
        "preferred_range": "ideal",
        "language": "de",
    }
    assert client.post("/settings", data={**data, "csrf": "forged"}).status_code == 403
    page = client.get("/settings")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    assert client.post("/settings", data={**data, "csrf": csrf}).status_code == 200
    drives = client.get("/drives").text
    assert "Fahrten" in drives and " mi<" in drives and "°F" in drives


def test_exposure_needs_authentication(engine: sa.Engine) -> None:
    exposed = load_settings({"HTTP_BINDING_ADDRESS": "0.0.0.0"})
    with pytest.raises(ExposureError, match="FLEETLOG_WEB_AUTH"):
        create_app(exposed, engine)
    create_app(
        load_settings({"HTTP_BINDING_ADDRESS": "0.0.0.0", "FLEETLOG_WEB_AUTH": "a:b"}), engine
    )
    create_app(
        load_settings(
            {"HTTP_BINDING_ADDRESS": "0.0.0.0", "FLEETLOG_WEB_ALLOW_UNAUTHENTICATED": "true"}
        ),
        engine,
    )
    create_app(load_settings({}), engine)  # 127.0.0.1 by default
