"""Time-of-use tariffs: which price applies at a given moment (pure).

A tariff belongs to a geofence. It is a list of price windows, each "these weekdays,
from this local time to that one, optionally only in this season, at this price";
the first window that covers a moment sets the price, and the tariff's default price
(or the geofence's ``cost_per_unit``) applies outside every window. Times are wall-clock
times in the tariff's zone, so a 22:00–06:00 night rate stays 22:00–06:00 across a DST
change (and that night is an hour shorter or longer).

A window whose end is not after its start runs past midnight and belongs to the day it
starts on: ``fri 22:00-06:00`` covers Friday 22:00 to Saturday 06:00. Seasons are
inclusive month-day ranges and may wrap the year (``11-01..02-28``); a window running
past midnight is in season when the day it started on is.

Written as text (CLI, docs) a window is ``[MM-DD..MM-DD] DAYS HH:MM-HH:MM PRICE``, e.g.
``mon-fri 07:00-22:00 0.32``, ``sat,sun 00:00-24:00 0.25``, ``06-01..09-30 * 11:00-15:00
0.10``; DAYS is ``*`` (every day), a day, a range or a comma list of those.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY_DAY = 0b1111111
MINUTES_PER_DAY = 1440


class TariffError(ValueError):
    """A tariff or window that cannot be used as written."""

    user_facing = True


@dataclass(frozen=True, slots=True)
class Season:
    """An inclusive range of days of the year as MMDD numbers (601 = 1 June)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            month, day = divmod(value, 100)
            if not (1 <= month <= 12 and 1 <= day <= 31):
                raise TariffError(f"{value:04d} is not a MMDD day of the year")

    def contains(self, month: int, day: int) -> bool:
        today = month * 100 + day
        if self.start <= self.end:
            return self.start <= today <= self.end
        return today >= self.start or today <= self.end


@dataclass(frozen=True, slots=True)
class Window:
    """One price window: weekdays (bit 0 = Monday), local minutes [start, end), price."""

    weekdays: int
    start_minute: int
    end_minute: int
    price: Decimal
    season: Season | None = None

    def __post_init__(self) -> None:
        if not 0 < self.weekdays <= EVERY_DAY:
            raise TariffError("a window needs at least one weekday")
        if not 0 <= self.start_minute < MINUTES_PER_DAY:
            raise TariffError("a window starts between 00:00 and 23:59")
        if not 0 < self.end_minute <= MINUTES_PER_DAY:
            raise TariffError("a window ends between 00:01 and 24:00")
        if self.price < 0:
            raise TariffError("a price cannot be negative")

    def covers(self, local: datetime) -> bool:
        """Whether this window prices the local wall-clock time `local`."""
        minute = local.hour * 60 + local.minute
        if self.start_minute < self.end_minute:
            return self.start_minute <= minute < self.end_minute and self._on(local)
        if minute >= self.start_minute:
            return self._on(local)
        return minute < self.end_minute and self._on(local - timedelta(days=1))

    def _on(self, day: datetime) -> bool:
        if not self.weekdays & (1 << day.weekday()):
            return False
        return self.season is None or self.season.contains(day.month, day.day)


@dataclass(frozen=True, slots=True)
class Tariff:
    """A geofence's time-of-use prices, in `currency`, in the wall-clock time of `time_zone`."""

    currency: str
    windows: tuple[Window, ...] = ()
    default_price: Decimal | None = None
    time_zone: str | None = None  # None: the TZ setting

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise TariffError(f"currency {self.currency!r} is not a three-letter code like EUR")
        if self.time_zone is not None:
            zone_of(self.time_zone)
        if self.default_price is not None and self.default_price < 0:
            raise TariffError("a price cannot be negative")

    def zone(self, default: str) -> ZoneInfo:
        return zone_of(self.time_zone or default)

    def price_at(self, local: datetime, fallback: Decimal | None = None) -> Decimal | None:
        """The price at a local wall-clock time: first covering window, else the default."""
        for window in self.windows:
            if window.covers(local):
                return window.price
        return self.default_price if self.default_price is not None else fallback


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TariffError(
            f"unknown time zone {name!r}; use an IANA name like Europe/Berlin"
        ) from None


@dataclass(frozen=True, slots=True)
class PriceSpan:
    """[start, end) in UTC (naive) during which one price applies (None: unpriced)."""

    start: datetime
    end: datetime
    price: Decimal | None


def price_spans(
    tariff: Tariff,
    start: datetime,
    end: datetime,
    *,
    zone: ZoneInfo,
    fallback: Decimal | None = None,
) -> list[PriceSpan]:
    """The prices over [start, end) (naive UTC), merged into spans of equal price.

    Every window edge is a whole local minute and every zone offset a whole number of
    minutes, so a price can only change on a whole UTC minute: the walk evaluates each
    UTC minute once, in local time, which also gets DST right without special cases.
    """
    spans: list[PriceSpan] = []
    if end <= start:
        return spans
    cursor = start
    minute = start.replace(second=0, microsecond=0)
    while cursor < end:
        minute_end = minute + timedelta(minutes=1)
        local = minute.replace(tzinfo=UTC).astimezone(zone)
        price = tariff.price_at(local, fallback)
        piece_end = min(minute_end, end)
        if spans and spans[-1].price == price and spans[-1].end == cursor:
            spans[-1] = PriceSpan(spans[-1].start, piece_end, price)
        else:
            spans.append(PriceSpan(cursor, piece_end, price))
        cursor = piece_end
        minute = minute_end
    return spans


# --- the written form ------------------------------------------------------------------

_WINDOW = re.compile(
    r"^\s*(?:(?P<season>\d{2}-\d{2}\.\.\d{2}-\d{2})\s+)?"
    r"(?P<days>\S+)\s+(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})\s+(?P<price>\S+)\s*$"
)


def _minute(text: str, *, end: bool) -> int:
    hours, minutes = (int(p) for p in text.split(":"))
    value = hours * 60 + minutes
    limit = MINUTES_PER_DAY if end else MINUTES_PER_DAY - 1
    if minutes > 59 or not 0 <= value <= limit:
        raise TariffError(f"{text} is not a time of day")
    return value


def parse_days(text: str) -> int:
    """``*``, ``mon``, ``mon-fri``, ``sat,sun`` or ``fri-mon`` as a weekday bit mask."""
    text = text.strip().lower()
    if text in ("*", "all", "daily"):
        return EVERY_DAY
    mask = 0
    for part in text.split(","):
        first, _, last = part.partition("-")
        try:
            a = DAYS.index(first[:3])
            b = DAYS.index(last[:3]) if last else a
        except ValueError:
            raise TariffError(f"{part!r} is not a day or a range like mon-fri") from None
        day = a
        while True:
            mask |= 1 << day
            if day == b:
                break
            day = (day + 1) % 7
    return mask


def format_days(mask: int) -> str:
    if mask == EVERY_DAY:
        return "*"
    days = [i for i in range(7) if mask & (1 << i)]
    runs: list[str] = []
    i = 0
    while i < len(days):
        j = i
        while j + 1 < len(days) and days[j + 1] == days[j] + 1:
            j += 1
        runs.append(DAYS[days[i]] if i == j else f"{DAYS[days[i]]}-{DAYS[days[j]]}")
        i = j + 1
    return ",".join(runs)


def parse_price(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise TariffError(f"{text!r} is not a price") from None
    if not value.is_finite() or value < 0:
        raise TariffError(f"{text!r} is not a price")
    return value


def parse_window(text: str) -> Window:
    """A window from its written form (see the module docstring)."""
    match = _WINDOW.match(text)
    if match is None:
        raise TariffError(
            f"{text!r} is not a window; write [MM-DD..MM-DD] DAYS HH:MM-HH:MM PRICE, "
            "e.g. 'mon-fri 22:00-06:00 0.21'"
        )
    season = None
    if match["season"]:
        a, b = match["season"].split("..")
        season = Season(int(a.replace("-", "")), int(b.replace("-", "")))
    return Window(
        weekdays=parse_days(match["days"]),
        start_minute=_minute(match["start"], end=False),
        end_minute=_minute(match["end"], end=True),
        price=parse_price(match["price"]),
        season=season,
    )


def format_window(window: Window) -> str:
    """The written form of a window (parses back to the same window)."""

    def hhmm(m: int) -> str:
        return f"{m // 60:02d}:{m % 60:02d}"

    season = ""
    if window.season is not None:
        s, e = window.season.start, window.season.end
        season = f"{s // 100:02d}-{s % 100:02d}..{e // 100:02d}-{e % 100:02d} "
    return (
        f"{season}{format_days(window.weekdays)} "
        f"{hhmm(window.start_minute)}-{hhmm(window.end_minute)} {format_price(window.price)}"
    )


def format_price(price: Decimal) -> str:
    """A price without the column's trailing zeros (0.2100 → 0.21, 10.0000 → 10)."""
    return format(price.normalize(), "f")


def windows_of(texts: Sequence[str]) -> tuple[Window, ...]:
    return tuple(parse_window(t) for t in texts)
