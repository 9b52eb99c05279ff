"""The tariff editor: JSON API and form, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fleetlog.config import load_settings
from fleetlog.costs import Tariff, get_tariff, recompute_costs, set_tariff, windows_of
from fleetlog.store import tables as t
from fleetlog.web import create_app
from fleetlog.web.seed import seed

NIGHT = {"days": "*", "start": "22:00", "end": "06:00", "price": "0.11"}
BODY = {"currency": "eur", "default_price": "0.40", "windows": [NIGHT]}


@pytest.fixture
def seeded(migrated_engine: sa.Engine) -> Iterator[sa.Engine]:
    seed(migrated_engine, cars=2, days=12, seed=3)
    yield migrated_engine


def _client(engine: sa.Engine) -> TestClient:
    settings = load_settings({"TZ": "Europe/Berlin", "FLEETLOG_WEB_TILE_URL": "off"})
    return TestClient(create_app(settings, engine))


def _costs(engine: sa.Engine, fence_id: int) -> dict[int, Decimal | None]:
    cp = t.charging_processes
    with engine.connect() as conn:
        rows = conn.execute(sa.select(cp.c.id, cp.c.cost).where(cp.c.geofence_id == fence_id))
        return {r.id: None if r.cost is None else Decimal(str(r.cost)) for r in rows}


def _oracle(engine: sa.Engine, tariff: Tariff | None) -> list[dict[str, object]]:
    """What the costs module itself says the change does (rolled back)."""
    with engine.connect() as conn:
        tx = conn.begin()
        if tariff is not None:
            set_tariff(conn, 1, tariff)
        else:
            from fleetlog.costs import delete_tariff

            delete_tariff(conn, 1)
        changes = recompute_costs(conn, geofence_id=1, default_time_zone="Europe/Berlin")
        tx.rollback()
    return [{"charge_id": c.process_id, "old": c.old, "new": c.new} for c in changes]


def _decimals(changes: list[dict[str, object]]) -> list[dict[str, object]]:
    return [
        {
            "charge_id": c["charge_id"],
            "old": None if c["old"] is None else Decimal(str(c["old"])),
            "new": None if c["new"] is None else Decimal(str(c["new"])),
        }
        for c in changes
    ]


def test_tariff_crud_and_preview(seeded: sa.Engine) -> None:
    client = _client(seeded)
    assert client.get("/api/geofences/1/tariff").json()["tariff"] is None
    assert client.get("/api/geofences/999/tariff").status_code == 404

    tariff = Tariff("EUR", windows_of(["* 22:00-06:00 0.11"]), default_price=Decimal("0.40"))
    before = _costs(seeded, 1)
    preview = client.post("/api/geofences/1/tariff/preview", json=BODY).json()
    assert preview["applied"] is False and preview["changed"] > 0
    assert _decimals(preview["changes"]) == _oracle(seeded, tariff)
    assert _costs(seeded, 1) == before  # a dry run writes nothing
    with seeded.connect() as conn:
        assert get_tariff(conn, 1) is None

    saved = client.put("/api/geofences/1/tariff", json=BODY)
    assert saved.status_code == 200 and saved.json()["applied"] is True
    assert saved.json()["changes"] == preview["changes"]
    after = _costs(seeded, 1)
    for change in preview["changes"]:
        new = change["new"]
        assert after[change["charge_id"]] == (None if new is None else Decimal(str(new)))
    got = client.get("/api/geofences/1/tariff").json()["tariff"]
    assert got["currency"] == "EUR" and Decimal(got["default_price"]) == Decimal("0.40")
    assert [(w["days"], w["start"], w["end"]) for w in got["windows"]] == [("*", "22:00", "06:00")]
    with seeded.connect() as conn:
        assert get_tariff(conn, 1) == tariff

    # clearing: a dry run first, then for real; both equal the costs module's answer
    oracle = _oracle(seeded, None)
    dry = client.delete("/api/geofences/1/tariff", params={"dry_run": "true"}).json()
    assert dry["applied"] is False and _decimals(dry["changes"]) == oracle
    cleared = client.delete("/api/geofences/1/tariff").json()
    assert cleared["applied"] is True and _decimals(cleared["changes"]) == oracle
    assert client.get("/api/geofences/1/tariff").json()["tariff"] is None
    assert _oracle(seeded, None) == []  # every cost is what flat billing says now

    schema = client.get("/api/openapi.json").json()["paths"]
    assert set(schema["/api/geofences/{fence_id}/tariff"]) == {"get", "put", "delete"}
    assert "post" in schema["/api/geofences/{fence_id}/tariff/preview"]


@pytest.mark.parametrize(
    ("windows", "currency", "needle"),
    [
        ([NIGHT, {**NIGHT, "days": "sun", "start": "05:00", "end": "07:00"}], "EUR", "overlap"),
        ([{**NIGHT, "days": "someday"}], "EUR", "window 1: 'someday' is not a day"),
        ([{**NIGHT, "start": "25:00"}], "EUR", "not a time of day"),
        ([{**NIGHT, "season_from": "02-30x", "season_to": "03-01"}], "EUR", "window 1"),
        ([{**NIGHT, "season_from": "06-01"}], "EUR", "both a first and a last day"),
        ([NIGHT], "EU1", "three-letter code"),
    ],
)
def test_tariff_validation(
    seeded: sa.Engine, windows: list[dict[str, str]], currency: str, needle: str
) -> None:
    client = _client(seeded)
    body = {"currency": currency, "windows": windows}
    for answer in (
        client.post("/api/geofences/1/tariff/preview", json=body),
        client.put("/api/geofences/1/tariff", json=body),
    ):
        assert answer.status_code == 422
        assert any(needle in p for p in answer.json()["detail"]["problems"]), answer.json()
    # a negative price never reaches the tariff module
    negative = {"currency": "EUR", "windows": [{**NIGHT, "price": "-1"}]}
    assert client.put("/api/geofences/1/tariff", json=negative).status_code == 422
    with seeded.connect() as conn:
        assert get_tariff(conn, 1) is None


def test_seasons_and_weekdays_may_share_times(seeded: sa.Engine) -> None:
    body = {
        "currency": "EUR",
        "windows": [
            {"days": "mon-fri", "start": "07:00", "end": "22:00", "price": "0.3"},
            {"days": "sat,sun", "start": "07:00", "end": "22:00", "price": "0.2"},
            {"season_from": "11-01", "season_to": "02-28", "days": "*", "start": "22:00",
             "end": "07:00", "price": "0.1"},
            {"season_from": "03-01", "season_to": "10-31", "days": "*", "start": "22:00",
             "end": "07:00", "price": "0.15"},
        ],
    }  # fmt: skip
    answer = _client(seeded).put("/api/geofences/1/tariff", json=body)
    assert answer.status_code == 200, answer.json()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found
    return found.group(1)


def test_tariff_form(seeded: sa.Engine) -> None:
    client = _client(seeded)
    page = client.get("/geofences/1/edit")
    assert page.status_code == 200 and 'id="tariff-form"' in page.text
    csrf = _csrf(page.text)
    fields = {
        "csrf": csrf,
        "currency": "EUR",
        "default_price": "",
        "w_season_from": ["", ""],
        "w_season_to": ["", ""],
        "w_days": ["mon-fri", ""],
        "w_start": ["22:00", ""],
        "w_end": ["06:00", ""],
        "w_price": ["0.12", ""],
    }
    before = _costs(seeded, 1)
    shown = client.post("/geofences/1/tariff", data={**fields, "action": "preview"})
    assert shown.status_code == 200 and 'id="tariff-preview"' in shown.text
    tariff = Tariff("EUR", windows_of(["mon-fri 22:00-06:00 0.12"]))
    oracle = _oracle(seeded, tariff)
    assert f"{len(oracle)} past charge cost(s) would change" in shown.text
    assert _costs(seeded, 1) == before
    assert 'value="mon-fri"' in shown.text  # the typed windows stay in the form

    bad = client.post(
        "/geofences/1/tariff", data={**fields, "w_price": ["abc", ""], "action": "save"}
    )
    assert bad.status_code == 200 and 'id="tariff-errors"' in bad.text
    assert "is not a price" in bad.text
    forged = client.post("/geofences/1/tariff", data={**fields, "csrf": "x", "action": "save"})
    assert forged.status_code == 403
    with seeded.connect() as conn:
        assert get_tariff(conn, 1) is None

    saved = client.post(
        "/geofences/1/tariff", data={**fields, "action": "save"}, follow_redirects=False
    )
    assert saved.status_code == 303
    assert saved.headers["location"].endswith(f"/geofences/1/edit?tariff_saved={len(oracle)}")
    with seeded.connect() as conn:
        assert get_tariff(conn, 1) == tariff
    cleared = client.post(
        "/geofences/1/tariff/clear", data={"csrf": csrf, "action": "clear"}, follow_redirects=False
    )
    assert cleared.status_code == 303
    with seeded.connect() as conn:
        assert get_tariff(conn, 1) is None
