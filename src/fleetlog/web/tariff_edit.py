"""The tariff editor's logic, shared by the page and the JSON API.

A tariff arrives as fields (currency, zone, default price, windows of season, days, times and
price); :func:`build_tariff` checks them into a :class:`fleetlog.costs.Tariff` or raises
:class:`TariffInputError` listing every problem. Unlike ``fleetlog tariff set`` (first matching
window wins), the editor refuses windows that overlap: in a form a second, shadowed window is
almost always a mistake, and the default price covers "every other time".

:func:`preview` and :func:`apply` run the same change: store (or clear) the tariff and price the
geofence's past charges again with :func:`fleetlog.costs.recompute_costs`; the preview rolls the
transaction back, exactly like ``fleetlog tariff set --dry-run``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from fleetlog.costs import (
    CostChange,
    Tariff,
    TariffError,
    delete_tariff,
    get_tariff,
    parse_window,
    recompute_costs,
    set_tariff,
)
from fleetlog.costs.tariff import (
    DAYS,
    MINUTES_PER_DAY,
    Season,
    Window,
    format_days,
    format_price,
    parse_price,
)
from fleetlog.store import tables as t

WEEK = 7 * MINUTES_PER_DAY


class TariffInputError(ValueError):
    """The submitted tariff cannot be used; `problems` says why, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class NoGeofence(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class WindowFields:
    """One window as typed: season days ``MM-DD`` (both or neither), days, times, price."""

    days: str
    start: str
    end: str
    price: str
    season_from: str = ""
    season_to: str = ""

    @property
    def blank(self) -> bool:
        return not any(
            s.strip()
            for s in (self.days, self.start, self.end, self.price, self.season_from, self.season_to)
        )


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _mmdd(value: int) -> str:
    return f"{value // 100:02d}-{value % 100:02d}"


def window_fields(window: Window) -> WindowFields:
    return WindowFields(
        days=format_days(window.weekdays),
        start=_hhmm(window.start_minute),
        end=_hhmm(window.end_minute),
        price=format_price(window.price),
        season_from="" if window.season is None else _mmdd(window.season.start),
        season_to="" if window.season is None else _mmdd(window.season.end),
    )


def _parse_one(w: WindowFields) -> Window:
    season = ""
    if w.season_from.strip() or w.season_to.strip():
        if not (w.season_from.strip() and w.season_to.strip()):
            raise TariffError("a season needs both a first and a last day (MM-DD)")
        season = f"{w.season_from.strip()}..{w.season_to.strip()} "
    days = w.days.strip().replace(" ", "") or "*"
    text = f"{season}{days} {w.start.strip()}-{w.end.strip()} {w.price.strip()}"
    try:
        return parse_window(text)
    except TariffError:
        raise
    except ValueError:  # int() of a malformed time
        raise TariffError(f"{w.start}-{w.end} is not a time range like 22:00-06:00") from None


def _coverage(window: Window) -> int:
    """The window's minutes of the week as bits (minute 0 = Monday 00:00)."""
    bits = 0
    for day in range(7):
        if not window.weekdays & (1 << day):
            continue
        begin = day * MINUTES_PER_DAY + window.start_minute
        end = day * MINUTES_PER_DAY + window.end_minute
        if window.end_minute <= window.start_minute:
            end += MINUTES_PER_DAY  # runs past midnight into the next day
        length = end - begin
        span = ((1 << length) - 1) << begin
        bits |= (span | (span >> WEEK)) & ((1 << WEEK) - 1)  # Sunday night wraps to Monday
    return bits


def _season_days(season: Season | None) -> set[int]:
    days = {m * 100 + d for m in range(1, 13) for d in range(1, 32)}
    return days if season is None else {x for x in days if season.contains(x // 100, x % 100)}


def _first_minute(bits: int) -> str:
    minute = (bits & -bits).bit_length() - 1
    day, rest = divmod(minute, MINUTES_PER_DAY)
    return f"{DAYS[day]} {_hhmm(rest)}"


def overlaps(windows: Sequence[Window]) -> list[str]:
    """Pairs of windows that would price the same moment, in words (1-based numbers)."""
    found = []
    cover = [_coverage(w) for w in windows]
    for i in range(len(windows)):
        for j in range(i + 1, len(windows)):
            common = cover[i] & cover[j]
            if common and _season_days(windows[i].season) & _season_days(windows[j].season):
                found.append(
                    f"windows {i + 1} and {j + 1} overlap (both cover {_first_minute(common)}); "
                    "narrow one of them or use the default price"
                )
    return found


def build_tariff(
    currency: str,
    time_zone: str | None,
    default_price: str | Decimal | None,
    windows: Sequence[WindowFields],
) -> Tariff:
    """The tariff the fields describe, or :class:`TariffInputError` with every problem."""
    problems: list[str] = []
    parsed: list[Window] = []
    for number, w in enumerate((w for w in windows if not w.blank), start=1):
        try:
            parsed.append(_parse_one(w))
        except TariffError as exc:
            problems.append(f"window {number}: {exc}")
    if not problems:
        problems.extend(overlaps(parsed))
    default: Decimal | None = None
    if isinstance(default_price, Decimal):
        default = default_price
    elif default_price is not None and default_price.strip():
        try:
            default = parse_price(default_price.strip())
        except TariffError as exc:
            problems.append(f"default price: {exc}")
    tariff: Tariff | None = None
    try:
        tariff = Tariff(
            currency=currency.strip().upper(),
            windows=tuple(parsed),
            default_price=default,
            time_zone=(time_zone or "").strip() or None,
        )
    except TariffError as exc:
        problems.append(str(exc))
    if problems or tariff is None:
        raise TariffInputError(problems)
    return tariff


def _fence(conn: sa.Connection, fence_id: int) -> sa.RowMapping:
    g = t.geofences
    row = conn.execute(sa.select(g).where(g.c.id == fence_id)).mappings().first()
    if row is None:
        raise NoGeofence(f"no geofence {fence_id}")
    return row


def tariff_json(tariff: Tariff | None) -> dict[str, Any] | None:
    if tariff is None:
        return None
    return {
        "currency": tariff.currency,
        "time_zone": tariff.time_zone,
        "default_price": tariff.default_price,
        "windows": [
            {
                "season_from": f.season_from or None,
                "season_to": f.season_to or None,
                "days": f.days,
                "start": f.start,
                "end": f.end,
                "price": w.price,
            }
            for w, f in ((w, window_fields(w)) for w in tariff.windows)
        ],
    }


def current(conn: sa.Connection, fence_id: int) -> tuple[sa.RowMapping, Tariff | None]:
    """The geofence's row and its tariff (None: flat billing)."""
    return _fence(conn, fence_id), get_tariff(conn, fence_id)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a change did (or would do) to the costs of past charges at the place."""

    changes: list[CostChange]
    applied: bool

    def as_dict(self) -> dict[str, Any]:
        old = sum((c.old or Decimal(0) for c in self.changes), Decimal(0))
        new = sum((c.new or Decimal(0) for c in self.changes), Decimal(0))
        return {
            "applied": self.applied,
            "changed": len(self.changes),
            "old_total": old,
            "new_total": new,
            "changes": [
                {
                    "charge_id": c.process_id,
                    "start_date": c.start_date.isoformat(),
                    "old": c.old,
                    "new": c.new,
                }
                for c in self.changes
            ],
        }


def _change(
    engine: sa.Engine, fence_id: int, tariff: Tariff | None, *, default_tz: str, apply: bool
) -> Outcome:
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            _fence(conn, fence_id)
            if tariff is None:
                delete_tariff(conn, fence_id)
            else:
                set_tariff(conn, fence_id, tariff)
            changes = recompute_costs(conn, geofence_id=fence_id, default_time_zone=default_tz)
        except BaseException:
            transaction.rollback()
            raise
        if apply:
            transaction.commit()
        else:
            transaction.rollback()
    return Outcome(changes, apply)


def preview(engine: sa.Engine, fence_id: int, tariff: Tariff | None, *, default_tz: str) -> Outcome:
    """The cost changes storing `tariff` (None: clearing it) would make; nothing is written."""
    return _change(engine, fence_id, tariff, default_tz=default_tz, apply=False)


def apply(engine: sa.Engine, fence_id: int, tariff: Tariff | None, *, default_tz: str) -> Outcome:
    """Store `tariff` (None: clear it) and reprice the place's past charges."""
    return _change(engine, fence_id, tariff, default_tz=default_tz, apply=True)
