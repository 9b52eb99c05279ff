"""The MQTT publisher: TeslaMate's topics and Home Assistant discovery, over one connection.

Rules of this module
--------------------
* Logging never waits for the broker. :meth:`MqttPublisher.submit` is synchronous
  and only records what *should* be on the broker; one background task owns the
  connection and makes the broker match. A broker that is down, slow or
  restarting costs the car workers nothing.
* Latest wins. Between two flushes only the newest value of a topic matters, so
  a burst of summaries during a reconnect becomes one publish per changed topic.
* The broker is told only what changed since it last acknowledged (QoS 1),
  except ``healthy``, which goes out with every summary (and as a heartbeat, so
  Home Assistant's availability recovers after a restart of its own).
* A new connection starts from nothing: everything is published again, so a
  broker that lost its retained messages is whole again after the reconnect.

Theory of operation
-------------------
Per car the publisher keeps ``desired`` (topic key → payload, from every
summary so far: a key a summary skips keeps its last value, as a retained
message would) and ``sent`` (what the current connection has acknowledged).
``_flush`` publishes the difference. Connecting clears ``sent``; failing
reconnects with exponential backoff. Discovery configs live beside the values:
one retained device config per car, published when it changes; configs of cars
that are gone are cleared by scanning the retained configs once the complete set
of cars is known (:meth:`MqttPublisher.set_cars`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import aiomqtt

from fleetlog.config import Settings
from fleetlog.logs import log_event
from fleetlog.publish.discovery import Device, device_config
from fleetlog.publish.payloads import NOT_RETAINED, budget_payloads, car_payloads
from fleetlog.publish.topics import Topics
from fleetlog.sources.tesla import BudgetState

log = logging.getLogger(__name__)

QOS = 1
#: How long one publish may wait for the broker's acknowledgement (TeslaMate: 10 s).
PUBLISH_TIMEOUT_S = 10.0
# aiomqtt warns past ten unacknowledged publishes
_IN_FLIGHT = 8


@dataclass(frozen=True, slots=True)
class CarInfo:
    """A car the publisher knows: its database id (the topic's ``<car_id>``) and identity."""

    car_id: int
    vin: str | None = None
    name: str | None = None


@dataclass(slots=True)
class _Car:
    device: Device
    desired: dict[str, str] = field(default_factory=dict)
    sent: dict[str, str] = field(default_factory=dict)
    healthy_due: bool = False
    discovery_sent: str | None = None


class MqttPublisher:
    """Publishes each car's summary to MQTT as TeslaMate does (see the module docstring).

    ``MqttPublisher(settings)``, ``await start()``, then ``submit(car_id, summary)`` from
    anywhere in the event loop; ``await stop()`` at the end. With MQTT disabled
    (``DISABLE_MQTT`` or no ``MQTT_HOST``) every call is accepted and does nothing.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        backoff_min_s: float = 1.0,
        backoff_max_s: float = 60.0,
        heartbeat_s: float = 60.0,
        scan_quiet_s: float = 0.3,
    ) -> None:
        self.settings = settings
        self.enabled: bool = settings.mqtt_enabled
        self.discovery: bool = self.enabled and bool(settings.mqtt_home_assistant_discovery)
        self.topics = Topics(
            namespace=settings.mqtt_namespace or None,
            discovery_prefix=settings.mqtt_home_assistant_discovery_prefix,
        )
        self._default_geofence: str = settings.default_geofence or ""
        self._configuration_url: str | None = settings.mqtt_home_assistant_discovery_url
        self._backoff = (backoff_min_s, backoff_max_s)
        self._heartbeat_s = heartbeat_s
        self._scan_quiet_s = scan_quiet_s
        self._cars: dict[int, _Car] = {}
        self._by_vin: dict[str, int] = {}
        self._removed: set[int] = set()  # late summaries of these are dropped
        self._clear: set[str] = set()  # retained topics to empty (removed cars' configs)
        self._healthy_cleared: set[int] = set()
        self._active: set[int] | None = None  # the complete set, once set_cars said so
        self._scan_due = False
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._scan_sink: list[aiomqtt.Message] | None = None
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.connections = 0  # successful connects so far (tests and status lines)

    # --- the API for the car workers --------------------------------------------------

    async def start(self) -> None:
        """Start the connection task; returns at once, whether or not the broker is up."""
        if not self.enabled or self._task is not None:
            return
        self._task = asyncio.create_task(self._run(), name="mqtt-publisher")

    async def stop(self, *, flush_timeout_s: float = 2.0) -> None:
        """Publish what is pending (bounded by `flush_timeout_s`), then disconnect."""
        if self._task is None:
            return
        if self.connected:
            await self.wait_idle(flush_timeout_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def add_car(self, car: CarInfo) -> None:
        """Know a car (for discovery and :meth:`summary_hook`); idempotent."""
        self._removed.discard(car.car_id)
        self._clear.discard(self.topics.device_config(car.car_id))
        entry = self._car(car.car_id)
        entry.device = replace(
            entry.device, vin=car.vin or entry.device.vin, name=car.name or entry.device.name
        )
        if car.vin:
            self._by_vin[car.vin] = car.car_id
        self._changed()

    def set_cars(self, cars: Iterable[CarInfo]) -> None:
        """The complete set of logged cars: discovery configs of every other car are cleared."""
        cars = list(cars)
        for car in cars:
            self.add_car(car)
        self._active = {car.car_id for car in cars}
        for car_id in set(self._cars) - self._active:
            self.remove_car(car_id)
        self._scan_due = self.discovery
        self._changed()

    def remove_car(self, car_id: int) -> None:
        """Stop publishing a car (removed or disabled) and clear its discovery config."""
        self._cars.pop(car_id, None)
        self._removed.add(car_id)
        self._by_vin = {vin: cid for vin, cid in self._by_vin.items() if cid != car_id}
        if self._active is not None:
            self._active.discard(car_id)
        if self.discovery:
            self._clear.add(self.topics.device_config(car_id))
        self._changed()

    def submit(self, car_id: int, summary: Mapping[str, Any]) -> None:
        """Take a car's latest summary; never blocks (the connection task publishes it)."""
        if not self.enabled or car_id in self._removed:
            return
        car = self._car(car_id)
        car.desired.update(car_payloads(summary, default_geofence=self._default_geofence))
        car.healthy_due = "healthy" in car.desired
        car.device = replace(
            car.device,
            name=summary.get("display_name") or car.device.name,
            model=summary.get("model") or car.device.model,
            trim_badging=summary.get("trim_badging") or car.device.trim_badging,
            version=summary.get("version") or car.device.version,
        )
        self._changed()

    async def publish_summary(self, car_id: int, summary: Mapping[str, Any]) -> None:
        """The awaitable form of :meth:`submit` (it still never waits for the broker)."""
        self.submit(car_id, summary)

    def submit_budget(self, car_id: int, state: BudgetState, vehicle: str | None = None) -> None:
        """fleetlog's budget keys for a car; `vehicle` picks its calls in ``data_calls_today``."""
        if not self.enabled or car_id in self._removed:
            return
        self._car(car_id).desired.update(budget_payloads(state, vehicle))
        self._changed()

    def summary_hook(self) -> Callable[[str, dict[str, Any]], None]:
        """A ``(vin, summary)`` callback for the runtime; cars must be known by :meth:`add_car`."""

        def hook(vin: str, summary: dict[str, Any]) -> None:
            car_id = self._by_vin.get(vin)
            if car_id is None:
                log_event(log, logging.WARNING, "mqtt summary for an unknown car", vin=vin)
                return
            self.submit(car_id, summary)

        return hook

    async def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Wait until the broker has acknowledged everything submitted so far."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    # --- bookkeeping ------------------------------------------------------------------

    def _car(self, car_id: int) -> _Car:
        car = self._cars.get(car_id)
        if car is None:
            car = self._cars[car_id] = _Car(Device(car_id))
        return car

    def _changed(self) -> None:
        if self.enabled:
            self._idle.clear()
            self._wake.set()

    def _pending(self) -> bool:
        if self._clear or self._scan_due:
            return True
        for car in self._cars.values():
            if car.healthy_due or self._config(car) != car.discovery_sent:
                return True
            if any(car.sent.get(k) != v for k, v in car.desired.items() if k not in NOT_RETAINED):
                return True
        return False

    def _config(self, car: _Car) -> str | None:
        if not self.discovery:
            return None
        config = device_config(self.topics, car.device, configuration_url=self._configuration_url)
        return json.dumps(config, separators=(",", ":"), sort_keys=True)

    # --- the connection ---------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        tls: ssl.SSLContext | None = None
        if s.mqtt_tls:
            tls = ssl.create_default_context()
            if s.mqtt_tls_accept_invalid_certs:
                tls.check_hostname = False
                tls.verify_mode = ssl.CERT_NONE
        return aiomqtt.Client(
            s.mqtt_host,
            s.effective_mqtt_port,
            username=s.mqtt_username,
            password=s.mqtt_password,
            identifier=f"fleetlog_{secrets.token_hex(6)}",
            tls_context=tls,
            tls_insecure=True if tls is not None and s.mqtt_tls_accept_invalid_certs else None,
            timeout=PUBLISH_TIMEOUT_S,
            keepalive=30,
            logger=logging.getLogger("fleetlog.publish.mqtt"),
        )

    async def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            try:
                async with self._client() as client:
                    self.connected = True
                    self.connections += 1
                    delay = self._backoff[0]
                    log_event(
                        log,
                        logging.INFO,
                        "mqtt connected",
                        host=self.settings.mqtt_host,
                        port=self.settings.effective_mqtt_port,
                    )
                    for car in self._cars.values():
                        car.sent.clear()
                        car.discovery_sent = None
                        car.healthy_due = "healthy" in car.desired
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                log_event(
                    log,
                    logging.WARNING if self.connected else logging.INFO,
                    "mqtt broker unavailable",
                    error=str(exc),
                    retry_in_s=delay,
                )
            finally:
                self.connected = False
                self._scan_sink = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    async def _session(self, client: aiomqtt.Client) -> None:
        # Reading is how a dropped connection shows while nothing is being published.
        reader = asyncio.create_task(self._read(client))
        try:
            while True:
                self._wake.clear()
                if self._scan_due:
                    await self._scan(client)
                await self._flush(client)
                if not self._pending():
                    self._idle.set()
                wake = asyncio.create_task(self._wake.wait())
                done, _ = await asyncio.wait(
                    {wake, reader}, timeout=self._heartbeat_s, return_when=asyncio.FIRST_COMPLETED
                )
                wake.cancel()
                if reader in done:
                    reader.result()  # raises the disconnect
                    raise aiomqtt.MqttError("the connection closed")
                if not done:
                    for car in self._cars.values():
                        car.healthy_due = "healthy" in car.desired
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await reader

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            if self._scan_sink is not None:
                self._scan_sink.append(message)

    async def _send(self, client: aiomqtt.Client, topic: str, payload: str, retain: bool) -> None:
        await client.publish(topic, payload, qos=QOS, retain=retain, timeout=PUBLISH_TIMEOUT_S)

    async def _flush(self, client: aiomqtt.Client) -> None:
        for topic in sorted(self._clear):
            await self._send(client, topic, "", retain=True)
            self._clear.discard(topic)
        for car_id, car in list(self._cars.items()):
            await self._flush_car(client, car_id, car)

    async def _flush_car(self, client: aiomqtt.Client, car_id: int, car: _Car) -> None:
        config = self._config(car)
        if config is not None and config != car.discovery_sent:
            await self._send(client, self.topics.device_config(car_id), config, retain=True)
            car.discovery_sent = config
            # Home Assistant subscribes after it reads the config: tell it "healthy" again.
            car.healthy_due = "healthy" in car.desired
        if car_id not in self._healthy_cleared and "healthy" in car.desired:
            # An older retained "healthy" would outlive us; the real one is never retained.
            await self._send(client, self.topics.car(car_id, "healthy"), "", retain=True)
            self._healthy_cleared.add(car_id)
        todo = {
            key: payload
            for key, payload in car.desired.items()
            if key not in NOT_RETAINED and car.sent.get(key) != payload
        }

        async def one(key: str, payload: str) -> None:
            await self._send(client, self.topics.car(car_id, key), payload, retain=True)
            car.sent[key] = payload

        # A few publishes in flight at once: round trips overlap without flooding the client.
        items = list(todo.items())
        for start in range(0, len(items), _IN_FLIGHT):
            results = await asyncio.gather(
                *(one(k, v) for k, v in items[start : start + _IN_FLIGHT]),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        if car.healthy_due:
            car.healthy_due = False
            try:
                await self._send(
                    client, self.topics.car(car_id, "healthy"), car.desired["healthy"], False
                )
            except aiomqtt.MqttError:
                car.healthy_due = True
                raise

    # --- discovery housekeeping -------------------------------------------------------

    async def _scan(self, client: aiomqtt.Client) -> None:
        """Clear retained configs of cars not logged; migrate per-entity configs of ours."""
        prefix = self.topics.discovery_prefix
        filters = (f"{prefix}/+/+/config", f"{prefix}/+/+/+/config")
        sink: list[aiomqtt.Message] = []
        self._scan_sink = sink
        try:
            for topic_filter in filters:
                await client.subscribe(topic_filter, qos=QOS)
            # The broker sends retained messages right after the SUBACK; wait for quiet.
            seen = -1
            while seen != len(sink):
                seen = len(sink)
                await asyncio.sleep(self._scan_quiet_s)
            for topic_filter in filters:
                await client.unsubscribe(topic_filter)
        finally:
            self._scan_sink = None
        active = self._active if self._active is not None else set(self._cars)
        legacy: list[str] = []
        for message in sink:
            topic = str(message.topic)
            found = self.topics.discovery_car(topic)
            if not message.retain or not message.payload or found is None:
                continue
            car_id, is_legacy = found
            if car_id not in active:
                self._clear.add(topic)
            elif is_legacy:
                legacy.append(topic)
        # Home Assistant's migration: mark the old per-entity configs, publish the device
        # config with the same unique ids, then remove the old ones; entities keep their ids.
        for topic in legacy:
            await self._send(client, topic, '{"migrate_discovery":true}', retain=True)
        for car_id, car in list(self._cars.items()):
            if any(self.topics.discovery_car(t) == (car_id, True) for t in legacy):
                car.discovery_sent = None
                await self._flush_car(client, car_id, car)
        self._clear.update(legacy)
        if legacy or self._clear:
            log_event(
                log,
                logging.INFO,
                "mqtt discovery cleaned",
                cleared=len(self._clear),
                migrated=len(legacy),
            )
        self._scan_due = False
