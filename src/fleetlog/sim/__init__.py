"""fleetlog.sim: a simulator of Tesla's cloud and cars on loopback, for tests, benchmarks, demos.

Layers, bottom up: ``geo`` and ``physics`` (pure functions), ``plan`` (the scenario
vocabulary), ``car`` (the steppable car model, writing ``truth``), ``scenarios`` (named,
seeded plans), ``auth``/``billing``/``world`` (the cloud, no HTTP), ``payload`` (wire
units and shapes), ``server`` (aiohttp on loopback), ``command`` (``fleetlog sim``).
Pushed data: ``telemetry`` (what the car sends, pure), ``encoding`` (protobuf/protojson),
``push`` (the hub and its sinks), ``dispatch`` (MQTT, ZMQ, Redis), ``streaming``
(``/streaming/``), ``sse`` (``/sse``), ``tls``.

In a test::

    world = World(build("commuter-week", seed=1), CloudOptions(mode="fleet"))
    async with SimServer(world, clock=ManualClock(world.now)) as sim:
        ...  # HTTP against sim.base_url with sim.env["FLEETLOG_ACCESS_TOKEN"]
        await sim.advance(3600)  # an hour later
        truth = sim.truth()

Pushed data: ``SimServer(world, telemetry=["mqtt://127.0.0.1:1883/<base>"])``, then
``await sim.flush()``; or ``sim.push.add_sink(sink)`` for every snapshot and record in-process.
"""

from fleetlog.sim.car import Car, Snapshot
from fleetlog.sim.command import SimSettings, make_server, serve
from fleetlog.sim.scenarios import SCENARIOS, Scenario, build
from fleetlog.sim.server import Faults, SimServer
from fleetlog.sim.world import MODES, CloudOptions, Mode, World

__all__ = [
    "MODES",
    "SCENARIOS",
    "Car",
    "CloudOptions",
    "Faults",
    "Mode",
    "Scenario",
    "SimServer",
    "SimSettings",
    "Snapshot",
    "World",
    "build",
    "make_server",
    "serve",
]
