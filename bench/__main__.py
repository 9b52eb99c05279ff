"""fleetlog's benchmarks, one command: ``.venv/bin/python -m bench`` (or ``make bench``).

Runs every section one after the other (never two sections at once: the numbers are side by
side from one run on one machine; the fidelity section runs its own cells two per core at a time in
subprocesses), and writes ``bench/out/report.md`` and
``bench/out/report.json``. Benchmarks are measurements for the issue notes, never timed
tests: nothing here fails on a slow number.

    python -m bench                        # everything (under 30 minutes on 2 cores)
    python -m bench queries ingest         # some sections
    python -m bench --quick                # smaller sizes, for trying the code
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import common

OUT = Path(__file__).parent / "out"
SECTIONS = ("fidelity", "ingest", "queries", "footprint", "outage")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _section(name: str, quick: bool) -> tuple[Callable[[], dict[str, Any]], Callable[..., str]]:
    if name == "queries":
        from bench import queries

        return (
            lambda: queries.run(days=120 if quick else 3652, reps=5 if quick else 20, log=_log),
            queries.markdown,
        )
    if name == "ingest":
        from bench import ingest

        return (lambda: ingest.run(quick=quick, log=_log), ingest.markdown)
    if name == "fidelity":
        from bench import fidelity

        return (lambda: fidelity.run(quick=quick, log=_log), fidelity.markdown)
    if name == "footprint":
        from bench import footprint

        return (lambda: footprint.run(quick=quick, log=_log), footprint.markdown)
    if name == "outage":
        from bench import outage

        return (lambda: outage.run(quick=quick, log=_log), outage.markdown)
    raise SystemExit(f"unknown section {name!r}; choose from {', '.join(SECTIONS)}")


TITLES = {
    "fidelity": "Fidelity per dollar",
    "ingest": "Ingest",
    "queries": "Queries on a ten-year history",
    "footprint": "Footprint",
    "outage": "Outage recovery",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", default=list(SECTIONS), help=", ".join(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the code")
    parser.add_argument("--out", type=Path, default=OUT, help="report directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": common.machine(),
        "quick": args.quick,
        "sections": {},
    }
    md: list[str] = []
    started = time.perf_counter()
    for name in args.sections:
        run, render = _section(name, args.quick)
        _log(f"{name}: start")
        t0, c0 = time.perf_counter(), _cpu_s()
        try:
            result = run()
        except Exception as exc:  # one broken section must not cost the others' numbers
            logging.getLogger("bench").exception("section %s failed", name)
            report["sections"][name] = {"error": repr(exc)}
            md += [f"## {TITLES[name]}", "", f"**failed:** `{exc!r}`", ""]
            continue
        seconds = time.perf_counter() - t0
        cpu = _cpu_s() - c0
        result["wall_s"], result["cpu_s"] = seconds, cpu
        report["sections"][name] = result
        md += [f"## {TITLES[name]}", "", render(result), "",
               f"_{seconds:.0f} s wall, {cpu:.0f} CPU-seconds (this process and its children)_",
               ""]  # fmt: skip
        _log(f"{name}: done in {seconds:.0f} s")
        _write(args.out, report, md, time.perf_counter() - started)
    _write(args.out, report, md, time.perf_counter() - started)
    _log(f"report: {args.out / 'report.md'}")
    return 0


def _cpu_s() -> float:
    """CPU seconds of this process and its waited-for children."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _write(out: Path, report: dict[str, Any], md: list[str], wall: float) -> None:
    report["wall_s"] = wall
    m = report["machine"]
    head = [
        "# fleetlog benchmarks",
        "",
        f"{report['started']} · {m['cpus']} CPUs ({m['cpu']}) · {m['memory_gib']} GiB · "
        f"Python {m['python']} · total {wall / 60:.1f} min"
        + (" · **quick**" if report["quick"] else ""),
        "",
    ]
    (out / "report.md").write_text("\n".join(head + md) + "\n")
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
