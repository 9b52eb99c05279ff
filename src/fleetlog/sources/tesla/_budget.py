"""The budget governor: when may a call to Tesla go?

Rules of this module: it never awaits, never reads a clock and never touches the
network or the database. Every method takes ``now``; the REST client asks before
each call (:meth:`Governor.acquire`) and reports the outcome after it
(:meth:`Governor.release`, :meth:`Governor.rate_limited`,
:meth:`Governor.limit_exceeded`). One governor serves one account: Tesla's credit,
its rate limits and its "account disabled" verdict are per account, so a 429 or an
``EXCEEDED_LIMIT`` answered to one car holds back every car of the account.

Theory of operation (paid calls):

* The month's cap is a hard ceiling. A paid call reserves its price when it is
  granted, so concurrent cars can never overshoot; a call that turns out not billed
  (an answer of 500 or more, or none at all) gives the reservation back.
* Spending is paced by a bucket that fills at ``remaining money / remaining time``:
  what is left is spread over what is left of the month, recomputed continuously, so
  a quiet week makes the rest of the month a little richer and a busy morning makes
  the afternoon a little poorer. The bucket holds at most ``burst`` worth of pace (a
  day by default) so a drive can poll densely for a while without eating tomorrow.
* When the bucket lacks the price of a call the answer is "later, at t": the time
  the bucket will hold it. Polling slows as money gets tight; it stops only when
  the month's money is gone (then: at the start of next month).
* Each car gets at most ``daily_data_cap`` ``vehicle_data`` calls per UTC day.
* A wake is never the governor's idea: it is granted only for a user's request, and
  then only against the hard cap, not the pace.

Blocks (every call, free ones too):

* 429: nothing goes before ``Retry-After``.
* 403 ``EXCEEDED_LIMIT``: nothing for 15 minutes, then one free call per hour probes
  the account; the first probe that succeeds lifts the block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fleetlog.sources.tesla._exceptions import WakeNotRequested
from fleetlog.sources.tesla._pricing import (
    MONTHLY_CREDIT_USD,
    Category,
    Rates,
    micro_to_usd,
    usd_to_micro,
)

LIMIT_BACKOFF = timedelta(minutes=15)
PROBE_INTERVAL = timedelta(hours=1)
DEFAULT_RETRY_AFTER = timedelta(seconds=300)
# How late a refused car may come back and still keep its place in the queue.
WAITER_GRACE = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    """The account's spending rules."""

    monthly_cap: int = usd_to_micro(MONTHLY_CREDIT_USD)  # micro-dollars
    daily_data_cap: int = 300  # vehicle_data calls per car per UTC day
    rates: Rates = field(default_factory=Rates)
    priced: bool = True  # False for the Owner API: only Tesla's blocks apply
    burst: timedelta = timedelta(days=1)
    initial_allowance: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.monthly_cap < 0:
            raise ValueError("the monthly cap must not be negative")
        if self.daily_data_cap <= 0:
            raise ValueError("the daily vehicle_data cap must be at least 1")
        if self.burst <= timedelta(0):
            raise ValueError("burst must be a positive duration")


@dataclass(frozen=True, slots=True)
class Permit:
    """A granted call; hand it back to :meth:`Governor.release` with the outcome."""

    vehicle: str | None
    category: Category
    cost: int  # micro-dollars reserved
    month: tuple[int, int]
    day: date
    probe: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """``go`` now with ``permit``, or not before ``at`` because of ``reason``."""

    go: bool
    at: datetime
    reason: str
    permit: Permit | None = None


@dataclass(frozen=True, slots=True)
class BudgetState:
    """What the web app and MQTT show about the account's budget."""

    at: datetime
    month: str  # YYYY-MM (UTC)
    priced: bool
    cap_usd: float
    spent_usd: float
    remaining_usd: float
    projected_month_end_usd: float
    next_data_call_at: datetime
    blocked_until: datetime | None
    block_reason: str | None
    account_disabled: bool
    data_calls_today: Mapping[str, int]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (ISO times, plain numbers)."""
        return {
            "at": self.at.isoformat(),
            "month": self.month,
            "priced": self.priced,
            "cap_usd": self.cap_usd,
            "spent_usd": self.spent_usd,
            "remaining_usd": self.remaining_usd,
            "projected_month_end_usd": self.projected_month_end_usd,
            "next_data_call_at": self.next_data_call_at.isoformat(),
            "blocked_until": self.blocked_until.isoformat() if self.blocked_until else None,
            "block_reason": self.block_reason,
            "account_disabled": self.account_disabled,
            "data_calls_today": dict(self.data_calls_today),
        }


def _month_of(t: datetime) -> tuple[int, int]:
    return (t.year, t.month)


def _month_start(month: tuple[int, int]) -> datetime:
    return datetime(month[0], month[1], 1, tzinfo=UTC)


def _next_month_start(month: tuple[int, int]) -> datetime:
    y, m = month
    return datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)


def _next_midnight(t: datetime) -> datetime:
    return datetime(t.year, t.month, t.day, tzinfo=UTC) + timedelta(days=1)


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("the governor needs timezone-aware times")
    return t.astimezone(UTC)


class Governor:
    """Decides, for one account, when each call may go (see the module docstring)."""

    def __init__(
        self,
        policy: BudgetPolicy,
        now: datetime,
        *,
        spent_this_month: int = 0,
        data_calls_today: Mapping[str, int] | None = None,
    ) -> None:
        """Start at `now`, restoring this month's spend and today's per-car calls (ledger)."""
        now = _utc(now)
        self.policy = policy
        self._month = _month_of(now)
        self._spent = max(0, spent_this_month)
        self._day = now.date()
        self._data_today: dict[str, int] = dict(data_calls_today or {})
        self._bucket_at = now
        self._bucket = 0.0
        self._bucket = min(
            float(self._remaining()),
            self._rate(now) * policy.initial_allowance.total_seconds(),
        )
        self._blocked_until: datetime | None = None
        self._block_reason: str | None = None
        self._disabled = False
        self._next_probe: datetime | None = None
        self._probe_out = False
        # Cars refused for pacing: when first refused, and when they were told to return.
        self._waiters: dict[str, tuple[datetime, datetime]] = {}

    # --- bookkeeping ----------------------------------------------------------------

    def _remaining(self) -> int:
        return max(0, self.policy.monthly_cap - self._spent)

    def _rate(self, now: datetime) -> float:
        """Pace in micro-dollars per second: what is left over the time that is left."""
        left = (_next_month_start(self._month) - now).total_seconds()
        return self._remaining() / max(left, 1.0)

    def _roll(self, now: datetime) -> None:
        """Move to `now`: new month, new day, bucket refilled."""
        if now < self._bucket_at:
            now = self._bucket_at  # a late report from a slower task: time never runs back
        month = _month_of(now)
        if month != self._month:
            self._month = month
            self._spent = 0
            self._bucket_at = max(self._bucket_at, _month_start(month))
            self._bucket = 0.0
        if now.date() != self._day:
            self._day = now.date()
            self._data_today = {}
        elapsed = (now - self._bucket_at).total_seconds()
        rate = self._rate(now)
        ceiling = min(float(self._remaining()), rate * self.policy.burst.total_seconds())
        self._bucket = min(max(self._bucket, 0.0) + rate * elapsed, max(ceiling, self._bucket))
        self._bucket = min(self._bucket, float(self._remaining()))
        self._bucket_at = now

    # --- asking --------------------------------------------------------------------

    def acquire(
        self,
        now: datetime,
        vehicle: str | None,
        category: Category,
        *,
        user_requested: bool = False,
    ) -> Decision:
        """May a call of `category` for `vehicle` go at `now`? Reserves its price if so."""
        now = _utc(now)
        if category is Category.WAKE and not user_requested:
            raise WakeNotRequested(
                "fleetlog never wakes a car by itself; wake_up needs a user's request"
            )
        self._roll(now)

        probe = False
        if self._disabled:
            assert self._next_probe is not None
            if category is not Category.NONE or self._probe_out or now < self._next_probe:
                at = max(self._next_probe, now + timedelta(seconds=1))
                return Decision(False, at, "account disabled (EXCEEDED_LIMIT)")
            probe = True
        elif self._blocked_until is not None:
            if now < self._blocked_until:
                return Decision(False, self._blocked_until, self._block_reason or "blocked")
            self._blocked_until = None
            self._block_reason = None

        cost = self.policy.rates.of(category) if self.policy.priced else 0
        if cost > 0:
            refusal = self._check_money(now, vehicle, category, cost, user_requested)
            if refusal is not None:
                return refusal
            self._spent += cost
            if not user_requested:
                self._bucket -= cost
            if vehicle is not None:
                self._waiters.pop(vehicle, None)
        if self.policy.priced and category is Category.DATA and vehicle is not None:
            self._data_today[vehicle] = self._data_today.get(vehicle, 0) + 1
        if probe:
            self._probe_out = True
            self._next_probe = now + PROBE_INTERVAL
        permit = Permit(vehicle, category, cost, self._month, self._day, probe)
        return Decision(True, now, "probe" if probe else "ok", permit)

    def _check_money(
        self,
        now: datetime,
        vehicle: str | None,
        category: Category,
        cost: int,
        user_requested: bool,
    ) -> Decision | None:
        if cost > self._remaining():
            return Decision(
                False, _next_month_start(self._month), "monthly cap reached; next month"
            )
        daily = self._data_today.get(vehicle, 0) if vehicle is not None else 0
        if category is Category.DATA and daily >= self.policy.daily_data_cap:
            return Decision(False, _next_midnight(now), "daily vehicle_data cap reached")
        if user_requested:
            return None
        rate = self._rate(now)
        if self._bucket >= cost:
            first = self._first_waiter(now)
            if vehicle is None or first is None or first == vehicle:
                return None
            # Another car has waited longer for this money: its turn first, ours next.
            wait = cost / rate if rate > 0 else float("inf")
            reason = "pacing the monthly budget (another car's turn)"
        else:
            wait = (cost - self._bucket) / rate if rate > 0 else float("inf")
            reason = "pacing the monthly budget"
        at = min(now + timedelta(seconds=wait), _next_month_start(self._month))
        # Whole seconds, rounded up: a caller that comes back at `at` must be granted.
        at = at.replace(microsecond=0) + timedelta(seconds=1)
        if vehicle is not None:
            since = self._waiters.get(vehicle, (now, at))[0]
            self._waiters[vehicle] = (since, at)
        return Decision(False, at, reason)

    def _first_waiter(self, now: datetime) -> str | None:
        """The car refused longest ago that is still coming back (others are forgotten)."""
        stale = [v for v, (_, told) in self._waiters.items() if told + WAITER_GRACE < now]
        for v in stale:
            del self._waiters[v]
        if not self._waiters:
            return None
        return min(self._waiters.items(), key=lambda item: item[1][0])[0]

    # --- outcomes ------------------------------------------------------------------

    def release(self, now: datetime, permit: Permit, *, status: int | None, billed: bool) -> None:
        """The call of `permit` ended with `status` (None: no answer) and was or was not billed."""
        now = _utc(now)
        self._roll(now)
        if not billed and permit.month == self._month:
            self._spent = max(0, self._spent - permit.cost)
            self._bucket += permit.cost
            if (
                permit.category is Category.DATA
                and permit.vehicle is not None
                and self.policy.priced
                and permit.day == self._day
            ):
                left = self._data_today.get(permit.vehicle, 0) - 1
                self._data_today[permit.vehicle] = max(0, left)
        if permit.probe:
            self._probe_out = False
            if status is not None and status < 400:
                self._disabled = False
                self._next_probe = None
                self._blocked_until = None
                self._block_reason = None

    def rate_limited(self, now: datetime, retry_at: datetime | None) -> datetime:
        """Tesla answered 429: hold every call until `retry_at` (default in 5 min)."""
        now = _utc(now)
        until = _utc(retry_at) if retry_at is not None else now + DEFAULT_RETRY_AFTER
        if self._blocked_until is None or until > self._blocked_until:
            self._blocked_until = until
            self._block_reason = "rate limited by Tesla (429)"
        return self._blocked_until

    def limit_exceeded(self, now: datetime) -> datetime:
        """Tesla answered EXCEEDED_LIMIT: 15 minutes' pause, then hourly probes."""
        now = _utc(now)
        again = self._disabled
        self._disabled = True
        self._probe_out = False
        self._next_probe = now + (PROBE_INTERVAL if again else LIMIT_BACKOFF)
        self._blocked_until = self._next_probe
        self._block_reason = "account disabled (EXCEEDED_LIMIT)"
        return self._next_probe

    # --- reading -------------------------------------------------------------------

    def state(self, now: datetime) -> BudgetState:
        """Spent, remaining, projected month end and the next allowed data call."""
        now = _utc(now)
        self._roll(now)
        start = _month_start(self._month)
        end = _next_month_start(self._month)
        elapsed = (now - start).total_seconds()
        total = (end - start).total_seconds()
        projected = self._spent * total / elapsed if elapsed > 3600 else float(self._spent)
        if self._disabled or self._blocked_until is not None:
            blocked = self._next_probe if self._disabled else self._blocked_until
        else:
            blocked = None
        next_call = self._next_data_call(now)
        if blocked is not None and blocked > next_call:
            next_call = blocked
        return BudgetState(
            at=now,
            month=f"{self._month[0]:04d}-{self._month[1]:02d}",
            priced=self.policy.priced,
            cap_usd=float(micro_to_usd(self.policy.monthly_cap)),
            spent_usd=float(micro_to_usd(self._spent)),
            remaining_usd=float(micro_to_usd(self._remaining())),
            projected_month_end_usd=round(float(micro_to_usd(int(projected))), 6),
            next_data_call_at=next_call,
            blocked_until=blocked,
            block_reason=self._block_reason if blocked is not None else None,
            account_disabled=self._disabled,
            data_calls_today=dict(self._data_today),
        )

    def _next_data_call(self, now: datetime) -> datetime:
        cost = self.policy.rates.data if self.policy.priced else 0
        if cost == 0:
            return now
        refusal = self._check_money(now, None, Category.DATA, cost, False)
        return now if refusal is None else refusal.at
