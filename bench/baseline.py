"""A baseline logger that follows TeslaMate's published constants (teslamate-behaviour.md §4, §5).

Two variants against the same simulator over loopback HTTP in virtual time, written from the
published constants, not from TeslaMate's code. Each keeps what it saw in memory — drives,
charges, positions — and is scored like fleetlog.

**Polling** (Fleet API, ``streaming=False``):

* asleep/offline: ``GET /vehicles/{id}`` every 30 s; online there → ``vehicle_data``;
* online: ``vehicle_data`` every 15 s; D/N/R opens a drive, Starting/Charging a charge;
* driving: every 2.5 s; P or no gear closes the drive;
* charging: ``round(250 / kW)`` clamped to [5, 20] s (5 s at first); any other state closes it;
* suspend: idle (no blocker: user present, preconditioning, sentry, doors/trunk open, power
  draw) for ``suspend_after_idle_min`` = 15 min → no ``vehicle_data`` for ``suspend_min`` =
  21 min, then ``/vehicles/{id}`` and, if still online, ``vehicle_data`` (which keeps a
  polled car awake: TeslaMate's known cost);
* errors: 408 → asleep check; 429 → Retry-After; 5xx/transport → 10–30 s.

**With streaming** (``streaming=True``): TeslaMate on MyTeslaMate — its Fleet API proxy for
REST (billed as Fleet API calls) and its websocket (the simulator's ``myteslamate`` cloud:
rows rebuilt from Fleet Telemetry, tag = VIN, a row only while a gear is known). The
stream is subscribed whenever the car is online, kept while driving and suspended, dropped
while charging, asleep or offline (§5.6). Differences from polling (§5.2–§5.4, §5.7):

* asleep/offline → ``/vehicles/{id}`` says online: no ``vehicle_data`` yet; the stream is
  subscribed and the car probed 30 s (a streamed row → ``vehicle_data`` at once; none →
  treated as real, ``vehicle_data``);
* online idle: ``vehicle_data`` every 30 s (15·i, i = 2); blockers 15 s (user present),
  30 s (doors, trunk, power), 60 s (preconditioning, dog mode, sentry);
* a streamed D/N/R row opens a drive at once (online or suspended); while driving every
  D/N/R row is a position, another gear → ``vehicle_data`` at once; ``vehicle_data`` every
  15 s while driving, and P or no gear there closes the drive;
* idle 3 min → suspended 10 min without any call, then ``/vehicles/{id}`` only, every 30 s,
  until asleep/offline; a streamed row with power (charging or usage) → ``vehicle_data``.

Virtual time moves at most ``STREAM_STEP_S`` at a time while the stream is subscribed and
the car online, and waits after each step until the simulator's socket queues are empty and
nothing more arrives (rows carry their own timestamps, so a step only delays the reaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import websockets

from fleetlog.clock import ManualClock
from fleetlog.sim import CloudOptions, SimServer, World, build
from fleetlog.sim.world import Mode

ENDPOINTS = (
    "charge_state;climate_state;closures_state;drive_state;gui_settings;location_data;"
    "vehicle_config;vehicle_state"
)
MI = 1.609344
#: Longest virtual-time step while the stream is subscribed and the car online.
STREAM_STEP_S = 5.0
STREAM_COLUMNS = (
    "speed,odometer,soc,elevation,est_heading,est_lat,est_lng,power,shift_state,range,"
    "est_range,heading"
)
DRIVING = ("D", "N", "R")


@dataclass(slots=True)
class Seen:
    drives: list[tuple[datetime, datetime | None, float | None]] = field(default_factory=list)
    charges: list[tuple[datetime, datetime | None, float | None]] = field(default_factory=list)
    positions: list[tuple[datetime, float, float]] = field(default_factory=list)
    requests: int = 0
    stream_rows: int = 0


@dataclass(slots=True)
class BaselineRun:
    truth: dict[str, Any]
    seen: Seen
    start: datetime
    end: datetime
    wall_s: float


def _ts(ms: Any, fallback: datetime) -> datetime:
    if isinstance(ms, int | float) and ms > 0:
        return datetime.fromtimestamp(ms / 1000, fallback.tzinfo)
    return fallback


@dataclass(frozen=True, slots=True)
class Row:
    """One streamed ``data:update`` row, parsed the way TeslaMate reads it (§4)."""

    at: datetime
    odometer_mi: float | None
    lat: float | None
    lon: float | None
    power: int | None
    shift: str | None


def parse_row(value: str, tz: Any) -> Row:
    cols = dict(zip(("time", *STREAM_COLUMNS.split(",")), value.split(","), strict=False))

    def num(key: str) -> float | None:
        text = cols.get(key) or ""
        try:
            return float(text) if text else None
        except ValueError:
            return None

    power = num("power")
    return Row(
        at=datetime.fromtimestamp(int(cols["time"]) / 1000, tz),
        odometer_mi=num("odometer"),
        lat=num("est_lat"),
        lon=num("est_lng"),
        power=None if power is None else round(power),
        shift=cols.get("shift_state") or None,
    )


async def run_baseline(
    scenario: str,
    *,
    seed: int = 1,
    start: timedelta = timedelta(0),
    duration: timedelta | None = None,
    streaming: bool = False,
) -> BaselineRun:
    """Log `scenario` the TeslaMate way (no billing limit: its real cost is the point)."""
    wall = time.perf_counter()
    mode: Mode = "myteslamate" if streaming else "fleet"
    world = World(build(scenario, seed), CloudOptions(mode=mode, seed=seed, billing_limit_usd=None))
    begin = world.scenario.start + start
    world.advance(begin)
    end = begin + duration if duration is not None else world.scenario.end
    clock = ManualClock(begin)
    seen = Seen()
    async with SimServer(world, clock=clock) as sim:
        car = world.cars[0]
        base = sim.env["TESLA_API_HOST"]
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            stream: _Stream | None = None
            if streaming:
                http.headers["Authorization"] = f"Bearer {sim.env['TOKEN']}"
                stream = _Stream(sim, car.spec.vin, sim.env["TOKEN"], clock)
            poller = _Poller(http, car.spec.id, clock, seen, stream)
            token_at = clock.now() - timedelta(hours=9)
            try:
                while clock.now() < end:
                    if not streaming and clock.now() - token_at > timedelta(hours=7):
                        token = world.initial_tokens().access_token
                        http.headers["Authorization"] = f"Bearer {token}"
                        token_at = clock.now()
                    wait = await poller.poll()
                    target = min(clock.now() + timedelta(seconds=wait), end)
                    while clock.now() < target:
                        step = (target - clock.now()).total_seconds()
                        live = stream is not None and stream.subscribed and car.state == "online"
                        if live:
                            step = min(step, STREAM_STEP_S)
                        await sim.advance(step)
                        if stream is not None and stream.subscribed:
                            await stream.settle()
                            if poller.on_rows(stream.take()):
                                break  # a row asks for a fetch now
            finally:
                if stream is not None:
                    await stream.close()
        truth = sim.truth()
    return BaselineRun(truth, seen, begin, end, time.perf_counter() - wall)


class _Stream:
    """The streaming websocket (MyTeslaMate: tag = VIN), subscribed while the car is online."""

    def __init__(self, sim: SimServer, vin: str, token: str, clock: ManualClock) -> None:
        self.sim, self.vin, self.token, self.clock = sim, vin, token, clock
        self.url = sim.env["TESLA_WSS_HOST"] + "/streaming/"
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.rows: list[Row] = []
        self.received = 0
        self.subscribed = False

    async def subscribe(self) -> None:
        if self.subscribed:
            return
        if self.ws is None:
            self.ws = await websockets.connect(self.url)
            self.reader = asyncio.create_task(self._read())
        frame = {"msg_type": "data:subscribe_oauth", "token": self.token,
                 "value": STREAM_COLUMNS, "tag": self.vin}  # fmt: skip
        await self.ws.send(json.dumps(frame))
        self.subscribed = True

    async def unsubscribe(self) -> None:
        if self.subscribed and self.ws is not None:
            await self.ws.send(json.dumps({"msg_type": "data:unsubscribe", "tag": self.vin}))
        self.subscribed = False
        await self.settle()
        self.rows.clear()

    async def _read(self) -> None:
        tz = self.clock.now().tzinfo
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self.ws:
                self.received += 1
                frame = json.loads(message)
                update = frame.get("msg_type") == "data:update" and frame.get("tag") == self.vin
                if update and self.subscribed:
                    self.rows.append(parse_row(str(frame["value"]), tz))

    async def settle(self) -> None:
        """Wait until what the simulator queued for the socket has been read."""
        service = self.sim.streaming
        quiet = 0
        while quiet < 2:
            before = self.received
            pending = service is not None and any(not s.queue.empty() for s in service.sockets)
            await asyncio.sleep(0.002)
            quiet = quiet + 1 if not pending and self.received == before else 0

    def take(self) -> list[Row]:
        rows, self.rows = sorted(self.rows, key=lambda r: r.at), []
        return rows

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader


class _Poller:
    def __init__(
        self,
        http: httpx.AsyncClient,
        car_id: int,
        clock: ManualClock,
        seen: Seen,
        stream: _Stream | None = None,
    ) -> None:
        self.http, self.car_id, self.clock, self.seen = http, car_id, clock, seen
        self.stream = stream
        self.i = 2 if stream is not None else 1  # TeslaMate's interval multiplier
        self.idle_min = 3 if stream is not None else 15
        self.suspend_min = 10 if stream is not None else 21
        self.phase = "start"
        self.last_used = clock.now()
        self.suspended_until: datetime | None = None
        self.probe_until: datetime | None = None
        self.drive: list[Any] | None = None  # [start, odometer_km]
        self.charge: list[Any] | None = None  # [start, energy_added]
        self.fetch_now = False
        self.reschedule: float | None = None  # a wait that replaces the scheduled one

    async def _get(self, path: str, **params: str) -> httpx.Response | None:
        self.seen.requests += 1
        try:
            return await self.http.get(f"/api/1/vehicles/{self.car_id}{path}", params=params)
        except httpx.HTTPError:
            return None

    # ------------------------------------------------------------------ the stream

    def on_rows(self, rows: list[Row]) -> bool:
        """Streamed rows (§4, §5.3, §5.4); True when the next poll is due now."""
        fetch = opened = False
        for row in rows:
            self.seen.stream_rows += 1
            if self.phase == "probing":
                fetch = True  # a row with power: the car is really online
            elif self.phase in ("online", "suspended") and row.shift in DRIVING:
                odo = (row.odometer_mi or 0.0) * MI
                self.drive = [row.at, odo]
                self.phase = "driving"
                self._position(row)
                opened = True
            elif self.phase == "driving" and self.drive is not None:
                if row.shift in DRIVING:
                    self._position(row)
                else:
                    fetch = True
            elif self.phase == "suspended" and row.power:
                fetch = True  # charging or usage detected
                self.phase = "online"
        if fetch:
            self.fetch_now, self.reschedule = True, None
        elif opened:
            self.reschedule = 15.0  # driving: vehicle_data every 15 s from the drive's start
        return fetch or opened

    def _position(self, row: Row) -> None:
        if row.lat is not None and row.lon is not None:
            self.seen.positions.append((row.at, row.lat, row.lon))

    async def _stream(self, on: bool) -> None:
        if self.stream is None:
            return
        if on:
            await self.stream.subscribe()
        else:
            await self.stream.unsubscribe()

    # ------------------------------------------------------------------ polling

    async def poll(self) -> float:
        now = self.clock.now()
        fetch_now, self.fetch_now = self.fetch_now, False
        wait, self.reschedule = self.reschedule, None
        if wait is not None and not fetch_now:
            return wait
        streaming = self.stream is not None
        if self.phase == "suspended" and not fetch_now:
            if self.suspended_until and now < self.suspended_until:
                return max(1.0, (self.suspended_until - now).total_seconds())
            if (wait := await self._light_look(now)) is not None:
                return wait
            if streaming:
                return 30.0  # only /vehicles/{id} while suspended with a stream
            self.phase = "online"  # polling mode: look again with vehicle_data
        elif self.phase == "probing" and not fetch_now:
            if self.probe_until and now < self.probe_until:
                return max(1.0, (self.probe_until - now).total_seconds())
            self.phase = "online"  # no row within 30 s: treated as really online
        elif self.phase in ("start", "asleep", "offline"):
            if (wait := await self._light_look(now)) is not None:
                return wait
            if streaming and self.drive is None and self.charge is None:
                await self._stream(True)
                self.phase = "probing"
                self.probe_until = now + timedelta(seconds=30)
                return 30.0
        elif self.phase == "probing":
            self.phase = "online"
        r = await self._get("/vehicle_data", endpoints=ENDPOINTS)
        if r is None or r.status_code >= 500:
            return 10.0
        if r.status_code == 429:
            return float(r.headers.get("Retry-After", "300"))
        if r.status_code == 408:
            self.phase = "start"  # look at /vehicles/{id}; an open drive or charge stays open
            return 1.0
        if r.status_code != 200:
            return 30.0
        return await self._handle(r.json()["response"], now)

    async def _light_look(self, now: datetime) -> float | None:
        """The free ``/vehicles/{id}`` look: seconds to wait when the car is not online (or
        the look failed), None when it is online."""
        r = await self._get("")
        state = self._state(r)
        if state is None:
            return 15.0 if r is None or r.status_code >= 500 else self._retry(r)
        if state != "online":
            await self._asleep(now, state)
            return 30.0
        return None

    @staticmethod
    def _state(r: httpx.Response | None) -> str | None:
        if r is None or r.status_code != 200:
            return None
        return str((r.json().get("response") or {}).get("state"))

    @staticmethod
    def _retry(r: httpx.Response) -> float:
        if r.status_code == 429:
            return float(r.headers.get("Retry-After", "300"))
        return 30.0

    async def _asleep(self, now: datetime, state: str) -> None:
        """Asleep/offline: what was open ends (TeslaMate closes on asleep; offline → timeout)."""
        if self.drive is not None:
            self.seen.drives.append((self.drive[0], now, None))
            self.drive = None
        if self.charge is not None:
            self.seen.charges.append((self.charge[0], now, None))
            self.charge = None
        self.phase = "asleep" if state == "asleep" else "offline"
        await self._stream(False)

    async def _handle(self, v: dict[str, Any], now: datetime) -> float:
        ds, cs = v.get("drive_state") or {}, v.get("charge_state") or {}
        vs, cl = v.get("vehicle_state") or {}, v.get("climate_state") or {}
        at = _ts(ds.get("timestamp"), now)
        odo = float(vs.get("odometer") or 0.0) * MI
        shift = ds.get("shift_state")
        streaming = self.stream is not None
        drive_poll = 15.0 if streaming else 2.5
        if self.drive is not None or shift in DRIVING:
            lat, lon = ds.get("latitude"), ds.get("longitude")
            if lat is not None and lon is not None:
                self.seen.positions.append((at, float(lat), float(lon)))
        if self.drive is not None:
            if shift in DRIVING:
                self.phase = "driving"
                return drive_poll
            self.seen.drives.append((self.drive[0], at, odo - self.drive[1]))
            self.drive = None
            self.phase = "online"
            self.last_used = now
        charging = cs.get("charging_state") in ("Starting", "Charging")
        if self.charge is not None:
            if charging:
                kw = cs.get("charger_power") or 0
                return 5.0 if not kw else float(min(20, max(5, round(250 / kw))))
            added = float(cs.get("charge_energy_added") or 0.0)
            self.seen.charges.append((self.charge[0], at, added - self.charge[1]))
            self.charge = None
            self.phase = "online"
            self.last_used = now
            await self._stream(True)  # back to online: the stream again
        if shift in DRIVING:
            self.drive = [at, odo]
            self.phase = "driving"
            await self._stream(True)
            return drive_poll
        if charging:
            # TeslaMate's charging process counts charge_energy_added from its first sample
            self.charge = [at, 0.0]
            self.phase = "charging"
            await self._stream(False)  # disconnected while charging (§5.6)
            return 5.0
        self.phase = "online"
        await self._stream(True)
        i = self.i
        if vs.get("is_user_present"):
            self.last_used = now
            return 15.0
        if (
            cl.get("is_preconditioning")
            or cl.get("climate_keeper_mode") == "dog"
            or vs.get("sentry_mode")
        ):
            self.last_used = now
            return 30.0 * i
        if any((vs.get(k) or 0) > 0 for k in ("df", "pf", "dr", "pr", "ft", "rt")) or (
            (ds.get("power") or 0) > 0
        ):
            self.last_used = now
            return 15.0 * i
        if now - self.last_used >= timedelta(minutes=self.idle_min):
            self.phase = "suspended"
            self.suspended_until = now + timedelta(minutes=self.suspend_min)
            return self.suspend_min * 60.0
        return 15.0 * i
