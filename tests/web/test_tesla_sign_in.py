"""Tesla sign-in and sign-out from the web, against the simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fleetlog.config import load_settings
from fleetlog.sim.scenarios import commuter_week
from fleetlog.sim.server import SimServer
from fleetlog.sim.world import CloudOptions, Mode, World
from fleetlog.store.tables import tokens as tokens_table
from fleetlog.web import LiveBoard, create_app

KEY = "test-encryption-key-for-the-web"


class Sim:
    """A simulator on its own event loop in a thread (the web app's handlers run their own)."""

    def __init__(self, mode: Mode) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = SimServer(World(commuter_week(), CloudOptions(mode=mode)))
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        self.env = dict(self.server.env)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def owner_sim() -> Iterator[Sim]:
    sim = Sim("owner")
    yield sim
    sim.close()


def _client(
    engine: sa.Engine, sim: Sim, tmp_path: Path, live: object = None, **extra: str
) -> TestClient:
    env = {k: v for k, v in sim.env.items() if not k.startswith("FLEETLOG_")}
    env.update(
        ENCRYPTION_KEY=KEY,
        FLEETLOG_DATA_DIR=str(tmp_path),
        TZ="Europe/Berlin",
        FLEETLOG_WEB_TILE_URL="off",
        **extra,
    )
    return TestClient(create_app(load_settings(env), engine, live=live))  # type: ignore[arg-type]


def _stored(engine: sa.Engine) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(tokens_table)))


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert found
    return found.group(1)


def test_sign_in_and_out_with_a_token_pair(
    migrated_engine: sa.Engine, owner_sim: Sim, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    access = owner_sim.env["FLEETLOG_ACCESS_TOKEN"]
    refresh = owner_sim.env["FLEETLOG_REFRESH_TOKEN"]
    client = _client(migrated_engine, owner_sim, tmp_path)
    page = client.get("/settings/tesla")
    assert page.status_code == 200 and "Not signed in" in page.text
    assert 'name="access_token"' in page.text
    assert client.get("/api/tesla/account").json()["signed_in"] is False
    csrf = _csrf(page.text)

    # Wrong tokens: a clear error, nothing kept, nothing echoed.
    wrong = client.post(
        "/settings/tesla/sign-in",
        data={"csrf": csrf, "access_token": "not-a-token", "refresh_token": "nor-this-one"},
    )
    assert wrong.status_code == 200 and 'id="tesla-error"' in wrong.text
    assert "Tesla did not accept the sign-in" in wrong.text
    assert "not-a-token" not in wrong.text and "nor-this-one" not in wrong.text
    assert _stored(migrated_engine) == []
    missing = client.post("/api/tesla/sign-in", json={"access_token": "x"})
    assert missing.status_code == 422 and "both" in missing.json()["error"]
    forged = client.post(
        "/settings/tesla/sign-in",
        data={"csrf": "forged", "access_token": access, "refresh_token": refresh},
    )
    assert forged.status_code == 403 and _stored(migrated_engine) == []

    # The simulator's real pair: stored encrypted, checked, cars listed; never rendered.
    done = client.post(
        "/settings/tesla/sign-in",
        data={"csrf": csrf, "access_token": access, "refresh_token": refresh},
    )
    assert done.status_code == 200, done.text
    assert 'id="tesla-notice"' in done.text and 'id="tesla-cars"' in done.text
    assert re.search(r'<ul id="tesla-cars"><li>[^<]+ · [0-9A-Z]{17} · ', done.text)
    rows = _stored(migrated_engine)
    assert len(rows) == 1
    blob_access, blob_refresh = bytes(rows[0].access), bytes(rows[0].refresh)
    assert access.encode() not in blob_access and refresh.encode() not in blob_refresh
    state = client.get("/api/tesla/account").json()
    assert state["signed_in"] is True and state["tokens_saved_at"]
    for html in (done.text, client.get("/settings/tesla").text, client.get("/settings").text):
        assert access not in html and refresh not in html
        assert access[:24] not in html  # not even a prefix
    assert access not in str(state) and refresh not in str(state)

    # Wrong tokens after a good sign-in leave the good ones in place.
    client.post(
        "/settings/tesla/sign-in",
        data={"csrf": csrf, "access_token": "still-wrong", "refresh_token": "still-wrong-2"},
    )
    assert [bytes(r.access) for r in _stored(migrated_engine)] == [blob_access]

    # Sign-out needs the confirmation, then deletes the tokens.
    kept = client.post("/settings/tesla/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert kept.status_code == 303 and len(_stored(migrated_engine)) == 1
    gone = client.post("/settings/tesla/sign-out", data={"csrf": csrf, "confirm": "yes"})
    assert gone.status_code == 200 and "Signed out." in gone.text
    assert "Not signed in" in gone.text
    assert _stored(migrated_engine) == []

    for secret in (access, refresh, "not-a-token", "still-wrong"):
        assert secret not in caplog.text  # never logged

    # The JSON API does the same (a fresh simulator: the first sign-in refreshed, which
    # spent the pasted refresh token).
    fresh = Sim("owner")
    try:
        access, refresh = fresh.env["FLEETLOG_ACCESS_TOKEN"], fresh.env["FLEETLOG_REFRESH_TOKEN"]
        client = _client(migrated_engine, fresh, tmp_path)
        pair = {"access_token": access, "refresh_token": refresh}
        signed = client.post("/api/tesla/sign-in", json=pair)
        assert signed.status_code == 200 and signed.json()["signed_in"] is True, signed.text
        assert access not in signed.text and refresh not in signed.text
        assert len(_stored(migrated_engine)) == 1
        assert client.delete("/api/tesla/tokens").status_code == 204
        assert _stored(migrated_engine) == []
    finally:
        fresh.close()
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/tesla/account", "/api/tesla/sign-in", "/api/tesla/tokens"} <= set(paths)


def test_provider_sign_in_and_health(migrated_engine: sa.Engine, tmp_path: Path) -> None:
    sim = Sim("myteslamate")
    try:
        board = LiveBoard()
        board.account = lambda: {
            "signed_in": False,
            "needs_login": True,
            "token_error": "refresh refused (login_required)",
            "next_token_refresh_at": None,
        }
        client = _client(migrated_engine, sim, tmp_path, live=board)
        page = client.get("/settings/tesla")
        assert 'name="access_token"' not in page.text  # the inputs are hidden
        assert "provider" in page.text and "TOKEN" in page.text
        assert "last refresh error: refresh refused (login_required)" in page.text
        done = client.post("/settings/tesla/sign-in", data={"csrf": _csrf(page.text)})
        assert done.status_code == 200 and 'id="tesla-notice"' in done.text, done.text
        assert len(_stored(migrated_engine)) == 1
        assert sim.env["TOKEN"] not in done.text
        state = client.get("/api/tesla/account").json()
        assert state["signed_in"] and state["provider_sign_in"]
        assert state["health"]["needs_login"] is True
    finally:
        sim.close()
