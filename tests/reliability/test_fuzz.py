"""Fuzz suite: every decoder of outside data, random and mutated input, zero unhandled exceptions.

Each decoder may refuse input only with its documented error (``FrameError`` for pushed
frames, ``PayloadError`` for REST bodies, a ``Rejected`` row for CSV, a ``TeslaError`` from the
REST client); the layers above them (``RestFetcher``, ``RecordIngest``) never raise at all.
Every log line a bad input causes is formatted (a line that cannot be is a failure) and dropped.

The short variant (the normal run) tries 150 hypothesis inputs per decoder. ``--long`` tries
100,000 per decoder, counted: each hypothesis example brings one input from the strategies
below and a seed for 19 more from the fast generator in ``_fuzzing.py`` (the same kinds of
value, a hundred times cheaper to draw than through hypothesis), so the whole long run takes
minutes, not hours. With ``atheris`` installed, ``test_atheris`` also runs each decoder under
coverage-guided libFuzzer (3,000 inputs over all of them; 100,000 each with ``--long``);
skipped without it.
The properties, the seeds (the simulator's real payloads, a real TeslaFi export) and the
generator live in ``_fuzzing.py``. Complements ``tests/streaming/test_fuzz.py``.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))  # this folder's helpers

import _fuzzing as f

from fleetlog.sources.streaming.records import RECORD_TYPES, decode_record
from fleetlog.sources.streaming.websocket import Dialect
from fleetlog.sources.vehicle_data import observation_from_vehicle_data
from fleetlog.vehicle.events import FetchKind

SHORT = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LONG_INPUTS = 100_000
BATCH = 20  # inputs per hypothesis example in the long variant: 1 from hypothesis, 19 fast
LONG = settings(
    max_examples=LONG_INPUTS // BATCH,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),  # no "explain": slow on a big run
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[None]:
    with f.quiet_logs():
        yield


Batch = Callable[[list[dict[str, Any]]], None]


def _each(body: Callable[..., None]) -> Batch:
    def run(inputs: list[dict[str, Any]]) -> None:
        for one in inputs:
            try:
                body(**one)
            except BaseException as exc:
                exc.add_note(f"fuzz input: {one!r}"[:2000])
                raise

    return run


def _long_run(
    batch: Batch,
    more: Callable[[random.Random], dict[str, Any]],
    examples: int = LONG_INPUTS // BATCH,
    **strategies: Any,
) -> int:
    """Run the long variant; returns how many inputs the decoder saw."""
    seen = 0

    @settings(LONG, max_examples=examples)
    @given(batch_seed=st.integers(0, (1 << 32) - 1), **strategies)
    def run(batch_seed: int, **drawn: Any) -> None:
        nonlocal seen
        # seeded by the whole example: hypothesis repeats small seeds, rarely whole examples,
        # and a replay (shrinking) must draw the same batch again
        rng = random.Random(repr((batch_seed, sorted(drawn.items()))))
        batch([drawn, *(more(rng) for _ in range(BATCH - 1))])
        seen += BATCH

    run()
    return seen


def both(
    body: Callable[..., None],
    more: Callable[[random.Random], dict[str, Any]],
    /,
    batch: Batch | None = None,
    **strategies: st.SearchStrategy[Any],
) -> tuple[Any, Any]:
    """The property as a short test and as a ``--long`` test with at least 100k inputs."""
    short = SHORT(given(**strategies)(body))

    @pytest.mark.slow
    def long() -> None:
        seen = _long_run(batch or _each(body), more, **strategies)
        assert seen >= LONG_INPUTS

    return short, long


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
edits = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=8)


# --- REST JSON ---------------------------------------------------------------------------------

test_rest_json, test_rest_json_long = both(
    f.rest_json_body, f.more_rest_json, seed=st.integers(0, 1 << 30), replacement=json_values
)

rest_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: f.json.dumps(v).encode()),
    json_values.map(lambda v: f.json.dumps({"response": v}).encode()),
    st.builds(
        lambda seed, rep: f.json.dumps(
            {"response": f.mutate_json(f.SAMPLES["rest"], random.Random(seed), rep)}
        ).encode(),
        st.integers(0, 1 << 30),
        json_values,
    ),
)
test_rest_client, test_rest_client_long = both(
    f.rest_client_body,
    f.more_rest_client,
    batch=f.rest_client_batch,
    status=st.sampled_from(f.STATUSES) | st.integers(100, 599),
    content=rest_bodies,
    retry_after=st.text(alphabet=f.RETRY_AFTER, max_size=30),
    kind=st.sampled_from(list(FetchKind)),
)

# --- streaming websocket ----------------------------------------------------------------------

test_stream_frames, test_stream_frames_long = both(
    f.stream_body,
    f.more_stream,
    cells=st.lists(st.text(alphabet=f.CELL_CHARS, max_size=9), max_size=15),
    dialect=st.sampled_from(list(Dialect)),
    frame=json_values,
    mutations=edits,
)

# --- telemetry: protobuf, protojson, MQTT values ---------------------------------------------

test_telemetry_records, test_telemetry_records_long = both(
    f.telemetry_body,
    f.more_telemetry,
    kind=st.sampled_from(RECORD_TYPES),
    index=st.integers(0, 1000),
    mutations=edits,
    cut=st.integers(0, 600),
    raw=st.binary(max_size=120),
)

test_mqtt_values, test_mqtt_values_long = both(
    f.mqtt_body,
    f.more_mqtt,
    value=json_values,
    field=st.sampled_from(f.MQTT_FIELDS) | st.text(max_size=10),
    kind=st.sampled_from(f.MQTT_KINDS),
    raw=st.binary(max_size=60),
)

# --- SSE --------------------------------------------------------------------------------------

test_sse_events, test_sse_events_long = both(
    f.sse_body,
    f.more_sse,
    index=st.integers(0, 100),
    seed=st.integers(0, 1 << 30),
    replacement=json_values,
    lines=st.lists(st.sampled_from(f.SSE_LINES) | st.text(max_size=30), max_size=8),
)

# --- TeslaFi CSV ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def csv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("csv")


_csv_strategies = {
    "index": st.integers(0, 100),
    "changes": st.lists(
        st.tuples(st.integers(0, 500), st.sampled_from(f.CSV_TEXTS) | st.text(max_size=20)),
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
    f.csv_body(index, changes, blob, csv_dir)


@pytest.mark.slow
def test_teslafi_csv_long(csv_dir: Path) -> None:
    def body(**one: Any) -> None:
        f.csv_body(tmp_dir=csv_dir, **one)

    assert _long_run(_each(body), f.more_csv, **_csv_strategies) >= LONG_INPUTS


# --- the harness itself -----------------------------------------------------------------------


def test_samples_are_real() -> None:
    """The seeds decode cleanly: the mutations start from what the sources really send."""
    assert observation_from_vehicle_data(f.SAMPLES["rest"], received_at=f.T0).state.odometer_km
    assert all(decode_record("V", p) for p in f.SAMPLES["json"])
    assert len(f.SAMPLES["proto"]) > 10
    assert f.ROWS and len(f.HEADER) > 50


def test_fast_generator_reaches_the_corners() -> None:
    """The fast generator draws what hypothesis would: huge and non-finite numbers, odd text,
    nesting, real keys — else the long variant's 95 % would be weaker inputs."""
    rng = random.Random(1)
    values = [f.rand_json(rng) for _ in range(3000)]
    kinds = {type(v).__name__ for v in values}
    assert kinds >= {"NoneType", "bool", "int", "float", "str", "list", "dict"}
    assert any(isinstance(v, int) and abs(v) > 1 << 64 for v in values)
    assert any(isinstance(v, float) and v != v for v in values)
    assert any(isinstance(v, str) and any(ord(c) > 0x7FF for c in v) for v in values)
    assert any(isinstance(v, dict) and set(v) & {"charge_state", "drive_state"} for v in values)
    assert any(isinstance(v, list) and any(isinstance(x, dict | list) for x in v) for v in values)
    batch = [f.more_rest_client(rng) for _ in range(500)]
    assert {b["status"] for b in batch} >= set(f.STATUSES)
    assert len({b["content"] for b in batch}) > 400


def test_long_variant_counts_its_inputs() -> None:
    """`_long_run` hands the batch one hypothesis input and BATCH-1 fast ones, and counts them."""
    got: list[list[dict[str, Any]]] = []

    def more(rng: random.Random) -> dict[str, Any]:
        return {"k": rng.random()}

    seen = _long_run(got.append, more, examples=3, x=st.integers())
    assert seen == 3 * BATCH == sum(len(b) for b in got)
    assert all(set(b[0]) == {"x"} and all(set(i) == {"k"} for i in b[1:]) for b in got)
    assert len({i["k"] for b in got for i in b[1:]}) == 3 * (BATCH - 1)  # no repeats


# --- atheris (optional) -----------------------------------------------------------------------

ATHERIS_TARGET = Path(__file__).parent / "_atheris_target.py"


def _atheris(decoder: str, runs: int, tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is not installed (pip install atheris)")
    started = datetime.now()
    proc = subprocess.run(
        [sys.executable, str(ATHERIS_TARGET), decoder, str(tmp_path),
         f"-runs={runs}", "-print_final_stats=1", "-seed=1"],
        capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
        check=False,
    )  # fmt: skip
    tail = proc.stderr[-4000:]
    assert proc.returncode == 0, tail
    done = [line for line in proc.stderr.splitlines() if "stat::number_of_executed_units" in line]
    assert done and int(done[-1].split(":")[-1]) >= runs, tail
    print(f"\natheris {decoder}: {runs} inputs in {datetime.now() - started}")


ATHERIS_DECODERS = ["rest_json", "rest_client", "stream", "telemetry", "mqtt", "sse", "csv"]


def test_atheris(tmp_path: Path) -> None:
    """Every decoder in one run, the first byte picking which (one start-up, not seven)."""
    _atheris("all", 3_000, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("decoder", ATHERIS_DECODERS)
def test_atheris_long(decoder: str, tmp_path: Path) -> None:
    _atheris(decoder, LONG_INPUTS, tmp_path)
