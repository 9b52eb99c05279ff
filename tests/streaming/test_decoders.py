"""Decoders: every encoding and spelling a car or dispatcher uses reads to the same state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from tesla_protocol.telemetry import vehicle_connectivity_pb2, vehicle_data_pb2

from fleetlog.model.observation import Connectivity, Source
from fleetlog.sources.streaming.feed import Backoff, connectivity_of
from fleetlog.sources.streaming.fields import INVALID, location, state_from_fields
from fleetlog.sources.streaming.records import (
    ConnectivityRecord,
    FrameError,
    Notice,
    VRecord,
    decode_record,
    parse_time,
)
from fleetlog.sources.streaming.sequencer import Sequencer
from fleetlog.sources.streaming.sse import sse_lines, sse_records
from fleetlog.sources.streaming.telemetry import TelemetryTarget, mqtt_records, record_type_of
from fleetlog.sources.streaming.websocket import (
    Dialect,
    observation_from_row,
    parse_message,
    resubscribe_delay,
)

T0 = datetime(2025, 3, 3, 7, 30, tzinfo=UTC)
MI = 1.609344


def _payload(typed: bool, at: datetime = T0, resend: bool = False) -> vehicle_data_pb2.Payload:
    p = vehicle_data_pb2.Payload(vin="VIN1", is_resend=resend)
    ts = Timestamp()
    ts.FromDatetime(at)
    p.created_at.CopyFrom(ts)

    def add(key: str) -> vehicle_data_pb2.Value:
        d = p.data.add()
        d.key = vehicle_data_pb2.Field.Value(key)
        return d.value

    if typed:
        add("VehicleSpeed").double_value = 31.07
        add("Gear").shift_state_value = vehicle_data_pb2.ShiftStateD
        loc = add("Location").location_value
        loc.latitude, loc.longitude = 48.137154, 11.575382
        add("Odometer").double_value = 1000.0
        add("BatteryLevel").double_value = 80.4
    else:
        add("VehicleSpeed").string_value = "31.07"
        add("Gear").string_value = "D"
        add("Location").string_value = "(48.137154 N, 11.575382 E)"
        add("Odometer").string_value = "1000.0"
        add("BatteryLevel").string_value = "80.4"
    add(
        "DetailedChargeState"
    ).detailed_charge_state_value = vehicle_data_pb2.DetailedChargeStateDisconnected
    add("PackVoltage").double_value = 400.0
    add("PackCurrent").double_value = 50.0
    add("InsideTemp").invalid = True
    return p


@pytest.mark.parametrize("typed", [True, False])
@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_v_record_any_encoding_reads_the_same(typed: bool, encoding: str) -> None:
    from google.protobuf import json_format

    msg = _payload(typed)
    raw = (
        msg.SerializeToString()
        if encoding == "protobuf"
        else json.dumps(json_format.MessageToDict(msg)).encode()
    )
    (record,) = decode_record("V", raw)
    assert isinstance(record, VRecord)
    assert record.vin == "VIN1" and record.created_at == T0 and not record.is_resend
    state, problems = state_from_fields(dict(record.data))
    assert problems == []
    assert state.speed_kmh == pytest.approx(31.07 * MI)
    assert state.shift_state == "D"
    assert (state.latitude, state.longitude) == pytest.approx((48.137154, 11.575382))
    assert state.odometer_km == pytest.approx(1000 * MI)
    assert state.battery_level == 80
    assert state.charging_state == "Disconnected"
    assert state.power_kw == pytest.approx(20.0)
    assert state.inside_temp_c is None  # invalid = not said


def test_protojson_as_documented() -> None:
    raw = (
        b'{"data":[{"key":"Location","value":{"locationValue":{"latitude":30.2226645,'
        b'"longitude":-97.6213806}}},{"key":"VehicleSpeed","value":{"stringValue":"34.797"}},'
        b'{"key":"Soc","value":{"longValue":"77"}},'
        b'{"key":"DetailedChargeState","value":{"detailedChargeStateValue":"DetailedChargeStateCharging"}}],'
        b'"createdAt":"2024-02-24T04:58:44.983607402Z","vin":"LRW3","isResend":true}'
    )
    (record,) = decode_record("V", raw)
    assert isinstance(record, VRecord) and record.is_resend
    assert record.created_at == datetime(2024, 2, 24, 4, 58, 44, 983607, tzinfo=UTC)
    state, _ = state_from_fields(dict(record.data))
    assert state.usable_battery_level == 77
    assert state.charging_state == "Charging"
    assert state.longitude == pytest.approx(-97.6213806)


def test_location_strings_and_enums_without_prefix() -> None:
    assert location("(37.412374 N, 122.145867 W)") == (37.412374, -122.145867)
    assert location("(1.5 S, 2.5 E)") == (-1.5, 2.5)
    state, _ = state_from_fields(
        {"Gear": "ShiftStateP", "DetailedChargeState": "Charging",
         "SentryMode": "SentryModeStateArmed",
         "ChargingCableType": "CableTypeIEC", "FastChargerType": "FastChargerSNA",
         "DoorState": {"DriverFront": True, "TrunkRear": False}, "HvacPower": "HvacPowerStateOff",
         "FdWindow": "WindowStateClosed", "RpWindow": "PartiallyOpen", "Locked": "true"}
    )  # fmt: skip
    assert state.shift_state == "P" and state.charging_state == "Charging"
    assert state.sentry_mode is True and state.conn_charge_cable == "IEC"
    assert state.fast_charger_type is None
    assert state.doors_open is True and state.trunk_open is False
    assert state.is_climate_on is False and state.windows_open is True and state.locked is True


def test_bad_field_is_reported_and_the_rest_kept() -> None:
    state, problems = state_from_fields({"VehicleSpeed": "fast", "Odometer": 10})
    assert state.odometer_km == pytest.approx(10 * MI)
    assert len(problems) == 1 and "VehicleSpeed" in problems[0]


def test_connectivity_alerts_errors() -> None:
    msg = vehicle_connectivity_pb2.VehicleConnectivity(
        vin="V", connection_id="c", status=vehicle_connectivity_pb2.DISCONNECTED
    )
    (rec,) = decode_record("connectivity", msg.SerializeToString())
    assert isinstance(rec, ConnectivityRecord) and rec.status == "DISCONNECTED"
    assert connectivity_of(rec.status) is Connectivity.OFFLINE
    assert connectivity_of("CONNECTED") is Connectivity.ONLINE
    assert connectivity_of("asleep") is Connectivity.ASLEEP
    alerts = decode_record(
        "alerts",
        b'{"alerts":[{"name":"BMS_w_x","audiences":["Customer"],"startedAt":"2025-03-03T07:30:00Z",'
        b'"endedAt":null}],"createdAt":"2025-03-03T07:30:01Z","vin":"V"}',
    )
    assert alerts == [Notice("V", "alert", "BMS_w_x", T0, None, ("Customer",))]
    errors = decode_record(
        "errors",
        b'{"errors":[{"createdAt":"2025-03-03T07:30:00Z","name":"e","tags":{"a":"b"},"body":"x"}],'
        b'"vin":"V"}',
    )
    assert errors == [Notice("V", "error", "e", T0, tags={"a": "b"}, body="x")]


def test_mqtt_topics() -> None:
    (rec,) = mqtt_records("tb/VIN1/v/VehicleSpeed", b'"12.3"', "tb")
    assert (
        isinstance(rec, VRecord)
        and rec.created_at is None
        and rec.data == (("VehicleSpeed", "12.3"),)
    )
    (rec,) = mqtt_records("tb/VIN1/v/Location", b'{"latitude":1.0,"longitude":2.0}', "tb")
    assert isinstance(rec, VRecord) and rec.data == (("Location", (1.0, 2.0)),)
    (rec,) = mqtt_records("tb/VIN1/v/InsideTemp", b"null", "tb")
    assert isinstance(rec, VRecord) and rec.data == (("InsideTemp", INVALID),)
    (rec,) = mqtt_records("tb/VIN1/v/Odometer", b'{"value": 5}', "tb")
    assert isinstance(rec, VRecord) and rec.data == (("Odometer", 5),)
    (rec,) = mqtt_records(
        "tb/VIN1/connectivity",
        b'{"ConnectionId":"x","Status":"CONNECTED","CreatedAt":"2025-03-03T07:30:00Z"}',
        "tb",
    )  # fmt: skip
    assert isinstance(rec, ConnectivityRecord) and rec.vin == "VIN1" and rec.created_at == T0
    alert = b'{"StartedAt":"2025-03-03T07:30:00Z","Audiences":["Customer"]}'
    (n,) = mqtt_records("tb/VIN1/alerts/A1/current", alert, "tb")
    assert isinstance(n, Notice) and n.name == "A1" and n.vin == "VIN1"
    error = b'{"Body":"b","Tags":{},"CreatedAt":"2025-03-03T07:30:00Z"}'
    (n,) = mqtt_records("tb/VIN1/errors/E1", error, "tb")
    assert isinstance(n, Notice) and n.kind == "error" and n.body == "b"
    with pytest.raises(FrameError):
        mqtt_records("other/VIN1/v/X", b"1", "tb")


def test_topics_and_targets() -> None:
    assert record_type_of("tesla_V", "tesla") == ("V", "")
    assert record_type_of("tesla_connectivity_{VIN9}", "tesla") == ("connectivity", "VIN9")
    with pytest.raises(FrameError):
        record_type_of("other_V", "tesla")
    t = TelemetryTarget.parse("mqtt://u:p%40ss@broker:1884/fleet?group=g1")
    assert (t.host, t.port, t.topic_base, t.username, t.password, t.group) == (
        "broker", 1884, "fleet", "u", "p@ss", "g1")  # fmt: skip
    assert "p@ss" not in t.label
    r = TelemetryTarget.parse("redis://127.0.0.1/2?namespace=ft")
    assert (r.port, r.db, r.namespace) == (6379, 2, "ft")
    with pytest.raises(ValueError):
        TelemetryTarget.parse("kafka://x:1")


def test_sequencer_orders_and_drops_resends_and_duplicates() -> None:
    seq = Sequencer(Source.TELEMETRY, hold_s=1.0)
    later = VRecord("V", T0 + timedelta(seconds=2), (("Odometer", 2.0),))
    earlier = VRecord("V", T0 + timedelta(seconds=1), (("Odometer", 1.0), ("Soc", 50)))
    seq.add(later, T0)
    seq.add(earlier, T0)
    assert seq.release(T0) == []
    out = [r.observation for r in seq.release(T0 + timedelta(seconds=1))]
    assert [o.at for o in out if o] == [T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]
    # a redelivery, a resend of a known value and a stale value all add nothing
    seq.add(later, T0 + timedelta(seconds=3))
    seq.add(VRecord("V", T0 + timedelta(seconds=5), (("Soc", 50),), is_resend=True), T0)
    seq.add(VRecord("V", T0, (("Odometer", 0.5),)), T0)
    assert seq.release(T0 + timedelta(seconds=9)) == []
    # a resend with news passes
    seq.add(VRecord("V", T0 + timedelta(seconds=6), (("Soc", 49),), is_resend=True), T0)
    (r,) = seq.release(T0, everything=True)
    assert r.observation is not None and r.observation.state.usable_battery_level == 49


def test_sequencer_gathers_unstamped_fields_per_vin() -> None:
    seq = Sequencer(Source.TELEMETRY, hold_s=0.5)
    seq.add(VRecord("V", None, (("Soc", 50),)), T0)
    seq.add(VRecord("V", None, (("Odometer", 1.0),)), T0 + timedelta(seconds=0.1))
    seq.add(VRecord("V", None, (("Soc", 51),)), T0 + timedelta(seconds=0.2))  # same field: new one
    out = seq.release(T0 + timedelta(seconds=1))
    assert [r.observation.at for r in out if r.observation] == [T0, T0 + timedelta(seconds=0.2)]
    first = out[0].observation
    assert first is not None and first.state.usable_battery_level == 50 and first.state.odometer_km


def test_legacy_row() -> None:
    row = "1741000000000,30,1000.5,80,512,90,48.1,11.5,25,D,200,190,91"
    o = observation_from_row("V", row)
    s = o.state
    assert o.at == datetime.fromtimestamp(1741000000, UTC) and o.source is Source.STREAM
    assert s.speed_kmh == pytest.approx(30 * MI) and s.odometer_km == pytest.approx(1000.5 * MI)
    assert s.battery_level == 80 and s.usable_battery_level is None
    assert s.elevation_m == 512 and s.heading == 91 and s.power_kw == 25 and s.shift_state == "D"
    assert s.rated_range_km == pytest.approx(200 * MI) and s.est_range_km == pytest.approx(190 * MI)
    parked = observation_from_row(
        "V", "1741000000000,,1000.5,80,,,48.1,11.5,0,,200,190,", Dialect.MYTESLAMATE
    )
    assert parked.state.speed_kmh is None and parked.state.shift_state is None
    assert parked.state.usable_battery_level == 80 and parked.state.battery_level is None
    with pytest.raises(FrameError):
        observation_from_row("V", "1,2,3")


def test_websocket_messages() -> None:
    def kind(error: str, value: str = "") -> str:
        frame = {"msg_type": "data:error", "tag": "1", "error_type": error, "value": value}
        return parse_message(json.dumps(frame)).kind

    assert parse_message('{"msg_type":"control:hello","connection_timeout":30000}').kind == "hello"
    assert kind("vehicle_disconnected") == "disconnected"
    assert kind("vehicle_error", "Vehicle is offline") == "offline"
    assert kind("client_error", "Can't validate token. x") == "token"
    assert kind("client_error", "owner_api error: x") == "reconnect"
    assert resubscribe_delay(0, True) == 1.0 and resubscribe_delay(20, True) == 8.0
    assert resubscribe_delay(0, False) == 15.0 and resubscribe_delay(10, False) == 30.0


def test_sse_events() -> None:
    buffer: list[str] = []
    assert sse_lines(buffer, 'data: {"a":1}') is None
    assert sse_lines(buffer, "") == '{"a":1}'
    assert sse_lines(buffer, "") is None
    records, status = sse_records({"vin": "V", "createdAt": "2025-03-03T07:30:00Z",
                                   "data": {"Gear": "ShiftStateR", "Soc": "74.4367"}})  # fmt: skip
    assert status is None and isinstance(records[0], VRecord)
    state, _ = state_from_fields(dict(records[0].data))
    assert state.shift_state == "R" and state.usable_battery_level == 74
    _, status = sse_records({"vin": "V", "createdAt": "2025-03-03T07:30:00Z", "state": "asleep"})
    assert status is not None and status[0] == "asleep"


def test_backoff_is_capped_and_jittered() -> None:
    b = Backoff(base=1, cap=30, jitter=0.5)
    delays = [b.next() for _ in range(20)]
    assert all(0 < d <= 30 for d in delays) and max(delays) > 10
    b.reset()
    assert b.next() <= 1.0


def test_parse_time() -> None:
    assert parse_time("2025-03-03T07:30:00.123456789Z") == T0 + timedelta(microseconds=123456)
    assert parse_time(None) is None
    with pytest.raises(FrameError):
        parse_time("yesterday")
    # out of the calendar: the decoder's refusal, not an OverflowError or UnitError
    for value in (9_223_372_036_854_775_283_712, -62_135_596_800_001, 1e300):
        with pytest.raises(FrameError, match="out of range"):
            parse_time(value)
    for text in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:00-01:00"):
        with pytest.raises(FrameError, match="out of range"):
            parse_time(text)


def test_unreadable_location_or_time_is_a_problem_not_a_crash() -> None:
    """A LocationValue or TimeValue that cannot be read costs that datum only (fuzz finding)."""
    records, _ = sse_records({"vin": "V", "data": {"Location": {"latitude": [], "longitude": 1},
                                                    "Soc": "74.4"}})  # fmt: skip
    (rec,) = records
    assert isinstance(rec, VRecord) and rec.data == (("Soc", "74.4"),)
    assert len(rec.problems) == 1 and rec.problems[0].startswith("Location: location:")
    with pytest.raises(FrameError, match="location out of range"):
        mqtt_records("tb/VIN1/v/Location", b'{"latitude":91,"longitude":2}', "tb")
    payload = {"vin": "V", "data": [
        {"key": "Location", "value": {"locationValue": {"latitude": "north", "longitude": 2}}},
        {"key": "ScheduledChargingStartTime", "value": {"timeValue": {"hour": [1]}}},
        {"key": "Soc", "value": {"stringValue": "74.4"}},
    ]}  # fmt: skip
    (rec,) = decode_record("V", json.dumps(payload).encode())
    assert isinstance(rec, VRecord) and rec.data == (("Soc", "74.4"),)
    assert [p.split(":")[0] for p in rec.problems] == ["location", "timeValue"]
