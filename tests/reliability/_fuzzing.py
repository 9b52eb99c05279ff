"""What the fuzz suites feed and to what: the decoders' properties, real seeds, a fast mutator.

Each ``*_body`` function is one property: it hands one input (several related payloads) to a
decoder and allows only that decoder's documented refusal. ``test_fuzz.py`` drives them with
hypothesis; ``_atheris_target.py`` with atheris. The ``more_*`` functions draw the same kind
of input as the hypothesis strategies from a ``random.Random``, about a hundred times faster:
the long variant takes one input per hypothesis example and the rest of its batch from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from fleetlog.clock import ManualClock
from fleetlog.importers.teslafi_csv import (
    LocalClock,
    MonthFile,
    Rejected,
    Row,
    parse_row,
    read_rows,
)
from fleetlog.logs import KeyValueFormatter
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
VIN = "5YJ3E7EB0KF000001"

# --- real payloads to mutate, from the simulator ---------------------------------------------


class _Collect(PushSink):
    def __init__(self) -> None:
        self.records: list[Any] = []

    def on_record(self, record: Any) -> None:
        self.records.append(record)


def _flat(pj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in pj.get("data", []):
        value = d.get("value") or {}
        out[str(d.get("key"))] = next(iter(value.values()), None) if value else None
    return out


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


SAMPLES = _samples()
STREAM_ROW = "1741000000000,55,1234.5,80,520,90,48.137,11.575,12,D,200.1,180.5,91"

FIXTURE = Path(__file__).parents[1] / "fixtures" / "teslafi" / "two_cars_dst" / "TeslaFi32019.csv"
_LINES = FIXTURE.read_text(encoding="utf-8").splitlines()
HEADER = [h.strip() for h in _LINES[0].split(",")]
ROWS = [line.split(",") for line in _LINES[1:40] if line.strip()]
BERLIN = ZoneInfo("Europe/Berlin")

# --- mutation -----------------------------------------------------------------------------


def mutate(data: bytes, changes: list[tuple[int, int]], cut: int | None = None) -> bytes:
    buf = bytearray(data)
    for pos, byte in changes:
        if buf:
            buf[pos % len(buf)] = byte
    return bytes(buf if cut is None else buf[:cut])


def mutate_json(value: Any, rng: random.Random, replacement: Any) -> Any:
    """`value` with one leaf somewhere (or a whole branch) replaced by `replacement`."""
    if isinstance(value, dict) and value:
        key = rng.choice(sorted(value, key=str))
        out = dict(value)
        out[key] = replacement if rng.random() < 0.3 else mutate_json(value[key], rng, replacement)
        return out
    if isinstance(value, list) and value:
        i = rng.randrange(len(value))
        out_l = list(value)
        out_l[i] = replacement if rng.random() < 0.3 else mutate_json(value[i], rng, replacement)
        return out_l
    return replacement


# --- the fast generator: JSON values, text and bytes the decoders find hardest ----------------


def _keys(value: Any, into: set[str]) -> set[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            into.add(str(k))
            _keys(v, into)
    elif isinstance(value, list):
        for v in value:
            _keys(v, into)
    return into


KEYS = sorted(
    _keys([SAMPLES["rest"], SAMPLES["item"], SAMPLES["sse"]], set())
    | {"", "value", "latitude", "longitude", "data", "vin", "createdAt", "response", "error",
       "alerts", "errors", "name", "startedAt", "endedAt", "state", "status", "msg_type", "tag"}
)  # fmt: skip
NUMBERS: tuple[int | float, ...] = (
    0, 1, -1, 0.5, -0.0, 255, 65536, 2**31, 2**63, -(2**63) - 1, 10**20, 10**400, 1e308,
    1e-320, math.nan, math.inf, -math.inf, 1741000000000, 9_223_372_036_854_775_283_712,
    -62_135_596_800_001, 91, -181,
)  # fmt: skip
TEXTS = (
    "", " ", "null", "true", "false", "NaN", "Infinity", "-1", "1e309", "0x10", "1_000",
    "ShiftStateD", "D", "P", "Charging", "Complete", "online", "asleep", "CONNECTED",
    "2025-03-03T07:00:00Z", "2025-03-03T07:00:00.123456789+01:00", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00", "(48.1 N, 11.5 E)", "(91 N, 0 E)", "\x00", "é", "x" * 300,
    "12:30:00", "data:update", "data:error", "control:hello", "{}", "[]",
)  # fmt: skip
_CHARS = '0123456789.,-+eE:TZ NnaifDPRx"{}[]\\\x00é€'
_BMP = (lambda r: r.randrange(0x20, 0xD800), lambda r: r.randrange(0xE000, 0x10000))


def rand_text(rng: random.Random, size: int = 12, chars: str | None = None) -> str:
    """Text of up to `size` characters; only from `chars` when given (as an alphabet)."""
    n = rng.randrange(size + 1)
    if chars is not None:
        return "".join(rng.choice(chars) for _ in range(n))
    if rng.random() < 0.3:
        return rng.choice(TEXTS)
    chars = _CHARS
    if rng.random() < 0.2:  # anywhere in the BMP but the surrogates, as hypothesis's text()
        return "".join(chr(rng.choice(_BMP)(rng)) for _ in range(n))
    return "".join(rng.choice(chars) for _ in range(n))


def rand_leaf(rng: random.Random) -> Any:
    kind = rng.randrange(8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice(NUMBERS)
    if kind == 3:
        return rng.randint(-(2 ** rng.randrange(70)), 2 ** rng.randrange(70))
    if kind == 4:
        return rng.uniform(-1e4, 1e4) * 10 ** rng.randrange(-5, 20)
    if kind == 5:
        return str(rng.choice(NUMBERS))
    return rand_text(rng)


def rand_json(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if depth < 3 and r < 0.12:
        return [rand_json(rng, depth + 1) for _ in range(rng.randrange(5))]
    if depth < 3 and r < 0.25:
        keys = [rng.choice(KEYS) if rng.random() < 0.7 else rand_text(rng, 10) for _ in "..."]
        return {k: rand_json(rng, depth + 1) for k in keys[: rng.randrange(4)]}
    return rand_leaf(rng)


def rand_bytes(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(rng.randrange(size + 1))


def rand_edits(rng: random.Random) -> list[tuple[int, int]]:
    return [(rng.randrange(1 << 16), rng.randrange(256)) for _ in range(rng.randint(1, 8))]


# --- logs: every bad-input line is formatted (a line that cannot be is a crash) and dropped ---


class _FormatAndDrop(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(KeyValueFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)  # no try: an unformattable line propagates out of the decoder


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """fleetlog's logs formatted and discarded: 100k bad frames must not pile up in pytest."""
    logger = logging.getLogger("fleetlog")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers[:] = [_FormatAndDrop()]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


class _Outlet:
    def event(self, item: FeedEvent) -> None:
        return None

    def notice(self, item: Notice, feed: str) -> None:
        return None


def ingest() -> RecordIngest:
    return RecordIngest(
        "fuzz", _Outlet(), Sequencer(Source.TELEMETRY), ManualClock(T0), frozenset()
    )


# --- REST JSON ---------------------------------------------------------------------------------


def rest_json_body(seed: int, replacement: Any) -> None:
    payload = mutate_json(SAMPLES["rest"], random.Random(seed), replacement)
    with contextlib.suppress(PayloadError):
        observation_from_vehicle_data(payload, received_at=T0)
    item = mutate_json(SAMPLES["item"], random.Random(seed + 1), replacement)
    with contextlib.suppress(PayloadError):
        observation_from_vehicle_item(item, received_at=T0)


def more_rest_json(rng: random.Random) -> dict[str, Any]:
    return {"seed": rng.getrandbits(30), "replacement": rand_json(rng)}


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


async def rest_client_one(status: int, content: bytes, retry_after: str, kind: FetchKind) -> None:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers={"Retry-After": retry_after})

    # a fresh client each time: one that saw a 429 would not ask again on this clock
    clock = ManualClock(T0)
    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    client = TeslaClient(_profile(), None, clock=clock, http=http)
    try:
        for call in (client.products, lambda: client.vehicle(1), lambda: client.vehicle_data(1)):
            with contextlib.suppress(TeslaError, PayloadError):
                await call()
        # the layer the worker uses turns every outcome into an event: nothing leaves it
        await RestFetcher(client, 1, "VIN", clock).fetch(kind)
    finally:
        await http.aclose()


def rest_client_body(status: int, content: bytes, retry_after: str, kind: FetchKind) -> None:
    asyncio.run(rest_client_one(status, content, retry_after, kind))


def rest_client_batch(inputs: list[dict[str, Any]]) -> None:
    """Many inputs on one event loop (a loop per input costs more than the decoding)."""

    async def go() -> None:
        for one in inputs:
            try:
                await rest_client_one(**one)
            except BaseException as exc:
                exc.add_note(f"fuzz input: {one!r}"[:2000])
                raise

    asyncio.run(go())


STATUSES = [200, 200, 200, 400, 401, 403, 404, 405, 408, 412, 421, 429, 500, 503, 540]
RETRY_AFTER = "0123456789 ,:GMTMonTueDecabc-"


def rest_body_bytes(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return rand_bytes(rng, 200)
    if kind == 1:
        return json.dumps(rand_json(rng)).encode()
    if kind == 2:
        return json.dumps({"response": rand_json(rng)}).encode()
    payload = mutate_json(SAMPLES["rest"], random.Random(rng.getrandbits(30)), rand_json(rng))
    return json.dumps({"response": payload}).encode()


def more_rest_client(rng: random.Random) -> dict[str, Any]:
    return {
        "status": rng.choice(STATUSES) if rng.random() < 0.7 else rng.randint(100, 599),
        "content": rest_body_bytes(rng),
        "retry_after": rand_text(rng, 30, RETRY_AFTER),
        "kind": rng.choice(list(FetchKind)),
    }


# --- streaming websocket ----------------------------------------------------------------------

CELL_CHARS = "0123456789.-eDPRN ,x"


def stream_body(
    cells: list[str], dialect: Dialect, frame: Any, mutations: list[tuple[int, int]]
) -> None:
    for row in (",".join(cells), mutate(STREAM_ROW.encode(), mutations).decode("latin-1")):
        with contextlib.suppress(FrameError):
            observation_from_row(VIN, row, dialect)
    message = {"msg_type": "data:update", "tag": "1", "value": ",".join(cells)}
    for text in (
        json.dumps(frame),
        json.dumps(message),
        mutate(json.dumps(message).encode(), mutations),
    ):
        with contextlib.suppress(FrameError):
            parse_message(text)


def more_stream(rng: random.Random) -> dict[str, Any]:
    return {
        "cells": [rand_text(rng, 9, CELL_CHARS) for _ in range(rng.randrange(16))],
        "dialect": rng.choice(list(Dialect)),
        "frame": rand_json(rng),
        "mutations": rand_edits(rng),
    }


# --- telemetry: protobuf, protojson, MQTT values ---------------------------------------------


def telemetry_body(
    kind: str, index: int, mutations: list[tuple[int, int]], cut: int, raw: bytes
) -> None:
    pool = SAMPLES["proto"] if index % 2 else SAMPLES["json"]
    base = pool[index % len(pool)]
    for data in (mutate(base, mutations, cut), raw):
        with contextlib.suppress(FrameError):
            decode_record(kind, data)  # type: ignore[arg-type]
        feed = ingest()
        feed.decode(lambda d=data: decode_record("V", d), data)  # never raises
        feed.flush(everything=True)


def more_telemetry(rng: random.Random) -> dict[str, Any]:
    return {
        "kind": rng.choice(RECORD_TYPES),
        "index": rng.randrange(1001),
        "mutations": rand_edits(rng),
        "cut": rng.randrange(601),
        "raw": rand_bytes(rng, 120),
    }


MQTT_FIELDS = ["Location", "Gear", "VehicleSpeed", "Soc", "Odometer", "Nope"]
MQTT_KINDS = ["v", "connectivity", "alerts", "errors"]


def mqtt_body(value: Any, field: str, kind: str, raw: bytes) -> None:
    topic = f"tb/{VIN}/{kind}/{field}"
    if kind == "connectivity":
        topic = f"tb/{VIN}/connectivity"
    elif kind == "alerts":
        topic += "/current"
    for payload in (json.dumps(value).encode(), raw):
        try:
            records = mqtt_records(topic, payload, "tb")
        except FrameError:
            continue
        feed = ingest()
        feed.records(records)
        feed.flush(everything=True)


def more_mqtt(rng: random.Random) -> dict[str, Any]:
    return {
        "value": rand_json(rng),
        "field": rng.choice(MQTT_FIELDS) if rng.random() < 0.8 else rand_text(rng, 10),
        "kind": rng.choice(MQTT_KINDS),
        "raw": rand_bytes(rng, 60),
    }


# --- SSE --------------------------------------------------------------------------------------

SSE_LINES = ["", "data: {}", ": keep-alive"]


def sse_body(index: int, seed: int, replacement: Any, lines: list[str]) -> None:
    base = SAMPLES["sse"][index % len(SAMPLES["sse"])]
    for event in (mutate_json(base, random.Random(seed), replacement), replacement):
        try:
            records, _state = sse_records(event)
        except FrameError:
            continue
        feed = ingest()
        feed.records(records)
        feed.flush(everything=True)
    buffer: list[str] = []
    for line in lines:
        data = sse_lines(buffer, line)
        if data is not None:
            with contextlib.suppress(ValueError):  # FrameError, or not JSON
                sse_records(json.loads(data))


def more_sse(rng: random.Random) -> dict[str, Any]:
    lines = []
    for _ in range(rng.randrange(9)):
        r = rng.random()
        if r < 0.4:
            lines.append(rng.choice(SSE_LINES))
        elif r < 0.7:
            event = mutate_json(rng.choice(SAMPLES["sse"]), rng, rand_json(rng))
            lines.append("data: " + json.dumps(event))
        else:
            lines.append(rand_text(rng, 30))
    return {
        "index": rng.randrange(101),
        "seed": rng.getrandbits(30),
        "replacement": rand_json(rng),
        "lines": lines,
    }


# --- TeslaFi CSV ------------------------------------------------------------------------------

CSV_TEXTS = ["", "-1", "1e309", "nan", "inf", "2019-03-31 02:30:00", "x" * 300]


def csv_body(index: int, changes: list[tuple[int, str]], blob: bytes, tmp_dir: Path) -> None:
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
        # a new file each time: overwriting one makes ext4 flush it (3 ms, not 0.2 ms)
        path = tmp_dir / f"TeslaFi32019-{next(_files)}.csv"
        path.write_bytes(content)
        try:
            for item in read_rows(MonthFile(path, 2019, 3), BERLIN):
                assert isinstance(item, Row | Rejected)
        finally:
            path.unlink()


_files = itertools.count()


def more_csv(rng: random.Random) -> dict[str, Any]:
    changes = []
    for _ in range(rng.randint(1, 6)):
        text = rng.choice(CSV_TEXTS) if rng.random() < 0.3 else rand_text(rng, 20)
        changes.append((rng.randrange(501), text))
    return {"index": rng.randrange(101), "changes": changes, "blob": rand_bytes(rng, 300)}
