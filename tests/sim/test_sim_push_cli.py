"""Pushed data at `--speed N` and from the command line (`fleetlog sim --telemetry …`)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import redis.asyncio as aioredis
from tesla_protocol.telemetry import vehicle_data_pb2

from fleetlog.sim import SimServer, World, build
from fleetlog.sim.push import PushSink
from fleetlog.sim.telemetry import Record, VRecord


class Capture(PushSink):
    def __init__(self) -> None:
        self.records: list[Record] = []

    def on_record(self, record: Record) -> None:
        self.records.append(record)


async def test_records_follow_the_loop_clock_at_speed() -> None:
    world = World(build("commuter-week", 1, cars=1))
    vin = world.cars[0].spec.vin
    world.telemetry_config_set(
        [vin], {"hostname": "t.example.com", "fields": {"Soc": {"interval_seconds": 1}}}
    )
    start = world.now
    async with SimServer(world, speed=600.0, tick_s=0.05) as sim:
        capture = Capture()
        sim.push.add_sink(capture)
        await asyncio.sleep(0.5)
    v = [r for r in capture.records if isinstance(r, VRecord)]
    assert len(v) >= 2
    times = [(r.created_at - start).total_seconds() for r in v]
    assert times == sorted(times)
    assert 60 < times[-1] < 900  # ~0.5 s × 600, stamped with simulated time


def test_cli_prints_streaming_and_telemetry_settings() -> None:
    ns = f"fltest{uuid.uuid4().hex[:10]}"
    url = f"redis://127.0.0.1:6379/0?namespace={ns}"
    args = ["sim", "--scenario", "commuter-week", "--mode", "myteslamate", "--port", "0"]
    args += ["--speed", "600", "--telemetry", url, "--streaming-tls"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESLA_", "FLEETLOG_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetlog", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        printed: dict[str, str] = {}
        while "FLEETLOG_TELEMETRY" not in printed:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "no output"
            name, _, value = line.strip().partition("=")
            printed[name] = value
        assert printed["TESLA_WSS_HOST"].startswith("wss://127.0.0.1:")
        assert printed["TESLA_WSS_USE_VIN"] == "true"
        assert printed["TESLA_WSS_TLS_ACCEPT_INVALID_CERTS"] == "true"
        assert printed["FLEETLOG_TELEMETRY"] == url

        async def first_record() -> vehicle_data_pb2.Payload:
            r = aioredis.Redis(host="127.0.0.1", port=6379)
            pubsub = r.pubsub()
            await pubsub.psubscribe(f"{ns}_V_*")
            try:
                while True:
                    m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if m is not None:
                        payload = vehicle_data_pb2.Payload()
                        payload.ParseFromString(m["data"])
                        return payload
            finally:
                await pubsub.aclose()
                await r.aclose()

        # The provider's streaming config is on: records flow at speed, to Redis.
        payload = asyncio.run(asyncio.wait_for(first_record(), 15))
        assert payload.vin and payload.data
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def test_cli_rejects_a_bad_telemetry_url() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fleetlog", "sim", "--port", "0", "--telemetry", "kafka://x:1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "mqtt://, zmq:// or redis://" in proc.stderr
