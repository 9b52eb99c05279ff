"""What a call costs: pricing categories, Tesla's billing rule, and rates.

Tesla bills Fleet API calls by category (Data, Wakes, Commands; streaming signals
are priced elsewhere) and bills every response *below 500* on a priced endpoint, so
a 408 from a sleeping car or a 429 still costs money while a 503 does not. Money is
kept in integer micro-dollars so that sums are exact on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

MICRO = 1_000_000


class Category(StrEnum):
    """Tesla's pricing category of an endpoint ("none" is free)."""

    DATA = "data"
    WAKE = "wake"
    COMMAND = "command"
    NONE = "none"


def usd_to_micro(usd: float | Decimal | str) -> int:
    """Dollars to integer micro-dollars, rounded half-even."""
    return int((Decimal(str(usd)) * MICRO).to_integral_value())


def micro_to_usd(micro: int) -> Decimal:
    return Decimal(micro) / MICRO


@dataclass(frozen=True, slots=True)
class Rates:
    """Price per request of each category, in micro-dollars."""

    data: int = usd_to_micro("0.002")  # 500 requests / $1
    wake: int = usd_to_micro("0.02")  # 50 requests / $1
    command: int = usd_to_micro("0.001")  # 1,000 requests / $1

    def __post_init__(self) -> None:
        for name in ("data", "wake", "command"):
            if getattr(self, name) < 0:
                raise ValueError(f"rate for {name} must not be negative")

    def of(self, category: Category) -> int:
        if category is Category.DATA:
            return self.data
        if category is Category.WAKE:
            return self.wake
        if category is Category.COMMAND:
            return self.command
        return 0


#: Tesla's published Fleet API rates (2025-02 onwards).
TESLA_RATES = Rates()
#: Teslemetry sells 2,000 credits for $2.50: data 2 credits, wake 20, command 1.
TESLEMETRY_RATES = Rates(
    data=usd_to_micro("0.0025"), wake=usd_to_micro("0.025"), command=usd_to_micro("0.00125")
)
#: Tesla's monthly discount per account.
MONTHLY_CREDIT_USD = Decimal("10")


@dataclass(frozen=True, slots=True)
class Pricing:
    """How calls of one account are billed. The Owner API is not billed at all."""

    rates: Rates = TESLA_RATES
    priced: bool = True

    def billed(self, category: Category, status: int | None, *, app_disabled: bool = False) -> bool:
        """Tesla's rule: an answer below 500 on a priced endpoint is billed.

        Three exceptions, where Tesla has nobody or nothing to bill: a call without an
        answer (timeout, reset: most never arrived), a 401 (the token did not identify
        an app) and a 403 ``EXCEEDED_LIMIT`` (the app is disabled for over-spending).
        """
        if not self.priced or category is Category.NONE or status is None:
            return False
        return status < 500 and status != 401 and not app_disabled

    def cost(self, category: Category, status: int | None, *, app_disabled: bool = False) -> int:
        """Micro-dollars this call costs."""
        billed = self.billed(category, status, app_disabled=app_disabled)
        return self.rates.of(category) if billed else 0
