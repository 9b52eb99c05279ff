"""A scripted day, replayed through the machine in each source mode.

park at home → asleep → the owner wakes the car → drive 30 km → plug in at
work → charge an hour → idle → sleep. The effect sequence must tell exactly
that story, with exact distance and energy, and never a paid call to a
sleeping car.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from _world import PARKED, T0, Truth, World

from fleetlog.logbook.aggregates import charge_aggregates, drive_aggregates
from fleetlog.model.observation import Connectivity, VehicleState
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle.settings import Feed

WAKE = T0 + timedelta(hours=7)
DRIVE_START = WAKE + timedelta(minutes=5)
DRIVE_END = DRIVE_START + timedelta(minutes=30)
PLUG = DRIVE_END + timedelta(minutes=10)
UNPLUG = PLUG + timedelta(hours=1)
SLEEP = UNPLUG + timedelta(minutes=45)
END = SLEEP + timedelta(hours=1)

HOME = VehicleState(**PARKED)  # type: ignore[arg-type]


def day(t: datetime) -> Truth:
    if t < WAKE:
        return Truth(Connectivity.ASLEEP, HOME)
    if t < DRIVE_START:
        return Truth(Connectivity.ONLINE, HOME)
    if t < DRIVE_END:
        frac = (t - DRIVE_START) / (DRIVE_END - DRIVE_START)
        return Truth(
            Connectivity.ONLINE,
            replace(
                HOME,
                shift_state="D",
                speed_kmh=60.0,
                power_kw=15.0,
                odometer_km=1000.0 + 30.0 * frac,
                latitude=48.1 + 0.2 * frac,
                battery_level=80 - round(5 * frac),
                ideal_range_km=400.0 - 35.0 * frac,
                rated_range_km=380.0 - 33.0 * frac,
                elevation_m=500.0 + 50 * frac,
            ),
        )
    at_work = replace(
        HOME,
        odometer_km=1030.0,
        latitude=48.3,
        battery_level=75,
        ideal_range_km=365.0,
        rated_range_km=347.0,
    )
    if t < PLUG:
        return Truth(Connectivity.ONLINE, at_work)
    if t < UNPLUG:
        frac = (t - PLUG) / (UNPLUG - PLUG)
        return Truth(
            Connectivity.ONLINE,
            replace(
                at_work,
                charging_state="Charging",
                charger_power_kw=11.0,
                power_kw=-11.0,
                charger_voltage=230,
                charger_actual_current=16,
                charger_phases=3,
                charge_energy_added_kwh=10.0 * frac,
                battery_level=75 + round(13 * frac),
                ideal_range_km=365.0 + 60 * frac,
            ),
        )
    done = replace(
        at_work,
        charging_state="Complete",
        charge_energy_added_kwh=10.0,
        battery_level=88,
        ideal_range_km=425.0,
    )
    if t < SLEEP:
        return Truth(Connectivity.ONLINE, done)
    return Truth(Connectivity.ASLEEP, done)


def _story(world: World) -> list[str]:
    """The logbook effects as a compact story, duplicates of samples/positions folded."""
    out: list[str] = []
    for _, e in world.effects:
        match e:
            case fx.StartState(status=status):
                word = f"state:{status.value}"
            case fx.OpenDrive():
                word = "open_drive"
            case fx.CloseDrive():
                word = "close_drive"
            case fx.DropDrive():
                word = "drop_drive"
            case fx.OpenChargingProcess():
                word = "open_charge"
            case fx.CloseChargingProcess():
                word = "close_charge"
            case fx.OpenUpdate():
                word = "open_update"
            case fx.CloseUpdate():
                word = "close_update"
            case _:
                continue
        out.append(word)
    return out


@pytest.mark.parametrize("feed", [Feed.NONE, Feed.STREAM, Feed.TELEMETRY])
def test_scripted_day(feed: Feed) -> None:
    world = World(day, feed=feed)
    world.run(END)
    log = world.log
    assert log.violations == []
    assert world.full_to_sleeping == 0 or feed is Feed.NONE
    assert _story(world) == [
        "state:asleep",
        "open_update",  # the first version seen is recorded, as TeslaMate's missed-update check
        "close_update",
        "state:online",
        "open_drive",
        "close_drive",
        "open_charge",
        "close_charge",
        "state:asleep",
    ]
    (drive,) = log.kept_drives()
    agg = drive_aggregates(log.drive_positions(drive))
    assert agg.distance == pytest.approx(30.0, abs=0.01)
    tolerance = timedelta(minutes=1) if feed is not Feed.NONE else timedelta(minutes=5)
    assert abs(agg.start_date - DRIVE_START) <= tolerance
    assert abs(agg.end_date - DRIVE_END) <= tolerance
    (charge,) = log.charges
    cagg = charge_aggregates(log.samples[charge])
    assert cagg.charge_energy_added == pytest.approx(10.0, rel=0.02)
    assert abs(cagg.start_date - PLUG) <= tolerance
    assert abs(cagg.end_date - UNPLUG) <= tolerance
    asleep_rows = [r for r in log.states if r[1] == "asleep"]
    assert abs(asleep_rows[-1][2] - SLEEP) <= timedelta(minutes=15)
    assert not [e for _, e in world.effects if "wake" in type(e).__name__.lower()]


def test_feeds_pay_far_less_than_polling() -> None:
    calls = {}
    for feed in Feed:
        world = World(day, feed=feed)
        world.run(END)
        calls[feed] = len(world.full_calls)
    assert calls[Feed.TELEMETRY] < calls[Feed.STREAM] < calls[Feed.NONE]
    assert calls[Feed.TELEMETRY] <= 5
