"""What every benchmark shares: scratch databases, percentiles, the machine, Markdown tables.

Scratch PostgreSQL databases are named ``fleetlog_bench_<pid>_<random>`` on the server that
``FLEETLOG_BENCH_PG_URL`` (a maintenance URL) names, by default the local one the tests use;
they are dropped when the ``with`` block ends, whatever happened inside.
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from fleetlog.store import make_engine

PG_ADMIN_URLS = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    "postgresql+psycopg://root@127.0.0.1:5432/postgres",
)


def pg_admin() -> sa.Engine | None:
    """An AUTOCOMMIT engine on the server's maintenance database, or None when unreachable."""
    override = os.environ.get("FLEETLOG_BENCH_PG_URL")
    for url in (override,) if override else PG_ADMIN_URLS:
        engine = make_engine(url, pool_size=1, timeout_s=3).execution_options(
            isolation_level="AUTOCOMMIT"
        )
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.OperationalError:
            engine.dispose()
            continue
        return engine
    return None


@contextlib.contextmanager
def scratch_pg(tag: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one benchmark; its URL. Dropped afterwards."""
    admin = pg_admin()
    if admin is None:
        raise RuntimeError("no PostgreSQL server reachable (set FLEETLOG_BENCH_PG_URL)")
    name = f"fleetlog_bench_{tag}_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
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
        admin.dispose()


@contextlib.contextmanager
def scratch_db(backend: str, tag: str) -> Iterator[str]:
    """A fresh database URL on `backend` ("sqlite" in a temporary directory, or "postgres")."""
    if backend == "postgres":
        with scratch_pg(tag) as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix=f"fleetlog-bench-{tag}-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), linear between the closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; floats get a sensible number of digits."""

    def cell(value: Any) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            if value != value:  # NaN
                return "–"
            if abs(value) >= 1000:
                return f"{value:,.0f}"
            if abs(value) >= 10:
                return f"{value:.1f}"
            return f"{value:.3g}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
