"""Invariants of the machine under arbitrary event sequences (hypothesis).

Whatever arrives, in whatever order: at most one open drive and one open
charge; a drive or charge is closed at most once and only if open; positions
carry only the open drive's ref; the states timeline is contiguous (each new
row closes the open one, never going back in time); nothing wakes the car and
no vehicle_data is scheduled for a car the machine believes asleep; every
phase change is in the table (``_go`` raises otherwise); step never raises.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from _world import PARKED, T0, VIN, Logbook, full, light, pushed
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetlog.model.observation import Connectivity
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle.events import (
    Boot,
    CarConnectivity,
    Command,
    Event,
    FetchError,
    FetchFailed,
    FetchKind,
    StreamConnected,
    StreamDisconnected,
    TimerFired,
    TimerKind,
    UserCommand,
)
from fleetlog.vehicle.machine import CarState, step
from fleetlog.vehicle.phase import Phase, Probe
from fleetlog.vehicle.settings import Feed

shift = st.sampled_from([None, "P", "D", "R", "N"])
charging = st.sampled_from(["Disconnected", "Starting", "Charging", "Complete", "Stopped", None])
# mostly nothing: an update installing on every snapshot would hide the other phases
update = st.sampled_from(["", "", "", "", None, None, "installing", "available", "downloading"])


@st.composite
def event_kinds(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(
        st.sampled_from(["light", "full", "frame", "fail", "timer", "command", "stream", "conn"])
    )
    values: dict[str, Any] = {}
    if kind in ("full", "frame"):
        values = {
            "shift_state": draw(shift),
            "odometer_km": draw(st.floats(0, 3)),  # added to a running odometer
            "power_kw": draw(st.sampled_from([None, -11.0, 0.0, 5.0])),
            "charging_state": draw(charging),
            "update_status": draw(update),
            "ideal_range_km": draw(st.sampled_from([300.0, 320.0])),
        }
    elif kind in ("light", "conn"):
        values = {"c": draw(st.sampled_from(list(Connectivity)))}
    elif kind == "fail":
        values = {
            "kind": draw(st.sampled_from(list(FetchKind))),
            "error": draw(st.sampled_from(list(FetchError))),
        }
    elif kind == "timer":
        values = {"timer": draw(st.sampled_from(list(TimerKind)))}
    elif kind == "command":
        values = {"command": draw(st.sampled_from(list(Command)))}
    elif kind == "stream":
        values = {"up": draw(st.booleans())}
    return kind, values


scripts = st.lists(
    st.tuples(st.sampled_from([0.0, 1.0, 5.0, 30.0, 300.0, 1200.0]), event_kinds()),
    max_size=60,
)


def _event(kind: str, v: dict[str, Any], at: Any, odo: float) -> Event:
    if kind == "full":
        return full(at, **{**PARKED, **v, "odometer_km": odo})
    if kind == "frame":
        return pushed(at, **{**v, "odometer_km": odo, "latitude": 48.0, "longitude": 11.0})
    if kind == "light":
        return light(at, v["c"])
    if kind == "conn":
        return CarConnectivity(v["c"], at)
    if kind == "fail":
        retry = at + timedelta(minutes=3)
        return FetchFailed(v["kind"], v["error"], retry_at=retry)
    if kind == "timer":
        return TimerFired(v["timer"])
    if kind == "command":
        return UserCommand(v["command"])
    return StreamConnected() if v["up"] else StreamDisconnected()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(Feed)), scripts)
def test_invariants_hold_for_any_event_sequence(
    feed: Feed, script: list[tuple[float, tuple[str, dict[str, Any]]]]
) -> None:
    state = CarState(VIN, feed=feed)
    now = T0
    log = Logbook()
    odo = 1000.0
    state, out = step(state, Boot(), now)
    for delay, (kind, values) in script:
        now += timedelta(seconds=delay)
        if kind in ("full", "frame"):
            odo += values["odometer_km"]
        state, out = step(state, _event(kind, values, now, odo), now)
        for e in out:
            log.apply(e)
            assert "wake" not in type(e).__name__.lower()
            if isinstance(e, fx.ScheduleFetch) and e.kind is FetchKind.FULL:
                assert not (
                    state.phase in (Phase.ASLEEP, Phase.OFFLINE) and state.probe is not Probe.REAL
                ), "vehicle_data scheduled for a sleeping car"
            if isinstance(e, fx.ScheduleFetch):
                assert e.at >= now
        assert log.violations == []
        open_drives = [r for r, d in log.drives.items() if d["open"]]
        assert open_drives == ([state.drive.ref] if state.drive else [])
        open_charges = [r for r, c in log.charges.items() if c["open"]]
        assert open_charges == ([state.charge.ref] if state.charge else [])
        if state.drive is not None:
            assert state.phase in (Phase.DRIVING, Phase.START)
        if state.charge is not None:
            assert state.phase in (Phase.CHARGING, Phase.START)
    # the state rows form one contiguous timeline with exactly one open row
    assert sum(1 for r in log.states if r[3] is None) <= 1
    for a, b in zip(log.states, log.states[1:], strict=False):
        assert a[3] == b[2]
