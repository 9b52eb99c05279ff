"""``car_settings.use_streaming_api`` (TeslaMate's per-car "use streaming API"): off, the
car's streaming websocket is not used; the machine follows a change while running."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from test_transitions import of, online_car

from fleetlog.clock import ManualClock
from fleetlog.runtime import Parts, build_worker
from fleetlog.sources.streaming import StreamHub
from fleetlog.sources.tesla import Vehicle
from fleetlog.store import tables as t
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle.events import FetchKind, SettingsChanged
from fleetlog.vehicle.feeds import HubFeed
from fleetlog.vehicle.pacing import VirtualPacer
from fleetlog.vehicle.settings import CarSettings, Feed

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_stream_turned_off_and_on_while_online() -> None:
    car = online_car(Feed.STREAM)
    assert car.state.stream_on
    out = car.do(SettingsChanged(CarSettings(use_streaming_api=False)), 5)
    assert of(out, fx.DisconnectStream) and car.state.feed is Feed.NONE
    assert not car.state.stream_on and not car.state.stream_up
    (look,) = of(out, fx.ScheduleFetch)  # polling now: the online car is looked at
    assert look.kind is FetchKind.FULL
    out = car.do(SettingsChanged(CarSettings(use_streaming_api=True)), 5)
    assert of(out, fx.ConnectStream) and car.state.feed is Feed.STREAM


def test_other_setting_changes_leave_the_stream_alone() -> None:
    car = online_car(Feed.STREAM)
    out = car.do(SettingsChanged(CarSettings(suspend_min=30)), 5)
    assert not of(out, fx.DisconnectStream) and not of(out, fx.ScheduleFetch)
    assert car.state.feed is Feed.STREAM and car.state.settings.suspend_min == 30


def test_telemetry_is_not_the_streaming_api() -> None:
    car = online_car(Feed.TELEMETRY)
    car.do(SettingsChanged(CarSettings(use_streaming_api=False)), 5)
    assert car.state.feed is Feed.TELEMETRY


async def test_a_car_with_streaming_off_is_built_without_its_stream(
    migrated_engine: sa.Engine,
) -> None:
    vehicles = [
        Vehicle(1, 11, "5YJ3E7EB0KF000001", "On", "asleep", in_service=False, raw={}),
        Vehicle(2, 22, "5YJ3E7EB0KF000002", "Off", "asleep", in_service=False, raw={}),
    ]
    hub = StreamHub()
    pacer = VirtualPacer(ManualClock(T0), end=T0)
    parts = Parts(
        migrated_engine,
        client=None,  # type: ignore[arg-type]  # building a worker calls nothing
        pacer=pacer,
        feeds=lambda v: HubFeed(hub, v.vin, Feed.STREAM),
    )
    workers = [build_worker(parts, v) for v in vehicles]
    with migrated_engine.begin() as conn:
        off = sa.select(t.cars.c.settings_id).where(t.cars.c.vin == vehicles[1].vin)
        conn.execute(
            sa.update(t.car_settings)
            .where(t.car_settings.c.id == off.scalar_subquery())
            .values(use_streaming_api=False)
        )
    workers.append(build_worker(parts, vehicles[1]))
    feeds = [(w.state.feed, w.state.pushed) for w in workers if w is not None]
    assert feeds == [(Feed.STREAM, Feed.STREAM)] * 2 + [(Feed.NONE, Feed.STREAM)]
