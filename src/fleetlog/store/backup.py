"""Verified backups and careful restores, for both backends.

A backup is two files: the database copy and a manifest beside it (``<file>.json``) with
the size, SHA-256, schema revision and the exact row count of every table *as of the
copy*. Every backup is verified before it is reported as done:

1. the file is not empty and its checksum matches what was written;
2. it is restored into a scratch database (a temporary SQLite file; a temporary
   PostgreSQL database on the same server) and every table's row count there is compared
   with the manifest; the scratch database is removed afterwards.

How the copy is made:

* SQLite: the online backup API (a consistent copy while fleetlog keeps writing); the
  counts are read from the copy itself.
* PostgreSQL: ``pg_dump --format=custom`` under a snapshot exported by a REPEATABLE READ
  transaction in which the counts are taken, so counts and dump see the same data.

A restore refuses to write over a database that holds rows unless ``force`` is given; it
checks the checksum first and the row counts after.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from fleetlog.store.engine import make_engine, masked_url
from fleetlog.store.errors import StoreError
from fleetlog.store.migrate import current_revision

FORMAT = "fleetlog-backup"
VERSION = 1

#: progress(done, total, stage)
ProgressHook = Callable[[int, int, str], None]


class BackupError(StoreError):
    """A backup or restore that failed or was refused (the message says which and why)."""

    user_facing = True


@dataclass(frozen=True, slots=True)
class Manifest:
    format: str
    version: int
    backend: str
    file: str
    size: int
    sha256: str
    created_at: str
    revision: str | None
    row_counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError("not a fleetlog backup manifest")
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise BackupError(f"cannot read the manifest {path}: {exc}") from None

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", "utf-8")


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    manifest_path: Path
    manifest: Manifest

    def summary(self) -> str:
        rows = sum(self.manifest.row_counts.values())
        return (
            f"backup {self.path} ({self.manifest.size} bytes, sha256 {self.manifest.sha256[:12]}…, "
            f"{rows} rows in {len(self.manifest.row_counts)} tables) verified: checksum ok, "
            "restored into a scratch database with identical row counts"
        )


def manifest_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _no_progress(done: int, total: int, stage: str) -> None:
    pass


# --- row counts ---------------------------------------------------------------------------


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    ]
    return {n: int(conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in names}


def _pg_counts(conn: sa.Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.text(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE' AND table_schema IN ('public', 'private')"
            " ORDER BY 1, 2"
        )
    ).all()
    counts = {}
    for schema, name in rows:
        label = name if schema == "public" else f"{schema}.{name}"
        counts[label] = int(
            conn.execute(sa.text(f'SELECT count(*) FROM "{schema}"."{name}"')).scalar_one()
        )
    return counts


# --- SQLite -------------------------------------------------------------------------------


def _sqlite_path(engine: sa.Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _sqlite_copy(src: Path, dst: Path, progress: ProgressHook, stage: str) -> None:
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(dst)
    try:

        def report(status: int, remaining: int, total: int) -> None:
            progress(total - remaining, total, stage)

        source.backup(target, pages=256, progress=report)
    finally:
        target.close()
        source.close()


def _sqlite_counts_of(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"{path} failed SQLite's integrity check: {check}")
        return _sqlite_counts(conn)
    finally:
        conn.close()


# --- PostgreSQL ---------------------------------------------------------------------------


def _libpq(url: sa.URL) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and the environment carrying it."""
    parts = [f"dbname={url.database}"]
    if url.host:
        parts.append(f"host={url.host}")
    if url.port:
        parts.append(f"port={url.port}")
    if url.username:
        parts.append(f"user={url.username}")
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return " ".join(parts), env


def _tool(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        raise BackupError(f"{name} is not installed (PostgreSQL client tools are needed)")
    return found


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BackupError(f"{what} failed: {detail[-1] if detail else done.returncode}")


@contextmanager
def _scratch_pg(engine: sa.Engine) -> Iterator[sa.URL]:
    """A temporary, empty database on the same server, dropped afterwards."""
    name = f"fleetlog_verify_{secrets.token_hex(6)}"
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.DBAPIError as exc:
        raise BackupError(
            f"cannot create a scratch database to verify the backup ({exc.orig}); "
            "fleetlog's database user needs CREATEDB"
        ) from None
    try:
        yield engine.url.set(database=name)
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))


def _pg_restore(path: Path, url: sa.URL) -> None:
    target, env = _libpq(url)
    _run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            f"--dbname={target}",
            str(path),
        ],
        env,
        "pg_restore",
    )


def _counts_at(url: sa.URL) -> dict[str, int]:
    engine = make_engine(url.render_as_string(hide_password=False), pool_size=1)
    try:
        with engine.connect() as conn:
            return _pg_counts(conn)
    finally:
        engine.dispose()


# --- backup -------------------------------------------------------------------------------


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def backup(
    engine: sa.Engine,
    destination: Path,
    *,
    progress: ProgressHook = _no_progress,
    now: datetime | None = None,
) -> BackupResult:
    """Back the database up into `destination` (a directory, or a file name) and verify."""
    moment = now or datetime.now(UTC)
    backend = engine.dialect.name
    suffix = ".sqlite3" if backend == "sqlite" else ".dump"
    path = destination
    if destination.is_dir() or not destination.suffix:
        destination.mkdir(parents=True, exist_ok=True)
        path = destination / f"fleetlog-{_stamp(moment)}{suffix}"
    if path.exists():
        raise BackupError(f"{path} exists already; a backup never overwrites one")
    partial = path.with_name(path.name + ".partial")
    revision = current_revision(engine)
    if backend == "sqlite":
        _sqlite_copy(_sqlite_path(engine), partial, progress, "copy")
        counts = _sqlite_counts_of(partial)
    elif backend == "postgresql":
        counts = _pg_dump(engine, partial, progress)
    else:
        raise BackupError(f"cannot back up a {backend} database")
    size = partial.stat().st_size
    if size == 0:
        partial.unlink()
        raise BackupError("the backup came out empty")
    manifest = Manifest(
        FORMAT,
        VERSION,
        backend,
        path.name,
        size,
        sha256_of(partial),
        moment.isoformat(),
        revision,
        counts,
    )
    partial.replace(path)
    manifest_path = manifest_path_for(path)
    manifest.write(manifest_path)
    verify(path, engine=engine, progress=progress)
    return BackupResult(path, manifest_path, manifest)


def _pg_dump(engine: sa.Engine, out: Path, progress: ProgressHook) -> dict[str, int]:
    progress(0, 1, "dump")
    snapshot_conn = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    with snapshot_conn as conn, conn.begin():
        # the dump runs while this transaction holds the exported snapshot
        snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
        counts = _pg_counts(conn)
        source, env = _libpq(engine.url)
        _run(
            [
                _tool("pg_dump"),
                "--format=custom",
                f"--snapshot={snapshot}",
                f"--file={out}",
                f"--dbname={source}",
            ],
            env,
            "pg_dump",
        )
    progress(1, 1, "dump")
    return counts


# --- verify -------------------------------------------------------------------------------


def verify(
    path: Path, *, engine: sa.Engine | None = None, progress: ProgressHook = _no_progress
) -> Manifest:
    """Check size and checksum, restore into a scratch database, compare row counts.

    PostgreSQL backups need `engine` (any connection to the server: the scratch database
    is made there).
    """
    manifest = Manifest.read(manifest_path_for(path))
    if not path.exists() or path.stat().st_size == 0:
        raise BackupError(f"{path} is missing or empty")
    if path.stat().st_size != manifest.size or sha256_of(path) != manifest.sha256:
        raise BackupError(f"{path} does not match its manifest's checksum: the file changed")
    if manifest.backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="fleetlog-verify-") as tmp:
            scratch = Path(tmp) / "scratch.sqlite3"
            _sqlite_copy(path, scratch, progress, "verify")
            counts = _sqlite_counts_of(scratch)
    else:
        if engine is None or engine.dialect.name != "postgresql":
            raise BackupError("verifying a PostgreSQL backup needs a PostgreSQL server")
        progress(0, 1, "verify")
        with _scratch_pg(engine) as url:
            _pg_restore(path, url)
            counts = _counts_at(url)
        progress(1, 1, "verify")
    _compare(manifest.row_counts, counts, "scratch restore")
    return manifest


def _compare(expected: dict[str, int], found: dict[str, int], where: str) -> None:
    if expected == found:
        return
    diffs = [
        f"{name}: {expected.get(name)} in the manifest, {found.get(name)} in the {where}"
        for name in sorted(set(expected) | set(found))
        if expected.get(name) != found.get(name)
    ]
    raise BackupError("row counts differ: " + "; ".join(diffs[:5]))


# --- restore ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RestoreResult:
    target: str
    manifest: Manifest

    def summary(self) -> str:
        rows = sum(self.manifest.row_counts.values())
        return f"restored {self.manifest.file} into {self.target}: {rows} rows, counts verified"


def _holds_rows(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            counts = _pg_counts(conn)
        else:
            raw: Any = conn.connection.dbapi_connection
            counts = _sqlite_counts(raw)
    # the one settings row and fleetlog_meta exist in every migrated database
    ignore = {"settings", "fleetlog_meta", "fleetlog_alembic_version", "schema_migrations"}
    return [name for name, n in counts.items() if n and name not in ignore]


def restore(
    engine: sa.Engine,
    path: Path,
    *,
    force: bool = False,
    progress: ProgressHook = _no_progress,
) -> RestoreResult:
    """Restore a backup made by :func:`backup` into the database `engine` points at."""
    manifest = Manifest.read(manifest_path_for(path))
    backend = engine.dialect.name
    if manifest.backend != backend:
        raise BackupError(
            f"{path.name} is a {manifest.backend} backup and the database is {backend}; "
            "to move between backends use `fleetlog export json` and `fleetlog import json`"
        )
    if path.stat().st_size != manifest.size or sha256_of(path) != manifest.sha256:
        raise BackupError(f"{path} does not match its manifest's checksum; not restoring it")
    busy = _holds_rows(engine)
    if busy and not force:
        raise BackupError(
            f"{masked_url(engine)} is not empty ({', '.join(busy[:5])}…); "
            "restoring would overwrite it — pass --force to do that"
        )
    if backend == "sqlite":
        target = _sqlite_path(engine)
        engine.dispose()
        _sqlite_copy(path, target, progress, "restore")
        counts = _sqlite_counts_of(target)
    else:
        progress(0, 1, "restore")
        _pg_restore(path, engine.url)
        engine.dispose()
        with engine.connect() as conn:
            counts = _pg_counts(conn)
        progress(1, 1, "restore")
    _compare(manifest.row_counts, counts, "restored database")
    return RestoreResult(masked_url(engine), manifest)
