"""The pages in a real browser: Debian's Chromium driven by Playwright, never a downloaded one.

One server (uvicorn in a thread) on a seeded SQLite database serves every test of the module;
the browser blocks every request that leaves the machine, so map tiles fail as they would
offline, and those are the only failures a page may log.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn

from fleetlog.config import load_settings
from fleetlog.store import make_engine, upgrade
from fleetlog.web import LiveBoard, Outcome, create_app
from fleetlog.web.seed import seed

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
TILE_HOST = "tile.openstreetmap.org"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def board() -> LiveBoard:
    board = LiveBoard()

    async def suspend(car_id: int) -> Outcome:
        if car_id == 2:
            return Outcome(False, "Sentry mode is on")
        return Outcome(True)

    async def resume(car_id: int) -> Outcome:
        return Outcome(True)

    board.on_suspend = suspend
    board.on_resume = resume
    return board


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, board: LiveBoard) -> Iterator[str]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('web')}/demo.sqlite3")
    upgrade(engine)
    seed(engine, cars=2, days=45, seed=7)
    with engine.connect() as conn:
        for car_id, name in ((1, "Blue Thunder"), (2, "Snowflake")):
            lat, lng = conn.execute(
                sa.text(
                    "SELECT latitude, longitude FROM positions WHERE car_id = :c "
                    "ORDER BY date DESC LIMIT 1"
                ),
                {"c": car_id},
            ).one()
            board.publish(
                car_id,
                {
                    "display_name": name,
                    "state": "asleep",
                    "since": "2026-01-01T20:00:00+00:00",
                    "healthy": True,
                    "battery_level": 71,
                    "rated_battery_range_km": 330.5,
                    "latitude": float(lat),
                    "longitude": float(lng),
                    "locked": True,
                    "sentry_mode": car_id == 2,
                    "is_climate_on": False,
                    "outside_temp": 4.5,
                    "inside_temp": 12.0,
                    "version": "2025.38.9",
                    "update_available": car_id == 1,
                    "update_version": "2025.44.1",
                    "stream_connected": True,
                    "odometer": 23456.0,
                    "charging_state": "Disconnected",
                    "plugged_in": False,
                },
            )
    settings = load_settings({"TZ": "Europe/Berlin"})  # tiles on: the browser must cope
    app = create_app(settings, engine, live=board)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=5)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


class Console:
    """Errors a page logged, apart from the blocked map tiles."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url", "")
        if TILE_HOST in url or TILE_HOST in msg.text:
            return
        self.errors.append(msg.text)


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[tuple[Any, Console]]:
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})

    def only_local(route: Any) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_local)
    pg = context.new_page()
    console = Console(pg)
    yield pg, console
    context.close()


PAGES = [
    ("/", 0, 2),
    ("/drives", 1, 0),
    ("/drives/3", 2, 1),
    ("/charges", 1, 0),
    ("/charges/2", 2, 1),
    ("/battery", 4, 0),
    ("/efficiency", 2, 0),
    ("/vampire", 1, 0),
    ("/timeline?from=", 1, 0),
    ("/statistics", 1, 0),
    ("/locations", 0, 1),
    ("/updates?car=all", 0, 0),
    ("/costs", 2, 0),
    ("/settings", 0, 0),
    ("/geofences", 0, 1),
    ("/geofences/1/edit", 0, 1),
    ("/api", 0, 0),
]


def test_every_page_renders_with_charts_and_maps(page: tuple[Any, Console]) -> None:
    pg, console = page
    for path, charts, maps in PAGES:
        response = pg.goto(path)
        assert response is not None and response.status == 200, path
        pg.wait_for_load_state("load")
        if charts:
            pg.wait_for_selector(".chart .main-svg", timeout=5000)
        if maps:
            pg.wait_for_selector("[data-map] .main-svg", timeout=5000)
        assert pg.locator(".chart .main-svg").count() >= charts, path
        drawn_maps = pg.locator("[data-map]").evaluate_all(
            "els => els.filter(e => e.querySelector('.main-svg .scatterlayer .trace')).length"
        )
        assert drawn_maps >= maps, path
        assert pg.locator("h1").count() == 1, path
        assert console.errors == [], (path, console.errors)
    # The route map asked for tiles (blocked here): maps work with and without them.
    pg.goto("/drives/3")
    pg.wait_for_selector("[data-map] .main-svg")
    assert pg.locator("[data-map] image").count() > 0


def test_filters(page: tuple[Any, Console]) -> None:
    pg, console = page
    pg.goto("/drives")
    all_rows = pg.locator("#drives-table tbody tr").count()
    pg.select_option("select[name=car]", "2")
    pg.fill("input[name=from]", "")
    pg.click("form.filters button[type=submit]")
    pg.wait_for_url("**car=2**")
    assert pg.locator("select[name=car]").input_value() == "2"
    pg.click("a.preset[data-days='7']")
    pg.wait_for_load_state("load")
    week = pg.locator("#drives-table tbody tr").count()
    assert 0 < week < all_rows
    pg.goto("/statistics?period=week&car=all&from=")
    assert pg.locator("#stats-table tbody tr").first.inner_text().split("\t")[0].count("-W") == 1
    assert console.errors == []


def test_geofence_create_and_edit(page: tuple[Any, Console]) -> None:
    pg, console = page
    pg.goto("/geofences")
    pg.click("#new-geofence")
    pg.wait_for_selector("#editor-map .main-svg")
    before = pg.input_value("#fence-lat"), pg.input_value("#fence-lng")
    box = pg.locator("#editor-map .nsewdrag").bounding_box()
    assert box is not None
    pg.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.3)
    after = pg.input_value("#fence-lat"), pg.input_value("#fence-lng")
    assert float(after[0]) > float(before[0]) and float(after[1]) > float(before[1])  # NE
    pg.fill("input[name=name]", "Corner bakery")
    pg.fill("#fence-radius", "35")
    pg.fill("input[name=cost_per_unit]", "0.41")
    pg.click("#geofence-form button[type=submit]")
    pg.wait_for_url("**/geofences")
    row = pg.locator("#geofences-table tr", has_text="Corner bakery")
    assert "35 m" in row.inner_text()
    row.locator("a").click()
    pg.wait_for_selector("#editor-map .main-svg")
    assert pg.input_value("#fence-lat") == after[0]
    pg.fill("#fence-radius", "120")
    pg.click("#geofence-form button[type=submit]")
    pg.wait_for_url("**/geofences")
    assert "120 m" in pg.locator("#geofences-table tr", has_text="Corner bakery").inner_text()
    assert console.errors == []


def test_tariff_editor(page: tuple[Any, Console]) -> None:
    pg, console = page
    pg.goto("/geofences/1/edit")
    rows = pg.locator("#tariff-windows tbody tr")
    spare = rows.count()
    pg.click("#tariff-add")
    assert rows.count() == spare + 1
    pg.locator("#tariff-windows tbody tr .tariff-remove").last.click()  # and gone again
    assert rows.count() == spare
    pg.click("#tariff-add")
    new = rows.last
    new.locator("input[name=w_days]").fill("mon-sun")
    new.locator("input[name=w_start]").fill("23:00")
    new.locator("input[name=w_end]").fill("05:00")
    new.locator("input[name=w_price]").fill("0.09")
    pg.click("#tariff-preview-button")
    pg.wait_for_selector("#tariff-preview")
    assert "would change (nothing saved yet)" in pg.locator("#tariff-preview").inner_text()
    assert pg.locator("#tariff-windows input[value='23:00']").count() == 1  # kept as typed
    pg.click("#tariff-save")
    pg.wait_for_selector("#tariff-saved")
    assert pg.locator("#tariff-windows input[name=w_days]").first.input_value() == "*"
    assert pg.locator("#tariff-windows input[name=w_price]").first.input_value() == "0.09"
    assert console.errors == []


def test_cost_editor(page: tuple[Any, Console]) -> None:
    pg, console = page
    pg.goto("/charges/2")
    pg.select_option("#cost-form select[name=mode]", "absolute")
    pg.fill("#cost-form input[name=amount]", "12.34")
    pg.click("#cost-form button")
    pg.wait_for_selector("#cost-saved")
    assert "12.34" in pg.locator(".stats").inner_text()
    pg.select_option("#cost-form select[name=mode]", "per_minute")
    pg.fill("#cost-form input[name=amount]", "-3")
    pg.click("#cost-form button")
    assert "0 or more" in pg.locator(".error").inner_text()
    assert console.errors == []


def test_cars_live_updates_and_logging_buttons(page: tuple[Any, Console], board: LiveBoard) -> None:
    pg, console = page
    pg.goto("/")
    car1 = pg.locator("article[data-car='1']")
    car2 = pg.locator("article[data-car='2']")
    assert "update 2025.44.1" in car1.inner_text()
    pg.wait_for_timeout(300)  # let the event stream connect
    board.publish(1, {**dict(board.summary(1) or {}), "state": "driving", "battery_level": 64})
    pg.wait_for_function(
        "document.querySelector(\"article[data-car='1'] [data-field=battery_level]\")"
        ".textContent === '64'",
        timeout=5000,
    )
    assert car1.locator("[data-field=state]").inner_text() == "driving"
    car1.locator("button[data-action=suspend]").click()
    pg.wait_for_function(
        "document.querySelector(\"article[data-car='1'] .logging-result\")"
        ".textContent.includes('suspended')"
    )
    car2.locator("button[data-action=suspend]").click()
    pg.wait_for_function(
        "document.querySelector(\"article[data-car='2'] .logging-result\")"
        ".textContent.includes('Sentry mode is on')"
    )
    car2.locator("button[data-action=resume]").click()
    pg.wait_for_function(
        "document.querySelector(\"article[data-car='2'] .logging-result\")"
        ".textContent.includes('resumed')"
    )
    # Chromium logs every 4xx answer; the refused suspend is TeslaMate's 412 by design.
    assert [e for e in console.errors if "status of 412" not in e] == []


def test_screenshots(page: tuple[Any, Console]) -> None:
    """Write the README's screenshots when FLEETLOG_SCREENSHOTS names a directory."""
    target = os.environ.get("FLEETLOG_SCREENSHOTS")
    if not target:
        pytest.skip("set FLEETLOG_SCREENSHOTS=docs/img to refresh the README screenshots")
    out = ROOT / target
    out.mkdir(parents=True, exist_ok=True)
    pg, _ = page
    pg.goto("/")
    pg.wait_for_selector("[data-map] .main-svg")
    pg.screenshot(path=str(out / "web-cars.png"), full_page=True)
    pg.goto("/drives/3")
    pg.wait_for_selector(".chart .main-svg")
    pg.screenshot(path=str(out / "web-drive.png"), full_page=True)
