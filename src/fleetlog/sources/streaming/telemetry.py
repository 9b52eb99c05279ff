"""Consumers of an owner's own fleet-telemetry server: MQTT, ZMQ and Redis (reference §3.3–§3.5).

``FLEETLOG_TELEMETRY`` names where the server's dispatchers publish, one URL per
dispatcher (comma-separated for several):

- ``mqtt://[user:pass@]host:1883/<topic_base>`` (``mqtts://`` for TLS): subscribes
  ``<topic_base>/+/v/+`` (one bare JSON value per field), ``…/+/connectivity``,
  ``…/+/alerts/+/current`` and ``…/+/errors/+``. With ``FLEETLOG_TELEMETRY_SHARED_GROUP``
  (or ``?group=``) the subscriptions are MQTT v5 shared ones (``$share/<group>/…``), so
  several fleetlog workers split a fleet.
- ``zmq://host:5284``: a SUB socket connected to the server's PUB socket; topics
  ``<namespace>_V``, ``_connectivity``, ``_alerts``, ``_errors`` (``?namespace=``, default
  ``tesla``).
- ``redis://[:pass@]host:6379/<db>?namespace=tesla``: pattern-subscribes
  ``<namespace>_<type>_*`` (the dispatcher's ``publish_vin_topics`` channels
  ``<namespace>_V_{<VIN>}``).

Payloads are protobuf or protojson, told apart per message, typed or not. ZMQ and Redis
records carry the car's time and ``is_resend``; MQTT values carry neither (the dispatcher
drops them), so they are stamped on arrival and gathered per VIN (see ``sequencer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from fleetlog.clock import Clock, LoopClock
from fleetlog.logs import log_event
from fleetlog.model.observation import Source
from fleetlog.sources.streaming.feed import (
    Backoff,
    FeedEvent,
    Outlet,
    RecordIngest,
)
from fleetlog.sources.streaming.records import (
    RECORD_TYPES,
    FrameError,
    Record,
    VRecord,
    connectivity_from_json,
    decode_record,
    field_name,
    notices_from_json,
    plain_from_json,
)
from fleetlog.sources.streaming.sequencer import Sequencer
from fleetlog.vehicle.events import StreamConnected, StreamDisconnected

log = logging.getLogger(__name__)

Scheme = Literal["mqtt", "mqtts", "zmq", "redis", "rediss"]
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "zmq": 5284, "redis": 6379, "rediss": 6380}


@dataclass(frozen=True, slots=True)
class TelemetryTarget:
    """One dispatcher to consume, parsed from a ``FLEETLOG_TELEMETRY`` URL."""

    scheme: Scheme
    host: str
    port: int
    topic_base: str = "telemetry"
    namespace: str = "tesla"
    db: int = 0
    username: str | None = None
    password: str | None = None
    group: str | None = None

    @classmethod
    def parse(cls, url: str, *, group: str | None = None) -> TelemetryTarget:
        """Read a URL; raises ValueError with what to write instead."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(
                f"unknown scheme {scheme!r}: use mqtt://host:1883/telemetry, zmq://host:5284 or "
                "redis://host:6379/0?namespace=tesla"
            )
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise ValueError("the port is not a number between 1 and 65535") from None
        if not parts.hostname:
            raise ValueError("no host in the URL")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path.strip("/")
        db = 0
        if scheme.startswith("redis") and path:
            if not path.isdigit():
                raise ValueError("the Redis database after the port must be a number, e.g. /0")
            db = int(path)
        namespace = query.get("namespace", "tesla")
        if any(c in namespace for c in "*?[]"):
            raise ValueError("the namespace must not contain glob characters")
        return cls(
            scheme=scheme,  # type: ignore[arg-type]  # checked against _DEFAULT_PORTS above
            host=parts.hostname,
            port=port,
            topic_base=(path or "telemetry") if scheme.startswith("mqtt") else "telemetry",
            namespace=namespace,
            db=db,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            group=query.get("group") or group,
        )

    @property
    def label(self) -> str:
        """The URL without credentials, for logs."""
        where = {"mqtt": f"/{self.topic_base}", "mqtts": f"/{self.topic_base}"}.get(
            self.scheme, f"/{self.db}" if self.scheme.startswith("redis") else ""
        )
        return f"{self.scheme}://{self.host}:{self.port}{where}"


def record_type_of(topic: str, namespace: str) -> tuple[str, str]:
    """(record type, VIN or "") of a ZMQ topic or Redis channel; raises FrameError."""
    prefix = f"{namespace}_"
    if not topic.startswith(prefix):
        raise FrameError(f"topic outside namespace {namespace!r}: {topic[:60]!r}")
    rest = topic[len(prefix) :]
    for kind in RECORD_TYPES:
        if rest == kind:
            return kind, ""
        if rest.startswith(kind + "_"):
            return kind, rest[len(kind) + 1 :].strip("{}")
    raise FrameError(f"unknown record type in topic {topic[:60]!r}")


class _TelemetryFeed:
    """The loop every consumer shares: connect, read, flush held records, back off."""

    scheme = ""

    def __init__(
        self,
        target: TelemetryTarget,
        outlet: Outlet,
        *,
        vins: Iterable[str] = (),
        clock: Clock | None = None,
        hold_s: float = 0.5,
        backoff: Backoff | None = None,
    ) -> None:
        self.target = target
        self.name = f"telemetry:{target.label}"
        self._outlet = outlet
        self._clock = clock or LoopClock()
        self.ingest = RecordIngest(
            self.name, outlet, Sequencer(Source.TELEMETRY, hold_s=hold_s), self._clock,
            frozenset(vins),
        )  # fmt: skip
        self._hold = hold_s
        self._backoff = backoff or Backoff(base=0.5, cap=30.0)
        self.connected = asyncio.Event()

    def _up(self, on: bool) -> None:
        if on == self.connected.is_set():
            return
        if on:
            self.connected.set()
            self._backoff.reset()
        else:
            self.connected.clear()
        log_event(log, logging.INFO, "telemetry feed " + ("up" if on else "down"),
                  feed=self.target.label)  # fmt: skip
        self._outlet.event(
            FeedEvent(self.name, None, StreamConnected() if on else StreamDisconnected())
        )

    async def run(self) -> None:
        """Consume until cancelled; reconnect forever."""
        flusher = asyncio.create_task(self.ingest.keep_flushing(self._hold))
        try:
            while True:
                try:
                    await self._consume()
                except (OSError, ConnectionError, TimeoutError) as exc:
                    self._failed(exc)
                except Exception as exc:  # the transport libraries raise their own trees
                    self._failed(exc)
                self._up(False)
                await asyncio.sleep(self._backoff.next())
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            self.ingest.flush(everything=True)

    def _failed(self, exc: BaseException) -> None:
        log_event(log, logging.WARNING, "telemetry connection lost", feed=self.target.label,
                  error=f"{type(exc).__name__}: {str(exc)[:120]}")  # fmt: skip

    async def _consume(self) -> None:
        raise NotImplementedError

    def on_dispatch(self, topic: str, payload: bytes) -> None:
        """A ZMQ/Redis message: ``<namespace>_<type>[_{VIN}]`` and a record payload."""
        try:
            kind, vin = record_type_of(topic, self.target.namespace)
        except FrameError as exc:
            self.ingest.bad(str(exc), payload)
            return
        if vin and not self.ingest.wants(vin):
            return  # not ours: skip before decoding
        self.ingest.decode(lambda: decode_record(kind, payload), payload, vin=vin, kind=kind)


# --- MQTT ---------------------------------------------------------------------------


def mqtt_records(topic: str, payload: bytes, topic_base: str) -> list[Record]:
    """The records of one MQTT dispatcher message (raises FrameError)."""
    base = topic_base.strip("/") + "/"
    if not topic.startswith(base):
        raise FrameError(f"topic outside {topic_base!r}: {topic[:60]!r}")
    parts = topic[len(base) :].split("/")
    if len(parts) < 2 or not parts[0]:
        raise FrameError(f"unexpected topic {topic[:80]!r}")
    vin, kind = parts[0], parts[1]
    try:
        value = json.loads(payload) if payload else None
    except (ValueError, RecursionError):
        raise FrameError(f"not JSON on {topic[:60]!r}") from None
    if kind == "v" and len(parts) == 3:
        return [VRecord(vin, None, ((field_name(parts[2]), plain_from_json(value)),))]
    if kind == "connectivity" and len(parts) == 2:
        return [connectivity_from_json({**(value if isinstance(value, dict) else {}), "vin": vin})]
    if kind == "alerts" and len(parts) == 4:
        items = value if parts[3] == "history" and isinstance(value, list) else [value]
        alerts = [{**i, "name": parts[2]} if isinstance(i, dict) else i for i in items]
        return list(notices_from_json("alert", {"alerts": alerts}, vin))
    if kind == "errors" and len(parts) == 3:
        item = {**value, "name": parts[2]} if isinstance(value, dict) else value
        return list(notices_from_json("error", {"errors": [item]}, vin))
    raise FrameError(f"unexpected topic {topic[:80]!r}")


class MqttFeed(_TelemetryFeed):
    """fleet-telemetry's MQTT dispatcher, via a broker."""

    def subscriptions(self) -> list[str]:
        base = self.target.topic_base.strip("/")
        topics = [f"{base}/+/v/+", f"{base}/+/connectivity", f"{base}/+/alerts/+/current",
                  f"{base}/+/alerts/+/history", f"{base}/+/errors/+"]  # fmt: skip
        if self.target.group:
            return [f"$share/{self.target.group}/{t}" for t in topics]
        return topics

    def on_message(self, topic: str, payload: bytes, *, retained: bool = False) -> None:
        """One message; a retained or redelivered value we already hold is dropped."""
        vin = topic.removeprefix(self.target.topic_base.strip("/") + "/").split("/", 1)[0]
        if vin and not self.ingest.wants(vin):
            return
        if retained:
            # A retained value is replayed on every (re)subscribe: news only if it differs.
            try:
                records = mqtt_records(topic, payload, self.target.topic_base)
            except FrameError as exc:
                self.ingest.bad(str(exc), payload, topic=topic[:80])
                return
            known = self.ingest.known_fields(vin)
            records = [
                r for r in records
                if not (isinstance(r, VRecord) and all(known.get(k) == v for k, v in r.data))
            ]  # fmt: skip
            self.ingest.records(records, vin_hint=vin)
            return
        self.ingest.decode(
            lambda: mqtt_records(topic, payload, self.target.topic_base), payload,
            vin=vin, topic=topic[:80],
        )  # fmt: skip

    async def _consume(self) -> None:
        import aiomqtt

        t = self.target
        tls = aiomqtt.TLSParameters() if t.scheme == "mqtts" else None
        version = aiomqtt.ProtocolVersion.V5 if t.group else aiomqtt.ProtocolVersion.V311
        async with aiomqtt.Client(
            t.host, t.port, username=t.username, password=t.password, tls_params=tls,
            protocol=version, keepalive=30, timeout=10,
        ) as client:  # fmt: skip
            for topic in self.subscriptions():
                await client.subscribe(topic, qos=1)
            self._up(True)
            async for message in client.messages:
                payload = message.payload
                if not isinstance(payload, bytes | bytearray):
                    payload = str(payload).encode() if payload is not None else b""
                self.on_message(str(message.topic), bytes(payload), retained=bool(message.retain))


# --- ZMQ ------------------------------------------------------------------------------


class ZmqFeed(_TelemetryFeed):
    """fleet-telemetry's ZMQ dispatcher: a SUB socket on the server's PUB socket."""

    async def _consume(self) -> None:
        import zmq
        import zmq.asyncio

        context = zmq.asyncio.Context.instance()
        socket = context.socket(zmq.SUB)
        # libzmq reconnects by itself; cap its backoff like every other feed's.
        socket.setsockopt(zmq.RECONNECT_IVL, 500)
        socket.setsockopt(zmq.RECONNECT_IVL_MAX, 30_000)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.MAXMSGSIZE, 1_000_000)
        socket.setsockopt(zmq.SUBSCRIBE, f"{self.target.namespace}_".encode())
        try:
            socket.connect(f"tcp://{self.target.host}:{self.target.port}")
            # A SUB socket cannot tell a quiet server from a missing one; it is up once asked.
            self._up(True)
            while True:
                frames = await socket.recv_multipart()
                if len(frames) != 2:
                    self.ingest.bad(f"{len(frames)} frames, expected 2", b"".join(frames)[:80])
                    continue
                self.on_dispatch(frames[0].decode("utf-8", "replace"), frames[1])
        finally:
            socket.close(linger=0)


# --- Redis ----------------------------------------------------------------------------


class RedisFeed(_TelemetryFeed):
    """fleet-telemetry's Redis dispatcher (``publish_vin_topics``): pub/sub channels."""

    async def _consume(self) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        t = self.target
        # No retries inside redis-py: its pub/sub would reconnect and resubscribe silently,
        # and the car workers would never hear of the gap. A lost connection leaves this
        # method instead, so the feed reports it down, backs off and comes back up (here).
        client = aioredis.Redis(
            host=t.host, port=t.port, db=t.db, username=t.username, password=t.password,
            ssl=t.scheme == "rediss", socket_connect_timeout=10, socket_keepalive=True,
            health_check_interval=15, retry=Retry(NoBackoff(), 0),
        )  # fmt: skip
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(*(f"{t.namespace}_{kind}_*" for kind in RECORD_TYPES))
            self._up(True)
            while True:
                message = await pubsub.get_message(timeout=5.0)
                if message is None:
                    await client.ping()  # notices a dead server while it is quiet
                    continue
                channel = message.get("channel")
                data = message.get("data")
                if not isinstance(channel, bytes) or not isinstance(data, bytes):
                    continue
                self.on_dispatch(channel.decode("utf-8", "replace"), data)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                await client.aclose()


FEEDS: dict[str, Callable[..., _TelemetryFeed]] = {
    "mqtt": MqttFeed,
    "mqtts": MqttFeed,
    "zmq": ZmqFeed,
    "redis": RedisFeed,
    "rediss": RedisFeed,
}


def telemetry_feed(
    target: TelemetryTarget,
    outlet: Outlet,
    *,
    vins: Iterable[str] = (),
    clock: Clock | None = None,
    hold_s: float = 0.5,
) -> _TelemetryFeed:
    """The consumer for `target`, not started (``asyncio.create_task(feed.run())``)."""
    return FEEDS[target.scheme](target, outlet, vins=vins, clock=clock, hold_s=hold_s)
