"""What runs beside the car workers: MQTT, the web app, places and costs, address repair.

``fleetlog run`` and ``fleetlog demo`` build one :class:`Services` from the settings::

    services = Services(settings, engine, clock)
    await serve(settings, engine, clock=clock, pacer=pacer, services=services)

and the runtime does the rest: ``await services.start(fleet, account)`` once signed in
(the MQTT publisher, the web server, the address repair task, the budget ticker), then
``services.attachments()`` into every car's worker (the place finder and the cost
calculator into its logbook, the car and summary hooks), and ``await services.stop()``
after the workers have stopped.

Rules of this module
--------------------
* Nothing here holds up a car. A summary is handed to the publisher and to the live
  board without waiting; the geofence name it carries comes from a lookup cached per
  car; a hook that fails is logged and the car goes on (an exception would cost the
  worker the rest of its step's effects).
* The web app's suspend/resume reach the car's own worker as a
  :class:`~fleetlog.vehicle.events.UserCommand`; the machine's
  :class:`~fleetlog.vehicle.effects.CommandResult` is the answer, reason included.
* MQTT learns the complete set of logged cars once every listed car has been
  registered (``set_cars``): only then are discovery configs of other cars cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleetlog.clock import Clock
from fleetlog.config import Settings
from fleetlog.costs import ChargeCostCalculator
from fleetlog.logs import log_event
from fleetlog.places import AddressRepair, NominatimGeocoder, OfflineGeocoder, PlaceFinder
from fleetlog.places.geocoder import Geocoder
from fleetlog.places.geofences import geofence_at
from fleetlog.publish import CarInfo, MqttPublisher
from fleetlog.runtime import Attachments, Fleet
from fleetlog.sources.tesla import TeslaAccount, Vehicle
from fleetlog.vehicle.events import Command
from fleetlog.vehicle.pacing import cancel_and_wait
from fleetlog.web import create_app
from fleetlog.web.live import LiveBoard, Outcome

log = logging.getLogger(__name__)

#: How often fleetlog's budget topics are refreshed (real seconds).
BUDGET_EVERY_S = 30.0
#: A summary's geofence name is looked up again after this long even if the car stood still
#: (a geofence may have been drawn around it meanwhile).
GEOFENCE_TTL_S = 60.0
#: How long suspend/resume waits for the car's worker to answer.
COMMAND_TIMEOUT_S = 30.0
#: How long the web server may take to finish its requests at stop.
WEB_STOP_S = 3


class WebBindError(RuntimeError):
    """The web app cannot listen where the settings say."""

    user_facing = True


@dataclass(frozen=True, slots=True)
class Binding:
    """A listening socket for the web app and how to reach it."""

    sock: socket.socket
    url: str
    busy_port: int | None = None  # the wanted port, when it was taken and another was chosen


def bind_web(address: str, port: int, *, fallback: bool = False) -> Binding:
    """Listen on `address`:`port` (a path: a UNIX socket); `fallback`: any free port if busy."""
    if address.startswith("/"):
        path = Path(address)
        if path.is_socket():
            path.unlink()  # left behind by an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(address)
        os.chmod(address, 0o666)
        return Binding(sock, f"unix:{address}")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    busy: int | None = None
    try:
        sock = socket.create_server((address, port), family=family)
    except OSError as exc:
        if not (fallback and exc.errno == errno.EADDRINUSE):
            raise WebBindError(
                f"the web app cannot listen on {address}:{port}: {exc.strerror or exc}"
                " (set PORT or HTTP_BINDING_ADDRESS)"
            ) from exc
        sock = socket.create_server((address, 0), family=family)
        busy = port
    host = f"[{address}]" if family == socket.AF_INET6 else address
    return Binding(sock, f"http://{host}:{sock.getsockname()[1]}", busy)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the logger: SIGINT/SIGTERM belong to the runtime's stop event."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _EndStreams:
    """At stop, open requests hear that their client left, so event streams end at once.

    uvicorn waits for open responses before it stops; a browser tab's live event stream
    never ends by itself and would be cut off by the shutdown timeout, with a traceback.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.closing = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def receive_until_closing() -> Message:
            if self.closing.is_set():
                return {"type": "http.disconnect"}
            message = asyncio.ensure_future(receive())
            closing = asyncio.ensure_future(self.closing.wait())
            await asyncio.wait({message, closing}, return_when=asyncio.FIRST_COMPLETED)
            closing.cancel()
            if message.done():
                return message.result()
            message.cancel()
            return {"type": "http.disconnect"}

        await self.app(scope, receive_until_closing, send)


class WebServer:
    """The web app served by uvicorn on a socket already bound, as a task of this loop."""

    def __init__(self, app: ASGIApp, binding: Binding, *, root_path: str = "") -> None:
        self.binding = binding
        self._app = _EndStreams(app)
        config = uvicorn.Config(
            self._app,
            root_path=root_path,
            proxy_headers=True,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=WEB_STOP_S,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return self.binding.url

    async def start(self) -> None:
        """Serve; returns once the app accepts connections."""
        self._task = asyncio.create_task(
            self._server.serve(sockets=[self.binding.sock]), name="web"
        )
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise WebBindError("the web server stopped at once")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._app.closing.set()
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), WEB_STOP_S + 2)
        except TimeoutError:
            await cancel_and_wait(self._task)
        except Exception:
            log.exception("web server failed while stopping")
        self._task = None
        self.binding.sock.close()


@dataclass(frozen=True, slots=True)
class _Car:
    car_id: int
    vehicle: Vehicle


@dataclass(slots=True)
class _Fence:
    at: tuple[float, float]
    checked: float
    name: str | None


def live_extras(summary: Mapping[str, Any]) -> dict[str, Any]:
    """What the cars page shows beside TeslaMate's keys: stream link, source, logging."""
    feed = summary.get("feed") or "none"
    return {
        "stream_connected": None if feed == "none" else bool(summary.get("telemetry_connected")),
        "source": "polling" if feed == "none" else str(feed),
        "logging": "suspended" if summary.get("state") == "suspended" else "enabled",
    }


class Services:
    """MQTT, the web app, places/costs and address repair for one runtime (module docstring)."""

    def __init__(
        self,
        settings: Settings,
        engine: sa.Engine,
        clock: Clock,
        *,
        web: bool = True,
        web_port: int | None = None,
        web_port_fallback: bool = False,
        publisher: MqttPublisher | None = None,
        budget_every_s: float = BUDGET_EVERY_S,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.publisher = publisher if publisher is not None else MqttPublisher(settings)
        self.board = LiveBoard()
        self.board.on_suspend = lambda car_id: self.command(car_id, Command.SUSPEND)
        self.board.on_resume = lambda car_id: self.command(car_id, Command.RESUME)
        self.board.budget = self._budget_dict
        self.board.account = self._account_health
        geocoding = settings.geocoder != "off"
        self.places = PlaceFinder(OfflineGeocoder() if geocoding else None)
        self.costs = ChargeCostCalculator(settings.tz)
        self.repair: AddressRepair | None = None
        self.web: WebServer | None = None
        self._serve_web = web
        self._web_port = int(settings.port) if web_port is None else web_port
        self._web_fallback = web_port_fallback
        self._budget_every_s = budget_every_s
        self._fleet: Fleet | None = None
        self._account: TeslaAccount | None = None
        self._cars: dict[str, _Car] = {}  # by VIN: enabled cars registered so far
        self._awaiting: set[str] | None = None  # listed VINs not registered yet
        self._fences: dict[int, _Fence] = {}
        self._nominatim: NominatimGeocoder | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    # --- what the runtime plugs into the workers -------------------------------------

    def attachments(self) -> Attachments:
        return Attachments(
            places=self.places,
            costs=self.costs,
            on_summary=self.on_summary,
            on_car=self.on_car,
            on_listed=self.on_listed,
        )

    def on_listed(self, vehicles: list[Vehicle]) -> None:
        """The account's cars: MQTT's car set is complete once each is registered."""
        self._awaiting = {v.vin for v in vehicles}
        self._maybe_set_cars()

    def on_car(self, car_id: int, vehicle: Vehicle, enabled: bool) -> None:
        """A car registered (at boot and after a worker restart)."""
        try:
            if enabled:
                car = self._cars[vehicle.vin] = _Car(car_id, vehicle)
                self.publisher.add_car(CarInfo(car_id, vehicle.vin, vehicle.display_name))
                self._publish_budget([car])
            elif self._cars.pop(vehicle.vin, None) is not None:
                self.publisher.remove_car(car_id)
            if self._awaiting is not None:
                self._awaiting.discard(vehicle.vin)
                self._maybe_set_cars()
        except Exception:
            log.exception("car registration hook failed vin=%s", vehicle.vin)

    def on_summary(self, vin: str, summary: dict[str, Any]) -> None:
        """A car's new summary: to MQTT and the web app, with its geofence's name."""
        try:
            car = self._cars.get(vin)
            if car is None:
                return
            full = summary | {"geofence": self._geofence(car.car_id, summary)}
            self.publisher.submit(car.car_id, full)
            self.board.publish(car.car_id, full | live_extras(full))
        except Exception:
            log.exception("summary hook failed vin=%s", vin)

    async def command(self, car_id: int, command: Command) -> Outcome:
        """Suspend or resume logging of a car: its machine's answer."""
        if self._fleet is None:
            return Outcome(False, "the logger is not running")
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT_S):
                result = await self._fleet.command(car_id, command)
        except TimeoutError:
            return Outcome(False, "the car's worker did not answer in time")
        if result is None:
            return Outcome(False, "this car is not being logged")
        return Outcome(result.accepted, result.reason or None)

    # --- start and stop ----------------------------------------------------------------

    async def start(self, fleet: Fleet, account: TeslaAccount) -> None:
        """Start the publisher, address repair, budget ticker and web server (in that order)."""
        self._fleet = fleet
        self._account = account
        await self.publisher.start()
        offline = self.places.offline
        if offline is not None:
            # loads the place data off the loop; a drive closing meanwhile waits for it briefly
            self._tasks.append(asyncio.create_task(asyncio.to_thread(offline.warm)))
        geocoder = self._repair_geocoder(offline)
        if geocoder is not None:
            self.repair = AddressRepair(
                self.engine, geocoder, interval_s=float(self.settings.address_repair_interval)
            )
            self._tasks.append(asyncio.create_task(self.repair.run(), name="address-repair"))
        if self.publisher.enabled:
            self._tasks.append(asyncio.create_task(self._budget_loop(), name="mqtt-budget"))
        if self._serve_web:
            # an unsafe binding stops the start (ExposureError); a taken port only the web app
            app = create_app(self.settings, self.engine, live=self.board)
            try:
                binding = bind_web(
                    str(self.settings.http_binding_address),
                    self._web_port,
                    fallback=self._web_fallback,
                )
            except WebBindError as exc:
                log_event(log, logging.ERROR, "web app not served, logging goes on", error=exc)
                return
            self.web = WebServer(app, binding, root_path=str(self.settings.url_path).rstrip("/"))
            await self.web.start()
            log_event(log, logging.INFO, "web app serving", url=self.web.url)

    async def stop(self) -> None:
        """Stop everything started (the workers should be stopped first)."""
        if self.web is not None:
            await self.web.stop()
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks.clear()
        self._publish_budget(list(self._cars.values()))
        await self.publisher.stop()
        if self._nominatim is not None:
            await self._nominatim.aclose()
            self._nominatim = None
        self._fleet = None

    def _repair_geocoder(self, offline: OfflineGeocoder | None) -> Geocoder | None:
        s = self.settings
        if s.geocoder == "nominatim":
            self._nominatim = NominatimGeocoder(
                str(s.nominatim_url),
                proxy=s.nominatim_proxy,
                timeout_s=float(s.nominatim_timeout),
            )
            return self._nominatim
        return offline

    # --- MQTT details ------------------------------------------------------------------

    def _maybe_set_cars(self) -> None:
        if self._awaiting is None or self._awaiting:
            return
        self._awaiting = None
        self.publisher.set_cars(
            CarInfo(c.car_id, c.vehicle.vin, c.vehicle.display_name) for c in self._cars.values()
        )

    async def _budget_loop(self) -> None:
        while True:
            await asyncio.sleep(self._budget_every_s)
            try:
                self._publish_budget(list(self._cars.values()))
            except Exception:
                log.exception("budget topics not refreshed")

    def _publish_budget(self, cars: list[_Car]) -> None:
        if self._account is None or not self.publisher.enabled or not cars:
            return
        state = self._account.governor.state(self.clock.now())
        for car in cars:
            # the governor counts data calls by the id the client calls (the product id)
            self.publisher.submit_budget(car.car_id, state, vehicle=str(car.vehicle.id))

    def _account_health(self) -> Mapping[str, Any] | None:
        # the settings page shows the running logger's sign-in health (no secrets in it)
        return None if self._account is None else self._account.health(self.clock)

    def _budget_dict(self) -> Mapping[str, Any] | None:
        if self._account is None:
            return None
        return self._account.governor.state(self.clock.now()).as_dict()

    def _geofence(self, car_id: int, summary: Mapping[str, Any]) -> str | None:
        lat, lon = summary.get("latitude"), summary.get("longitude")
        if lat is None or lon is None:
            cached = self._fences.get(car_id)
            return cached.name if cached else None
        at = (round(float(lat), 5), round(float(lon), 5))
        now = time.monotonic()
        cached = self._fences.get(car_id)
        if cached is not None and cached.at == at and now - cached.checked < GEOFENCE_TTL_S:
            return cached.name
        try:
            with self.engine.connect() as conn:
                fence = geofence_at(conn, float(lat), float(lon))
        except sa.exc.SQLAlchemyError as exc:
            log_event(log, logging.WARNING, "geofence lookup failed", car_id=car_id, error=exc)
            return cached.name if cached else None
        name = fence.name if fence is not None else None
        self._fences[car_id] = _Fence(at, now, name)
        return name
