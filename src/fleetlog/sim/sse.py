"""Teslemetry's stream: Server-Sent Events at ``/sse`` and ``/sse/{vin}`` (reference §5.2).

Auth as Teslemetry's REST (``Authorization: Bearer <TOKEN>`` or ``?token=``). Query:
``topics=<comma list>`` (known names only; an empty or unknown one is a 400; default: every
topic this simulator produces) and ``cache=true`` (replay the last known ``data``, ``state``
and ``connectivity`` first, flagged ``"isCache": true``).

Each event is one ``data: {json}`` line and a blank line; a bare newline goes out every
10 s of simulated time as keep-alive. Shapes:

- data: ``{"vin","createdAt","data":{Field: value}}``, values decoded as Teslemetry does
  (numbers, bools, enum names with prefix, ``{"latitude","longitude"}``); with
  ``prefer_typed`` false, numbers arrive as strings (``"74.4367"``);
- state: ``{"vin","createdAt","state":"online"|"asleep"|"offline"}``;
- connectivity: ``{"vin","createdAt","networkInterface":"wifi"|"cellular","status":
  "CONNECTED"|"DISCONNECTED"}``;
- alerts: ``{"vin","createdAt","alerts":[{"name","audiences","startedAt","endedAt"?}]}``;
- errors: ``{"vin","createdAt","errors":[{"createdAt","name","tags","body"}]}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from fleetlog.sim.car import Car, Snapshot
from fleetlog.sim.encoding import plain_value, rfc3339, server_transform
from fleetlog.sim.errors import BadRequest
from fleetlog.sim.push import KeepAlive, PushSink
from fleetlog.sim.telemetry import (
    AlertsRecord,
    ConnectivityRecord,
    ErrorsRecord,
    Record,
    VRecord,
)
from fleetlog.sim.world import World

SSE_TOPICS = (
    "state",
    "data",
    "alerts",
    "errors",
    "connectivity",
    "vehicle_data",
    "config",
    "live_status",
    "site_info",
    "tariff_content_v2",
    "energy_totals",
    "credits",
)
DEFAULT_TOPICS = ("data", "state", "connectivity", "alerts", "errors")

Event = tuple[str, dict[str, Any]]  # (topic, body)


def record_event(record: Record) -> Event:
    """The Teslemetry event of a telemetry record."""
    created = rfc3339(record.created_at)
    if isinstance(record, VRecord):
        data = {d.field: plain_value(d.value) for d in server_transform(record).data}
        return "data", {"vin": record.vin, "createdAt": created, "data": data}
    if isinstance(record, ConnectivityRecord):
        return "connectivity", {
            "vin": record.vin,
            "createdAt": created,
            "networkInterface": record.network_interface,
            "status": record.status,
        }
    if isinstance(record, AlertsRecord):
        alerts: list[dict[str, Any]] = []
        for a in record.alerts:
            item: dict[str, Any] = {
                "name": a.name,
                "audiences": list(a.audiences),
                "startedAt": rfc3339(a.started_at),
            }
            if a.ended_at is not None:
                item["endedAt"] = rfc3339(a.ended_at)
            alerts.append(item)
        return "alerts", {"vin": record.vin, "createdAt": created, "alerts": alerts}
    assert isinstance(record, ErrorsRecord)
    errors = [
        {"createdAt": rfc3339(e.created_at), "name": e.name, "tags": dict(e.tags), "body": e.body}
        for e in record.errors
    ]
    return "errors", {"vin": record.vin, "createdAt": created, "errors": errors}


class _Client:
    def __init__(self, vin: str | None, topics: tuple[str, ...], now: datetime) -> None:
        self.vin = vin
        self.topics = topics
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()  # None: the server stops
        self.keepalive = KeepAlive(now)

    def send(self, t: datetime, topic: str, body: dict[str, Any]) -> None:
        self.tick(t)
        if topic in self.topics and (self.vin is None or body.get("vin") == self.vin):
            self.queue.put_nowait(f"data: {json.dumps(body, separators=(',', ':'))}\n\n")

    def tick(self, t: datetime) -> None:
        for _ in self.keepalive.due(t):
            self.queue.put_nowait("\n")


class SseService(PushSink):
    """Serves Teslemetry's stream for a world in ``teslemetry`` mode."""

    def __init__(self, world: World, credential: Callable[[web.Request], str | None]) -> None:
        self.world = world
        self.credential = credential
        self.clients: list[_Client] = []
        # What each car's state was when the service started: events are changes from it.
        self.state: dict[str, tuple[datetime, str]] = {
            car.spec.vin: (world.now, car.state) for car in world.cars
        }
        self.data: dict[str, tuple[datetime, dict[str, Any]]] = {}
        self.connectivity: dict[str, dict[str, Any]] = {}

    def wants_snapshots(self, car: Car) -> bool:
        return bool(self.clients)  # state events

    def on_snapshot(self, car: Car, snap: Snapshot) -> None:
        vin = car.spec.vin
        last = self.state.get(vin)
        if last is not None and last[1] == snap.state:
            return
        self.state[vin] = (snap.time, snap.state)
        body = {"vin": vin, "createdAt": rfc3339(snap.time), "state": snap.state}
        for client in self.clients:
            client.send(snap.time, "state", body)

    def on_record(self, record: Record) -> None:
        topic, body = record_event(record)
        if topic == "data":
            merged = self.data.setdefault(record.vin, (record.created_at, {}))[1]
            merged.update(body["data"])
            self.data[record.vin] = (record.created_at, merged)
        elif topic == "connectivity":
            self.connectivity[record.vin] = body
        for client in self.clients:
            client.send(record.created_at, topic, body)

    def on_time(self, now: datetime) -> None:
        for client in self.clients:
            client.tick(now)

    def close(self) -> None:
        """End every open stream (the server is stopping)."""
        for client in self.clients:
            client.queue.put_nowait(None)

    def _cache(self, client: _Client) -> None:
        vins = [c.spec.vin for c in self.world.cars if client.vin in (None, c.spec.vin)]
        for vin in vins:
            if vin in self.state:
                t, state = self.state[vin]
                body = {"vin": vin, "createdAt": rfc3339(t), "state": state, "isCache": True}
                client.send(self.world.now, "state", body)
            if vin in self.data:
                t, data = self.data[vin]
                body = {"vin": vin, "createdAt": rfc3339(t), "data": dict(data), "isCache": True}
                client.send(self.world.now, "data", body)
            if vin in self.connectivity:
                client.send(
                    self.world.now, "connectivity", {**self.connectivity[vin], "isCache": True}
                )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.world.authenticate(self.credential(request))
        vin = request.match_info.get("vin")
        if vin is not None:
            vin = self.world.car(vin).spec.vin
        raw = request.query.get("topics")
        topics: tuple[str, ...] = DEFAULT_TOPICS
        if raw is not None:
            names = tuple(t.strip() for t in raw.split(","))
            if not raw.strip() or any(t not in SSE_TOPICS for t in names):
                raise BadRequest("invalid_field", f"unknown topics {raw!r}")
            topics = names
        client = _Client(vin, topics, self.world.now)
        if request.query.get("cache", "false").lower() == "true":
            self._cache(client)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "Connection": "keep-alive",
            }
        )
        await response.prepare(request)
        self.clients.append(client)
        try:
            while (chunk := await client.queue.get()) is not None:
                await response.write(chunk.encode())
        except ConnectionResetError:
            pass
        finally:
            self.clients.remove(client)
        return response
