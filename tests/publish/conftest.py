"""Fixtures for the MQTT publisher: the shared Mosquitto, private brokers.

Other test runs use the same Mosquitto at the same time, so every test gets its own
``MQTT_NAMESPACE`` and Home Assistant discovery prefix and only listens below them.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# this folder's helpers (_mqtt, _day) and the machine tests' scripted world (_world)
sys.path[:0] = [str(HERE), str(HERE.parent / "vehicle")]

from _mqtt import HOST, PrivateBroker, Space, free_port, reachable  # noqa: E402

SHARED_PORT = 1883


@pytest.fixture(scope="session")
def shared_broker() -> int:
    """The port of the shared Mosquitto (127.0.0.1:1883)."""
    if not reachable(SHARED_PORT):
        message = "Mosquitto is not running on 127.0.0.1:1883"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_PORT


@pytest.fixture
def space(shared_broker: int) -> Space:
    return Space(shared_broker)


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} {HOST}\nallow_anonymous true\npersistence false\n")
    broker = PrivateBroker(port, conf)
    yield broker
    broker.stop()
