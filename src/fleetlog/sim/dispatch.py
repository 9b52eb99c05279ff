"""fleet-telemetry's dispatchers: records out to MQTT, ZMQ and Redis, as the Go server does.

A dispatcher is a :class:`~fleetlog.sim.push.PushSink`: records arrive synchronously while
the world steps; they are queued and published in order by one task, so a fast-forward
(``SimServer.advance``) publishes everything stamped with its simulated time. ``V`` records
go through the server's own rewrites first (:func:`~fleetlog.sim.encoding.server_transform`).

Where records go (reference §3.3, §3.5), named by a URL:

- ``mqtt://host:port/<topic_base>``: ``<topic_base>/<VIN>/v/<Field>`` (one bare JSON value
  per field), ``<topic_base>/<VIN>/connectivity``, ``…/alerts/<name>/current`` and
  ``…/history``, ``…/errors/<name>``. ``?qos=1&retained=true`` as the server's settings.
- ``zmq://host:port``: a PUB socket bound there; multipart ``[<namespace>_<type>, payload]``.
- ``redis://host:port/<db>``: ``PUBLISH <namespace>_<type>_{<VIN>}`` (``publish_vin_topics``).

ZMQ and Redis take ``?namespace=`` (default ``tesla``) and ``?encoding=protobuf|json``
(default ``protobuf``; ``json`` is ``transmit_decoded_records: true``). Every URL takes
``?records=V,connectivity,alerts,errors`` (default: all four), the server's ``records`` map.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import aiomqtt
import redis.asyncio as aioredis
import zmq
import zmq.asyncio

from fleetlog.sim.encoding import (
    ENCODINGS,
    Encoding,
    encode,
    plain_value,
    rfc3339,
    server_transform,
)
from fleetlog.sim.push import PushSink
from fleetlog.sim.telemetry import (
    AlertsRecord,
    ConnectivityRecord,
    ErrorsRecord,
    Record,
    VRecord,
    record_type,
)

log = logging.getLogger(__name__)

Scheme = Literal["mqtt", "zmq", "redis"]
RECORD_TYPES = ("V", "connectivity", "alerts", "errors")


@dataclass(frozen=True, slots=True)
class Target:
    """Where one dispatcher sends, parsed from its URL."""

    scheme: Scheme
    host: str
    port: int
    topic_base: str = "telemetry"  # MQTT
    namespace: str = "tesla"  # ZMQ, Redis
    db: int = 0  # Redis
    encoding: Encoding = "protobuf"
    records: tuple[str, ...] = RECORD_TYPES
    qos: int = 0
    retained: bool = False

    @classmethod
    def parse(cls, url: str) -> Target:
        """``mqtt://127.0.0.1:1883/telemetry``, ``zmq://127.0.0.1:5284``, ``redis://…/0?…``."""
        parts = urlsplit(url)
        scheme = parts.scheme
        if scheme not in ("mqtt", "zmq", "redis"):
            raise ValueError(f"telemetry target {url!r}: use mqtt://, zmq:// or redis://")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        encoding = query.get("encoding", "protobuf")
        if encoding not in ENCODINGS:
            raise ValueError(f"telemetry target {url!r}: encoding must be protobuf or json")
        records = tuple(r for r in query.get("records", ",".join(RECORD_TYPES)).split(",") if r)
        if not set(records) <= set(RECORD_TYPES):
            raise ValueError(f"telemetry target {url!r}: records are {', '.join(RECORD_TYPES)}")
        path = parts.path.strip("/")
        default_port = {"mqtt": 1883, "zmq": 5284, "redis": 6379}[scheme]
        try:
            port = parts.port if parts.port is not None else default_port
            db = int(path) if scheme == "redis" and path else 0
        except ValueError as exc:
            raise ValueError(f"telemetry target {url!r}: {exc}") from None
        return cls(
            scheme=scheme,  # type: ignore[arg-type]  # checked above
            host=parts.hostname or "127.0.0.1",
            port=port,
            topic_base=path if scheme == "mqtt" and path else "telemetry",
            namespace=query.get("namespace", "tesla"),
            db=db,
            encoding="json" if encoding == "json" else "protobuf",
            records=records,
            qos=int(query.get("qos", "0")),
            retained=query.get("retained", "false").lower() == "true",
        )

    @property
    def url(self) -> str:
        """The canonical URL (with the bound port once a ZMQ socket is bound)."""
        query: dict[str, str] = {}
        if self.scheme != "mqtt":
            query["namespace"] = self.namespace
            if self.encoding != "protobuf":
                query["encoding"] = self.encoding
        if self.records != RECORD_TYPES:
            query["records"] = ",".join(self.records)
        path = {"mqtt": f"/{self.topic_base}", "redis": f"/{self.db}", "zmq": ""}[self.scheme]
        tail = f"?{urlencode(query, safe=',')}" if query else ""
        return f"{self.scheme}://{self.host}:{self.port}{path}{tail}"


class Dispatcher(PushSink):
    """Queues records and publishes them in order; subclasses know the transport."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.published = 0  # transport messages sent
        self._queue: asyncio.Queue[Record] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return self.target.url

    def on_record(self, record: Record) -> None:
        if record_type(record) in self.target.records:
            self._queue.put_nowait(record)

    async def start(self) -> None:
        await self._open()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    async def flush(self) -> None:
        """Wait until everything queued so far is published."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            record = await self._queue.get()
            try:
                if isinstance(record, VRecord):
                    record = server_transform(record)
                await self._publish(record)
            except Exception:  # a failed publish loses that record, never the dispatcher
                log.exception("telemetry dispatch failed target=%s", self.target.scheme)
            finally:
                self._queue.task_done()

    async def _open(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    async def _publish(self, record: Record) -> None:
        raise NotImplementedError


def mqtt_messages(
    record: Record, topic_base: str, history: dict[tuple[str, str], list[dict[str, Any]]]
) -> list[tuple[str, bytes]]:
    """The MQTT dispatcher's (topic, payload) pairs for one record.

    `history` holds, per (VIN, alert name), what ``…/history`` has published so far.
    """
    base = f"{topic_base}/{record.vin}"
    out: list[tuple[str, Any]] = []
    if isinstance(record, VRecord):
        for d in record.data:
            out.append((f"{base}/v/{d.field}", plain_value(d.value)))
    elif isinstance(record, ConnectivityRecord):
        body: dict[str, Any] = {
            "ConnectionId": record.connection_id,
            "Status": record.status,
            "CreatedAt": rfc3339(record.created_at),
        }
        out.append((f"{base}/connectivity", body))
    elif isinstance(record, AlertsRecord):
        for alert in record.alerts:
            item: dict[str, Any] = {"StartedAt": rfc3339(alert.started_at)}
            if alert.ended_at is not None:
                item["EndedAt"] = rfc3339(alert.ended_at)
            item["Audiences"] = list(alert.audiences)
            past = history.setdefault((record.vin, alert.name), [])
            # An alert that ends replaces its open entry; a new one is appended.
            for k, old in enumerate(past):
                if old["StartedAt"] == item["StartedAt"]:
                    past[k] = item
                    break
            else:
                past.append(item)
            newest = max(past, key=lambda a: str(a["StartedAt"]))
            out.append((f"{base}/alerts/{alert.name}/current", newest))
            out.append((f"{base}/alerts/{alert.name}/history", list(past)))
    elif isinstance(record, ErrorsRecord):
        for error in record.errors:
            body = {
                "Body": error.body,
                "Tags": dict(error.tags),
                "CreatedAt": rfc3339(error.created_at),
            }
            out.append((f"{base}/errors/{error.name}", body))
    return [(topic, json.dumps(value, separators=(",", ":")).encode()) for topic, value in out]


class MqttDispatcher(Dispatcher):
    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._client: aiomqtt.Client | None = None
        self._history: dict[tuple[str, str], list[dict[str, Any]]] = {}

    async def _open(self) -> None:
        self._client = aiomqtt.Client(self.target.host, self.target.port, timeout=10)
        await self._client.__aenter__()

    async def _close(self) -> None:
        if self._client is not None:
            await self._client.__aexit__(None, None, None)
            self._client = None

    async def _publish(self, record: Record) -> None:
        assert self._client is not None
        for topic, payload in mqtt_messages(record, self.target.topic_base, self._history):
            await self._client.publish(
                topic, payload, qos=self.target.qos, retain=self.target.retained
            )
            self.published += 1


class ZmqDispatcher(Dispatcher):
    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._ctx: zmq.asyncio.Context | None = None
        self._socket: zmq.asyncio.Socket | None = None

    async def _open(self) -> None:
        self._ctx = zmq.asyncio.Context()
        sock = self._ctx.socket(zmq.PUB)
        sock.setsockopt(zmq.LINGER, 0)
        port = "*" if self.target.port == 0 else str(self.target.port)
        sock.bind(f"tcp://{self.target.host}:{port}")
        endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        bound = int(endpoint.rsplit(":", 1)[1])
        self.target = _with_port(self.target, bound)
        self._socket = sock

    async def _close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    async def _publish(self, record: Record) -> None:
        assert self._socket is not None
        topic = f"{self.target.namespace}_{record_type(record)}".encode()
        await self._socket.send_multipart([topic, encode(record, self.target.encoding)])
        self.published += 1


class RedisDispatcher(Dispatcher):
    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._redis: aioredis.Redis | None = None

    async def _open(self) -> None:
        self._redis = aioredis.Redis(
            host=self.target.host, port=self.target.port, db=self.target.db
        )
        await self._redis.ping()

    async def _close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def _publish(self, record: Record) -> None:
        assert self._redis is not None
        channel = f"{self.target.namespace}_{record_type(record)}_{{{record.vin}}}"
        await self._redis.publish(channel, encode(record, self.target.encoding))
        self.published += 1


def _with_port(target: Target, port: int) -> Target:
    return replace(target, port=port)


def make_dispatcher(url: str) -> Dispatcher:
    """The dispatcher for a telemetry URL (not started)."""
    target = Target.parse(url)
    if target.scheme == "mqtt":
        return MqttDispatcher(target)
    if target.scheme == "zmq":
        return ZmqDispatcher(target)
    return RedisDispatcher(target)
