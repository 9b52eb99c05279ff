"""TeslaFi's monthly CSV exports, read into observations.

The layout (see ``docs/import-export.md`` for where it is documented): one file per month
named ``TeslaFi<M><YYYY>.csv`` (month without a leading zero: ``TeslaFi82019.csv``,
``TeslaFi112017.csv``; a variant without the prefix, ``112023.csv``, exists too), a header
row, then one row per poll. Most columns carry the Owner API's ``vehicle_data`` field names
flattened out of their sections (``battery_level``, ``shift_state``, ``odometer`` …) in the
API's own units (miles, mph, °C, kW); ``Date`` is the poll's *local* time
``YYYY-MM-DD HH:MM:SS``; ``state`` is the car's connectivity (``online``, ``asleep``,
``offline``, and TeslaFi's own ``waking``/``shutdown``). Empty cells and the literal
``None`` mean "not said"; booleans are ``True``/``False``.

A row becomes the ``vehicle_data`` payload it was flattened from, and that payload goes
through :func:`fleetlog.sources.vehicle_data.observation_from_vehicle_data`: the unit
conversions are the live poller's, done once, in one place. What this module adds is what
a CSV needs: local time to UTC (daylight saving included), validation per field, and a
reason for every row it cannot use.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from fleetlog.model import units
from fleetlog.model.observation import Connectivity, Observation, Source
from fleetlog.sources.vehicle_data import PayloadError, observation_from_vehicle_data

FILE_NAME: Final = re.compile(r"^(?:teslafi)?(?P<month>\d{1,2})(?P<year>\d{4})\.csv$", re.I)
DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S"


class Reason(StrEnum):
    """Why a row was not imported (``import_rejections.reason``)."""

    COLUMN_COUNT_MISMATCH = "column_count_mismatch"
    INVALID_DATE = "invalid_date"
    NONEXISTENT_LOCAL_TIME = "nonexistent_local_time"
    AMBIGUOUS_LOCAL_TIME = "ambiguous_local_time"
    OUT_OF_ORDER = "out_of_order"  # fleetlog's own: earlier than the car's previous row
    INVALID_FIELDS = "invalid_fields"
    PARSE_ERROR = "parse_error"
    VEHICLE_CONFLICT = "vehicle_conflict"


# Where each flat column lives in a vehicle_data payload, and what it must parse as.
_NUMBER, _BOOL, _TEXT = "number", "bool", "text"
_SECTIONS: Final[dict[str, tuple[str | None, str]]] = {
    # top level
    "display_name": (None, _TEXT),
    "in_service": (None, _BOOL),
    # charge_state
    **{
        name: ("charge_state", kind)
        for name, kind in (
            ("battery_level", _NUMBER),
            ("usable_battery_level", _NUMBER),
            ("battery_range", _NUMBER),
            ("ideal_battery_range", _NUMBER),
            ("est_battery_range", _NUMBER),
            ("charging_state", _TEXT),
            ("charge_energy_added", _NUMBER),
            ("charger_power", _NUMBER),
            ("charger_voltage", _NUMBER),
            ("charger_actual_current", _NUMBER),
            ("charger_pilot_current", _NUMBER),
            ("charger_phases", _NUMBER),
            ("charge_limit_soc", _NUMBER),
            ("fast_charger_present", _BOOL),
            ("fast_charger_type", _TEXT),
            ("fast_charger_brand", _TEXT),
            ("conn_charge_cable", _TEXT),
            ("charge_port_door_open", _BOOL),
            ("time_to_full_charge", _NUMBER),
            ("battery_heater_on", _BOOL),
            ("not_enough_power_to_heat", _BOOL),
        )
    },
    # climate_state
    **{
        name: ("climate_state", kind)
        for name, kind in (
            ("inside_temp", _NUMBER),
            ("outside_temp", _NUMBER),
            ("is_climate_on", _BOOL),
            ("is_preconditioning", _BOOL),
            ("driver_temp_setting", _NUMBER),
            ("passenger_temp_setting", _NUMBER),
            ("fan_status", _NUMBER),
            ("is_front_defroster_on", _BOOL),
            ("is_rear_defroster_on", _BOOL),
            ("battery_heater", _BOOL),
            ("battery_heater_no_power", _BOOL),
            ("climate_keeper_mode", _TEXT),
        )
    },
    # drive_state
    **{
        name: ("drive_state", kind)
        for name, kind in (
            ("latitude", _NUMBER),
            ("longitude", _NUMBER),
            ("heading", _NUMBER),
            ("speed", _NUMBER),
            ("power", _NUMBER),
            ("shift_state", _TEXT),
        )
    },
    # vehicle_state
    **{
        name: ("vehicle_state", kind)
        for name, kind in (
            ("odometer", _NUMBER),
            ("car_version", _TEXT),
            ("vehicle_name", _TEXT),
            ("locked", _BOOL),
            ("sentry_mode", _BOOL),
            ("is_user_present", _BOOL),
            ("df", _NUMBER),
            ("dr", _NUMBER),
            ("pf", _NUMBER),
            ("pr", _NUMBER),
            ("ft", _NUMBER),
            ("rt", _NUMBER),
            ("fd_window", _NUMBER),
            ("fp_window", _NUMBER),
            ("rd_window", _NUMBER),
            ("rp_window", _NUMBER),
            ("tpms_pressure_fl", _NUMBER),
            ("tpms_pressure_fr", _NUMBER),
            ("tpms_pressure_rl", _NUMBER),
            ("tpms_pressure_rr", _NUMBER),
        )
    },
    # vehicle_config
    **{
        name: ("vehicle_config", _TEXT)
        for name in ("car_type", "trim_badging", "exterior_color", "wheel_type", "spoiler_type")
    },
}

# Values outside these bounds (API units) are corrupt: they would overflow TeslaMate's
# numeric columns or put the car on another planet, so the row is refused with the field.
_BOUNDS: Final[dict[str, tuple[float, float]]] = {
    "latitude": (-90.0, 90.0),
    "longitude": (-180.0, 180.0),
    "battery_level": (0.0, 100.0),
    "usable_battery_level": (0.0, 100.0),
    "battery_range": (0.0, 1500.0),
    "ideal_battery_range": (0.0, 1500.0),
    "est_battery_range": (0.0, 1500.0),
    "speed": (0.0, 300.0),
    "odometer": (0.0, 5_000_000.0),
    "charge_energy_added": (0.0, 1000.0),
    "charger_power": (-1000.0, 1000.0),
    "power": (-1000.0, 1000.0),
    "inside_temp": (-80.0, 120.0),
    "outside_temp": (-80.0, 120.0),
    "heading": (0.0, 360.0),
}

_ONLINE_STATES: Final = frozenset({"online", "waking", "shutdown", "driving", "charging"})


def _blank(value: str | None) -> bool:
    return value is None or value.strip() in ("", "None", "none", "null", "NULL")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a row is about: TeslaFi's ``vin``, ``id`` (product id) and ``vehicle_id``."""

    vin: str
    eid: int | None
    vid: int | None


@dataclass(frozen=True, slots=True)
class Row:
    """One usable row: the car, the moment (UTC) and what it says.

    ``connectivity`` is ONLINE for a row that carries a full snapshot (it is replayed as a
    ``vehicle_data`` answer); ASLEEP and OFFLINE rows are replayed as the free endpoint's.
    """

    number: int  # 1-based data row number in the file (the header is not counted)
    identity: Identity
    connectivity: Connectivity
    observation: Observation


@dataclass(frozen=True, slots=True)
class Rejected:
    number: int
    reason: Reason
    fields: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True, slots=True)
class MonthFile:
    """A file in the export directory and the month its name says."""

    path: Path
    year: int
    month: int

    @property
    def name(self) -> str:
        return self.path.name

    def fingerprint(self) -> str:
        """The content's SHA-256: a changed file is a new file for the checkpoints."""
        digest = hashlib.sha256()
        with self.path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()


def month_files(directory: Path) -> tuple[list[MonthFile], list[Path]]:
    """The export's files in month order, and the files that are not TeslaFi exports."""
    found: list[MonthFile] = []
    other: list[Path] = []
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        m = FILE_NAME.match(path.name)
        if m is None or not 1 <= int(m["month"]) <= 12:
            other.append(path)
            continue
        found.append(MonthFile(path, int(m["year"]), int(m["month"])))
    found.sort(key=lambda f: (f.year, f.month, f.name))
    return found, other


class LocalClock:
    """Local wall-clock times to UTC, in file order.

    A time in the hour that repeats when daylight saving ends is ambiguous on its own; in
    a log written in order it is not: the first reading that would go backwards belongs to
    the second pass. A time in the hour skipped in spring never existed and is refused.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.last: datetime | None = None

    def to_utc(self, naive: datetime) -> datetime | Reason:
        first = naive.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        second = naive.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if first.astimezone(self.zone).replace(tzinfo=None) != naive:
            return Reason.NONEXISTENT_LOCAL_TIME
        candidates = [first] if first == second else [first, second]
        later = [c for c in candidates if self.last is None or c >= self.last]
        if not later:
            return Reason.AMBIGUOUS_LOCAL_TIME if len(candidates) == 2 else Reason.OUT_OF_ORDER
        chosen = later[0]
        self.last = chosen
        return chosen


def stable_eid(vin: str) -> int:
    """A product id for a car whose export has none (``cars.eid`` is NOT NULL UNIQUE)."""
    return int.from_bytes(hashlib.sha256(vin.encode()).digest()[:6], "big")


def _identity(values: Mapping[str, str]) -> Identity | Rejected | None:
    vin = (values.get("vin") or "").strip()
    if _blank(vin):
        return None
    ids: list[int | None] = []
    bad: list[str] = []
    for column in ("id", "vehicle_id"):
        raw = values.get(column)
        if _blank(raw):
            ids.append(None)
            continue
        assert raw is not None
        try:
            value = int(raw.strip())
        except ValueError:
            bad.append(column)
            continue
        ids.append(value if value > 0 else None)
    if bad:
        return Rejected(0, Reason.INVALID_FIELDS, tuple(bad))
    return Identity(vin, ids[0], ids[1])


def parse_row(
    number: int,
    values: Mapping[str, str],
    clocks: dict[str, LocalClock],
    zone: ZoneInfo,
    default: Identity | None,
) -> Row | Rejected:
    """One CSV row (already zipped with the header) → a :class:`Row` or why not.

    `clocks` holds one :class:`LocalClock` per VIN: a file may list two cars one after
    the other, each in its own order.
    """
    raw_date = (values.get("Date") or "").strip()
    try:
        local = datetime.strptime(raw_date[:19], DATE_FORMAT)
    except ValueError:
        return Rejected(number, Reason.INVALID_DATE, ("Date",), raw_date[:40])
    who = _identity(values)
    if isinstance(who, Rejected):
        return Rejected(number, who.reason, who.fields)
    if who is None:
        if default is None:
            return Rejected(number, Reason.INVALID_FIELDS, ("vin",), "no vin in the row")
        who = default
    at = clocks.setdefault(who.vin, LocalClock(zone)).to_utc(local)
    if isinstance(at, Reason):
        return Rejected(number, at, ("Date",), raw_date)

    payload: dict[str, Any] = {"vin": who.vin}
    sections: dict[str, dict[str, Any]] = {}
    bad: list[str] = []
    for column, (section, kind) in _SECTIONS.items():
        raw = values.get(column)
        if _blank(raw):
            continue
        assert raw is not None
        value: Any = raw.strip()
        try:
            if kind == _NUMBER:
                number_value = units.number(value)
                low, high = _BOUNDS.get(column, (float("-inf"), float("inf")))
                if number_value is None or not low <= number_value <= high:
                    bad.append(column)
                    continue
                value = number_value
            elif kind == _BOOL:
                value = units.boolean(value)
        except units.UnitError:
            bad.append(column)
            continue
        if section is None:
            payload[column] = value
        else:
            sections.setdefault(section, {})[column] = value
    if bad:
        return Rejected(number, Reason.INVALID_FIELDS, tuple(bad))
    payload.update(sections)
    state_text = (values.get("state") or "").strip().lower()
    if state_text == "asleep":
        connectivity = Connectivity.ASLEEP
    elif state_text == "offline":
        connectivity = Connectivity.OFFLINE
    elif state_text in _ONLINE_STATES:
        connectivity = Connectivity.ONLINE
    else:
        return Rejected(number, Reason.INVALID_FIELDS, ("state",), state_text[:40])
    try:
        obs = observation_from_vehicle_data(payload, received_at=at)
    except PayloadError as exc:
        return Rejected(number, Reason.PARSE_ERROR, (), str(exc)[:200])
    # The CSV row has no drive_state timestamp: the poll time is the row's time.
    obs = Observation(obs.vin, at, Source.IMPORT, obs.state)
    return Row(number, who, connectivity, obs)


def read_rows(month: MonthFile, zone: ZoneInfo) -> Iterator[Row | Rejected]:
    """Every data row of a file, parsed, in file order."""
    text = month.path.read_bytes().decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return
    header = [h.strip() for h in header]
    clocks: dict[str, LocalClock] = {}
    default: Identity | None = None
    for number, cells in enumerate(reader, start=1):
        if not cells or all(not c.strip() for c in cells):
            continue  # blank line (a trailing newline, an editor's leftovers)
        if len(cells) != len(header):
            yield Rejected(
                number,
                Reason.COLUMN_COUNT_MISMATCH,
                (),
                f"{len(cells)} cells, header has {len(header)}",
            )
            continue
        parsed = parse_row(number, dict(zip(header, cells, strict=True)), clocks, zone, default)
        if isinstance(parsed, Row) and default is None:
            # older exports name the car only in some rows; one car per file then
            default = parsed.identity
        yield parsed
