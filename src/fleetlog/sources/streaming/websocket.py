"""The streaming websocket: Tesla's legacy ``/streaming/`` and MyTeslaMate's (§4, §6).

One :class:`WebsocketFeed` per car. Protocol (reference §6, TeslaMate behaviour §4):
connect to ``TESLA_WSS_HOST/streaming/``, send ``data:subscribe_oauth`` with the token
(``TOKEN`` when set, else the access token) and the tag (``vehicle_id``, or the VIN with
``TESLA_WSS_USE_VIN``); ``data:update`` rows are the 13-column CSV below, empty fields
empty. ``data:error``:

- ``vehicle_disconnected``: the car stopped streaming; subscribe again after 1.3^n s
  (at most 8 s) if the last row was in gear, else 2^n s within [15, 30] s.
- ``vehicle_error`` "Vehicle is offline": a :class:`CarConnectivity` OFFLINE event.
- ``client_error`` about the token: refresh it, reconnect; ``owner_api error``: reconnect.

Thirty seconds without a frame closes the socket (watchdog); every reconnect waits a
capped, jittered backoff; stopping sends ``data:unsubscribe``.

The CSV's ``soc`` is the battery level on Tesla's stream, but MyTeslaMate fills it from
the telemetry ``Soc`` field, the *usable* level (reference §4.3): :class:`Dialect` says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp

from fleetlog.clock import Clock, LoopClock
from fleetlog.logs import log_event
from fleetlog.model import units
from fleetlog.model.observation import SHIFT_STATES, Connectivity, Observation, Source, VehicleState
from fleetlog.sources.streaming.feed import (
    Backoff,
    Credentials,
    FeedEvent,
    Outlet,
)
from fleetlog.sources.streaming.records import FrameError, excerpt
from fleetlog.vehicle.events import CarConnectivity, Observed, StreamConnected, StreamDisconnected

log = logging.getLogger(__name__)

COLUMNS = (
    "speed",
    "odometer",
    "soc",
    "elevation",
    "est_heading",
    "est_lat",
    "est_lng",
    "power",
    "shift_state",
    "range",
    "est_range",
    "heading",
)
WATCHDOG_S = 30.0


class Dialect(StrEnum):
    """Whose websocket: what the CSV's ``soc`` column means."""

    TESLA = "tesla"  # soc = battery level
    MYTESLAMATE = "myteslamate"  # soc = usable battery level (telemetry Soc)


def observation_from_row(vin: str, row: str, dialect: Dialect = Dialect.TESLA) -> Observation:
    """One ``data:update`` CSV row → an observation at the row's own time."""
    if not isinstance(row, str):
        raise FrameError(f"row: expected text, got {type(row).__name__}")
    cells = row.split(",")
    if len(cells) != 1 + len(COLUMNS):
        raise FrameError(f"expected {1 + len(COLUMNS)} columns, got {len(cells)}: {excerpt(row)}")
    try:
        at = units.from_epoch_ms(cells[0])
        c = dict(zip(COLUMNS, (cell.strip() for cell in cells[1:]), strict=True))
        lat, lng = units.number(c["est_lat"]), units.number(c["est_lng"])
        if not (-90 <= (lat or 0) <= 90 and -180 <= (lng or 0) <= 180):
            raise FrameError(f"position out of range: {excerpt(row)}")
        soc = units.integer(c["soc"])
        heading = units.integer(c["heading"])
        if heading is None:
            heading = units.integer(c["est_heading"])
        state = VehicleState(
            latitude=lat,
            longitude=lng,
            heading=heading,
            elevation_m=units.number(c["elevation"]),
            speed_kmh=units.mph_to_kmh(c["speed"]),
            power_kw=units.number(c["power"]),
            shift_state=c["shift_state"] if c["shift_state"] in SHIFT_STATES else None,
            odometer_km=units.miles_to_km(c["odometer"]),
            battery_level=soc if dialect is Dialect.TESLA else None,
            usable_battery_level=soc if dialect is Dialect.MYTESLAMATE else None,
            rated_range_km=units.miles_to_km(c["range"]),
            est_range_km=units.miles_to_km(c["est_range"]),
        )
    except units.UnitError as exc:
        raise FrameError(f"{exc}: {excerpt(row)}") from None
    if at is None:
        raise FrameError(f"a row without a time: {excerpt(row)}")
    return Observation(vin=vin, at=at, source=Source.STREAM, state=state)


@dataclass(frozen=True, slots=True)
class Message:
    """A server message as the client acts on it."""

    kind: str  # "hello" | "update" | "disconnected" | "offline" | "token" | "reconnect" | "other"
    tag: str = ""
    value: str = ""


def parse_message(text: str | bytes) -> Message:
    """A websocket text frame → :class:`Message` (raises :class:`FrameError`)."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise FrameError(f"not JSON: {excerpt(text)}") from None
    if not isinstance(obj, dict):
        raise FrameError(f"not a message object: {excerpt(text)}")
    msg_type, tag, value = obj.get("msg_type"), obj.get("tag"), obj.get("value")
    tag_text = "" if tag is None else str(tag)
    value_text = value if isinstance(value, str) else ""
    if isinstance(msg_type, str) and msg_type.startswith("control:"):
        return Message("hello", tag_text)
    if msg_type == "data:update":
        if not isinstance(value, str):
            raise FrameError(f"data:update without a text value: {excerpt(text)}")
        return Message("update", tag_text, value)
    if msg_type == "data:error":
        error = obj.get("error_type")
        if error == "vehicle_disconnected":
            return Message("disconnected", tag_text)
        if error == "vehicle_error" and value_text.strip().lower() == "vehicle is offline":
            return Message("offline", tag_text, value_text)
        if error == "client_error":
            if value_text.startswith("owner_api error"):
                return Message("reconnect", tag_text, value_text)
            return Message("token", tag_text, value_text)
        return Message("other", tag_text, f"{error}: {value_text}")
    if msg_type == "error":  # MyTeslaMate with ENFORCE_TOKEN
        return Message("token", tag_text, str(obj.get("error_detail", "")))
    return Message("other", tag_text, str(msg_type))


def resubscribe_delay(disconnects: int, in_gear: bool) -> float:
    """TeslaMate's wait after ``vehicle_disconnected``: short while driving, longer parked."""
    if in_gear:
        return float(min(1.3**disconnects, 8.0))
    return float(min(max(2.0**disconnects, 15.0), 30.0))


def _stop_if_cancelled() -> None:
    """Raise the cancel that Python 3.11's ``wait_for`` swallows when it meets a frame.

    ``wait_for`` returns the frame instead of raising when the task is cancelled just as
    ``ws.receive()`` completes (fixed in 3.12); the feed then read on forever, and
    ``fleetlog run`` never exited on SIGTERM (outage suite, crash suite, busy streams).
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class WebsocketFeed:
    """The streaming websocket of one car; run it as a task, cancel it to stop."""

    def __init__(
        self,
        *,
        url: str,
        vin: str,
        tag: str,
        credentials: Credentials,
        outlet: Outlet,
        dialect: Dialect = Dialect.TESLA,
        accept_invalid_certs: bool = False,
        clock: Clock | None = None,
        watchdog_s: float = WATCHDOG_S,
        backoff: Backoff | None = None,
        resubscribe: Callable[[int, bool], float] = resubscribe_delay,
    ) -> None:
        self.name = f"stream:{vin}"
        self.url = url
        self.vin = vin
        self.tag = tag
        self._credentials = credentials
        self._outlet = outlet
        self._dialect = dialect
        self._ssl: ssl.SSLContext | bool = not accept_invalid_certs
        self._clock = clock or LoopClock()
        self._watchdog = watchdog_s
        self._backoff = backoff or Backoff(base=1.0, cap=30.0)
        self._resubscribe = resubscribe  # (disconnects so far, last row in gear) → seconds
        self._streaming = False
        self._disconnects = 0
        self._in_gear = False

    def _emit(self, event: Any) -> None:
        self._outlet.event(FeedEvent(self.name, self.vin, event))

    def _set_streaming(self, on: bool) -> None:
        if on != self._streaming:
            self._streaming = on
            self._emit(StreamConnected() if on else StreamDisconnected())

    async def run(self) -> None:
        """Connect, subscribe and read until cancelled; reconnect forever."""
        async with aiohttp.ClientSession() as session:
            while True:
                _stop_if_cancelled()
                token = self._credentials.token()
                try:
                    wait = await self._session(session, token)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log_event(log, logging.WARNING, "stream connection failed", vin=self.vin,
                              error=f"{type(exc).__name__}: {str(exc)[:120]}")  # fmt: skip
                    wait = True
                self._set_streaming(False)
                if wait:
                    await asyncio.sleep(self._backoff.next())

    async def _session(self, session: aiohttp.ClientSession, token: str) -> bool:
        """One connection; returns whether to back off before the next."""
        async with session.ws_connect(
            self.url, ssl=self._ssl, timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5),
            autoping=True, max_msg_size=1_000_000,
        ) as ws:  # fmt: skip
            try:
                return await self._read(ws, token)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._send(ws, "data:unsubscribe"), 2.0)
                raise

    async def _send(
        self, ws: aiohttp.ClientWebSocketResponse, msg_type: str, token: str = ""
    ) -> None:
        message: dict[str, str] = {"msg_type": msg_type, "tag": self.tag}
        if msg_type == "data:subscribe_oauth":
            message = {"msg_type": msg_type, "token": token, "value": ",".join(COLUMNS),
                       "tag": self.tag}  # fmt: skip
        await ws.send_str(json.dumps(message))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, token: str) -> bool:
        loop = asyncio.get_running_loop()
        await self._send(ws, "data:subscribe_oauth", token)
        resubscribe_at: float | None = None
        while True:
            _stop_if_cancelled()
            timeout = self._watchdog
            if resubscribe_at is not None:
                timeout = min(timeout, max(0.0, resubscribe_at - loop.time()))
            try:
                frame = await asyncio.wait_for(ws.receive(), timeout)
            except TimeoutError:
                if resubscribe_at is not None and loop.time() >= resubscribe_at:
                    resubscribe_at = None
                    await self._send(ws, "data:subscribe_oauth", token)
                    continue
                log_event(log, logging.INFO, "stream silent, reconnecting", vin=self.vin,
                          after_s=self._watchdog)  # fmt: skip
                return False
            if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                              aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):  # fmt: skip
                log_event(log, logging.INFO, "stream closed by server", vin=self.vin)
                return True
            if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                continue
            try:
                msg = parse_message(frame.data)
            except FrameError as exc:
                log_event(log, logging.WARNING, "stream frame skipped", vin=self.vin,
                          problem=str(exc)[:160])  # fmt: skip
                continue
            if msg.tag and msg.tag != self.tag:
                continue
            if msg.kind == "update":
                self._update(msg.value)
            elif msg.kind == "disconnected":
                self._set_streaming(False)
                delay = self._resubscribe(self._disconnects, self._in_gear)
                self._disconnects += 1
                if self._disconnects % 10 == 0:
                    log_event(log, logging.WARNING, "stream keeps disconnecting", vin=self.vin,
                              times=self._disconnects)  # fmt: skip
                resubscribe_at = loop.time() + delay
            elif msg.kind == "offline":
                self._emit(CarConnectivity(Connectivity.OFFLINE, self._clock.now()))
            elif msg.kind == "token":
                log_event(log, logging.WARNING, "stream token rejected", vin=self.vin,
                          detail=msg.value[:80])  # fmt: skip
                with contextlib.suppress(Exception):
                    await self._credentials.refresh(token)
                return token == self._credentials.token()  # a fresh token: no need to wait
            elif msg.kind == "reconnect":
                log_event(log, logging.WARNING, "stream server error", vin=self.vin,
                          detail=msg.value[:80])  # fmt: skip
                return True
            elif msg.kind == "other":
                log_event(log, logging.INFO, "stream message ignored", vin=self.vin,
                          detail=msg.value[:80])  # fmt: skip

    def _update(self, row: str) -> None:
        try:
            observation = observation_from_row(self.vin, row, self._dialect)
        except FrameError as exc:
            log_event(log, logging.WARNING, "stream frame skipped", vin=self.vin,
                      problem=str(exc)[:160])  # fmt: skip
            return
        self._disconnects = 0
        self._backoff.reset()
        self._in_gear = observation.state.shift_state in ("D", "N", "R")
        self._set_streaming(True)
        self._emit(Observed(observation, full_frame=True))
