"""How numbers and times are shown: the user's units, preferred range, time zone and language.

The database keeps TeslaMate's canonical units (km, °C, bar, kWh, UTC without a zone); every
conversion for display happens here, once, so that pages, charts and the JSON API's optional
display fields agree. The API itself answers in canonical units (documented in the OpenAPI).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from fleetlog.store import tables as t

KM_PER_MILE = 1.609344
PSI_PER_BAR = 14.503773773

# Interface words only; place names and numbers need no translation. Languages not listed
# fall back to English (the setting also drives address lookups, which know many more).
_WORDS: dict[str, dict[str, str]] = {
    "de": {
        "Cars": "Autos",
        "Drives": "Fahrten",
        "Charges": "Ladevorgänge",
        "Battery": "Batterie",
        "Efficiency": "Effizienz",
        "Vampire drain": "Standverbrauch",
        "Timeline": "Zeitleiste",
        "Statistics": "Statistik",
        "Locations": "Orte",
        "Updates": "Updates",
        "Costs": "Kosten",
        "Settings": "Einstellungen",
        "Geofences": "Geofences",
        "Sign out": "Abmelden",
        "Sign in": "Anmelden",
        "Apply": "Anwenden",
        "Car": "Auto",
        "From": "Von",
        "To": "Bis",
        "Save": "Speichern",
    },
    "fr": {
        "Cars": "Voitures",
        "Drives": "Trajets",
        "Charges": "Recharges",
        "Battery": "Batterie",
        "Efficiency": "Efficacité",
        "Vampire drain": "Consommation à l'arrêt",
        "Timeline": "Chronologie",
        "Statistics": "Statistiques",
        "Locations": "Lieux",
        "Updates": "Mises à jour",
        "Costs": "Coûts",
        "Settings": "Réglages",
        "Sign out": "Déconnexion",
        "Sign in": "Connexion",
        "Apply": "Appliquer",
        "Car": "Voiture",
        "From": "Du",
        "To": "Au",
        "Save": "Enregistrer",
    },
}

LANGUAGES: tuple[str, ...] = ("en", "de", "fr")


@dataclass(frozen=True, slots=True)
class Prefs:
    """The global settings row plus the display time zone."""

    length: str = "km"  # km | mi
    temperature: str = "C"  # C | F
    pressure: str = "bar"  # bar | psi
    preferred_range: str = "rated"  # rated | ideal
    language: str = "en"
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    # --- units -------------------------------------------------------------------------

    @property
    def dist_unit(self) -> str:
        return self.length

    @property
    def speed_unit(self) -> str:
        return "mph" if self.length == "mi" else "km/h"

    @property
    def temp_unit(self) -> str:
        return "°F" if self.temperature == "F" else "°C"

    @property
    def cons_unit(self) -> str:
        return f"Wh/{self.length}"

    def dist(self, km: float | None) -> float | None:
        if km is None:
            return None
        return float(km) / KM_PER_MILE if self.length == "mi" else float(km)

    def speed(self, kmh: float | None) -> float | None:
        return self.dist(kmh)

    def temp(self, c: float | None) -> float | None:
        if c is None:
            return None
        return float(c) * 9 / 5 + 32 if self.temperature == "F" else float(c)

    def pressure_value(self, bar: float | None) -> float | None:
        if bar is None:
            return None
        return float(bar) * PSI_PER_BAR if self.pressure == "psi" else float(bar)

    def per_dist(self, per_km: float | None) -> float | None:
        """A quantity per km (Wh/km, cost/km) per the user's unit of length."""
        if per_km is None:
            return None
        return float(per_km) * KM_PER_MILE if self.length == "mi" else float(per_km)

    # --- times -------------------------------------------------------------------------

    def local(self, utc_naive: datetime | None) -> datetime | None:
        if utc_naive is None:
            return None
        return utc_naive.replace(tzinfo=UTC).astimezone(self.tz)

    def word(self, text: str) -> str:
        return _WORDS.get(self.language, {}).get(text, text)


def load_prefs(conn: sa.Connection, tz: ZoneInfo) -> Prefs:
    """The settings row (TeslaMate keeps exactly one) and `tz`."""
    row = conn.execute(sa.select(t.settings).order_by(t.settings.c.id).limit(1)).mappings().first()
    if row is None:
        return Prefs(tz=tz)
    return Prefs(
        length=str(row["unit_of_length"]),
        temperature=str(row["unit_of_temperature"]),
        pressure=str(row["unit_of_pressure"]),
        preferred_range=str(row["preferred_range"]),
        language=str(row["language"]),
        tz=tz,
    )


# --- formatting for templates ----------------------------------------------------------


def fmt_num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{float(value):,.{digits}f}"


def fmt_duration(minutes: float | None) -> str:
    if minutes is None:
        return "–"
    total = round(float(minutes))
    days, rest = divmod(total, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min"


def template_helpers(prefs: Prefs) -> dict[str, Any]:
    """Functions the templates call: each takes canonical values and gives display text."""

    def dist(km: Any, digits: int = 1) -> str:
        value = prefs.dist(None if km is None else float(km))
        return "–" if value is None else f"{fmt_num(value, digits)} {prefs.dist_unit}"

    def speed(kmh: Any) -> str:
        value = prefs.speed(None if kmh is None else float(kmh))
        return "–" if value is None else f"{fmt_num(value, 0)} {prefs.speed_unit}"

    def temp(c: Any) -> str:
        value = prefs.temp(None if c is None else float(c))
        return "–" if value is None else f"{fmt_num(value, 1)} {prefs.temp_unit}"

    def cons(wh_per_km: Any) -> str:
        value = prefs.per_dist(None if wh_per_km is None else float(wh_per_km))
        return "–" if value is None else f"{fmt_num(value, 0)} {prefs.cons_unit}"

    def pressure(bar: Any) -> str:
        value = prefs.pressure_value(None if bar is None else float(bar))
        return "–" if value is None else f"{fmt_num(value, 1)} {prefs.pressure}"

    def when(utc_naive: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        local = prefs.local(utc_naive)
        return "–" if local is None else local.strftime(fmt)

    def pct(value: Any, digits: int = 0) -> str:
        return "–" if value is None else f"{fmt_num(value, digits)} %"

    def kwh(value: Any, digits: int = 2) -> str:
        return "–" if value is None else f"{fmt_num(value, digits)} kWh"

    def money(value: Any) -> str:
        return "–" if value is None else fmt_num(value, 2)

    return {
        "dist": dist,
        "speed": speed,
        "temp": temp,
        "cons": cons,
        "pressure": pressure,
        "when": when,
        "pct": pct,
        "kwh": kwh,
        "money": money,
        "num": fmt_num,
        "duration": fmt_duration,
        "_": prefs.word,
        "prefs": prefs,
    }
