"""Print the fidelity figures of each scenario and source mode, for issue notes.

    .venv/bin/python tests/harness/report.py [--pg URL] [--modes polling,mqtt,...]
                                             [scenario[:hours] ...]

One table row per scenario and mode: drives and charges found/truth, worst distance and
energy error, worst start/end error, paid calls (ledger), streaming signals (the
simulator's billing), wall time.

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

from tests.harness.fidelity import POLLING_ONLY, WITH_STREAM, score_car
from tests.harness.runner import MODES, POLLING, run_scenario

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
    parser.add_argument("--modes", default="polling", help="comma list of " + ",".join(MODES))
    parser.add_argument("runs", nargs="*", default=list(SCENARIOS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print("| scenario | source | drives | charges | distance err | energy err | start/end worst "
          "| paid calls | signals | wall |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for spec, mode in [(r, m) for r in args.runs for m in args.modes.split(",")]:
        name, _, hours = spec.partition(":")
        source = MODES[mode]
        with tempfile.TemporaryDirectory() as tmp:
            engine = _fresh_pg(args.pg) if args.pg else make_engine(f"sqlite:///{tmp}/fl.db")
            upgrade(engine)
            duration = timedelta(hours=float(hours)) if hours else None
            run = await run_scenario(name, engine, Path(tmp), duration=duration, source=source)
            car = run.truth["cars"][0]
            tolerance = POLLING_ONLY if source is POLLING else WITH_STREAM
            r = score_car(engine, car, (run.start, run.end), tolerance)
            d, c = r.drives, r.charges
            start = max(d.worst_start_error, c.worst_start_error).total_seconds()
            end = max(d.worst_end_error, c.worst_end_error).total_seconds()
            print(
                f"| {name} | {mode} | {d.found}/{d.truth}+{d.extra} | {c.found}/{c.truth}+{c.extra}"
                f" | {d.worst_amount_error:.2%} | {c.worst_amount_error:.2%}"
                f" | {start:.0f} s / {end:.0f} s | {run.paid_calls} | {run.signals}"
                f" | {run.wall_s:.0f} s |"
            )
            for problem in r.problems:
                print(f"<!-- {name}/{mode}: {problem} -->")
            if run.worker_errors:
                print(f"<!-- {name}/{mode}: worker errors {run.worker_errors} -->")
            engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
