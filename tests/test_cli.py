"""The command line as a user runs it: a real subprocess, real exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fleetlog import __version__


def fleetlog(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "TESLA_", "MQTT_"))
    }
    base.pop("TOKEN", None)
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "fleetlog", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=120,
    )


def test_version() -> None:
    out = fleetlog("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"fleetlog {__version__}"


def test_help_lists_commands() -> None:
    out = fleetlog("--help")
    assert out.returncode == 0
    for command in ("config", "migrate", "demo", "run", "sim", "login"):
        assert command in out.stdout


def test_unknown_option_fails_with_usage() -> None:
    out = fleetlog("migrate", "--no-such-option")
    assert out.returncode == 2
    assert "No such option" in out.stderr


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    env = {
        "FLEETLOG_DATA_DIR": str(tmp_path),
        "TOKEN": "?token=provider-secret-abc",
        "DATABASE_HOST": "db.example",
        "DATABASE_NAME": "teslamate",
        "DATABASE_USER": "teslamate",
        "DATABASE_PASS": "pw-very-secret",
        "ENCRYPTION_KEY": "enc-key-secret",
    }
    out = fleetlog("config", "show", "--all", env=env)
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    for secret in ("provider-secret-abc", "pw-very-secret", "enc-key-secret"):
        assert secret not in text
    assert "postgresql+psycopg://teslamate:****@db.example:5432/teslamate" in out.stdout
    assert "TOKEN" in out.stdout and "****" in out.stdout
    assert "TESLA_AUTH_CLIENT_ID" in out.stdout  # --all includes defaults


def test_wrong_setting_fails_at_startup_with_fix(tmp_path: Path) -> None:
    out = fleetlog("config", "show", env={"FLEETLOG_DATA_DIR": str(tmp_path), "PORT": "http"})
    assert out.returncode == 2
    assert "PORT='http': expected a port number between 1 and 65535" in out.stderr


def test_run_without_sign_in_says_how_to_sign_in(tmp_path: Path) -> None:
    out = fleetlog("run", env={"FLEETLOG_DATA_DIR": str(tmp_path), "ENCRYPTION_KEY": "k"})
    assert out.returncode == 1
    assert "login" in out.stderr


def test_migrate_is_idempotent_and_status_counts_rows(db_url: str) -> None:
    env = {"FLEETLOG_DATABASE_URL": db_url}
    first = fleetlog("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "database migrated base ->" in first.stdout
    second = fleetlog("migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    status = fleetlog("status", env=env)
    assert status.returncode == 0, status.stderr
    assert "up to date" in status.stdout
    assert any(line.split() == ["settings", "1"] for line in status.stdout.splitlines())


def test_migrate_refuses_a_teslamate_database_without_adopt(db_url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE schema_migrations (version bigint PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO schema_migrations VALUES (20190330150000)"))
        # fleetlog's own tables may refer to TeslaMate's (drive summaries → drives)
        conn.execute(sa.text("CREATE TABLE drives (id serial PRIMARY KEY)"))
    engine.dispose()
    env = {"FLEETLOG_DATABASE_URL": db_url}
    refused = fleetlog("migrate", env=env)
    assert refused.returncode == 1
    assert "--adopt-teslamate" in refused.stderr
    adopted = fleetlog("migrate", "--adopt-teslamate", env=env)
    assert adopted.returncode == 0, adopted.stderr


def test_demo_logs_a_drive_within_seconds(tmp_path: Path) -> None:
    out = fleetlog(
        "demo",
        "--data-dir",
        str(tmp_path / "demo"),
        "--duration",
        "15",
        "--every",
        "2",
        env={"FLEETLOG_DATA_DIR": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    db = tmp_path / "demo" / "fleetlog-demo.sqlite3"
    assert str(db) in out.stdout and "/_sim/truth" in out.stdout
    final = out.stdout.strip().splitlines()[-1]
    assert final.startswith("fleetlog demo stopped:")
    assert int(final.split(":")[1].split()[0]) >= 1  # at least one drive
