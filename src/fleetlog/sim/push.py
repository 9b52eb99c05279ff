"""Pushed data: one hub between the cars and everything that streams them.

The hub listens to every car (``Car.add_listener``: after each step, once a second while
driving) and, per car with a telemetry config, runs a
:class:`~fleetlog.sim.telemetry.TelemetryEmitter`. Every signal the car sends is billed
(category ``signals``, reference §2.1) when it is sent, whoever listens. Sinks get three
calls, all in simulated time and in order:

- ``on_snapshot(car, snap)``: the car's state after a step (the legacy streaming websocket
  and the Teslemetry ``state`` events read it);
- ``on_record(record)``: a telemetry record as the car sent it (dispatchers, MyTeslaMate,
  Teslemetry);
- ``on_time(now)``: the world has reached `now` (keep-alives are due by then).

Because steps end exactly where :meth:`World.advance` stops, the last snapshot a sink saw
is the state ``vehicle_data`` answers with at the same moment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from random import Random
from typing import Any

from fleetlog.sim.car import Car, Snapshot
from fleetlog.sim.geo import distance_m
from fleetlog.sim.telemetry import (
    SIGNALS,
    Record,
    StreamConfig,
    TelemetryEmitter,
    VRecord,
)
from fleetlog.sim.world import PROVIDERS, TelemetryConfig, World

# What a provider configures on the user's behalf (the fields its stream needs).
MYTESLAMATE_FIELDS = (
    "VehicleSpeed",
    "Odometer",
    "Soc",
    "BatteryLevel",
    "Location",
    "GpsHeading",
    "Gear",
    "RatedRange",
    "EstBatteryRange",
    "IdealBatteryRange",
    "ACChargingPower",
    "DCChargingPower",
    "DetailedChargeState",
)


def provider_config(mode: str, hostname: str = "telemetry.provider.invalid") -> dict[str, Any]:
    """The ``fleet_telemetry_config`` a provider sets up for a car it streams."""
    names = MYTESLAMATE_FIELDS if mode == "myteslamate" else tuple(SIGNALS)
    return {
        "hostname": hostname,
        "port": 443,
        "ca": "",
        "fields": {name: {"interval_seconds": 1} for name in names},
        "alert_types": ["service"],
        "prefer_typed": mode == "teslemetry",
        "delivery_policy": "latest",
    }


class PushSink:
    """Something that takes pushed data; override what you need."""

    def wants_snapshots(self, car: Car) -> bool:
        """Whether this sink needs `car`'s snapshots even when the car sends no telemetry."""
        return False

    def on_snapshot(self, car: Car, snap: Snapshot) -> None:
        return None

    def on_record(self, record: Record) -> None:
        return None

    def on_time(self, now: datetime) -> None:
        return None


class KeepAlive:
    """Keep-alives every `period_s` of simulated time, interleaved with the data by time.

    After a long silent fast-forward only the last :data:`MAX_BURST` are sent: a client
    needs to hear that the line is alive, not the whole backlog of it.
    """

    MAX_BURST = 360

    def __init__(self, start: datetime, period_s: float = 10.0) -> None:
        self.period = timedelta(seconds=period_s)
        self.next_at = start + self.period

    def due(self, t: datetime) -> list[datetime]:
        """The keep-alive instants up to and including `t`, oldest first."""
        if t < self.next_at:
            return []
        n = int((t - self.next_at) / self.period) + 1
        skip = max(0, n - self.MAX_BURST)
        times = [self.next_at + self.period * (skip + k) for k in range(n - skip)]
        self.next_at += self.period * n
        return times


class PushHub:
    """See the module docstring. Attach once; add and remove sinks at any time."""

    def __init__(self, world: World, *, ack_loss: float = 0.02) -> None:
        self.world = world
        self.ack_loss = ack_loss
        self.sinks: list[PushSink] = []
        self.emitters: dict[str, tuple[TelemetryConfig, TelemetryEmitter]] = {}
        self._rng = Random(f"telemetry:{world.options.seed}")
        self._attached = False
        self._listening: dict[str, Callable[[Snapshot], None]] = {}

    def attach(self) -> None:
        """Start listening to the cars (and, for a provider, configure their streaming)."""
        if self._attached:
            return
        self._attached = True
        world = self.world
        if world.mode in PROVIDERS:
            for car in world.cars:
                if car.spec.key_paired and car.spec.vin not in world.telemetry:
                    world.telemetry[car.spec.vin] = TelemetryConfig(
                        provider_config(world.mode), world.now
                    )
        self.refresh()

    def refresh(self) -> None:
        """Listen to exactly the cars something needs; call before the world moves.

        A car with a listener computes a snapshot after every step, which makes
        fast-forwarding about three times slower; cars nobody streams are left alone.
        """
        if not self._attached:
            return
        for car in self.world.cars:
            vin = car.spec.vin
            needed = (
                (self.world.mode != "owner" and vin in self.world.telemetry)
                or vin in self.emitters
                or any(sink.wants_snapshots(car) for sink in self.sinks)
            )
            listening = self._listening.get(vin)
            if needed and listening is None:
                self._listening[vin] = partial(self._step, car)
                car.add_listener(self._listening[vin])
            elif not needed and listening is not None:
                car.remove_listener(listening)
                del self._listening[vin]

    def add_sink(self, sink: PushSink) -> None:
        self.sinks.append(sink)

    def remove_sink(self, sink: PushSink) -> None:
        if sink in self.sinks:
            self.sinks.remove(sink)

    def tick(self, now: datetime) -> None:
        """The world has reached `now`."""
        for sink in list(self.sinks):
            sink.on_time(now)

    def _network(self, car: Car, snap: Snapshot) -> str:
        return "wifi" if distance_m(snap.position, car.plan.home.point) < 150 else "cellular"

    def _emitter(self, car: Car) -> TelemetryEmitter | None:
        vin = car.spec.vin
        entry = self.world.telemetry.get(vin) if self.world.mode != "owner" else None
        current = self.emitters.get(vin)
        if entry is None:
            return current[1] if current is not None else None
        if current is not None and current[0] is entry:
            return current[1]
        emitter = TelemetryEmitter(
            vin,
            StreamConfig.from_json(entry.config),
            Random(self._rng.getrandbits(64)),
            ack_loss=self.ack_loss,
            network_interface=partial(self._network, car),
            # A new config reaches a connected car over the same connection; it then
            # sends every configured field at once.
            connection_id=current[1].connection_id if current is not None else None,
        )
        self.emitters[vin] = (entry, emitter)
        return emitter

    def _step(self, car: Car, snap: Snapshot) -> None:
        for sink in list(self.sinks):
            sink.on_snapshot(car, snap)
        emitter = self._emitter(car)
        if emitter is None:
            return
        world = self.world
        vin = car.spec.vin
        limit = world.options.billing_limit_usd
        stopped = (
            vin not in world.telemetry
            # A disabled app (billing limit spent) gets nothing streamed.
            or (limit is not None and world.ledger.month_cost_usd(snap.time) >= limit - 1e-9)
        )
        if stopped:
            snap_off = _offline(snap)
            records = emitter.step(car, snap_off)
            if vin not in world.telemetry:
                del self.emitters[vin]
        else:
            records = emitter.step(car, snap)
        for record in records:
            if isinstance(record, VRecord):
                world.ledger.record(
                    snap.time,
                    "fleet_telemetry",
                    "signals",
                    200,
                    billed=world.mode != "owner",
                    count=len(record.data),
                )
            for sink in list(self.sinks):
                sink.on_record(record)


def _offline(snap: Snapshot) -> Snapshot:
    return replace(snap, state="offline")
