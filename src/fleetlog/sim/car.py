"""The simulated car: a pure, steppable model of one vehicle.

Rules of this file:

- The car never reads a clock and never does I/O. Time moves only through
  :meth:`Car.advance`, and the outside world reaches the car only through
  :meth:`Car.touch` (a ``vehicle_data`` call it answered) and :meth:`Car.wake_up`.
- Everything the API or a stream reports is read off :meth:`Car.snapshot`, in canonical
  units (km, km/h, kWh, kW, °C, bar). Units of the wire formats are not this file's business.
- What really happened is written to :attr:`Car.log` (ground truth) as it happens.

Theory of operation. The car runs a plan (:mod:`fleetlog.sim.plan`): a queue of
activities done one after another, and windows laid over time. `advance(to)` alternates
two moves until it reaches `to`:

1. *settle* at the current instant: start a due activity, end a boarding or alighting
   phase, move the charging state on, pass update milestones, complete a pending wake,
   fall asleep when nothing has kept the car awake for ``idle_sleep_s``;
2. *integrate* over a step that ends at or before the next thing that can happen: one
   second while driving (speed, position, road load, regeneration), up to five minutes
   when parked (temperatures, idle drain, charging).

Energy is the battery's state variable and SoC is derived from it, so the SoC drop of a
drive times the usable capacity is the energy the drive used, exactly; a charge's SoC rise
times the usable capacity is the energy it put into the battery.

Awake and asleep: the car is awake while anything keeps it awake (driving, someone in or
at the car, charging, sentry, climate or dog mode, an update downloading or installing,
service) and for ``idle_sleep_s`` after the last of those, or after the last
``vehicle_data`` it answered, or after a wake. The API reports ``offline`` during offline
windows (no connectivity) whatever the car does inside them.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from fleetlog.sim.geo import Point, elevation_m
from fleetlog.sim.physics import (
    DRIVE_BASE_AUX_KW,
    IDLE_ASLEEP_KW,
    IDLE_AWAKE_KW,
    SENTRY_KW,
    Weather,
    ac_current_a,
    battery_heater_kw,
    dc_power_kw,
    drive_power_kw,
    hvac_kw,
    pack_voltage_v,
    relax,
)
from fleetlog.sim.plan import Activity, CarPlan, Charge, ChargeSite, Drive, Window
from fleetlog.sim.truth import CarLog, ChargeTruth, DriveTruth, UpdateTruth

ApiState = Literal["online", "asleep", "offline"]
Phase = Literal["parked", "boarding", "driving", "alighting"]
ChargingState = Literal["Disconnected", "Starting", "Charging", "Complete", "Stopped"]

BOARDING_S = 60.0  # from the driver reaching the car to moving off
ALIGHTING_S = 90.0  # from stopping to the driver walking away
STARTING_S = 15.0  # "Starting" before current flows
MAX_PARKED_STEP_S = 300.0
DRIVE_STEP_S = 1.0
ACCEL_MS2 = 2.0
BRAKE_MS2 = 2.0
AC_EFFICIENCY = 0.92  # grid to battery
DC_EFFICIENCY = 0.95
SETPOINT_C = 21.0


def _dt(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


@dataclass(frozen=True, slots=True)
class SoftwareUpdateState:
    status: str  # "" | "available" | "downloading" | "installing"
    version: str
    download_perc: int
    install_perc: int
    expected_duration_s: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole observable state of a car at one instant, in canonical units."""

    time: datetime
    state: ApiState
    awake: bool
    keep_awake: tuple[str, ...]
    phase: Phase
    shift_state: str | None
    position: Point
    heading_deg: float
    elevation_m: float
    speed_kmh: float | None
    power_kw: float
    odometer_km: float
    battery_level: float
    usable_battery_level: float
    energy_kwh: float
    rated_range_km: float
    ideal_range_km: float
    est_range_km: float
    charge_limit_soc: float
    charging_state: ChargingState
    charger_power_kw: float
    charger_voltage_v: float
    charger_actual_current_a: float
    charger_pilot_current_a: float
    charger_phases: int | None
    charge_energy_added_kwh: float
    charge_rate_kmh: float
    time_to_full_charge_h: float
    fast_charger_present: bool
    fast_charger_type: str
    fast_charger_brand: str
    conn_charge_cable: str
    charge_port_door_open: bool
    charge_port_latch: str
    scheduled_charging_pending: bool
    scheduled_charging_start: datetime | None
    outside_temp_c: float
    inside_temp_c: float
    battery_temp_c: float
    is_climate_on: bool
    is_preconditioning: bool
    climate_keeper_mode: str
    battery_heater_on: bool
    sentry_mode: bool
    locked: bool
    user_present: bool
    doors_open: bool
    tpms_bar: tuple[float, float, float, float]
    tpms_last_seen: datetime
    car_version: str
    software_update: SoftwareUpdateState
    in_service: bool
    route_destination: str | None
    route_remaining_km: float | None


class Car:
    """One simulated vehicle following its plan. See the module docstring for the rules."""

    def __init__(self, plan: CarPlan, start: datetime, weather: Weather) -> None:
        self.plan = plan
        self.spec = plan.spec
        self.weather = weather
        self.log = CarLog()
        self._listeners: list[Callable[[Snapshot], None]] = []
        self._t = start.timestamp()
        self._queue: deque[Activity] = deque(plan.activities)
        self._last_end = self._t
        self._position = plan.home.point
        self._heading = 0.0
        self._energy = plan.spec.usable_kwh * plan.soc / 100.0
        self._odometer = plan.odometer_km
        self._version = plan.spec.car_version
        self._charge_limit = plan.charge_limit_soc
        # awake / asleep
        self._awake = True
        self._idle_since = self._t
        self._wake_at: float | None = None
        self._reported: ApiState | None = None
        self._last_awake = self._t
        # temperatures
        t0 = weather.temperature_c(self._t)
        self._inside = t0
        self._battery_temp = t0 + 3.0
        self._tyre_warm = 0.0
        self._recent_wh_per_km = plan.spec.rated_wh_per_km * 1.05
        # phases and driving
        self._phase: Phase = "parked"
        self._phase_end = 0.0
        self._drive: Drive | None = None
        self._leg_i = 0
        self._leg_s = 0.0
        self._stop_left = 0.0
        self._speed = 0.0
        self._power = 0.0
        self._drive_energy = 0.0
        self._drive_max_speed = 0.0
        self._drive_start_t = 0.0
        # charging
        self._charge: Charge | None = None
        self._charging: ChargingState = "Disconnected"
        self._charging_since = 0.0
        self._charge_power = 0.0  # what the car reports: AC input, or DC into the car
        self._charge_battery_kw = 0.0
        self._charge_current = 0.0
        self._charge_voltage = 0.0
        self._charge_added = 0.0
        self._charge_grid = 0.0
        self._charge_peak = 0.0
        self._charge_first: float | None = None
        self._charge_last: float | None = None
        self._charge_soc0 = 0.0
        self._charge_plugged = 0.0
        self._charge_offline_at_start = False
        self._complete_at: float | None = None
        # windows: a sorted list of boundaries; the active set is recomputed when one is passed
        self._windows: list[Window] = sorted(plan.windows, key=lambda w: w.start)
        self._win_bounds: list[float] = self._boundaries()
        self._next_bound_i = 0
        self._active: frozenset[str] = frozenset()
        self._updates_done: set[str] = set()
        self._refresh_windows(force=True)
        self._settle()

    # ----------------------------------------------------------------- public API

    @property
    def now(self) -> datetime:
        return _dt(self._t)

    @property
    def state(self) -> ApiState:
        """The connectivity state the API reports right now."""
        if "offline" in self._active:
            return "offline"
        return "online" if self._awake else "asleep"

    @property
    def in_service(self) -> bool:
        return "service" in self._active

    @property
    def soc(self) -> float:
        return self._energy / self.spec.usable_kwh * 100.0

    @property
    def odometer_km(self) -> float:
        return self._odometer

    @property
    def car_version(self) -> str:
        return self._version

    def add_listener(self, callback: Callable[[Snapshot], None]) -> None:
        """Call `callback` with a fresh snapshot after every step (1 s while driving)."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[Snapshot], None]) -> None:
        self._listeners.remove(callback)

    def add_window(self, window: Window) -> None:
        """Lay a window over the plan while running (e.g. a service visit or an outage)."""
        self._windows.append(window)
        self._windows.sort(key=lambda w: w.start)
        self._win_bounds = self._boundaries()
        self._refresh_windows(force=True)

    def advance(self, to: datetime) -> None:
        """Run the car up to `to`. Moving backwards is a no-op."""
        target = to.timestamp()
        while self._t < target - 1e-9:
            dt = self._next_dt(target)
            self._integrate(dt)
            self._t += dt
            self._refresh_windows()
            self._settle()
            if self._listeners:
                snap = self.snapshot()
                for cb in list(self._listeners):
                    cb(snap)

    def touch(self) -> None:
        """A ``vehicle_data`` call reached the awake car: its idle timer starts again."""
        if self.state == "online":
            self._idle_since = max(self._idle_since, self._t)

    def wake_up(self, delay_s: float) -> None:
        """A ``wake_up`` call: an asleep, reachable car comes online `delay_s` from now."""
        if self.state == "offline":
            return
        if self._awake:
            self._idle_since = self._t
        elif self._wake_at is None:
            self._wake_at = self._t + delay_s

    # ----------------------------------------------------------------- windows

    def _boundaries(self) -> list[float]:
        bounds = {w.start.timestamp() for w in self._windows}
        bounds |= {w.end.timestamp() for w in self._windows}
        for u in self.plan.updates:
            a = u.available_at.timestamp()
            i = u.install_at.timestamp()
            bounds |= {a, a + u.download_s, i, i + u.install_s}
        return sorted(bounds)

    def _refresh_windows(self, *, force: bool = False) -> None:
        if not force and (
            self._next_bound_i >= len(self._win_bounds)
            or self._t < self._win_bounds[self._next_bound_i]
        ):
            return
        self._next_bound_i = bisect.bisect_right(self._win_bounds, self._t + 1e-9)
        active: set[str] = set()
        for w in self._windows:
            if w.start.timestamp() <= self._t + 1e-9 < w.end.timestamp():
                active.add(w.kind)
        update = self._update_state()
        if update.status in ("downloading", "installing"):
            active.add("update")
        self._active = frozenset(active)

    def _update_state(self) -> SoftwareUpdateState:
        t = self._t + 1e-9
        for u in self.plan.updates:
            a = u.available_at.timestamp()
            i = u.install_at.timestamp()
            expected = int(u.install_s)
            if t < a or t >= i + u.install_s:
                continue
            if t < a + u.download_s:
                perc = int(100 * (t - a) / u.download_s)
                return SoftwareUpdateState("downloading", u.version, perc, 0, expected)
            if t < i:
                return SoftwareUpdateState("available", u.version, 100, 0, expected)
            perc = int(100 * (t - i) / u.install_s)
            return SoftwareUpdateState("installing", u.version, 100, perc, expected)
        return SoftwareUpdateState("", "", 0, 0, 0)

    def _keep_awake(self) -> tuple[str, ...]:
        reasons: list[str] = [
            k
            for k in (
                "sentry",
                "climate",
                "dog",
                "precondition",
                "service",
                "present",
                "door",
                "update",
            )
            if k in self._active
        ]
        if self._phase != "parked":
            reasons.append(self._phase)
        if self._charging in ("Starting", "Charging"):
            reasons.append("charging")
        return tuple(reasons)

    # ----------------------------------------------------------------- settle

    def _settle(self) -> None:
        t = self._t
        if self._phase == "boarding" and t >= self._phase_end - 1e-9:
            self._begin_driving()
        elif self._phase == "alighting" and t >= self._phase_end - 1e-9:
            self._phase = "parked"
            self._last_end = t
            self._drive = None
        if self._phase == "parked":
            self._start_due_activity()
        self._settle_charging()
        self._settle_updates()
        if self._wake_at is not None and t >= self._wake_at - 1e-9:
            self._wake_at = None
            if "offline" not in self._active:
                self._awake = True
                self._idle_since = t
        reasons = self._keep_awake()
        if reasons:
            if not self._awake:
                self._awake = True
                self._wake_at = None
            self._idle_since = max(self._idle_since, t)
        elif self._awake and t >= self._idle_since + self.spec.idle_sleep_s - 1e-9:
            self._awake = False
        if self._awake:
            self._last_awake = t
        state = self.state
        if state != self._reported:
            self._reported = state
            self.log.enter_state(state, _dt(t))

    def _due(self, activity: Activity) -> float:
        start = activity.start
        charge = self._charge
        if (
            start.at is None
            and charge is not None
            and (charge.unplug_at is not None or charge.unplug_after_complete is not None)
        ):
            # A chained activity follows the charge's own end (a DC stop that runs to its target).
            return math.inf
        if start.at is not None:
            return max(start.at.timestamp(), self._last_end + start.after.total_seconds())
        return self._last_end + start.after.total_seconds()

    def _start_due_activity(self) -> None:
        if not self._queue or self._due(self._queue[0]) > self._t + 1e-9:
            return
        activity = self._queue.popleft()
        if isinstance(activity, Drive):
            if self._charge is not None:
                self._unplug()
            self._drive = activity
            self._phase = "boarding"
            self._phase_end = self._t + BOARDING_S
        else:
            if self._charge is not None:
                self._unplug()
            self._plug(activity)

    # ----------------------------------------------------------------- driving

    def _begin_driving(self) -> None:
        assert self._drive is not None
        self._phase = "driving"
        self._leg_i = 0
        self._leg_s = 0.0
        self._stop_left = 0.0
        self._speed = 0.0
        self._drive_energy = 0.0
        self._drive_max_speed = 0.0
        self._drive_start_t = self._t
        self.log.drives.append(
            DriveTruth(
                start=_dt(self._t),
                end=None,
                route=self._drive.route.name,
                start_point=self._position,
                end_point=None,
                path=tuple(self._drive.route.points()),
                odometer_start_km=self._odometer,
                odometer_end_km=None,
                soc_start=self.soc,
                soc_end=None,
                energy_used_kwh=0.0,
                max_speed_kmh=0.0,
            )
        )

    def _end_driving(self) -> None:
        assert self._drive is not None
        self._phase = "alighting"
        self._phase_end = self._t + ALIGHTING_S
        self._speed = 0.0
        self._power = 0.0
        drive = self.log.drives[-1]
        route = self._drive.route
        path = drive.path
        if self._leg_i < len(route.legs):  # stranded: the path stops where the car did
            path = (*route.points()[: self._leg_i + 1], self._position)
        distance = self._odometer - drive.odometer_start_km
        if distance > 0.5:
            wh = self._drive_energy * 1000.0 / distance
            weight = min(1.0, distance / 30.0)
            self._recent_wh_per_km += (wh - self._recent_wh_per_km) * weight
        self.log.drives[-1] = replace(
            drive,
            end=_dt(self._t),
            end_point=self._position,
            path=path,
            odometer_end_km=self._odometer,
            soc_end=self.soc,
            energy_used_kwh=self._drive_energy,
            max_speed_kmh=self._drive_max_speed,
            ended_offline="offline" in self._active,
        )

    def _drive_step(self, dt: float, aux_kw: float) -> None:
        assert self._drive is not None
        legs = self._drive.route.legs
        factor = self._drive.speed_factor
        before = self._position
        v0 = self._speed
        if self._stop_left > 0:
            self._stop_left -= dt
            self._speed = 0.0
            moved = 0.0
        else:
            leg = legs[self._leg_i]
            v_lim = leg.limit_kmh / 3.6 * factor
            # Brake ahead of a stop or the end of the route, and of a lower limit on the next leg.
            d_end = leg.length_m - self._leg_s
            last = self._leg_i == len(legs) - 1
            v_end = (
                0.0
                if (leg.stop_s > 0 or last)
                else min(v_lim, legs[self._leg_i + 1].limit_kmh / 3.6 * factor)
            )
            v_allow = min(v_lim, math.sqrt(v_end * v_end + 2 * BRAKE_MS2 * max(0.0, d_end)))
            if not last and leg.stop_s <= 0 and self._leg_i + 2 < len(legs):
                nxt = legs[self._leg_i + 1]
                v_far = 0.0 if nxt.stop_s > 0 else legs[self._leg_i + 2].limit_kmh / 3.6 * factor
                v_allow = min(
                    v_allow, math.sqrt(v_far * v_far + 2 * BRAKE_MS2 * (d_end + nxt.length_m))
                )
            if v0 < v_allow:
                v1 = min(v_allow, v0 + ACCEL_MS2 * dt)
            else:
                v1 = max(v_allow, v0 - 1.5 * BRAKE_MS2 * dt)
            moved = max(0.0, (v0 + v1) / 2 * dt)
            self._speed = v1
            self._advance_along(moved)
        after = self._position
        climb = (elevation_m(after) - elevation_m(before)) / dt
        accel = (self._speed - v0) / dt
        power = drive_power_kw(
            self.spec.body, (v0 + self._speed) / 2, accel, climb, aux_kw, self._battery_temp
        )
        used = power * dt / 3600.0
        if used > self._energy:  # stranded with an empty pack
            used = self._energy
        self._energy -= used
        self._drive_energy += used
        self._power = power
        self._odometer += moved / 1000.0
        self._drive_max_speed = max(self._drive_max_speed, self._speed * 3.6)
        if self._leg_i >= len(legs) or self._energy <= 0.0:
            self._end_driving()

    def _advance_along(self, moved: float) -> None:
        assert self._drive is not None
        legs = self._drive.route.legs
        s = self._leg_s + moved
        while self._leg_i < len(legs):
            leg = legs[self._leg_i]
            if s < leg.length_m - 0.3:
                break
            s = max(0.0, s - leg.length_m)
            self._leg_i += 1
            if leg.stop_s > 0 or self._leg_i == len(legs):
                self._stop_left = leg.stop_s
                self._speed = 0.0
                s = 0.0
                break
        self._leg_s = s
        if self._leg_i < len(legs):
            leg = legs[self._leg_i]
            f = min(1.0, s / leg.length_m)
            self._position = Point(
                leg.start.lat + (leg.end.lat - leg.start.lat) * f,
                leg.start.lng + (leg.end.lng - leg.start.lng) * f,
            )
            self._heading = leg.heading_deg
        else:
            self._position = legs[-1].end

    # ----------------------------------------------------------------- charging

    def _plug(self, charge: Charge) -> None:
        self._charge = charge
        self._charge_plugged = self._t
        self._charge_added = 0.0
        self._charge_grid = 0.0
        self._charge_peak = 0.0
        self._charge_first = None
        self._charge_last = None
        self._charge_soc0 = self.soc
        self._complete_at = None
        self._charge_limit = charge.limit_soc
        self._charge_offline_at_start = False
        scheduled = charge.start_charging_at
        if scheduled is not None and scheduled.timestamp() > self._t:
            self._set_charging("Stopped")
        else:
            self._set_charging("Starting")
        self._idle_since = self._t  # plugging in wakes the car
        self._awake = True
        self.log.charges.append(self._charge_truth())

    def _charge_truth(self) -> ChargeTruth:
        assert self._charge is not None
        site = self._charge.site
        return ChargeTruth(
            kind=site.kind,
            place=site.name or site.place.name,
            position=self._position,
            plugged_at=_dt(self._charge_plugged),
            start=None if self._charge_first is None else _dt(self._charge_first),
            end=None if self._charge_last is None else _dt(self._charge_last),
            unplugged_at=None,
            soc_start=self._charge_soc0,
            soc_end=self.soc,
            energy_added_kwh=self._charge_added,
            energy_from_grid_kwh=self._charge_grid,
            peak_kw=self._charge_peak,
            started_offline=self._charge_offline_at_start,
        )

    def _unplug(self) -> None:
        self.log.charges[-1] = replace(self._charge_truth(), unplugged_at=_dt(self._t))
        self._charge = None
        self._set_charging("Disconnected")
        self._last_end = self._t

    def _set_charging(self, state: ChargingState) -> None:
        self._charging = state
        self._charging_since = self._t
        if state != "Charging":
            self._charge_power = 0.0
            self._charge_battery_kw = 0.0
            self._charge_current = 0.0
            self._charge_voltage = 0.0 if state == "Disconnected" else self._charge_voltage

    def _settle_charging(self) -> None:
        charge = self._charge
        if charge is None:
            return
        t = self._t
        scheduled = charge.start_charging_at
        if (
            self._charging == "Stopped"
            and scheduled is not None
            and t >= scheduled.timestamp() - 1e-9
        ):
            self._set_charging("Starting")
        if self._charging == "Starting" and t >= self._charging_since + STARTING_S - 1e-9:
            self._set_charging("Charging" if self.soc < self._charge_limit - 1e-6 else "Complete")
        if self._charging == "Charging" and self.soc >= self._charge_limit - 1e-6:
            self._set_charging("Complete")
        if self._charging == "Complete" and self._complete_at is None:
            self._complete_at = t
        unplug = self._unplug_time()
        if unplug is not None and t >= unplug - 1e-9:
            self._unplug()
        elif self.log.charges:
            self.log.charges[-1] = self._charge_truth()

    def _unplug_time(self) -> float | None:
        charge = self._charge
        if charge is None:
            return None
        times: list[float] = []
        if charge.unplug_at is not None:
            times.append(charge.unplug_at.timestamp())
        if charge.unplug_after_complete is not None and self._complete_at is not None:
            times.append(self._complete_at + charge.unplug_after_complete.total_seconds())
        return min(times) if times else None

    def _charge_step(self, dt: float, site: ChargeSite) -> None:
        soc = self.soc
        room_kwh = max(0.0, (self._charge_limit - soc) / 100.0 * self.spec.usable_kwh)
        if site.kind == "ac":
            amps = ac_current_a(site.amps, self.spec.ac_max_amps, soc, self._charge_limit)
            grid_kw = site.phases * site.voltage_v * amps / 1000.0
            battery_kw = grid_kw * AC_EFFICIENCY
            reported_kw = grid_kw
            self._charge_voltage = site.voltage_v
            self._charge_current = amps
        else:
            battery_kw = dc_power_kw(self.spec.dc_peak_kw, site.max_kw, soc, self._battery_temp)
            grid_kw = battery_kw / DC_EFFICIENCY  # the stall's own losses
            reported_kw = battery_kw
            self._charge_voltage = pack_voltage_v(soc)
            self._charge_current = battery_kw * 1000.0 / self._charge_voltage
        added = battery_kw * dt / 3600.0
        if added >= room_kwh:
            # Reaching the limit inside the step: only the energy up to it flows.
            share = room_kwh / added if added > 0 else 0.0
            added = room_kwh
            grid = grid_kw * dt * share / 3600.0
        else:
            grid = grid_kw * dt / 3600.0
        if added > 0:
            if self._charge_first is None:
                self._charge_first = self._t
                self._charge_offline_at_start = "offline" in self._active
            self._charge_last = self._t + dt
        self._energy += added
        self._charge_added += added
        self._charge_grid += grid
        self._charge_power = reported_kw
        self._charge_battery_kw = battery_kw
        self._charge_peak = max(self._charge_peak, reported_kw)

    # ----------------------------------------------------------------- updates

    def _settle_updates(self) -> None:
        t = self._t + 1e-9
        for u in self.plan.updates:
            i = u.install_at.timestamp()
            if u.version in self._updates_done or t < i:
                continue
            if not any(x.version_to == u.version for x in self.log.updates):
                self.log.updates.append(
                    UpdateTruth(self._version, u.version, u.available_at, _dt(i), None)
                )
            if t >= i + u.install_s:
                self._updates_done.add(u.version)
                self._version = u.version
                for k, rec in enumerate(self.log.updates):
                    if rec.version_to == u.version:
                        self.log.updates[k] = replace(rec, install_end=_dt(i + u.install_s))

    # ----------------------------------------------------------------- stepping

    def _next_dt(self, target: float) -> float:
        t = self._t
        if self._phase == "driving":
            return min(DRIVE_STEP_S, target - t)
        candidates = [target, t + MAX_PARKED_STEP_S]
        if self._phase in ("boarding", "alighting"):
            candidates.append(self._phase_end)
        elif self._queue:
            candidates.append(self._due(self._queue[0]))
        if self._next_bound_i < len(self._win_bounds):
            candidates.append(self._win_bounds[self._next_bound_i])
        if self._wake_at is not None:
            candidates.append(self._wake_at)
        if self._awake and not self._keep_awake():
            candidates.append(self._idle_since + self.spec.idle_sleep_s)
        charge = self._charge
        if charge is not None:
            if self._charging == "Starting":
                candidates.append(self._charging_since + STARTING_S)
            elif self._charging == "Stopped" and charge.start_charging_at is not None:
                candidates.append(charge.start_charging_at.timestamp())
            elif self._charging == "Charging":
                candidates.append(t + (10.0 if charge.site.kind == "dc" else 30.0))
            unplug = self._unplug_time()
            if unplug is not None:
                candidates.append(unplug)
        dt = (
            min(c for c in candidates if c > t + 1e-9) - t
            if any(c > t + 1e-9 for c in candidates)
            else target - t
        )
        return max(dt, 1e-6)

    def _integrate(self, dt: float) -> None:
        mid = self._t + dt / 2
        outside = self.weather.temperature_c(mid)
        active = self._active
        driving = self._phase == "driving"
        climate = (
            driving
            or self._phase == "boarding"
            or bool(active & {"climate", "dog", "precondition"})
        )
        aux = 0.0
        if climate:
            aux += hvac_kw(outside, self._inside, SETPOINT_C)
        heater = "precondition" in active and battery_heater_kw(self._battery_temp) > 0
        if heater:
            aux += battery_heater_kw(self._battery_temp)
        if "sentry" in active:
            aux += SENTRY_KW
        charging = self._charging == "Charging" and self._charge is not None
        if driving:
            self._drive_step(dt, aux + DRIVE_BASE_AUX_KW)
        else:
            self._power = 0.0
            idle = IDLE_AWAKE_KW if self._awake else IDLE_ASLEEP_KW
            if self._charge is not None:
                # Plugged in: the car's own loads come from the grid, not from the pack.
                self._charge_grid += (aux + idle) * dt / 3600.0
                if charging:
                    assert self._charge is not None
                    self._charge_step(dt, self._charge.site)
                    self._power = -self._charge_power
            else:
                self._energy = max(0.0, self._energy - (aux + idle) * dt / 3600.0)
        # Temperatures: cabin, pack and tyres follow their targets.
        self._inside = relax(
            self._inside, SETPOINT_C if climate else outside + 2.0, dt, 480.0 if climate else 3600.0
        )
        if driving:
            self._battery_temp = relax(self._battery_temp, max(outside + 10.0, 28.0), dt, 5400.0)
            self._tyre_warm = relax(self._tyre_warm, 15.0, dt, 900.0)
        elif charging and self._charge is not None and self._charge.site.kind == "dc":
            self._battery_temp = relax(self._battery_temp, 40.0, dt, 1800.0)
        elif heater:
            self._battery_temp = relax(self._battery_temp, 25.0, dt, 2400.0)
        elif charging:
            self._battery_temp = relax(self._battery_temp, outside + 8.0, dt, 10_800.0)
        else:
            self._battery_temp = relax(self._battery_temp, outside, dt, 28_800.0)
        if not driving:
            self._tyre_warm = relax(self._tyre_warm, 0.0, dt, 2400.0)
        if self._keep_awake():
            self._idle_since = max(self._idle_since, self._t + dt)

    # ----------------------------------------------------------------- snapshot

    def snapshot(self) -> Snapshot:
        """The observable state now, canonical units."""
        spec = self.spec
        t = self._t
        outside = self.weather.temperature_c(t)
        level = self.soc
        cold_lock = min(level, max(0.0, (5.0 - self._battery_temp) * 0.35), 6.0)
        usable = level - cold_lock
        kwh_per_pct = spec.usable_kwh / 100.0
        rated = level * kwh_per_pct * 1000.0 / spec.rated_wh_per_km
        ideal = level * kwh_per_pct * 1000.0 / spec.ideal_wh_per_km
        est = usable * kwh_per_pct * 1000.0 / self._recent_wh_per_km
        charge = self._charge
        site = charge.site if charge is not None else None
        charging = self._charging == "Charging"
        battery_kw = self._charge_battery_kw
        if charging and battery_kw > 0:
            to_full = max(0.0, (self._charge_limit - level) * kwh_per_pct / battery_kw)
            rate = battery_kw * 1000.0 / spec.rated_wh_per_km
        else:
            to_full, rate = 0.0, 0.0
        active = self._active
        phase = self._phase
        present = phase != "parked" or "present" in active
        doors = (
            "door" in active
            or (phase == "boarding" and self._phase_end - t > BOARDING_S - 20)
            or (phase == "alighting" and ALIGHTING_S - (self._phase_end - t) < 25)
        )
        locked = phase in ("parked", "driving") and "present" not in active and "door" not in active
        tyre_t = outside + self._tyre_warm
        base = (2.90, 2.92, 2.88, 2.91)
        tpms = tuple(round(p * (273.15 + tyre_t) / 293.15, 3) for p in base)
        drive = self._drive
        remaining = None
        if drive is not None and phase == "driving":
            legs = drive.route.legs
            remaining = (sum(leg.length_m for leg in legs[self._leg_i :]) - self._leg_s) / 1000.0
        ac = site is not None and site.kind == "ac"
        plugged = charge is not None
        return Snapshot(
            time=_dt(t),
            state=self.state,
            awake=self._awake,
            keep_awake=self._keep_awake(),
            phase=phase,
            shift_state="D" if phase == "driving" else ("P" if phase != "parked" else None),
            position=self._position,
            heading_deg=self._heading,
            elevation_m=elevation_m(self._position),
            speed_kmh=self._speed * 3.6 if phase == "driving" else None,
            power_kw=self._power,
            odometer_km=self._odometer,
            battery_level=level,
            usable_battery_level=usable,
            energy_kwh=self._energy,
            rated_range_km=rated,
            ideal_range_km=ideal,
            est_range_km=est,
            charge_limit_soc=self._charge_limit,
            charging_state=self._charging,
            charger_power_kw=self._charge_power if charging else 0.0,
            charger_voltage_v=self._charge_voltage if plugged else 0.0,
            charger_actual_current_a=self._charge_current if charging else 0.0,
            charger_pilot_current_a=(site.amps if site is not None and ac else 0.0),
            charger_phases=(site.phases if ac and site is not None and charging else None),
            charge_energy_added_kwh=self._charge_added,
            charge_rate_kmh=rate,
            time_to_full_charge_h=to_full,
            fast_charger_present=plugged and site is not None and site.kind == "dc",
            fast_charger_type=(
                site.fast_charger_type if site is not None and site.kind == "dc" else "<invalid>"
            ),
            fast_charger_brand=(
                site.fast_charger_brand if site is not None and site.kind == "dc" else "<invalid>"
            ),
            conn_charge_cable=("IEC" if spec.region == "eu" else "SAE") if plugged else "<invalid>",
            charge_port_door_open=plugged,
            charge_port_latch="Engaged" if plugged else "Disengaged",
            scheduled_charging_pending=self._charging == "Stopped",
            scheduled_charging_start=charge.start_charging_at if charge is not None else None,
            outside_temp_c=outside,
            inside_temp_c=self._inside,
            battery_temp_c=self._battery_temp,
            is_climate_on=phase in ("boarding", "driving")
            or bool(active & {"climate", "dog", "precondition"}),
            is_preconditioning="precondition" in active,
            climate_keeper_mode="dog" if "dog" in active else "off",
            battery_heater_on="precondition" in active and self._battery_temp < 15.0,
            sentry_mode="sentry" in active,
            locked=locked,
            user_present=present,
            doors_open=doors,
            tpms_bar=(tpms[0], tpms[1], tpms[2], tpms[3]),
            tpms_last_seen=_dt(self._last_awake),
            car_version=self._version,
            software_update=self._update_state(),
            in_service="service" in active,
            route_destination=drive.route.destination.name
            if drive is not None and phase == "driving"
            else None,
            route_remaining_km=remaining,
        )
