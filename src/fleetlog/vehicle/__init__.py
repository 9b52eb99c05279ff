"""The car: a pure machine that turns events into logbook effects.

The public surface, for the worker/executor, importers and replays::

    from fleetlog.vehicle import CarState, step, events, effects, policy

    state = CarState(vin, settings=car_settings, timing=Timing.from_settings(s), feed=Feed.STREAM)
    state, todo = step(state, events.Boot(), now)

Modules: ``machine`` (step, CarState, TRANSITIONS), ``events``, ``effects``,
``policy`` (what to fetch and when), ``blockers`` (what keeps a car awake),
``settings`` (CarSettings, Timing, Feed), ``summary`` (the live summary),
``diagram`` (draws docs/machine.md).
"""

from fleetlog.vehicle import effects, events, policy
from fleetlog.vehicle.machine import TRANSITIONS, CarState, Trigger, step
from fleetlog.vehicle.phase import Phase, Probe
from fleetlog.vehicle.settings import CarSettings, Feed, Timing

__all__ = [
    "TRANSITIONS",
    "CarSettings",
    "CarState",
    "Feed",
    "Phase",
    "Probe",
    "Timing",
    "Trigger",
    "effects",
    "events",
    "policy",
    "step",
]
