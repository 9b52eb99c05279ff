"""Random and mutated input never raises out of a decoder except as FrameError, and never
out of the ingest layer at all (a bad frame is logged and skipped)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tesla_protocol.telemetry import vehicle_data_pb2

from fleetlog.clock import ManualClock
from fleetlog.model.observation import Source
from fleetlog.sources.streaming.feed import FeedEvent, RecordIngest
from fleetlog.sources.streaming.fields import INVALID, READERS, state_from_fields
from fleetlog.sources.streaming.records import RECORD_TYPES, FrameError, Notice, decode_record
from fleetlog.sources.streaming.sequencer import Sequencer
from fleetlog.sources.streaming.sse import sse_records
from fleetlog.sources.streaming.telemetry import mqtt_records
from fleetlog.sources.streaming.websocket import observation_from_row, parse_message

T0 = datetime(2025, 3, 3, tzinfo=UTC)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from([*sorted(READERS), "PackVoltage", "PackCurrent", "FdWindow", "Nope"])


def _valid_payload() -> bytes:
    p = vehicle_data_pb2.Payload(vin="VIN1")
    p.created_at.FromDatetime(T0)
    d = p.data.add()
    d.key = vehicle_data_pb2.Field.Value("VehicleSpeed")
    d.value.double_value = 12.5
    d = p.data.add()
    d.key = vehicle_data_pb2.Field.Value("Gear")
    d.value.shift_state_value = vehicle_data_pb2.ShiftStateD
    return p.SerializeToString()


VALID = _valid_payload()
VALID_JSON = json.dumps(
    {"data": [{"key": "Location", "value": {"locationValue": {"latitude": 1, "longitude": 2}}},
              {"key": "Gear", "value": {"stringValue": "D"}}],
     "createdAt": "2025-03-03T00:00:00Z", "vin": "VIN1"}
).encode()  # fmt: skip


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data)
    for pos, byte in edits:
        if buf:
            buf[pos % len(buf)] = byte
    return bytes(buf)


class _Sink:
    def __init__(self) -> None:
        self.events: list[FeedEvent] = []
        self.notices: list[Notice] = []

    def event(self, item: FeedEvent) -> None:
        self.events.append(item)

    def notice(self, item: Notice, feed: str) -> None:
        self.notices.append(item)


def _ingest() -> RecordIngest:
    return RecordIngest("fuzz", _Sink(), Sequencer(Source.TELEMETRY), ManualClock(T0), frozenset())


@FUZZ
@given(kind=st.sampled_from(RECORD_TYPES), data=st.binary(max_size=200))
def test_random_bytes(kind: str, data: bytes) -> None:
    with contextlib.suppress(FrameError):
        decode_record(kind, data)


@FUZZ
@given(
    base=st.sampled_from([VALID, VALID_JSON]),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.integers(0, 400),
)
def test_mutated_records_through_ingest(
    base: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    data = _mutate(base, edits)[:cut]
    ingest = _ingest()
    ingest.decode(lambda: decode_record("V", data), data)  # never raises
    ingest.flush(everything=True)


@FUZZ
@given(
    record=st.dictionaries(
        field_names, json_values | st.tuples(st.floats(), st.floats()), max_size=6
    )
)
def test_state_from_any_values(record: dict[str, object]) -> None:
    state_from_fields(record)  # type: ignore[arg-type]
    state_from_fields({k: INVALID for k in record})


@FUZZ
@given(
    value=json_values,
    field=st.text(max_size=10),
    kind=st.sampled_from(["v", "connectivity", "alerts", "errors"]),
)
def test_mqtt_messages(value: object, field: str, kind: str) -> None:
    topic = f"tb/VIN/{kind}/{field}" if kind != "connectivity" else "tb/VIN/connectivity"
    if kind == "alerts":
        topic += "/current"
    payload = json.dumps(value).encode()
    try:
        records = mqtt_records(topic, payload, "tb")
    except FrameError:
        return
    ingest = _ingest()
    ingest.records(records)
    ingest.flush(everything=True)


@FUZZ
@given(
    event=json_values, vin=st.booleans(), data=st.dictionaries(field_names, json_values, max_size=5)
)
def test_sse_events(event: object, vin: bool, data: dict[str, object]) -> None:
    for candidate in (event, {"vin": "V", "createdAt": "2025-03-03T00:00:00Z", "data": data}):
        try:
            records, _ = sse_records(candidate)
        except FrameError:
            continue
        ingest = _ingest()
        ingest.records(records)
        ingest.flush(everything=True)


@FUZZ
@given(
    cells=st.lists(st.text(alphabet="0123456789.-eDPRN ,x", max_size=8), min_size=0, max_size=15)
)
def test_legacy_rows(cells: list[str]) -> None:
    with contextlib.suppress(FrameError):
        observation_from_row("V", ",".join(cells))


@FUZZ
@given(frame=json_values | st.text(max_size=60))
def test_websocket_messages(frame: object) -> None:
    for text in (json.dumps(frame), str(frame)):
        with contextlib.suppress(FrameError):
            parse_message(text)
