"""A baseline logger that polls like TeslaMate (teslamate-behaviour.md §5.2–§5.4, §5.7).

Polling only (the streaming variant needs the legacy stream, see the report's notes), against
the same simulator over loopback HTTP in virtual time. It keeps what it saw in memory —
drives, charges, positions — and is scored like fleetlog. It is written from the published
constants, not from TeslaMate's code:

* asleep/offline: ``GET /vehicles/{id}`` every 30 s; online there → ``vehicle_data``;
* online: ``vehicle_data`` every 15 s; D/N/R opens a drive, Starting/Charging a charge;
* driving: every 2.5 s; P or no gear closes the drive;
* charging: ``round(250 / kW)`` clamped to [5, 20] s (5 s at first); any other state closes it;
* suspend: idle (no blocker: user present, preconditioning, sentry, doors/trunk open, power
  draw) for ``suspend_after_idle_min`` = 15 min → no ``vehicle_data`` for ``suspend_min`` =
  21 min, then ``/vehicles/{id}`` and, if still online, ``vehicle_data`` (which keeps a
  polled car awake: TeslaMate's known cost);
* errors: 408 → asleep check; 429 → Retry-After; 5xx/transport → 10–30 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from fleetlog.clock import ManualClock
from fleetlog.sim import CloudOptions, SimServer, World, build

ENDPOINTS = (
    "charge_state;climate_state;closures_state;drive_state;gui_settings;location_data;"
    "vehicle_config;vehicle_state"
)
MI = 1.609344


@dataclass(slots=True)
class Seen:
    drives: list[tuple[datetime, datetime | None, float | None]] = field(default_factory=list)
    charges: list[tuple[datetime, datetime | None, float | None]] = field(default_factory=list)
    positions: list[tuple[datetime, float, float]] = field(default_factory=list)
    requests: int = 0


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


async def run_baseline(
    scenario: str,
    *,
    seed: int = 1,
    start: timedelta = timedelta(0),
    duration: timedelta | None = None,
) -> BaselineRun:
    """Poll `scenario` the TeslaMate way (no billing limit: its real cost is the point)."""
    import time

    wall = time.perf_counter()
    world = World(
        build(scenario, seed), CloudOptions(mode="fleet", seed=seed, billing_limit_usd=None)
    )
    begin = world.scenario.start + start
    world.advance(begin)
    end = begin + duration if duration is not None else world.scenario.end
    clock = ManualClock(begin)
    seen = Seen()
    async with SimServer(world, clock=clock) as sim:
        car_id = world.cars[0].spec.id
        base = sim.env["TESLA_API_HOST"]
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            poller = _Poller(http, car_id, clock, seen)
            token_at = clock.now() - timedelta(hours=9)
            while clock.now() < end:
                if clock.now() - token_at > timedelta(hours=7):
                    http.headers["Authorization"] = f"Bearer {world.initial_tokens().access_token}"
                    token_at = clock.now()
                wait = await poller.poll()
                step = min(wait, (end - clock.now()).total_seconds())
                if step <= 0:
                    break
                await sim.advance(step)
        truth = sim.truth()
    return BaselineRun(truth, seen, begin, end, time.perf_counter() - wall)


class _Poller:
    def __init__(
        self, http: httpx.AsyncClient, car_id: int, clock: ManualClock, seen: Seen
    ) -> None:
        self.http, self.car_id, self.clock, self.seen = http, car_id, clock, seen
        self.phase = "start"
        self.last_used = clock.now()
        self.suspended_until: datetime | None = None
        self.drive: list[Any] | None = None  # [start, odometer_km]
        self.charge: list[Any] | None = None  # [start, energy_added]
        self.last_pos_at: datetime | None = None

    async def _get(self, path: str, **params: str) -> httpx.Response | None:
        self.seen.requests += 1
        try:
            return await self.http.get(f"/api/1/vehicles/{self.car_id}{path}", params=params)
        except httpx.HTTPError:
            return None

    async def poll(self) -> float:
        now = self.clock.now()
        if self.phase in ("start", "asleep", "offline") or (
            self.phase == "suspended" and self.suspended_until and now >= self.suspended_until
        ):
            r = await self._get("")
            if r is None or r.status_code >= 500:
                return 15.0
            if r.status_code == 429:
                return float(r.headers.get("Retry-After", "300"))
            state = (r.json().get("response") or {}).get("state")
            if state != "online":
                self._lost(now)
                self.phase = "asleep" if state == "asleep" else "offline"
                return 30.0
            if self.phase == "suspended":
                self.phase = "online"  # polling mode: look again with vehicle_data
        elif self.phase == "suspended":
            return max(1.0, (self.suspended_until - now).total_seconds())  # type: ignore[operator]
        r = await self._get("/vehicle_data", endpoints=ENDPOINTS)
        if r is None or r.status_code >= 500:
            return 10.0
        if r.status_code == 429:
            return float(r.headers.get("Retry-After", "300"))
        if r.status_code == 408:
            self.phase = "start"
            return 1.0
        if r.status_code != 200:
            return 30.0
        return self._handle(r.json()["response"], now)

    def _lost(self, now: datetime) -> None:
        """Asleep/offline: what was open ends (TeslaMate closes on asleep; offline → timeout)."""
        if self.drive is not None:
            self.seen.drives.append((self.drive[0], now, None))
            self.drive = None
        if self.charge is not None:
            self.seen.charges.append((self.charge[0], now, None))
            self.charge = None

    def _handle(self, v: dict[str, Any], now: datetime) -> float:
        ds, cs = v.get("drive_state") or {}, v.get("charge_state") or {}
        vs, cl = v.get("vehicle_state") or {}, v.get("climate_state") or {}
        at = _ts(ds.get("timestamp"), now)
        odo = float(vs.get("odometer") or 0.0) * MI
        shift = ds.get("shift_state")
        if self.drive is not None or shift in ("D", "N", "R"):
            lat, lon = ds.get("latitude"), ds.get("longitude")
            if lat is not None and lon is not None:
                self.seen.positions.append((at, float(lat), float(lon)))
        if self.drive is not None:
            if shift in ("D", "N", "R"):
                return 2.5
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
        if shift in ("D", "N", "R"):
            self.drive = [at, odo]
            self.phase = "driving"
            return 2.5
        if charging:
            # TeslaMate's charging process counts charge_energy_added from its first sample
            self.charge = [at, float(cs.get("charge_energy_added") or 0.0) * 0]
            self.phase = "charging"
            return 5.0
        blocked = (
            vs.get("is_user_present")
            or cl.get("is_preconditioning")
            or cl.get("climate_keeper_mode") == "dog"
            or vs.get("sentry_mode")
            or any((vs.get(k) or 0) > 0 for k in ("df", "pf", "dr", "pr", "ft", "rt"))
            or (ds.get("power") or 0) > 0
        )
        if blocked:
            self.last_used = now
            return 15.0 if vs.get("is_user_present") else 30.0
        self.phase = "online"
        if now - self.last_used >= timedelta(minutes=15):
            self.phase = "suspended"
            self.suspended_until = now + timedelta(minutes=21)
            return 21 * 60.0
        return 15.0
