"""Print the fidelity figures of each scenario (polling-only Fleet API), for issue notes.

    .venv/bin/python tests/harness/report.py [--pg URL] [scenario[:hours] ...]

Each scenario runs in virtual time into a fresh database (SQLite in a temporary
directory, or the PostgreSQL database at URL, emptied first) and is scored
against the simulator's ground truth.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parents[2]))

from tests.harness.fidelity import score_car
from tests.harness.runner import run_scenario

from fleetlog.store import make_engine, upgrade

SCENARIOS = ("commuter-week", "road-trip", "city-day", "cold-week")


def _fresh_pg(url: str) -> sa.Engine:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("DROP SCHEMA IF EXISTS private CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    return engine


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", help="PostgreSQL URL of a scratch database (emptied!)")
    parser.add_argument("runs", nargs="*", default=list(SCENARIOS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for spec in args.runs:
        name, _, hours = spec.partition(":")
        with tempfile.TemporaryDirectory() as tmp:
            engine = _fresh_pg(args.pg) if args.pg else make_engine(f"sqlite:///{tmp}/fl.db")
            upgrade(engine)
            duration = timedelta(hours=float(hours)) if hours else None
            run = await run_scenario(name, engine, Path(tmp), duration=duration)
            car = run.truth["cars"][0]
            report = score_car(engine, car, (run.start, run.end))
            print(
                f"{name} ({'pg' if args.pg else 'sqlite'}, {run.end - run.start}): "
                f"wall {run.wall_s:.1f} s, calls {run.calls}, paid {run.paid_calls} "
                f"(${run.cost_usd:.3f}), worker errors {run.worker_errors}"
            )
            for line in report.lines():
                print("   ", line)
            for problem in report.problems:
                print("    !", problem)
            engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
