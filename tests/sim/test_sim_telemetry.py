"""Fleet Telemetry as the simulated car sends it: deltas, intervals, resends, value types,
connectivity, alerts, errors, billing, and agreement with ``vehicle_data``."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
from tesla_protocol.telemetry import vehicle_data_pb2

from fleetlog.clock import ManualClock
from fleetlog.sim.billing import PRICE_USD
from fleetlog.sim.car import Car, Snapshot
from fleetlog.sim.encoding import encode, plain_value, server_transform, to_protojson
from fleetlog.sim.push import PushSink
from fleetlog.sim.scenarios import build
from fleetlog.sim.server import SimServer
from fleetlog.sim.telemetry import (
    AlertsRecord,
    ConnectivityRecord,
    ErrorsRecord,
    Record,
    VRecord,
)
from fleetlog.sim.world import CloudOptions, World

BOARDING = 28_100  # s after the commuter week's start: the driver is at the car at 06:48:20
DRIVING = 28_200  # the first commute is under way (06:49:20 → 07:01:46)


class Capture(PushSink):
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.snaps: list[Snapshot] = []

    def wants_snapshots(self, car: Car) -> bool:
        return True

    def on_record(self, record: Record) -> None:
        self.records.append(record)

    def on_snapshot(self, car: Car, snap: Snapshot) -> None:
        self.snaps.append(snap)

    def v(self) -> list[VRecord]:
        return [r for r in self.records if isinstance(r, VRecord)]


@asynccontextmanager
async def sim_with(
    fields: dict[str, dict[str, Any]], mode: str = "fleet", ack_loss: float = 0.0, **config: Any
) -> AsyncIterator[tuple[SimServer, Capture, httpx.AsyncClient]]:
    world = World(build("commuter-week", 1, cars=1), CloudOptions(mode=mode))  # type: ignore[arg-type]
    async with SimServer(world, clock=ManualClock(world.now), ack_loss=ack_loss) as sim:
        capture = Capture()
        sim.push.add_sink(capture)
        token = sim.world.initial_tokens().access_token
        async with httpx.AsyncClient(
            base_url=sim.base_url, headers={"Authorization": f"Bearer {token}"}
        ) as c:
            body = {
                "vins": [world.cars[0].spec.vin],
                "config": {"hostname": "telemetry.example.com", "fields": fields, **config},
            }
            r = await c.post("/api/1/vehicles/fleet_telemetry_config", json=body)
            assert r.status_code == 200, r.text
            assert r.json()["response"]["updated_vehicles"] == 1
            yield sim, capture, c


def sends(records: list[VRecord], name: str) -> list[tuple[datetime, Any, bool]]:
    return [
        (r.created_at, plain_value(d.value), r.is_resend)
        for r in records
        for d in r.data
        if d.field == name
    ]


async def test_fields_change_no_more_often_than_their_interval() -> None:
    fields = {
        "VehicleSpeed": {"interval_seconds": 5},
        "Odometer": {"interval_seconds": 30},
        "Location": {"interval_seconds": 1},
        "VehicleName": {"interval_seconds": 1},
    }
    async with sim_with(fields, prefer_typed=True) as (sim, cap, _c):
        await sim.advance(DRIVING + 600)
        v = cap.v()
        # On connecting, the car sends every configured field at once.
        assert {d.field for d in v[0].data} == set(fields)
        for name, spec in fields.items():
            times = [t for t, _v, _r in sends(v, name)]
            gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
            assert all(g >= spec["interval_seconds"] - 1e-6 for g in gaps), (name, min(gaps))
        # Only changed values go out: the name never changes, so it is sent once per connection.
        connects = [
            r for r in cap.records if isinstance(r, ConnectivityRecord) and r.status == "CONNECTED"
        ]
        assert len(sends(v, "VehicleName")) == len(connects)
        for name in ("VehicleSpeed", "Location", "Odometer"):
            # Within one connection (a new one starts with every field again).
            values = [val for t, val, _r in sends(v, name) if t > connects[-1].created_at]
            assert all(a != b for a, b in itertools.pairwise(values)), name
        # While driving, Location goes out every second; speed at most every 5 s.
        drive = [
            t
            for t, _v, _r in sends(v, "Location")
            if t >= sim.world.scenario.start + timedelta(seconds=DRIVING)
        ]
        assert len(drive) > 300
        assert len(sends(v, "VehicleSpeed")) < len(sends(v, "Location")) / 3


async def test_minimum_delta_and_resend_interval() -> None:
    fields = {
        "Odometer": {"interval_seconds": 1, "minimum_delta": 0.5},
        "Location": {"interval_seconds": 1, "minimum_delta": 200},
        "VehicleName": {"interval_seconds": 1, "resend_interval_seconds": 60},
    }
    async with sim_with(fields, prefer_typed=True) as (sim, cap, _c):
        start = sim.world.scenario.start
        await sim.advance(DRIVING + 600)
        v = cap.v()
        last_connect = max(
            r.created_at
            for r in cap.records
            if isinstance(r, ConnectivityRecord) and r.status == "CONNECTED"
        )
        odo = [val for t, val, _r in sends(v, "Odometer") if t > last_connect]
        assert len(odo) > 3
        assert all(b - a >= 0.5 - 1e-9 for a, b in itertools.pairwise(odo))
        drive_names = [
            t for t, _v, _r in sends(v, "VehicleName") if t >= start + timedelta(seconds=DRIVING)
        ]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(drive_names)]
        assert gaps and all(60 <= g < 62 for g in gaps)


async def test_lost_acks_are_resent_under_latest_only() -> None:
    fields = {"Location": {"interval_seconds": 1}, "Soc": {"interval_seconds": 1}}
    async with sim_with(fields, ack_loss=0.3, delivery_policy="latest") as (sim, cap, _c):
        await sim.advance(DRIVING + 300)
        resends = [r for r in cap.v() if r.is_resend]
        assert resends
        first_sent = {}
        for r in cap.v():
            for d in r.data:
                first_sent.setdefault(d.field, r.created_at)
        for r in resends:
            # Flagged and carrying only configured fields, stamped with their own time.
            assert {d.field for d in r.data} <= set(fields)
    async with sim_with(fields, ack_loss=0.3, delivery_policy="no_retry") as (sim, cap, _c):
        await sim.advance(DRIVING + 300)
        assert cap.v() and not any(r.is_resend for r in cap.v())


async def test_untyped_values_are_strings_and_typed_values_are_typed() -> None:
    fields = {
        name: {"interval_seconds": 1}
        for name in ("VehicleSpeed", "Gear", "Location", "Locked", "DetailedChargeState")
    }
    async with sim_with(fields, prefer_typed=False) as (sim, cap, _c):
        await sim.advance(DRIVING + 60)
        rec = next(r for r in reversed(cap.v()) if {d.field for d in r.data} >= {"Location"})
        loc = next(d.value for d in rec.data if d.field == "Location")
        assert loc.kind == "string_value"
        assert loc.value.startswith("(") and " N, " in loc.value and loc.value.endswith(" E)")
        gears = {d.value.value for r in cap.v() for d in r.data if d.field == "Gear"}
        assert "D" in gears
        speeds = [d.value for r in cap.v() for d in r.data if d.field == "VehicleSpeed"]
        assert any(s.kind == "string_value" and float(s.value) > 5 for s in speeds)
        assert {d.value.kind for r in cap.v() for d in r.data if d.field == "Locked"} == {
            "string_value"
        }
        # Fields from 179 on are typed whatever prefer_typed says.
        states = [d.value for r in cap.v() for d in r.data if d.field == "DetailedChargeState"]
        assert states[0].kind == "detailed_charge_state_value"
        assert states[0].value == "DetailedChargeStateDisconnected"
        # The fleet-telemetry server turns the Location string into a location_value.
        body = to_protojson(server_transform(rec))
        datum = next(d for d in body["data"] if d["key"] == "Location")
        assert set(datum["value"]["locationValue"]) == {"latitude", "longitude"}
        # Protobuf in the official schema.
        payload = vehicle_data_pb2.Payload()
        payload.ParseFromString(encode(rec, "protobuf"))
        assert payload.vin == rec.vin
        keys = {
            vehicle_data_pb2.Field.Name(d.key): d.value.WhichOneof("value") for d in payload.data
        }
        assert keys["Location"] == "string_value"
    async with sim_with(fields, prefer_typed=True) as (sim, cap, _c):
        await sim.advance(DRIVING + 60)
        kinds = {(d.field, d.value.kind) for r in cap.v() for d in r.data}
        assert ("Location", "location_value") in kinds
        assert ("VehicleSpeed", "double_value") in kinds
        assert ("Locked", "boolean_value") in kinds
        gears = {d.value.value for r in cap.v() for d in r.data if d.field == "Gear"}
        assert "ShiftStateD" in gears
        rec = cap.v()[-1]
        payload = vehicle_data_pb2.Payload()
        payload.ParseFromString(encode(rec, "protobuf"))
        assert payload.created_at.ToDatetime().timestamp() == rec.created_at.timestamp()


async def test_connectivity_alerts_errors_and_billing() -> None:
    fields = {"Soc": {"interval_seconds": 60}, "Bogus": {"interval_seconds": 1}}
    async with sim_with(fields, alert_types=["customer", "service"]) as (sim, cap, _c):
        await sim.advance(86_400)
        statuses = [r.status for r in cap.records if isinstance(r, ConnectivityRecord)]
        assert statuses[:3] == ["CONNECTED", "DISCONNECTED", "CONNECTED"]
        # Connected exactly while the car is online.
        for r in cap.records:
            if isinstance(r, ConnectivityRecord):
                assert r.network_interface in ("wifi", "cellular")
        errors = [r for r in cap.records if isinstance(r, ErrorsRecord)]
        assert errors[0].errors[0].name == "unknown_field"
        assert ("field_name", "Bogus") in errors[0].errors[0].tags
        signals = sum(len(r.data) for r in cap.v())
        ledger = sim.world.ledger.to_json()
        assert ledger["by_category"]["signals"]["billed"] == signals
        month = next(iter(ledger["months"].values()))
        assert month["billed"]["signals"] == signals
        assert abs(month["cost_usd"] - round(signals * PRICE_USD["signals"], 6)) < 1e-6
        # The commuter week has sentry on at the supermarket: an alert opens and closes.
        await sim.advance(3 * 86_400)
        alerts = [a for r in cap.records if isinstance(r, AlertsRecord) for a in r.alerts]
        assert alerts
        ended = [a for a in alerts if a.ended_at is not None]
        assert ended and all(a.ended_at > a.started_at for a in ended if a.ended_at)


async def test_owner_mode_streams_no_telemetry_and_bills_nothing() -> None:
    world = World(build("commuter-week", 1, cars=1), CloudOptions(mode="owner"))
    async with SimServer(world, clock=ManualClock(world.now)) as sim:
        cap = Capture()
        sim.push.add_sink(cap)
        await sim.advance(DRIVING)
        assert cap.snaps and not cap.records
        assert "signals" not in sim.world.ledger.to_json()["by_category"]


def merged(records: list[VRecord]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for r in records:
        for d in server_transform(r).data:
            state[d.field] = plain_value(d.value)
    return state


async def test_pushed_state_agrees_with_vehicle_data_at_every_moment() -> None:
    names = (
        "VehicleSpeed",
        "Odometer",
        "BatteryLevel",
        "Soc",
        "Location",
        "GpsHeading",
        "Gear",
        "RatedRange",
        "DetailedChargeState",
        "ACChargingPower",
        "InsideTemp",
        "Locked",
    )
    fields = {n: {"interval_seconds": 1} for n in names}
    async with sim_with(fields, prefer_typed=True) as (sim, cap, c):
        checked = 0
        # The first commute, the evening, the scheduled home charge from 22:00 (82,815 s).
        moments = [BOARDING + 60 * k for k in range(16)] + [32_600, 72_600]
        moments += [83_000 + 7 * k for k in range(10)] + [90_000, 113_000, 113_600]
        charging = 0
        for moment in moments:
            await sim.advance(moment - (sim.world.now - sim.world.scenario.start).total_seconds())
            fresh = sim.world.initial_tokens().access_token  # 8 h tokens; this runs a day
            r = await c.get(
                f"/api/1/vehicles/{sim.world.cars[0].spec.vin}/vehicle_data",
                headers={"Authorization": f"Bearer {fresh}"},
                params={
                    "endpoints": "charge_state;drive_state;location_data;vehicle_state;"
                    "climate_state"
                },
            )
            if r.status_code != 200:
                continue  # asleep: nothing to compare
            body = r.json()["response"]
            s = merged(cap.v())
            drive, charge = body["drive_state"], body["charge_state"]
            speed = None if s["VehicleSpeed"] is None else round(s["VehicleSpeed"])
            assert speed == drive["speed"]
            assert s["Gear"] == (
                None if drive["shift_state"] is None else f"ShiftState{drive['shift_state']}"
            )
            assert abs(s["Location"]["latitude"] - drive["latitude"]) < 1e-5
            assert abs(s["Location"]["longitude"] - drive["longitude"]) < 1e-5
            assert abs(s["Odometer"] - body["vehicle_state"]["odometer"]) < 0.01
            assert abs(s["BatteryLevel"] - charge["battery_level"]) <= 0.5
            assert abs(s["Soc"] - charge["usable_battery_level"]) <= 0.5
            assert abs(s["RatedRange"] - charge["battery_range"]) < 0.01
            assert s["DetailedChargeState"] == f"DetailedChargeState{charge['charging_state']}"
            assert (
                abs(s["ACChargingPower"] - charge["charger_power"]) <= 0.5
                or charge["fast_charger_present"]
            )
            assert abs(s["InsideTemp"] - body["climate_state"]["inside_temp"]) <= 0.05
            assert s["Locked"] == body["vehicle_state"]["locked"]
            checked += 1
            charging += charge["charging_state"] == "Charging"
        assert checked >= 20 and charging >= 10
