"""Footprint: resident memory and idle CPU of ``fleetlog run`` with 1, 100 and 1,000 cars.

Not measured yet: the issue asks for the cars on telemetry, and ``fleetlog run`` has no
pushed-feed wiring yet (``runtime.FeedFactory`` is empty), so 1,000 cars would all be
REST-polled, which says nothing about the telemetry footprint. The section records that
instead of a misleading number; it measures once the runtime starts telemetry feeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

REASON = "fleetlog run has no telemetry feed wiring yet (runtime.FeedFactory is empty)"


def run(*, quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    log(f"footprint: not measured: {REASON}")
    return {"measured": False, "reason": REASON, "cars": [1, 100, 1000]}


def markdown(result: dict[str, Any]) -> str:
    return f"Not measured: {result['reason']}."
