"""The machine's states by their public names, and the fake-online probe's verdicts."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """TeslaMate's states; the value is what MQTT and the web app show."""

    START = "start"
    ONLINE = "online"
    OFFLINE = "offline"
    ASLEEP = "asleep"
    DRIVING = "driving"
    CHARGING = "charging"
    UPDATING = "updating"
    SUSPENDED = "suspended"


class Probe(StrEnum):
    """Is an "online" from the free endpoint a real wake or an MCU2 subsystem check?"""

    IDLE = "idle"
    PROBING = "probing"
    FAKE = "confirmed_fake"
    REAL = "confirmed_real"
