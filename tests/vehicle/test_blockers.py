"""Every suspend blocker of reference §5.4: its reason, its retry, whether it resets idle."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from _world import PARKED, T0, VIN, full, light

from fleetlog.model.observation import Connectivity, VehicleState
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle.blockers import BLOCKERS, suspend_blocker
from fleetlog.vehicle.events import Boot
from fleetlog.vehicle.machine import CarState, step
from fleetlog.vehicle.phase import Phase
from fleetlog.vehicle.settings import CarSettings

CASES: list[tuple[str, dict[str, Any], float, bool]] = [
    ("user_present", {"is_user_present": True}, 15, False),
    ("preconditioning", {"is_preconditioning": True}, 30, True),
    ("dogmode", {"climate_keeper_mode": "dog"}, 30, True),
    ("sentry_mode", {"sentry_mode": True}, 30, True),
    ("downloading_update", {"update_status": "downloading", "update_download_perc": 40}, 15, True),
    ("doors_open", {"doors_open": True}, 15, True),
    ("trunk_open", {"trunk_open": True}, 15, True),
    ("trunk_open", {"frunk_open": True}, 15, True),
    ("unlocked", {"locked": False}, 15, True),
    ("power_usage", {"power_kw": 1.5}, 15, True),
]
STRICT = CarSettings(req_not_unlocked=True)


@pytest.mark.parametrize("reason,values,retry,scales", CASES)
def test_each_blocker_names_its_reason(
    reason: str, values: dict[str, Any], retry: float, scales: bool
) -> None:
    state = VehicleState(**values)
    polling = suspend_blocker(state, STRICT, streaming=False)
    streaming = suspend_blocker(state, STRICT, streaming=True)
    assert polling is not None and streaming is not None
    assert polling.reason == streaming.reason == reason
    assert polling.retry_s == retry
    assert streaming.retry_s == retry * (2 if scales else 1)
    assert polling.resets_idle is (reason != "unlocked")


def test_no_blocker_for_a_quiet_car() -> None:
    quiet = VehicleState(locked=False, power_kw=0.0, sentry_mode=False, doors_open=False)
    assert suspend_blocker(quiet, CarSettings(), streaming=False) is None  # unlocked allowed
    done = VehicleState(update_status="downloading", update_download_perc=100)
    assert suspend_blocker(done, CarSettings(), streaming=False) is None


def test_blockers_are_checked_in_table_order() -> None:
    everything = VehicleState(is_user_present=True, sentry_mode=True, doors_open=True)
    blocker = suspend_blocker(everything, STRICT, streaming=False)
    assert blocker is not None and blocker.reason == "user_present"
    assert [r.reason for r in BLOCKERS][:2] == ["user_present", "preconditioning"]


def _online(settings: CarSettings, **values: Any) -> tuple[CarState, list[fx.Effect]]:
    s, _ = step(CarState(VIN, settings=settings), Boot(), T0)
    s, _ = step(s, light(T0, Connectivity.ONLINE), T0)
    return step(s, full(T0, **{**PARKED, **values}), T0)


@pytest.mark.parametrize("reason,values,retry,scales", CASES)
def test_a_blocker_keeps_the_car_watched_in_the_machine(
    reason: str, values: dict[str, Any], retry: float, scales: bool
) -> None:
    s, _ = _online(STRICT, **values)
    # long past the idle threshold, the blocker still holds the car online
    later = T0 + timedelta(minutes=30)
    s, out = step(s, full(later, **{**PARKED, **values}), later)
    assert s.phase is Phase.ONLINE
    (sched,) = [e for e in out if isinstance(e, fx.ScheduleFetch)]
    assert sched.reason == reason and sched.at == later + timedelta(seconds=retry)
    if reason == "unlocked":
        assert s.last_used == T0  # being unlocked is not activity
    else:
        assert s.last_used == later


def test_unlocked_blocks_only_with_the_car_setting() -> None:
    s, _ = _online(CarSettings(req_not_unlocked=False), locked=False)
    later = T0 + timedelta(minutes=16)
    s, _ = step(s, full(later, **{**PARKED, "locked": False}), later)
    assert s.phase is Phase.SUSPENDED


def test_suspend_after_idle_min_is_per_car() -> None:
    s, _ = _online(CarSettings(suspend_after_idle_min=5, suspend_min=12))
    later = T0 + timedelta(minutes=5)
    s, out = step(s, full(later, **PARKED), later)
    assert s.phase is Phase.SUSPENDED
    (sched,) = [e for e in out if isinstance(e, fx.ScheduleFetch)]
    assert sched.at == later + timedelta(minutes=12)
