"""The streaming websocket at ``/streaming/``: legacy Owner API and MyTeslaMate (§4, §6).

Client → server: ``{"msg_type":"data:subscribe_oauth","token","value","tag"}`` and
``{"msg_type":"data:unsubscribe","tag"}``. Server → client: ``control:hello``,
``data:update`` (``value`` = the 13-column CSV row), ``data:error``.

CSV columns, in order: time (ms), speed (mph), odometer (mi), soc (%), elevation (m),
est_heading, est_lat, est_lng, power (kW, negative when charging or regenerating),
shift_state, range (rated, mi), est_range (mi), heading. Empty fields are empty strings.

**Owner mode** (legacy, tag = ``vehicle_id``): the token is the Owner API access token
(a bad or expired one → ``client_error`` "Can't validate token. …"); ``control:hello`` on
connect; a row after every step of an online car (once a second while driving); when the car
falls asleep, ``vehicle_disconnected``; offline, ``vehicle_error`` "Vehicle is offline".
Either error ends the subscription: the client subscribes again, as TeslaMate does.

**MyTeslaMate mode** (tag = VIN): rows are rebuilt from Fleet Telemetry exactly as
MyTeslaMate's service does (reference §4.3): the decoded ``V`` records of a VIN are merged
(the car sends deltas), a value is read as ``locationValue``, else ``shiftStateValue``
without prefix, else a truthy ``doubleValue``/``intValue``, else ``stringValue`` (so a typed
0 reads as nothing); a row goes out only once latitude, longitude and a gear are known;
power is DC charging power if > 0, else AC charging power if > 0, else 0; elevation comes
from the simulator's terrain (MyTeslaMate asks Open Topo Data). ``control:hello`` answers
a subscribe and repeats every 10 s of simulated time. The token is not enforced (MyTeslaMate
only logs a failed check) and the service never sends ``data:error`` by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from datetime import datetime
from typing import Any

from aiohttp import WSMsgType, web

from fleetlog.sim.car import Car, Snapshot
from fleetlog.sim.encoding import server_transform, to_protojson
from fleetlog.sim.errors import ApiError
from fleetlog.sim.geo import Point, elevation_m
from fleetlog.sim.payload import KM_PER_MILE
from fleetlog.sim.push import KeepAlive, PushSink
from fleetlog.sim.telemetry import Record, VRecord
from fleetlog.sim.world import World

log = logging.getLogger(__name__)

CONNECTION_TIMEOUT_MS = 30_000
HELLO = {"msg_type": "control:hello", "connection_timeout": CONNECTION_TIMEOUT_MS}
COLUMNS = (
    "speed,odometer,soc,elevation,est_heading,est_lat,est_lng,power,shift_state,range,"
    "est_range,heading"
)
_INT_PREFIX = re.compile(r"^\s*([+-]?\d+)")


def legacy_row(snap: Snapshot) -> str:
    """The legacy CSV row of a snapshot."""
    speed = "" if snap.speed_kmh is None else str(round(snap.speed_kmh / KM_PER_MILE))
    cols = [
        str(int(snap.time.timestamp() * 1000)),
        speed,
        f"{snap.odometer_km / KM_PER_MILE:.1f}",
        str(round(snap.battery_level)),
        str(round(snap.elevation_m)),
        str(round(snap.heading_deg) % 360),
        f"{snap.position.lat:.6f}",
        f"{snap.position.lng:.6f}",
        str(round(snap.power_kw)),
        snap.shift_state or "",
        str(round(snap.rated_range_km / KM_PER_MILE)),
        str(round(snap.est_range_km / KM_PER_MILE)),
        str(round(snap.heading_deg) % 360),
    ]
    return ",".join(cols)


def _js_text(value: Any) -> str:
    """How JavaScript turns a value into text in a template string (None → "")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _js_parse_int(value: Any) -> int | None:
    """JavaScript's ``parseInt`` (None for NaN)."""
    match = _INT_PREFIX.match(_js_text(value))
    return int(match.group(1)) if match else None


def _extract(value: dict[str, Any]) -> Any:
    """MyTeslaMate's per-datum extraction, JavaScript truthiness included."""
    shift = value.get("shiftStateValue")
    if shift:
        return str(shift).removeprefix("ShiftState")
    for key in ("doubleValue", "intValue"):
        if value.get(key):
            return value[key]
    return value.get("stringValue")


class MyTeslaMateState:
    """The merged last values per VIN and the row they make (reference §4.3)."""

    def __init__(self) -> None:
        self.last: dict[str, dict[str, Any]] = {}
        self.forwarded_ms: dict[str, int] = {}

    def merge(self, record: VRecord) -> str | None:
        """Merge a record (as dispatched) and return the CSV row to forward, if any."""
        body = to_protojson(server_transform(record))
        created_ms = int(record.created_at.timestamp() * 1000)
        if created_ms < self.forwarded_ms.get(record.vin, 0):
            return None  # older than what was already forwarded
        values = self.last.setdefault(record.vin, {})
        for datum in body.get("data", []):
            value = datum.get("value", {})
            location = value.get("locationValue")
            if location is not None:
                values["Latitude"] = location.get("latitude")
                values["Longitude"] = location.get("longitude")
            else:
                values[datum["key"]] = _extract(value)
        lat, lng, gear = values.get("Latitude"), values.get("Longitude"), values.get("Gear")
        if lat is None or lng is None or not gear:
            return None
        self.forwarded_ms[record.vin] = created_ms
        power = 0
        dc = _js_parse_int(values.get("DCChargingPower"))
        if dc is not None and dc > 0:
            power = dc
        ac = _js_parse_int(values.get("ACChargingPower"))
        if ac is not None and ac > 0:
            power = ac

        def int_or_empty(key: str) -> str:
            n = _js_parse_int(values.get(key))
            return "" if n is None else str(n)

        heading = _js_text(values.get("GpsHeading"))
        cols = [
            str(created_ms),
            int_or_empty("VehicleSpeed"),
            _js_text(values.get("Odometer")),
            int_or_empty("Soc"),
            str(round(elevation_m(Point(float(lat), float(lng))))),
            heading,
            _js_text(lat),
            _js_text(lng),
            str(power),
            str(gear),
            _js_text(values.get("RatedRange")),
            _js_text(values.get("EstBatteryRange")),
            heading,
        ]
        return ",".join(cols)


class _Socket:
    def __init__(self, ws: web.WebSocketResponse, now: datetime) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.tags: dict[str, Car | None] = {}  # tag → car (owner) or None (by VIN)
        self.keepalive = KeepAlive(now)


class StreamingService(PushSink):
    """Serves ``/streaming/`` for a world in ``owner`` or ``myteslamate`` mode."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.by_vin = world.mode == "myteslamate"
        self.sockets: list[_Socket] = []
        self.mtm = MyTeslaMateState()

    # ------------------------------------------------------------------ push side

    def wants_snapshots(self, car: Car) -> bool:
        return not self.by_vin and any(car in sock.tags.values() for sock in self.sockets)

    def on_snapshot(self, car: Car, snap: Snapshot) -> None:
        if self.by_vin:
            return
        for sock in self.sockets:
            for tag, subscribed in list(sock.tags.items()):
                if subscribed is not car:
                    continue
                if snap.state == "online":
                    sock.queue.put_nowait(
                        {"msg_type": "data:update", "tag": tag, "value": legacy_row(snap)}
                    )
                else:
                    sock.queue.put_nowait(self._car_error(tag, snap.state))
                    del sock.tags[tag]

    def on_record(self, record: Record) -> None:
        if not self.by_vin or not isinstance(record, VRecord):
            return
        row = self.mtm.merge(record)
        if row is None:
            return
        for sock in self.sockets:
            if record.vin in sock.tags:
                self._hellos(sock, record.created_at)
                sock.queue.put_nowait({"msg_type": "data:update", "tag": record.vin, "value": row})

    def on_time(self, now: datetime) -> None:
        if self.by_vin:
            for sock in self.sockets:
                self._hellos(sock, now)

    def _hellos(self, sock: _Socket, t: datetime) -> None:
        if self.by_vin:
            for _ in sock.keepalive.due(t):
                sock.queue.put_nowait(dict(HELLO))

    @staticmethod
    def _car_error(tag: str, state: str) -> dict[str, Any]:
        if state == "asleep":
            return {"msg_type": "data:error", "tag": tag, "error_type": "vehicle_disconnected"}
        return {
            "msg_type": "data:error",
            "tag": tag,
            "error_type": "vehicle_error",
            "value": "Vehicle is offline",
        }

    # ------------------------------------------------------------------ socket side

    async def close(self) -> None:
        """Close every open socket (the server is stopping)."""
        for sock in list(self.sockets):
            await sock.ws.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        sock = _Socket(ws, self.world.now)
        self.sockets.append(sock)
        if not self.by_vin:
            sock.queue.put_nowait(dict(HELLO))
        writer = asyncio.create_task(self._write(sock))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                except json.JSONDecodeError:
                    continue
                if isinstance(frame, dict):
                    self._on_frame(sock, frame)
        finally:
            self.sockets.remove(sock)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def _write(self, sock: _Socket) -> None:
        while True:
            frame = await sock.queue.get()
            try:
                await sock.ws.send_str(json.dumps(frame, separators=(",", ":")))
            except ConnectionResetError:  # aiohttp's "closing transport": the client went
                return  # away; the reader ends the connection

    def _on_frame(self, sock: _Socket, frame: dict[str, Any]) -> None:
        kind = frame.get("msg_type")
        tag = str(frame.get("tag", ""))
        if kind == "data:unsubscribe":
            sock.tags.pop(tag, None)
            return
        if kind != "data:subscribe_oauth":
            return
        if self.by_vin:
            # MyTeslaMate registers any tag and answers with a hello; rows follow per VIN.
            sock.tags[tag] = None
            sock.queue.put_nowait(dict(HELLO))
            return
        token = frame.get("token")
        try:
            self.world.authenticate(token if isinstance(token, str) else None)
        except ApiError:
            sock.queue.put_nowait(
                {
                    "msg_type": "data:error",
                    "tag": tag,
                    "error_type": "client_error",
                    "value": "Can't validate token. Token expired or invalid.",
                }
            )
            return
        car = next((c for c in self.world.cars if str(c.spec.vehicle_id) == tag), None)
        if car is None:
            sock.queue.put_nowait(
                {
                    "msg_type": "data:error",
                    "tag": tag,
                    "error_type": "client_error",
                    "value": "owner_api error: vehicle not found",
                }
            )
            return
        state = car.state
        if state != "online":
            sock.queue.put_nowait(self._car_error(tag, state))
            return
        sock.tags[tag] = car
        sock.queue.put_nowait(
            {"msg_type": "data:update", "tag": tag, "value": legacy_row(car.snapshot())}
        )
