"""Fuzz suite: every decoder of outside data, random and mutated input, zero unhandled exceptions.

Each decoder may refuse input only with its documented error (``FrameError`` for pushed
frames, ``PayloadError`` for REST bodies, a ``Rejected`` row for CSV, a ``TeslaError`` from the
REST client); the layers above them (``RestFetcher``, ``RecordIngest``) never raise at all.

The short variant (the normal run) tries a few hundred inputs per decoder; ``--long`` runs the
same properties with 100,000 inputs each (hypothesis; no deadline, no shrinking database).
Complements ``tests/streaming/test_fuzz.py`` (which fuzzes the streaming decoders on their
own) with mutations of real payloads taken from the simulator, the REST client over an
in-process transport, and the TeslaFi CSV reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetlog.clock import ManualClock
from fleetlog.importers.teslafi_csv import (
    LocalClock,
    MonthFile,
    Rejected,
    Row,
    parse_row,
    read_rows,
)
from fleetlog.model.observation import Source
from fleetlog.sim import CloudOptions, World, build
from fleetlog.sim.encoding import encode, server_transform, to_protojson
from fleetlog.sim.payload import vehicle_data, vehicle_item
from fleetlog.sim.push import PushHub, PushSink
from fleetlog.sim.telemetry import ConnectivityRecord, VRecord
from fleetlog.sources.polling import RestFetcher
from fleetlog.sources.streaming.feed import FeedEvent, RecordIngest
from fleetlog.sources.streaming.records import RECORD_TYPES, FrameError, Notice, decode_record
from fleetlog.sources.streaming.sequencer import Sequencer
from fleetlog.sources.streaming.sse import sse_lines, sse_records
from fleetlog.sources.streaming.telemetry import mqtt_records
from fleetlog.sources.streaming.websocket import Dialect, observation_from_row, parse_message
from fleetlog.sources.tesla import TeslaClient, TeslaError
from fleetlog.sources.tesla._hosts import Mode, Profile, RefreshStyle
from fleetlog.sources.tesla._pricing import Pricing
from fleetlog.sources.vehicle_data import (
    PayloadError,
    observation_from_vehicle_data,
    observation_from_vehicle_item,
)
from fleetlog.vehicle.events import FetchKind

T0 = datetime(2025, 3, 3, 7, 0, tzinfo=UTC)
SHORT = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LONG = settings(
    max_examples=100_000,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def both(fn: Callable[..., None], /, **strategies: st.SearchStrategy[Any]) -> tuple[Any, Any]:
    """The property as a short test and as a ``--long`` test with 100k inputs."""
    short = SHORT(given(**strategies)(fn))
    long = pytest.mark.slow(LONG(given(**strategies)(fn)))
    return short, long


# --- real payloads to mutate, from the simulator ---------------------------------------------


class _Collect(PushSink):
    def __init__(self) -> None:
        self.records: list[Any] = []

    def on_record(self, record: Any) -> None:
        self.records.append(record)


def _samples() -> dict[str, Any]:
    """A commute's worth of what the simulator sends, in every encoding fleetlog reads."""
    world = World(
        build("commuter-week", 1), CloudOptions(mode="teslemetry", billing_limit_usd=None)
    )
    hub = PushHub(world, ack_loss=0.0)
    world.advance(datetime(2025, 3, 3, 6, 47, tzinfo=UTC))
    sink = _Collect()
    hub.add_sink(sink)
    hub.attach()
    world.advance(datetime(2025, 3, 3, 6, 55, tzinfo=UTC))
    car = world.cars[0]
    sections = {"charge_state", "climate_state", "drive_state", "gui_settings",
                "vehicle_config", "vehicle_state", "location_data"}  # fmt: skip
    rest = vehicle_data(car, car.snapshot(), sections, world.account.id)
    item = vehicle_item(car, car.snapshot())
    v = [server_transform(r) for r in sink.records if isinstance(r, VRecord)][:40]
    conn = [r for r in sink.records if isinstance(r, ConnectivityRecord)]
    proto = [encode(r, "protobuf") for r in v] + [encode(r, "protobuf") for r in conn]
    pjson = [encode(r, "json") for r in v]
    stamp = "2025-03-03T06:50:00Z"
    sse = [{"vin": r.vin, "createdAt": stamp, "data": _flat(to_protojson(r))} for r in v[:10]]
    return {"rest": rest, "item": item, "proto": proto, "json": pjson, "sse": sse}


def _flat(pj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in pj.get("data", []):
        value = d.get("value") or {}
        out[str(d.get("key"))] = next(iter(value.values()), None) if value else None
    return out


SAMPLES = _samples()
STREAM_ROW = "1741000000000,55,1234.5,80,520,90,48.137,11.575,12,D,200.1,180.5,91"

json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=8)


def _mutate(data: bytes, changes: list[tuple[int, int]], cut: int | None = None) -> bytes:
    buf = bytearray(data)
    for pos, byte in changes:
        if buf:
            buf[pos % len(buf)] = byte
    return bytes(buf if cut is None else buf[:cut])


def _mutate_json(value: Any, rng: random.Random, replacement: Any) -> Any:
    """`value` with one leaf somewhere (or a whole branch) replaced by `replacement`."""
    if isinstance(value, dict) and value:
        key = rng.choice(sorted(value, key=str))
        out = dict(value)
        out[key] = replacement if rng.random() < 0.3 else _mutate_json(value[key], rng, replacement)
        return out
    if isinstance(value, list) and value:
        i = rng.randrange(len(value))
        out_l = list(value)
        out_l[i] = replacement if rng.random() < 0.3 else _mutate_json(value[i], rng, replacement)
        return out_l
    return replacement


class _Outlet:
    def event(self, item: FeedEvent) -> None:
        return None

    def notice(self, item: Notice, feed: str) -> None:
        return None


def _ingest() -> RecordIngest:
    return RecordIngest(
        "fuzz", _Outlet(), Sequencer(Source.TELEMETRY), ManualClock(T0), frozenset()
    )


# --- REST JSON ---------------------------------------------------------------------------------


def _rest_body(seed: int, replacement: Any) -> None:
    payload = _mutate_json(SAMPLES["rest"], random.Random(seed), replacement)
    with contextlib.suppress(PayloadError):
        observation_from_vehicle_data(payload, received_at=T0)
    item = _mutate_json(SAMPLES["item"], random.Random(seed + 1), replacement)
    with contextlib.suppress(PayloadError):
        observation_from_vehicle_item(item, received_at=T0)


test_rest_json, test_rest_json_long = both(
    _rest_body, seed=st.integers(0, 1 << 30), replacement=json_values
)


def _profile() -> Profile:
    base = "http://tesla.fuzz"
    return Profile(
        mode=Mode.PROVIDER,
        api_base=base,
        issuer=base + "/oauth2/v3",
        client_id="ownerapi",
        refresh_style=RefreshStyle.JSON,
        pricing=Pricing(),
        provider_token="fuzz-provider-token-0123456789",
    )


def _rest_client_body(status: int, content: bytes, retry_after: str, kind: FetchKind) -> None:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers={"Retry-After": retry_after})

    async def go() -> None:
        clock = ManualClock(T0)
        http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        client = TeslaClient(_profile(), None, clock=clock, http=http)
        try:
            for call in (
                client.products,
                lambda: client.vehicle(1),
                lambda: client.vehicle_data(1),
            ):
                with contextlib.suppress(TeslaError, PayloadError):
                    await call()
            # the layer the worker uses turns every outcome into an event: nothing leaves it
            await RestFetcher(client, 1, "VIN", clock).fetch(kind)
        finally:
            await http.aclose()

    asyncio.run(go())


rest_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps({"response": v}).encode()),
    st.builds(
        lambda seed, rep: json.dumps(
            {"response": _mutate_json(SAMPLES["rest"], random.Random(seed), rep)}
        ).encode(),
        st.integers(0, 1 << 30),
        json_values,
    ),
)
test_rest_client, test_rest_client_long = both(
    _rest_client_body,
    status=st.sampled_from(
        [200, 200, 200, 400, 401, 403, 404, 405, 408, 412, 421, 429, 500, 503, 540]
    )
    | st.integers(100, 599),
    content=rest_bodies,
    retry_after=st.text(alphabet="0123456789 ,:GMTMonTueDecabc-", max_size=30),
    kind=st.sampled_from(list(FetchKind)),
)


# --- streaming websocket ----------------------------------------------------------------------


def _stream_body(
    cells: list[str], dialect: Dialect, frame: Any, mutations: list[tuple[int, int]]
) -> None:
    for row in (",".join(cells), _mutate(STREAM_ROW.encode(), mutations).decode("latin-1")):
        with contextlib.suppress(FrameError):
            observation_from_row("5YJ3E7EB0KF000001", row, dialect)
    message = {"msg_type": "data:update", "tag": "1", "value": ",".join(cells)}
    for text in (
        json.dumps(frame),
        json.dumps(message),
        _mutate(json.dumps(message).encode(), mutations),
    ):
        with contextlib.suppress(FrameError):
            parse_message(text)


test_stream_frames, test_stream_frames_long = both(
    _stream_body,
    cells=st.lists(st.text(alphabet="0123456789.-eDPRN ,x", max_size=9), max_size=15),
    dialect=st.sampled_from(list(Dialect)),
    frame=json_values,
    mutations=edits,
)


# --- telemetry: protobuf, protojson, MQTT values ---------------------------------------------


def _telemetry_body(
    kind: str, index: int, mutations: list[tuple[int, int]], cut: int, raw: bytes
) -> None:
    pool = SAMPLES["proto"] if index % 2 else SAMPLES["json"]
    base = pool[index % len(pool)]
    for data in (_mutate(base, mutations, cut), raw):
        with contextlib.suppress(FrameError):
            decode_record(kind, data)
        ingest = _ingest()
        ingest.decode(lambda d=data: decode_record("V", d), data)  # never raises
        ingest.flush(everything=True)


test_telemetry_records, test_telemetry_records_long = both(
    _telemetry_body,
    kind=st.sampled_from(RECORD_TYPES),
    index=st.integers(0, 1000),
    mutations=edits,
    cut=st.integers(0, 600),
    raw=st.binary(max_size=120),
)


def _mqtt_body(value: Any, field: str, kind: str, raw: bytes) -> None:
    topic = f"tb/5YJ3E7EB0KF000001/{kind}/{field}"
    if kind == "connectivity":
        topic = "tb/5YJ3E7EB0KF000001/connectivity"
    elif kind == "alerts":
        topic += "/current"
    for payload in (json.dumps(value).encode(), raw):
        try:
            records = mqtt_records(topic, payload, "tb")
        except FrameError:
            continue
        ingest = _ingest()
        ingest.records(records)
        ingest.flush(everything=True)


test_mqtt_values, test_mqtt_values_long = both(
    _mqtt_body,
    value=json_values,
    field=st.sampled_from(["Location", "Gear", "VehicleSpeed", "Soc", "Odometer", "Nope"])
    | st.text(max_size=10),
    kind=st.sampled_from(["v", "connectivity", "alerts", "errors"]),
    raw=st.binary(max_size=60),
)


# --- SSE --------------------------------------------------------------------------------------


def _sse_body(index: int, seed: int, replacement: Any, lines: list[str]) -> None:
    base = SAMPLES["sse"][index % len(SAMPLES["sse"])]
    for event in (_mutate_json(base, random.Random(seed), replacement), replacement):
        try:
            records, _state = sse_records(event)
        except FrameError:
            continue
        ingest = _ingest()
        ingest.records(records)
        ingest.flush(everything=True)
    buffer: list[str] = []
    for line in lines:
        data = sse_lines(buffer, line)
        if data is not None:
            with contextlib.suppress(ValueError), contextlib.suppress(FrameError):
                sse_records(json.loads(data))


test_sse_events, test_sse_events_long = both(
    _sse_body,
    index=st.integers(0, 100),
    seed=st.integers(0, 1 << 30),
    replacement=json_values,
    lines=st.lists(
        st.sampled_from(["", "data: {}", ": keep-alive"]) | st.text(max_size=30), max_size=8
    ),
)


# --- TeslaFi CSV ------------------------------------------------------------------------------

FIXTURE = Path(__file__).parents[1] / "fixtures" / "teslafi" / "two_cars_dst" / "TeslaFi32019.csv"
_LINES = FIXTURE.read_text(encoding="utf-8").splitlines()
HEADER = [h.strip() for h in _LINES[0].split(",")]
ROWS = [line.split(",") for line in _LINES[1:40] if line.strip()]
BERLIN = ZoneInfo("Europe/Berlin")


def _csv_body(index: int, changes: list[tuple[int, str]], blob: bytes, tmp_dir: Path) -> None:
    cells = list(ROWS[index % len(ROWS)])
    cells += [""] * (len(HEADER) - len(cells))
    for pos, text in changes:
        cells[pos % len(cells)] = text
    clocks: dict[str, LocalClock] = {}
    result = parse_row(
        1, dict(zip(HEADER, cells[: len(HEADER)], strict=True)), clocks, BERLIN, None
    )
    assert isinstance(result, Row | Rejected)
    # whole files: a mutated export, and arbitrary bytes under a TeslaFi name
    text = "\n".join([_LINES[0], ",".join(cells), *_LINES[1:4]]).encode()
    for content in (text, blob, _LINES[0].encode() + b"\n" + blob):
        path = tmp_dir / "TeslaFi32019.csv"
        path.write_bytes(content)
        for item in read_rows(MonthFile(path, 2019, 3), BERLIN):
            assert isinstance(item, Row | Rejected)


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("csv")


_csv_strategies = {
    "index": st.integers(0, 100),
    "changes": st.lists(
        st.tuples(
            st.integers(0, 500),
            st.sampled_from(["", "-1", "1e309", "nan", "inf", "2019-03-31 02:30:00", "x" * 300])
            | st.text(max_size=20),
        ),
        min_size=1,
        max_size=6,
    ),
    "blob": st.binary(max_size=300),
}


@SHORT
@given(**_csv_strategies)
def test_teslafi_csv(
    csv_dir: Path, index: int, changes: list[tuple[int, str]], blob: bytes
) -> None:
    _csv_body(index, changes, blob, csv_dir)


@pytest.mark.slow
@LONG
@given(**_csv_strategies)
def test_teslafi_csv_long(
    csv_dir: Path, index: int, changes: list[tuple[int, str]], blob: bytes
) -> None:
    _csv_body(index, changes, blob, csv_dir)


def test_samples_are_real() -> None:
    """The seeds decode cleanly: the mutations start from what the sources really send."""
    assert observation_from_vehicle_data(SAMPLES["rest"], received_at=T0).state.odometer_km
    assert all(decode_record("V", p) for p in SAMPLES["json"])
    assert len(SAMPLES["proto"]) > 10
    assert ROWS and len(HEADER) > 50
    started = datetime.now(UTC)
    assert datetime.now(UTC) - started < timedelta(seconds=5)
