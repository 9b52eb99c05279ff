"""The filter every page and API call shares: which car, and which days.

Days are the user's local days (the display time zone); the database compares UTC, so the
window carries both. `to` is inclusive as a day, exclusive as an instant (midnight after it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from fleetlog.store import tables as t

PRESETS: tuple[tuple[str, int | None], ...] = (
    ("7 d", 7),
    ("30 d", 30),
    ("90 d", 90),
    ("1 y", 365),
    ("all", None),
)
DEFAULT_DAYS = 90


@dataclass(frozen=True, slots=True)
class CarRef:
    id: int
    name: str
    vin: str


@dataclass(frozen=True, slots=True)
class Window:
    """A car (or every car) and a span of local days."""

    car_id: int | None
    start_day: date | None  # None: since the beginning
    end_day: date | None  # None: until now
    tz: ZoneInfo

    @property
    def start(self) -> datetime | None:
        """Inclusive lower bound, UTC naive."""
        if self.start_day is None:
            return None
        local = datetime.combine(self.start_day, time(0), self.tz)
        return local.astimezone(UTC).replace(tzinfo=None)

    @property
    def end(self) -> datetime | None:
        """Exclusive upper bound, UTC naive."""
        if self.end_day is None:
            return None
        local = datetime.combine(self.end_day + timedelta(days=1), time(0), self.tz)
        return local.astimezone(UTC).replace(tzinfo=None)

    def where(self, table: sa.Table, column: str = "start_date") -> list[sa.ColumnElement[bool]]:
        """Conditions on `table`: its car and `column` inside the window."""
        out: list[sa.ColumnElement[bool]] = []
        if self.car_id is not None:
            out.append(table.c.car_id == self.car_id)
        if self.start is not None:
            out.append(table.c[column] >= self.start)
        if self.end is not None:
            out.append(table.c[column] < self.end)
        return out

    def query(self, **extra: Any) -> str:
        """The query string that reproduces this window (plus `extra`)."""
        params: dict[str, Any] = {}
        if self.car_id is not None:
            params["car"] = self.car_id
        params["from"] = self.start_day.isoformat() if self.start_day else ""
        params["to"] = self.end_day.isoformat() if self.end_day else ""
        params.update({k: v for k, v in extra.items() if v is not None})
        return urlencode(params)

    def as_dict(self) -> dict[str, Any]:
        return {
            "car": self.car_id,
            "from": self.start_day.isoformat() if self.start_day else None,
            "to": self.end_day.isoformat() if self.end_day else None,
            "tz": str(self.tz),
        }


def _day(raw: str | None) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {raw!r}") from None


def parse_window(
    car: str | None,
    start: str | None,
    end: str | None,
    *,
    tz: ZoneInfo,
    cars: list[CarRef],
    default_days: int | None = DEFAULT_DAYS,
    today: date | None = None,
) -> Window:
    """The window from query parameters; missing `from` means the last `default_days`.

    An explicit empty `from` means "since the beginning". Unknown car ids raise ValueError.
    """
    car_id: int | None
    if car in (None, ""):
        car_id = cars[0].id if cars else None
    elif car == "all":
        car_id = None
    else:
        try:
            car_id = int(str(car))
        except ValueError:
            raise ValueError(f"not a car id: {car!r}") from None
        if all(c.id != car_id for c in cars):
            raise ValueError(f"no car with id {car_id}")
    now_day = today or datetime.now(tz).date()
    start_day = _day(start)
    if start is None and default_days is not None:
        start_day = now_day - timedelta(days=default_days - 1)
    end_day = _day(end)
    if start_day and end_day and end_day < start_day:
        raise ValueError("'to' is before 'from'")
    return Window(car_id=car_id, start_day=start_day, end_day=end_day, tz=tz)


def list_cars(conn: sa.Connection) -> list[CarRef]:
    """Every car, in TeslaMate's display order."""
    c = t.cars.c
    rows = conn.execute(
        sa.select(c.id, c.name, c.vin, c.marketing_name).order_by(c.display_priority, c.id)
    )
    return [CarRef(int(r.id), r.name or r.marketing_name or f"Car {r.id}", r.vin) for r in rows]
