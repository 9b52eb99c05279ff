"""What keeps a car from being left to sleep (reference §5.4), as a table.

Calling ``vehicle_data`` resets the car's inactivity timer, so once a car is
idle the machine stops calling it and only watches. A blocker is a reason not
to stop yet: someone is in or at the car. Blockers are checked in the table's
order; the first that holds wins and says when to look again. All but
``unlocked`` also restart the idle clock (an unlocked car is not activity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fleetlog.model.observation import VehicleState
from fleetlog.vehicle.settings import CarSettings


@dataclass(frozen=True, slots=True)
class Blocker:
    reason: str
    retry_s: float
    resets_idle: bool = True


@dataclass(frozen=True, slots=True)
class _Rule:
    reason: str
    holds: Callable[[VehicleState, CarSettings], bool]
    retry_s: float
    scales: bool  # multiplied by 2 when a stream watches the car
    resets_idle: bool = True


def _downloading(s: VehicleState, _: CarSettings) -> bool:
    # an unknown percentage does not block (TeslaMate compares nil < 100 → false)
    perc = s.update_download_perc
    return s.update_status == "downloading" and perc is not None and perc < 100


BLOCKERS: tuple[_Rule, ...] = (
    _Rule("user_present", lambda s, _: s.is_user_present is True, 15, scales=False),
    _Rule("preconditioning", lambda s, _: s.is_preconditioning is True, 30, scales=True),
    _Rule("dogmode", lambda s, _: s.climate_keeper_mode == "dog", 30, scales=True),
    _Rule("sentry_mode", lambda s, _: s.sentry_mode is True, 30, scales=True),
    _Rule("downloading_update", _downloading, 15, scales=True),
    _Rule("doors_open", lambda s, _: s.doors_open is True, 15, scales=True),
    _Rule(
        "trunk_open",
        lambda s, _: s.trunk_open is True or s.frunk_open is True,
        15,
        scales=True,
    ),
    _Rule(
        "unlocked",
        lambda s, c: s.locked is False and c.req_not_unlocked,
        15,
        scales=True,
        resets_idle=False,
    ),
    _Rule(
        "power_usage",
        lambda s, _: s.power_kw is not None and s.power_kw > 0,
        15,
        scales=True,
    ),
)


def suspend_blocker(
    state: VehicleState, settings: CarSettings, *, streaming: bool
) -> Blocker | None:
    """The first blocker that holds for `state`, or ``None`` when the car may sleep."""
    factor = 2 if streaming else 1
    for rule in BLOCKERS:
        if rule.holds(state, settings):
            retry = rule.retry_s * factor if rule.scales else rule.retry_s
            return Blocker(rule.reason, retry, rule.resets_idle)
    return None
