"""Drive and charge aggregates of reference §7."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetlog.logbook.aggregates import (
    charge_aggregates,
    charge_energy_used,
    climb,
    detect_phases,
    drive_aggregates,
    is_phantom_drive,
)
from fleetlog.logbook.records import ChargeSample, Position

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)


def pos(minute: float, odo: float | None, **kw: object) -> Position:
    return Position(
        date=T0 + timedelta(minutes=minute), latitude=48.0, longitude=11.0, odometer=odo, **kw
    )  # type: ignore[arg-type]


def test_drive_aggregates() -> None:
    rows = [
        pos(
            0,
            100.0,
            speed=0,
            power=5,
            elevation=500,
            outside_temp=10,
            inside_temp=20,
            ideal_battery_range_km=300,
            rated_battery_range_km=280,
        ),
        pos(10, 110.0, speed=90, power=40, elevation=560, outside_temp=12),
        pos(20, 118.5, speed=60, power=-20, elevation=530, inside_temp=22),
        pos(
            31,
            120.0,
            speed=0,
            power=0,
            elevation=None,
            ideal_battery_range_km=280,
            rated_battery_range_km=262,
        ),
    ]
    a = drive_aggregates(list(reversed(rows)))
    assert (a.start_km, a.end_km, a.distance) == (100.0, 120.0, 20.0)
    assert a.start_date == T0 and a.duration_min == 31
    assert (a.start_index, a.end_index) == (3, 0)  # indexes into the list given
    assert (a.speed_max, a.power_max, a.power_min) == (90, 40, -20)
    assert a.outside_temp_avg == 11 and a.inside_temp_avg == 21
    assert (a.start_ideal_range_km, a.end_ideal_range_km) == (300, 280)
    assert (a.start_rated_range_km, a.end_rated_range_km) == (280, 262)
    assert (a.ascent, a.descent) == (60, 30)


def test_ranges_only_from_complete_rows() -> None:
    rows = [pos(0, 1.0, ideal_battery_range_km=300), pos(1, 2.0)]
    a = drive_aggregates(rows)
    assert a.start_ideal_range_km is None  # no row had both ranges


def test_climb_overflow_is_stored_as_zero() -> None:
    assert climb([0, 20000, 0, 20000]) == (0, 20000)  # 40,000 m up overflows
    assert climb([None, 5]) == (None, None)


def test_phantom_drives() -> None:
    assert is_phantom_drive([pos(0, 1.0)])
    assert is_phantom_drive([pos(0, 1.0), pos(1, 1.005)])
    assert not is_phantom_drive([pos(0, 1.0), pos(1, 1.02)])


def sample(minute: float, added: float, power: float = 11.0, **kw: object) -> ChargeSample:
    return ChargeSample(
        date=T0 + timedelta(minutes=minute),
        charge_energy_added=added,
        charger_power=power,
        **kw,  # type: ignore[arg-type]
    )


def test_charge_energy_added_uses_max_when_last_reset() -> None:
    a = charge_aggregates([sample(0, 0.5), sample(30, 6.0), sample(60, 0.0)])
    assert a.charge_energy_added == 5.5
    assert charge_aggregates([sample(0, 5.0), sample(1, 4.0)]).charge_energy_added is None


def test_three_phase_energy_used() -> None:
    rows = [
        sample(m, m * 0.18, 11.0, charger_actual_current=16, charger_voltage=230, charger_phases=3)
        for m in range(0, 61, 3)
    ]
    assert detect_phases(rows) == 3
    used = charge_energy_used(rows)
    assert used == pytest.approx(3 * 16 * 230 / 1000, rel=1e-9)


def test_phase_to_phase_voltage_is_corrected_with_sqrt3() -> None:
    # the car reports 400 V phase-to-phase and says 3 phases: P / (I·V) = √3
    rows = [
        sample(m, 0, 11.085, charger_actual_current=16, charger_voltage=400, charger_phases=3)
        for m in range(20)
    ]
    assert detect_phases(rows) == pytest.approx(math.sqrt(3))


def test_phase_correction_and_unknown() -> None:
    # reports 1 phase but power says 2
    two = [
        sample(m, 0, 7.36, charger_actual_current=16, charger_voltage=230, charger_phases=1)
        for m in range(20)
    ]
    assert detect_phases(two) == 2
    few = two[:15]
    assert detect_phases(few) is None
    odd = [
        sample(m, 0, 5.5, charger_actual_current=16, charger_voltage=230, charger_phases=3)
        for m in range(20)
    ]
    assert detect_phases(odd) is None  # 1.49 against 3 reported: neither rule


def test_dc_energy_used_from_power_and_negative_terms_dropped() -> None:
    rows = [sample(0, 0, 100), sample(6, 10, 100), sample(12, 20, -5)]
    assert charge_energy_used(rows) == pytest.approx(10.0)


def test_fast_charger_type_is_the_mode_while_power_flows() -> None:
    rows = [
        sample(0, 0, 0, fast_charger_type="ACSingleWireCAN"),
        sample(1, 1, 120, fast_charger_type="Tesla"),
        sample(2, 2, 110, fast_charger_type="Tesla"),
    ]
    assert charge_aggregates(rows).fast_charger_type == "Tesla"


@given(st.lists(st.floats(0, 1000, allow_nan=False), min_size=2, max_size=30))
def test_distance_is_last_minus_first_odometer(odos: list[float]) -> None:
    odos = sorted(odos)
    rows = [pos(i, o) for i, o in enumerate(odos)]
    a = drive_aggregates(rows)
    assert a.distance == pytest.approx(odos[-1] - odos[0])
    assert a.ascent is None


def streamed(minute: float, odo: float) -> Position:
    """A legacy stream row: odometer rounded to a tenth of a mile, no range."""
    miles = round(odo / 1.609344, 1)
    return pos(minute, miles * 1.609344)


def test_a_streamed_start_takes_the_exact_parked_odometer_next_to_it() -> None:
    parked = pos(-1, 1000.0, ideal_battery_range_km=300, rated_battery_range_km=280)
    rows = [streamed(0, 1000.0), streamed(5, 1004.0), pos(10, 1008.0, ideal_battery_range_km=290)]
    assert rows[0].odometer != pytest.approx(1000.0, abs=0.01)  # rounded by the stream
    plain = drive_aggregates(rows)
    settled = drive_aggregates(rows, parked_before=parked)
    assert settled.start_km == 1000.0 and settled.distance == pytest.approx(8.0)
    assert abs(plain.distance - 8.0) > 0.04  # type: ignore[operator]
    assert settled.start_index == plain.start_index  # the start row is the drive's own


def test_a_streamed_end_takes_the_exact_parked_odometer_after_it() -> None:
    start = pos(0, 1000.0, ideal_battery_range_km=300)
    after = pos(11, 1008.0, ideal_battery_range_km=290)
    a = drive_aggregates([start, streamed(10, 1008.0)], parked_after=after)
    assert a.end_km == 1008.0 and a.distance == pytest.approx(8.0)


def test_a_parked_reading_too_far_away_or_a_precise_row_is_kept_as_it_is() -> None:
    far = pos(-1, 999.0, ideal_battery_range_km=300)  # the car moved since: not this start
    rows = [streamed(0, 1000.0), pos(10, 1008.0, ideal_battery_range_km=290)]
    assert drive_aggregates(rows, parked_before=far).start_km == rows[0].odometer
    exact = [pos(0, 1000.05, ideal_battery_range_km=300), rows[1]]
    near = pos(-1, 1000.0, ideal_battery_range_km=300)
    assert drive_aggregates(exact, parked_before=near).start_km == 1000.05
    coarse_parked = streamed(-1, 1000.0)  # a streamed parked reading is no better
    assert drive_aggregates(rows, parked_before=coarse_parked).start_km == rows[0].odometer
