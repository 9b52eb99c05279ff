"""The physics of the simulated car: road load, auxiliary loads, charging curves, weather.

Pure functions of their arguments. The numbers are chosen so that a mid-size EV lands
where real ones do: ~140-160 Wh/km at moderate speed in mild weather, ~190 Wh/km at
130 km/h, far more on short trips in the cold; 11 kW on three-phase AC; a DC curve that
peaks early and tapers past ~50 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

G = 9.81
AIR_DENSITY = 1.2


@dataclass(frozen=True, slots=True)
class Body:
    """What the road load depends on."""

    mass_kg: float = 1_930.0  # car plus driver
    cda_m2: float = 0.51
    crr: float = 0.009
    drivetrain_eff: float = 0.88
    regen_eff: float = 0.70
    regen_max_kw: float = 60.0


def drive_power_kw(
    body: Body,
    speed_ms: float,
    accel_ms2: float,
    climb_ms: float,
    aux_kw: float,
    battery_temp_c: float,
) -> float:
    """Battery power while driving (positive = discharging, negative = regeneration).

    `climb_ms` is the vertical speed (m/s): potential energy is paid for going up and
    partly recovered going down through regeneration. A cold pack regenerates less.
    """
    force = (
        (
            body.mass_kg * G * body.crr
            + 0.5 * AIR_DENSITY * body.cda_m2 * speed_ms * speed_ms
            + body.mass_kg * accel_ms2
        )
        if speed_ms > 0.05
        else body.mass_kg * max(0.0, accel_ms2)
    )
    wheel_w = force * speed_ms + body.mass_kg * G * climb_ms
    if wheel_w >= 0:
        battery_w = wheel_w / body.drivetrain_eff
    else:
        cold = min(1.0, max(0.1, (battery_temp_c + 5.0) / 25.0))
        battery_w = max(wheel_w * body.regen_eff, -body.regen_max_kw * 1000.0 * cold)
    return battery_w / 1000.0 + aux_kw


def hvac_kw(outside_c: float, inside_c: float, setpoint_c: float = 21.0) -> float:
    """Cabin heating or cooling power: a heat pump's share of the gap to the setpoint."""
    gap = setpoint_c - outside_c
    if gap > 0:
        # Heating gets costlier the colder it is outside and while the cabin is still cold.
        warmup = 1.5 if inside_c < setpoint_c - 5 else 1.0
        return min(7.0, 0.16 * gap * warmup)
    return min(3.0, 0.12 * -gap)


def battery_heater_kw(battery_temp_c: float) -> float:
    """Pack heating for preconditioning or a DC stop in the cold."""
    return 5.0 if battery_temp_c < 15.0 else 0.0


IDLE_AWAKE_KW = 0.20
IDLE_ASLEEP_KW = 0.015
SENTRY_KW = 0.25
DRIVE_BASE_AUX_KW = 0.30


def ac_current_a(site_amps: float, car_max_amps: float, soc: float, limit: float) -> float:
    """AC line current with the taper in the last two percent before the limit."""
    amps = min(site_amps, car_max_amps)
    room = limit - soc
    if room < 2.0:
        amps *= max(0.25, room / 2.0)
    return amps


def dc_power_kw(peak_kw: float, site_kw: float, soc: float, battery_temp_c: float) -> float:
    """DC charging power over SoC: ramp, plateau to ~20 %, long taper to the top."""
    if soc < 10:
        share = 0.75 + 0.025 * soc
    elif soc < 20:
        share = 1.0
    elif soc < 80:
        share = 1.0 - (soc - 20) * (0.70 / 60.0)
    else:
        share = max(0.08, 0.30 - (soc - 80) * 0.011)
    # A cold pack takes much less until it has warmed up.
    cold = min(1.0, max(0.25, (battery_temp_c - 0.0) / 25.0))
    return min(site_kw, peak_kw * share * cold)


def pack_voltage_v(soc: float, nominal_v: float = 360.0) -> float:
    """Open-circuit pack voltage, rising with SoC (a 400 V architecture)."""
    return nominal_v * (0.88 + 0.0022 * soc)


@dataclass(frozen=True, slots=True)
class Weather:
    """Outside temperature over time: a daily swing around a per-day mean."""

    mean_c: float = 12.0
    swing_c: float = 5.0
    day_offsets_c: tuple[float, ...] = ()
    utc_offset_s: int = 3600

    def temperature_c(self, epoch_s: float) -> float:
        local = epoch_s + self.utc_offset_s
        day = int(local // 86_400)
        hour = (local % 86_400) / 3600.0
        shift = self.day_offsets_c[day % len(self.day_offsets_c)] if self.day_offsets_c else 0.0
        # Coldest at ~04:00, warmest at ~16:00.
        return self.mean_c + shift - self.swing_c * math.cos(2 * math.pi * (hour - 4.0) / 24.0)


def relax(value: float, target: float, dt_s: float, tau_s: float) -> float:
    """First-order approach of `value` to `target` with time constant `tau_s` (exact for any dt)."""
    return target + (value - target) * math.exp(-dt_s / tau_s)
