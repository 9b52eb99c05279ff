"""Unit conversions, done once at the edge of every source.

fleetlog's canonical units are km, km/h, kW, kWh, °C, bar, metres, degrees and
UTC. Tesla's APIs speak miles and mph; Fleet Telemetry sometimes sends numbers
as strings. Every converter here accepts what a source may send and returns
``None`` for absent values, so adapters stay one line per field.
"""

from __future__ import annotations

from datetime import UTC, datetime

KM_PER_MILE = 1.609344
BAR_PER_PSI = 0.0689475729
BAR_PER_ATM = 1.01325


class UnitError(ValueError):
    """A value that should be a number (or time) is not."""


def number(value: object) -> float | None:
    """A float from a JSON number or a numeric string; ``None`` for null/empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise UnitError(f"expected a number, got a boolean {value!r}")
    if isinstance(value, int | float):
        try:
            result = float(value)
        except OverflowError:  # a JSON integer past the float range (too long to quote)
            raise UnitError("number out of range: an integer past 1.8e308") from None
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise UnitError(f"expected a number, got {value[:40]!r}") from None
    else:
        raise UnitError(f"expected a number, got {type(value).__name__}")
    if result != result or result in (float("inf"), float("-inf")):
        raise UnitError(f"expected a finite number, got {value!r}")
    return result


def integer(value: object) -> int | None:
    """An int (rounded) from a number or numeric string."""
    n = number(value)
    return None if n is None else round(n)


def miles_to_km(value: object) -> float | None:
    n = number(value)
    return None if n is None else n * KM_PER_MILE


def mph_to_kmh(value: object) -> float | None:
    return miles_to_km(value)


def psi_to_bar(value: object) -> float | None:
    n = number(value)
    return None if n is None else n * BAR_PER_PSI


def fahrenheit_to_celsius(value: object) -> float | None:
    n = number(value)
    return None if n is None else (n - 32.0) * 5.0 / 9.0


def from_epoch_ms(value: object) -> datetime | None:
    """A UTC datetime from milliseconds since the epoch."""
    n = number(value)
    if n is None:
        return None
    try:
        return datetime.fromtimestamp(n / 1000.0, UTC)
    except (OverflowError, OSError, ValueError):
        raise UnitError(f"timestamp out of range: {value!r}") from None


def from_epoch_s(value: object) -> datetime | None:
    """A UTC datetime from seconds since the epoch."""
    n = number(value)
    return None if n is None else from_epoch_ms(n * 1000.0)


def boolean(value: object) -> bool | None:
    """A bool from JSON booleans, 0/1 and the strings Tesla sends ("true", "false")."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise UnitError(f"expected a boolean, got {str(value)[:40]!r}")
