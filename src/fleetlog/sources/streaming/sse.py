"""Teslemetry's stream: Server-Sent Events at ``/sse/{vin}`` (reference §5.2).

One :class:`SseFeed` per car, topics ``data``, ``state``, ``connectivity``, ``alerts`` and
``errors``, ``Authorization: Bearer <TOKEN>``. The server writes a bare newline every 10 s;
30 s without a byte means the connection is dead and is replaced (capped, jittered
backoff). ``data`` events go through the same :class:`Sequencer` as telemetry records
(their ``createdAt`` orders them; an ``isCache`` replay of what we have is dropped);
``state`` online/asleep/offline and ``connectivity`` become :class:`CarConnectivity`.
"""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp

from fleetlog.clock import Clock, LoopClock
from fleetlog.logs import log_event
from fleetlog.model.observation import Source
from fleetlog.sources.streaming.feed import (
    Backoff,
    Credentials,
    FeedEvent,
    Outlet,
    RecordIngest,
)
from fleetlog.sources.streaming.records import (
    FrameError,
    Record,
    VRecord,
    field_name,
    notices_from_json,
    parse_time,
    plain_from_json,
)
from fleetlog.sources.streaming.sequencer import Sequencer
from fleetlog.vehicle.events import StreamConnected, StreamDisconnected

log = logging.getLogger(__name__)

TOPICS = ("data", "state", "connectivity", "alerts", "errors")
KEEPALIVE_TIMEOUT_S = 30.0


def sse_records(event: object) -> tuple[list[Record], tuple[str, str] | None]:
    """One decoded SSE event → (telemetry records, (state or connectivity status, createdAt))."""
    if not isinstance(event, dict):
        raise FrameError(f"expected a JSON object, got {type(event).__name__}")
    vin = event.get("vin")
    if not isinstance(vin, str) or not vin:
        raise FrameError("an event without a vin")
    created = parse_time(event.get("createdAt"))
    if "data" in event:
        data = event["data"]
        if not isinstance(data, dict):
            raise FrameError("data: expected an object")
        problems: list[str] = []
        values = []
        for key, value in data.items():
            try:
                values.append((field_name(key), plain_from_json(value)))
            except FrameError as exc:
                problems.append(f"{key}: {exc}")
        return [VRecord(vin, created, tuple(values), problems=tuple(problems))], None
    if "state" in event:
        return [], (str(event["state"]), created.isoformat() if created else "")
    if "status" in event:
        return [], (str(event["status"]), created.isoformat() if created else "")
    for kind in ("alert", "error"):
        if f"{kind}s" in event:
            return list(notices_from_json(kind, event, vin)), None
    return [], None  # topics fleetlog does not read (credits, config, …)


def sse_lines(buffer: list[str], line: str) -> str | None:
    """Feed one line of the event stream; returns an event's data when it is complete."""
    if line == "":
        if not buffer:
            return None
        data = "\n".join(buffer)
        buffer.clear()
        return data
    if line.startswith("data:"):
        buffer.append(line[5:].removeprefix(" "))
    return None  # comments (":"), event:, id:, retry: carry nothing fleetlog reads


class SseFeed:
    """Teslemetry's SSE stream of one car; run it as a task, cancel it to stop."""

    def __init__(
        self,
        *,
        base_url: str,
        vin: str,
        credentials: Credentials,
        outlet: Outlet,
        clock: Clock | None = None,
        hold_s: float = 0.5,
        keepalive_timeout_s: float = KEEPALIVE_TIMEOUT_S,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = f"sse:{vin}"
        self.url = f"{base_url.rstrip('/')}/sse/{vin}"
        self.vin = vin
        self._credentials = credentials
        self._outlet = outlet
        self._clock = clock or LoopClock()
        self._hold = hold_s
        self._timeout = keepalive_timeout_s
        self._backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.ingest = RecordIngest(
            self.name, outlet, Sequencer(Source.SSE, hold_s=hold_s), self._clock, frozenset({vin})
        )
        self._up_now = False

    def _up(self, on: bool) -> None:
        if on != self._up_now:
            self._up_now = on
            event = StreamConnected() if on else StreamDisconnected()
            self._outlet.event(FeedEvent(self.name, self.vin, event))

    def on_event(self, data: str) -> None:
        """One event's data; never raises."""
        try:
            records, status = sse_records(json.loads(data))
        except FrameError as exc:
            self.ingest.bad(str(exc), data)
            return
        except (ValueError, RecursionError):
            self.ingest.bad("not JSON", data)
            return
        self.ingest.records(records, vin_hint=self.vin)
        if status is not None:
            text, created = status
            when = parse_time(created) if created else None
            self.ingest.connectivity(self.vin, text, when or self._clock.now())

    async def run(self) -> None:
        """Stream until cancelled; reconnect forever."""
        async with aiohttp.ClientSession() as session:
            try:
                while True:
                    try:
                        await self._stream(session)
                    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                        log_event(log, logging.WARNING, "sse connection lost", vin=self.vin,
                                  error=f"{type(exc).__name__}: {str(exc)[:120]}")  # fmt: skip
                    self.ingest.flush(everything=True)
                    self._up(False)
                    await asyncio.sleep(self._backoff.next())
            finally:
                self.ingest.flush(everything=True)  # what was read is never dropped

    async def _refresh(self, rejected: str) -> None:
        """Ask for a fresh token; a failed refresh is logged and the next try backs off."""
        try:
            await self._credentials.refresh(rejected)
        except Exception as exc:  # the keeper's errors: the feed must go on regardless
            log_event(log, logging.WARNING, "sse token refresh failed", vin=self.vin,
                      error=type(exc).__name__)  # fmt: skip

    async def _stream(self, session: aiohttp.ClientSession) -> None:
        token = self._credentials.token()
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        params = {"topics": ",".join(TOPICS)}
        timeout = aiohttp.ClientTimeout(total=None, connect=15, sock_read=self._timeout)
        async with session.get(self.url, headers=headers, params=params, timeout=timeout) as resp:
            if resp.status != 200:
                # The body is the server's error JSON; never echo it whole (it could quote us).
                body = (await resp.text())[:120].replace(token, "***") if token else ""
                if resp.status == 401:
                    log_event(log, logging.ERROR, "sse token rejected (401): check TOKEN",
                              vin=self.vin, body=body)  # fmt: skip
                    await self._refresh(token)
                else:
                    log_event(log, logging.WARNING, "sse refused", vin=self.vin,
                              status=resp.status, body=body)  # fmt: skip
                return
            self._up(True)
            self._backoff.reset()
            buffer: list[str] = []
            flush_task = asyncio.create_task(self.ingest.keep_flushing(self._hold))
            try:
                async for raw in resp.content:
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    data = sse_lines(buffer, line)
                    if data is not None:
                        self.on_event(data)
            finally:
                flush_task.cancel()
