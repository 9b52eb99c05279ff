"""MQTT test helpers: a test's corner of a broker, recorders, private Mosquittos."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from fleetlog.config import Settings, load_settings

HOST = "127.0.0.1"


def reachable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((HOST, port)) == 0


@dataclass
class Space:
    """One test's corner of a broker: its namespace and discovery prefix."""

    port: int
    namespace: str = field(default_factory=lambda: f"t{secrets.token_hex(5)}")
    prefix: str = field(default_factory=lambda: f"ha{secrets.token_hex(5)}")

    @property
    def base(self) -> str:
        return f"teslamate/{self.namespace}"

    def settings(self, **env: str) -> Settings:
        values = {
            "MQTT_HOST": HOST,
            "MQTT_PORT": str(self.port),
            "MQTT_NAMESPACE": self.namespace,
            "MQTT_HOME_ASSISTANT_DISCOVERY_PREFIX": self.prefix,
        }
        values.update(env)
        return load_settings(values)


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: str
    qos: int
    retain: bool


class Recorder:
    """Everything published below some filters, with QoS and the retain flag as published."""

    def __init__(self, port: int, filters: list[str]) -> None:
        self.port = port
        self.filters = filters
        self.messages: list[Seen] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> Recorder:
        self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await self._task

    async def _listen(self) -> None:
        # MQTT 5 "retain as published": a live subscriber otherwise never sees the flag.
        async with aiomqtt.Client(HOST, self.port, protocol=aiomqtt.ProtocolVersion.V5) as client:
            for f in self.filters:
                await client.subscribe(f, options=SubscribeOptions(qos=2, retainAsPublished=True))
            self._ready.set()
            async for m in client.messages:
                payload = m.payload.decode() if isinstance(m.payload, bytes) else str(m.payload)
                self.messages.append(Seen(str(m.topic), payload, m.qos, m.retain))

    def on(self, topic: str) -> list[Seen]:
        return [m for m in self.messages if m.topic == topic]

    def latest(self) -> dict[str, Seen]:
        out: dict[str, Seen] = {}
        for m in self.messages:
            out[m.topic] = m
        return out

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for MQTT messages")
            await asyncio.sleep(0.02)


async def retained(port: int, topic_filter: str, quiet: float = 0.3) -> dict[str, str]:
    """The retained messages below `topic_filter`, as a new subscriber sees them."""
    out: dict[str, str] = {}
    async with aiomqtt.Client(HOST, port) as client:
        await client.subscribe(topic_filter, qos=1)
        while True:
            try:
                m = await asyncio.wait_for(anext(client.messages), quiet)
            except TimeoutError:
                return out
            if m.retain:
                payload = m.payload.decode() if isinstance(m.payload, bytes) else str(m.payload)
                out[str(m.topic)] = payload


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class PrivateBroker:
    """A Mosquitto of the test's own (no persistence), to stop and start at will."""

    def __init__(self, port: int, conf: Path) -> None:
        self.port = port
        self.conf = conf
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while not reachable(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError("private mosquitto did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
