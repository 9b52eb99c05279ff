"""The command line end to end on SQLite: import teslafi, export, backup, restore."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "fixtures" / "teslafi" / "two_cars_dst"


def fleetlog(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "TESLA_"))}
    env.pop("TOKEN", None)
    env["FLEETLOG_DATABASE_URL"] = f"sqlite:///{db}"
    return subprocess.run(
        [sys.executable, "-m", "fleetlog", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_import_export_backup_restore_commands(tmp_path: Path) -> None:
    db = tmp_path / "fleetlog.db"
    out = fleetlog("import", "teslafi", str(FIXTURES), "--tz", "Europe/Berlin", db=db)
    assert out.returncode == 0, out.stderr
    assert "623 rows imported, 6 rejected" in out.stdout
    assert "nonexistent_local_time" in out.stdout and "TeslaFi rows" in out.stderr  # progress

    gpx = fleetlog("export", "gpx", "3", db=db)
    assert gpx.returncode == 0 and gpx.stdout.count("<trkpt") == 81
    drives = fleetlog("export", "drives", "--tz", "Europe/Berlin", db=db)
    assert drives.returncode == 0 and len(drives.stdout.splitlines()) == 5
    export = fleetlog("export", "json", str(tmp_path / "all.jsonl"), db=db)
    assert export.returncode == 0, export.stderr

    copy = tmp_path / "copy.db"
    loaded = fleetlog("import", "json", str(tmp_path / "all.jsonl"), db=copy)
    assert loaded.returncode == 0, loaded.stderr
    assert (
        fleetlog("export", "drives", db=copy).stdout == fleetlog("export", "drives", db=db).stdout
    )

    made = fleetlog("backup", str(tmp_path / "backups"), db=db)
    assert made.returncode == 0, made.stderr
    assert "verified" in made.stdout
    (backup_file,) = (tmp_path / "backups").glob("*.sqlite3")
    refused = fleetlog("restore", str(backup_file), db=copy)
    assert refused.returncode == 1 and "--force" in refused.stderr
    forced = fleetlog("restore", str(backup_file), "--force", db=copy)
    assert forced.returncode == 0, forced.stderr
    missing = fleetlog("import", "teslafi", str(tmp_path / "nope"), "--tz", "UTC", db=db)
    assert missing.returncode == 1 and "not a directory" in missing.stderr
