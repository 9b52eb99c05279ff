"""Observations merge like partial states, and units convert once, exactly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetlog.model import units
from fleetlog.model.observation import Observation, Source, VehicleState

states = st.builds(
    VehicleState,
    speed_kmh=st.none() | st.floats(0, 300),
    shift_state=st.none() | st.sampled_from(["P", "R", "N", "D"]),
    odometer_km=st.none() | st.floats(0, 1e6),
    battery_level=st.none() | st.integers(0, 100),
    locked=st.none() | st.booleans(),
)


@given(states, states, states)
def test_merge_is_associative(a: VehicleState, b: VehicleState, c: VehicleState) -> None:
    assert a.merged(b).merged(c) == a.merged(b.merged(c))


@given(states, states)
def test_newer_values_win_and_unknowns_keep_older(a: VehicleState, b: VehicleState) -> None:
    m = a.merged(b)
    for name, value in m.known().items():
        newer = getattr(b, name)
        assert value == (newer if newer is not None else getattr(a, name))
    assert a.merged(VehicleState()) is a


def test_observation_requires_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Observation("5YJ3E1EA7KF000001", datetime(2026, 1, 1), Source.REST, VehicleState())
    ok = Observation(
        "5YJ3E1EA7KF000001", datetime(2026, 1, 1, tzinfo=UTC), Source.REST, VehicleState()
    )
    assert ok.state.known() == {}


def test_unit_conversions() -> None:
    assert units.miles_to_km(100) == pytest.approx(160.9344)
    assert units.mph_to_kmh("34.797") == pytest.approx(56.0, abs=0.01)
    assert units.psi_to_bar(42) == pytest.approx(2.8958, abs=1e-4)
    assert units.fahrenheit_to_celsius(212) == pytest.approx(100.0)
    assert units.from_epoch_ms(1_700_000_000_000) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert units.from_epoch_s("1700000000") == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert units.integer("41.6") == 42
    assert units.number("") is None and units.miles_to_km(None) is None
    assert units.boolean("true") is True and units.boolean(0) is False


@pytest.mark.parametrize(
    "bad",
    ["abc", "nan", "inf", True, [1], {"a": 1},
     pytest.param(10**400, id="int-past-float"), pytest.param(-(10**5000), id="int-5000-digits")],
)  # fmt: skip
def test_bad_numbers_raise_unit_error(bad: object) -> None:
    with pytest.raises(units.UnitError):
        units.number(bad)


@given(st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.booleans(), st.none()))
def test_number_never_raises_anything_but_unit_error(value: object) -> None:
    try:
        result = units.number(value)
    except units.UnitError:
        return
    assert result is None or result == result
