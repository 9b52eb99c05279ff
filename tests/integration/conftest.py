"""Fixtures for the integration tests: the shared Mosquitto, this folder's helpers."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # this folder's helpers (_live)

MQTT_PORT = 1883


@pytest.fixture(scope="session")
def mosquitto() -> int:
    """The port of the shared Mosquitto on 127.0.0.1 (skipped when absent, failed under CI)."""
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", MQTT_PORT)) == 0:
            return MQTT_PORT
    message = f"Mosquitto is not running on 127.0.0.1:{MQTT_PORT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
