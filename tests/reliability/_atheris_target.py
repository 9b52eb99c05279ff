"""Coverage-guided fuzzing of one decoder with atheris (libFuzzer): ``test_fuzz.py`` runs it.

``python _atheris_target.py DECODER WORKDIR [libFuzzer flags]``: the decoder's bytes entry
point is fuzzed from a corpus of real payloads (written to WORKDIR/corpus) and must allow only
its documented refusal; any other exception ends the run with libFuzzer's crash report and a
non-zero exit. fleetlog's modules are instrumented (edge coverage); the rest is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).parent))

with atheris.instrument_imports(include=["fleetlog"]):
    from fleetlog.importers.teslafi_csv import MonthFile, Rejected, Row, read_rows
    from fleetlog.sources.streaming.records import RECORD_TYPES, FrameError, decode_record
    from fleetlog.sources.streaming.sse import sse_lines, sse_records
    from fleetlog.sources.streaming.telemetry import mqtt_records
    from fleetlog.sources.streaming.websocket import Dialect, observation_from_row, parse_message
    from fleetlog.sources.vehicle_data import (
        PayloadError,
        observation_from_vehicle_data,
        observation_from_vehicle_item,
    )
    from fleetlog.vehicle.events import FetchKind

import _fuzzing as f

LOOP = asyncio.new_event_loop()  # one for the run: a loop per input costs more than the input
DIALECTS = list(Dialect)
KINDS = list(FetchKind)
WORK = Path(sys.argv[2])
FILES = itertools.count()


def _json(data: bytes) -> object:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # not JSON: nothing for the decoder to see
        return None


def rest_json(data: bytes) -> None:
    value = _json(data)
    for read in (observation_from_vehicle_data, observation_from_vehicle_item):
        with contextlib.suppress(PayloadError):
            read(value, received_at=f.T0)  # type: ignore[arg-type]


def rest_client(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    status = f.STATUSES[fdp.ConsumeIntInRange(0, len(f.STATUSES) - 1)]
    if fdp.ConsumeBool():
        status = fdp.ConsumeIntInRange(100, 599)
    kind = KINDS[fdp.ConsumeIntInRange(0, len(KINDS) - 1)]
    retry_after = "".join(
        f.RETRY_AFTER[b % len(f.RETRY_AFTER)]
        for b in fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 30))
    )
    content = fdp.ConsumeBytes(fdp.remaining_bytes())
    LOOP.run_until_complete(f.rest_client_one(status, content, retry_after, kind))


def stream(data: bytes) -> None:
    if not data:
        return
    text = data[1:].decode("latin-1")
    with contextlib.suppress(FrameError):
        observation_from_row(f.VIN, text, DIALECTS[data[0] % len(DIALECTS)])
    with contextlib.suppress(FrameError):
        parse_message(text)


def telemetry(data: bytes) -> None:
    if not data:
        return
    with contextlib.suppress(FrameError):
        decode_record(RECORD_TYPES[data[0] % len(RECORD_TYPES)], data[1:])
    feed = f.ingest()
    feed.decode(lambda: decode_record("V", data[1:]), data[1:])  # never raises
    feed.flush(everything=True)


def mqtt(data: bytes) -> None:
    if len(data) < 2:
        return
    kind = f.MQTT_KINDS[data[0] % len(f.MQTT_KINDS)]
    field = f.MQTT_FIELDS[data[1] % len(f.MQTT_FIELDS)]
    topic = f"tb/{f.VIN}/{kind}/{field}"
    if kind == "connectivity":
        topic = f"tb/{f.VIN}/connectivity"
    elif kind == "alerts":
        topic += "/current"
    try:
        records = mqtt_records(topic, data[2:], "tb")
    except FrameError:
        return
    feed = f.ingest()
    feed.records(records)
    feed.flush(everything=True)


def sse(data: bytes) -> None:
    buffer: list[str] = []
    for line in [*data.decode("utf-8", "replace").split("\n"), ""]:
        event = sse_lines(buffer, line)
        if event is None:
            continue
        try:
            records, _status = sse_records(json.loads(event))
        except (ValueError, RecursionError):  # FrameError, or not JSON
            continue
        feed = f.ingest()
        feed.records(records)
        feed.flush(everything=True)


def csv(data: bytes) -> None:
    path = WORK / f"TeslaFi32019-{next(FILES)}.csv"  # a new file: overwriting one is slow
    path.write_bytes(data)
    try:
        for item in read_rows(MonthFile(path, 2019, 3), f.BERLIN):
            assert isinstance(item, Row | Rejected)
    finally:
        path.unlink()


def corpus(decoder: str) -> list[bytes]:
    """Real payloads to start from, framed as the decoder's entry point reads them."""
    s = f.SAMPLES
    rest = json.dumps(s["rest"]).encode()
    if decoder == "rest_json":
        return [rest, json.dumps(s["item"]).encode()]
    if decoder == "rest_client":
        return [b"\x00\x00\x00\x00" + json.dumps({"response": s["rest"]}).encode(),
                b"\x00\x00\x00\x00" + json.dumps({"response": [s["item"]]}).encode()]  # fmt: skip
    if decoder == "stream":
        message = {"msg_type": "data:update", "tag": "1", "value": f.STREAM_ROW}
        return [b"\x00" + f.STREAM_ROW.encode(), b"\x01" + json.dumps(message).encode()]
    if decoder == "telemetry":
        return [b"\x00" + p for p in s["proto"][:10] + s["json"][:10]]
    if decoder == "mqtt":
        return [b"\x00\x00" + json.dumps({"latitude": 48.1, "longitude": 11.5}).encode(),
                b"\x00\x03" + b'"74.4"', b"\x01\x00" + b'{"Status":"CONNECTED"}']  # fmt: skip
    if decoder == "sse":
        return [b"data: " + json.dumps(e).encode() + b"\n\n" for e in s["sse"][:5]]
    return [f.FIXTURE.read_bytes()[:20_000]]


TARGETS: dict[str, Callable[[bytes], None]] = {
    "rest_json": rest_json, "rest_client": rest_client, "stream": stream,
    "telemetry": telemetry, "mqtt": mqtt, "sse": sse, "csv": csv,
}  # fmt: skip
ALL = list(TARGETS)


def every(data: bytes) -> None:
    """All decoders in one run (the short variant): the first byte picks one."""
    if data:
        TARGETS[ALL[data[0] % len(ALL)]](data[1:])


def every_corpus() -> list[bytes]:
    return [bytes([i]) + seed for i, name in enumerate(ALL) for seed in corpus(name)]


def main() -> None:
    decoder = sys.argv[1]
    target = every if decoder == "all" else TARGETS[decoder]
    seeds = WORK / "corpus"
    seeds.mkdir(parents=True, exist_ok=True)
    for i, payload in enumerate(every_corpus() if decoder == "all" else corpus(decoder)):
        (seeds / f"seed{i}").write_bytes(payload)

    def one_input(data: bytes) -> None:
        with f.quiet_logs():
            target(data)

    # libFuzzer reads its flags and corpus directories from argv (after the two of ours)
    flags = [*sys.argv[3:], "-max_len=4096", f"-artifact_prefix={WORK}/"]
    atheris.Setup([sys.argv[0], *flags, str(seeds)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
