"""Billing of the simulated cloud: Tesla's pay-per-use prices, the ledger and the quotas.

Rules (reference §2): an endpoint is billed if it has a pricing category, and every
answer below 500 on such an endpoint counts (408 and 429 too). Two choices of ours where
the reference is silent, documented in docs/simulator.md: a request that could not be tied
to an app (401) and a request refused because the app is disabled (403 EXCEEDED_LIMIT) are
recorded but not billed, since Tesla can bill neither to a spending app.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

Category = Literal["data", "wake", "command", "signals"]

PRICE_USD: dict[Category, float] = {
    "data": 1 / 500,
    "wake": 1 / 50,
    "command": 1 / 1000,
    "signals": 1 / 150_000,
}


def billable(category: Category | None, status: int) -> bool:
    """Tesla's rule: a priced endpoint's answer below 500 is billed."""
    return category is not None and 0 < status < 500


@dataclass(slots=True)
class Ledger:
    """Every call to the simulated API, by category, endpoint and status, and what it cost."""

    calls: Counter[tuple[str, str, int, bool]] = field(default_factory=Counter)
    billed: Counter[tuple[str, Category]] = field(default_factory=Counter)  # (YYYY-MM, category)
    data_calls: Counter[tuple[int, date]] = field(default_factory=Counter)  # (car id, UTC day)

    def record(
        self,
        t: datetime,
        endpoint: str,
        category: Category | None,
        status: int,
        *,
        billed: bool,
        count: int = 1,
    ) -> None:
        self.calls[(category or "free", endpoint, status, billed)] += count
        if billed and category is not None:
            self.billed[(t.strftime("%Y-%m"), category)] += count

    def month_cost_usd(self, t: datetime) -> float:
        month = t.strftime("%Y-%m")
        return sum(n * PRICE_USD[c] for (m, c), n in self.billed.items() if m == month)

    def count(
        self, category: str | None = None, status: int | None = None, *, billed: bool | None = None
    ) -> int:
        """Calls matching the given category ("free" for unpriced), status and billed flag."""
        return sum(
            n
            for (c, _e, s, b), n in self.calls.items()
            if (category is None or c == category)
            and (status is None or s == status)
            and (billed is None or b == billed)
        )

    def to_json(self) -> dict[str, Any]:
        by_category: dict[str, dict[str, Any]] = {}
        for (category, endpoint, status, billed), n in sorted(self.calls.items()):
            entry = by_category.setdefault(
                category, {"calls": 0, "billed": 0, "by_status": {}, "by_endpoint": {}}
            )
            entry["calls"] += n
            entry["billed"] += n if billed else 0
            entry["by_status"][str(status)] = entry["by_status"].get(str(status), 0) + n
            entry["by_endpoint"][endpoint] = entry["by_endpoint"].get(endpoint, 0) + n
        months: dict[str, dict[str, Any]] = {}
        for (month, category), n in sorted(self.billed.items()):
            m = months.setdefault(month, {"cost_usd": 0.0, "billed": {}})
            m["billed"][category] = n
            m["cost_usd"] = round(m["cost_usd"] + n * PRICE_USD[category], 6)
        return {"by_category": by_category, "months": months, "prices_usd": dict(PRICE_USD)}
