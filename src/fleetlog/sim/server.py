"""The simulator's HTTP face: Tesla's REST and auth paths on loopback, over a :class:`World`.

The server translates only: a request becomes a world call, a world error becomes the
status, body and headers Tesla answers with, and every ``/api/1`` answer is booked in the
ledger. Before each request the world is moved to the clock's "now"; with a
:class:`~fleetlog.clock.LoopClock` a ticker also moves it every second of loop time so cars
keep driving (and listeners keep hearing) between requests.

Regions: in ``fleet`` mode the server listens twice, one port per regional host (NA and
EU); a request on the host that is not the account's region gets 421. The other modes
have a single global host.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from random import Random
from types import TracebackType
from typing import Any

from aiohttp import web

from fleetlog.clock import Clock, LoopClock, ManualClock
from fleetlog.sim.auth import TokenPair
from fleetlog.sim.billing import Category
from fleetlog.sim.dispatch import Dispatcher, make_dispatcher
from fleetlog.sim.errors import (
    ApiError,
    BadRequest,
    NotFound,
    NotJson,
    OAuthError,
    RateLimited,
)
from fleetlog.sim.plan import Region
from fleetlog.sim.push import PushHub
from fleetlog.sim.sse import SseService
from fleetlog.sim.streaming import StreamingService
from fleetlog.sim.tls import server_context
from fleetlog.sim.world import PROVIDERS, Caller, World

log = logging.getLogger(__name__)

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Set once a request is tied to an enabled app: from then on, a priced answer is billed.
_attributable: contextvars.ContextVar[list[bool]] = contextvars.ContextVar("attributable")

# Route → (ledger endpoint name, pricing category). Unlisted /api/1 routes are free.
PRICED: dict[str, tuple[str, Category | None]] = {
    "/api/1/vehicles/{vid}/vehicle_data": ("vehicle_data", "data"),
    "/api/1/vehicles/{vid}/wake_up": ("wake_up", "wake"),
}


@dataclass(frozen=True, slots=True)
class Faults:
    """Trouble to inject into ``/api/1`` answers. Rates are shares of requests (0..1)."""

    latency_s: float = 0.0  # added before answering, in loop seconds
    error_rate: float = 0.0  # answer 500/503/504 instead
    drop_rate: float = 0.0  # close the connection without an answer
    malformed_rate: float = 0.0  # a 200 whose body is cut off mid-JSON
    rate_limit_rate: float = 0.0  # answer 429 with Retry-After: retry_after_s instead
    retry_after_s: int = 60
    seed: int = 1


class SimServer:
    """The simulator as a running server.

    ``async with SimServer(world) as sim:`` starts it on loopback; ``sim.env`` holds the
    variables that point fleetlog at it; ``await sim.advance(seconds)`` moves a
    :class:`ManualClock` (tests); ``sim.truth()`` is the ground truth so far.
    """

    def __init__(
        self,
        world: World,
        *,
        clock: Clock | None = None,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        tick_s: float = 1.0,
        truth_out: Path | None = None,
        telemetry: Sequence[str] = (),
        streaming_tls: bool = False,
        ack_loss: float = 0.02,
    ) -> None:
        self.world = world
        self.clock: Clock = clock if clock is not None else LoopClock(epoch=world.now, speed=speed)
        self.host = host
        self.port = port
        self.faults = faults or Faults()
        self.tick_s = tick_s
        self.truth_out = truth_out
        self._fault_rng = Random(f"faults:{self.faults.seed}")
        self._txid_rng = Random(f"txid:{world.options.seed}")
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._port_region: dict[int, Region] = {}
        self.urls: dict[Region, str] = {}
        self.tokens: TokenPair | None = None
        # Pushed data (part 2): the hub, its dispatchers and the streaming endpoints.
        self.push = PushHub(world, ack_loss=ack_loss)
        self.dispatchers: list[Dispatcher] = [make_dispatcher(url) for url in telemetry]
        self.streaming_tls = streaming_tls
        self.streaming_url: str | None = None
        self.streaming = StreamingService(world) if world.mode in ("owner", "myteslamate") else None
        self.sse = SseService(world, self._credential) if world.mode == "teslemetry" else None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        regions: tuple[Region, ...] = (
            ("na", "eu") if self.world.mode == "fleet" else (self.world.account.region,)
        )
        for k, region in enumerate(regions):
            port = self.port + k if self.port else 0
            site = web.TCPSite(self._runner, self.host, port)
            await site.start()
            bound = _bound_port(site)
            self._port_region[bound] = region
            self.urls[region] = f"http://{self.host}:{bound}"
        if self.streaming is not None:
            url = self.urls[self.world.account.region].replace("http://", "ws://")
            if self.streaming_tls:
                tls = web.TCPSite(
                    self._runner,
                    self.host,
                    0,
                    ssl_context=server_context(self.host, self.world.now),
                )
                await tls.start()
                url = f"wss://{self.host}:{_bound_port(tls)}"
            self.streaming_url = url
        if self.world.mode == "fleet":
            self.world.base_urls.update(self.urls)
        else:
            url = self.urls[self.world.account.region]
            self.world.base_urls.update({"na": url, "eu": url})
        for sink in (self.streaming, self.sse):
            if sink is not None:
                self.push.add_sink(sink)
        for dispatcher in self.dispatchers:
            await dispatcher.start()
            self.push.add_sink(dispatcher)
        self.push.attach()
        self.sync()
        self.tokens = self.world.initial_tokens()
        if not isinstance(self.clock, ManualClock):
            self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for dispatcher in self.dispatchers:
            self.push.remove_sink(dispatcher)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dispatcher.flush(), 5.0)
            await dispatcher.stop()
        # Open streams would hold the runner's cleanup up for its whole shutdown timeout.
        if self.sse is not None:
            self.sse.close()
        if self.streaming is not None:
            await self.streaming.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.truth_out is not None:
            self.write_truth(self.truth_out)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self.sync()

    # ------------------------------------------------------------------ time and truth

    def sync(self) -> None:
        """Move the world to the clock's now."""
        self.push.refresh()
        self.world.advance(self.clock.now())
        self.push.tick(self.world.now)

    async def flush(self) -> None:
        """Wait until every telemetry record produced so far is published."""
        for dispatcher in self.dispatchers:
            await dispatcher.flush()

    async def advance(self, seconds: float | timedelta) -> None:
        """Fast-forward a :class:`ManualClock` by `seconds` and the world with it."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs a ManualClock; a LoopClock moves with the event loop")
        s = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
        self.clock.advance(s)
        self.sync()

    def truth(self) -> JSON:
        self.sync()
        return self.world.truth()

    def write_truth(self, path: Path) -> None:
        path.write_text(json.dumps(self.truth(), indent=1) + "\n")

    # ------------------------------------------------------------------ environment

    @property
    def base_url(self) -> str:
        """The API host fleetlog should use (the account's region in fleet mode)."""
        return self.urls[self.world.account.region]

    @property
    def env(self) -> dict[str, str]:
        """The variables that point fleetlog at this simulator, in print order."""
        mode = self.world.mode
        tokens = self.tokens
        assert tokens is not None, "the server is not started"
        env = {
            "TESLA_API_HOST": self.base_url,
            "TESLA_AUTH_HOST": self.base_url,
            "TESLA_AUTH_PATH": "/api/oauth2/v3" if mode in PROVIDERS else "/oauth2/v3",
        }
        if mode not in PROVIDERS:
            env["TESLA_AUTH_CLIENT_ID"] = self.world.client_id
        if mode in PROVIDERS:
            env["TOKEN"] = self.world.options.provider_token
        env["FLEETLOG_ACCESS_TOKEN"] = tokens.access_token
        env["FLEETLOG_REFRESH_TOKEN"] = tokens.refresh_token or ""
        env["FLEETLOG_SIM_URL"] = self.base_url + "/_sim"
        if self.streaming_url is not None:
            env["TESLA_WSS_HOST"] = self.streaming_url
            if mode == "myteslamate":
                env["TESLA_WSS_USE_VIN"] = "true"
            if self.streaming_tls:
                env["TESLA_WSS_TLS_ACCEPT_INVALID_CERTS"] = "true"
        if self.dispatchers:
            env["FLEETLOG_TELEMETRY"] = ",".join(d.url for d in self.dispatchers)
        return env

    # ------------------------------------------------------------------ routing

    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/status", self._status)
        r.add_get("/_sim/truth", self._admin_truth)
        r.add_get("/_sim/ledger", self._admin_ledger)
        r.add_get("/_sim/clock", self._admin_clock)
        for prefix in ("/oauth2/v3", "/api/oauth2/v3"):
            r.add_post(f"{prefix}/token", self._token)
            r.add_get(f"{prefix}/authorize", self._authorize)
        r.add_get("/api/1/products", self._products)
        r.add_get("/api/1/users/region", self._region)
        r.add_get("/api/1/users/me", self._me)
        r.add_get("/api/1/vehicles", self._vehicles)
        r.add_post("/api/1/vehicles/fleet_status", self._fleet_status)
        r.add_post("/api/1/vehicles/fleet_telemetry_config", self._telemetry_set)
        r.add_post("/api/1/vehicles/fleet_telemetry_config_jws", self._telemetry_jws)
        r.add_get("/api/1/vehicles/{vid}", self._vehicle)
        r.add_get("/api/1/vehicles/{vid}/vehicle_data", self._vehicle_data)
        r.add_post("/api/1/vehicles/{vid}/wake_up", self._wake_up)
        r.add_get("/api/1/vehicles/{vid}/fleet_telemetry_config", self._telemetry_get)
        r.add_delete("/api/1/vehicles/{vid}/fleet_telemetry_config", self._telemetry_delete)
        r.add_get("/api/1/vehicles/{vid}/fleet_telemetry_errors", self._telemetry_errors)
        r.add_get("/streaming/", self._streaming)
        r.add_get("/sse", self._sse)
        r.add_get("/sse/{vin}", self._sse)

    def _txid(self) -> str:
        return self._txid_rng.randbytes(16).hex()

    def _error_response(self, err: ApiError) -> web.Response:
        txid = self._txid()
        body: JSON
        if isinstance(err, OAuthError):
            body = {"error": err.error, "error_description": err.description}
        else:
            body = {
                "response": None,
                "error": err.error,
                "error_description": err.description,
                "txid": txid,
            }
        return web.json_response(body, status=err.status, headers={**err.headers, "x-txid": txid})

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.sync()
        api = request.path.startswith("/api/1/")
        faults = self.faults
        if api and faults.latency_s > 0:
            await asyncio.sleep(faults.latency_s)
            self.sync()
        route = request.match_info.route.resource
        canonical = route.canonical if route is not None else request.path
        endpoint, category = PRICED.get(canonical, (canonical, None))
        if api and faults.drop_rate > 0 and self._fault_rng.random() < faults.drop_rate:
            if request.transport is not None:
                request.transport.abort()
            self.world.record(endpoint, category, 0, attributable=False)
            raise ConnectionResetError("fault: dropped connection")
        if api and faults.error_rate > 0 and self._fault_rng.random() < faults.error_rate:
            status = self._fault_rng.choice((500, 503, 504))
            self.world.record(endpoint, category, status, attributable=True)
            txid = self._txid()
            body = {
                "response": None,
                "error": "upstream internal error",
                "error_description": "",
                "txid": txid,
            }
            return web.json_response(body, status=status, headers={"x-txid": txid})
        if api and faults.rate_limit_rate > 0 and self._fault_rng.random() < faults.rate_limit_rate:
            wait = str(faults.retry_after_s)
            self.world.record(endpoint, category, 429, attributable=True)
            return self._error_response(
                RateLimited(
                    f"Retry in {wait} seconds",
                    headers={
                        "Retry-After": wait,
                        "RateLimit-Remaining": "0",
                        "RateLimit-Reset": wait,
                    },
                )
            )
        flag = [False]
        _attributable.set(flag)
        try:
            response: web.StreamResponse = await handler(request)
        except ApiError as err:
            response = self._error_response(err)
        except web.HTTPNotFound:
            response = self._error_response(NotFound("not_found"))
        except web.HTTPMethodNotAllowed:
            response = web.json_response(
                {"response": None, "error": "invalid_request", "error_description": ""}, status=405
            )
        if api:
            self.world.record(endpoint, category, response.status, attributable=flag[0])
            if (
                faults.malformed_rate > 0
                and response.status == 200
                and isinstance(response, web.Response)
                and self._fault_rng.random() < faults.malformed_rate
            ):
                raw = response.body
                text = raw if isinstance(raw, bytes) else b"{}"
                return web.Response(
                    body=text[: max(1, len(text) // 2)], status=200, content_type="application/json"
                )
        return response

    # ------------------------------------------------------------------ helpers

    def _credential(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip() or None
        if self.world.mode in PROVIDERS:
            return request.query.get("token") or None
        return None

    def _caller(self, request: web.Request) -> Caller:
        world = self.world
        caller = world.authenticate(self._credential(request))
        world.check_enabled()
        _attributable.get()[0] = True
        sock = (
            request.transport.get_extra_info("sockname") if request.transport is not None else None
        )
        region = self._port_region.get(sock[1]) if sock else None
        world.check_region(region)
        return caller

    @staticmethod
    def _ok(payload: Any, **extra: Any) -> web.Response:
        return web.json_response({"response": payload, **extra})

    async def _json_body(self, request: web.Request) -> JSON:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise NotJson() from None
        if not isinstance(body, dict):
            raise NotJson()
        return body

    # ------------------------------------------------------------------ handlers

    async def _status(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _admin_truth(self, request: web.Request) -> web.Response:
        return web.json_response(self.truth())

    async def _admin_ledger(self, request: web.Request) -> web.Response:
        return web.json_response(self.world.ledger.to_json())

    async def _admin_clock(self, request: web.Request) -> web.Response:
        now = self.world.now.isoformat().replace("+00:00", "Z")
        # speed lets a logger in another process follow this clock (`fleetlog run --sim-url`)
        return web.json_response({"now": now, "speed": getattr(self.clock, "speed", None)})

    async def _token(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            raw = await self._json_body(request)
            form = {k: str(v) for k, v in raw.items() if v is not None}
        else:
            form = {k: str(v) for k, v in (await request.post()).items()}
        body = self.world.token_grant(form, self._credential(request))
        return web.json_response(body)

    async def _authorize(self, request: web.Request) -> web.Response:
        location = self.world.authorize(dict(request.query), self._credential(request))
        raise web.HTTPFound(location)

    async def _products(self, request: web.Request) -> web.Response:
        self._caller(request)
        items = self.world.products()
        return self._ok(items, count=len(items))

    async def _vehicles(self, request: web.Request) -> web.Response:
        self._caller(request)
        items = self.world.products()
        try:
            page = max(1, int(request.query.get("page", "1")))
            per_page = max(1, int(request.query.get("per_page", "100")))
        except ValueError:
            raise BadRequest("invalid_field", "page and per_page must be integers") from None
        chunk = items[(page - 1) * per_page : page * per_page]
        pages = max(1, -(-len(items) // per_page))
        pagination = {
            "previous": page - 1 if page > 1 else None,
            "next": page + 1 if page < pages else None,
            "current": page,
            "per_page": per_page,
            "count": len(items),
            "pages": pages,
        }
        return self._ok(chunk, count=len(chunk), pagination=pagination)

    async def _vehicle(self, request: web.Request) -> web.Response:
        self._caller(request)
        return self._ok(self.world.vehicle(request.match_info["vid"]))

    async def _vehicle_data(self, request: web.Request) -> web.Response:
        caller = self._caller(request)
        body = self.world.vehicle_data(
            caller, request.match_info["vid"], request.query.get("endpoints")
        )
        return self._ok(body)

    async def _wake_up(self, request: web.Request) -> web.Response:
        self._caller(request)
        return self._ok(self.world.wake_up(request.match_info["vid"]))

    async def _fleet_status(self, request: web.Request) -> web.Response:
        self._caller(request)
        return self._ok(self.world.fleet_status(await self._json_body(request)))

    async def _telemetry_set(self, request: web.Request) -> web.Response:
        self._caller(request)
        body = await self._json_body(request)
        return self._ok(self.world.telemetry_config_set(body.get("vins"), body.get("config")))

    async def _telemetry_jws(self, request: web.Request) -> web.Response:
        self._caller(request)
        return self._ok(self.world.telemetry_config_jws(await self._json_body(request)))

    async def _telemetry_get(self, request: web.Request) -> web.Response:
        self._caller(request)
        return self._ok(self.world.telemetry_config_get(request.match_info["vid"]))

    async def _telemetry_delete(self, request: web.Request) -> web.Response:
        self._caller(request)
        return self._ok(self.world.telemetry_config_delete(request.match_info["vid"]))

    async def _telemetry_errors(self, request: web.Request) -> web.Response:
        self._caller(request)
        return self._ok(self.world.telemetry_errors(request.match_info["vid"]))

    async def _region(self, request: web.Request) -> web.Response:
        # Region discovery answers on every regional host, so it skips the region check.
        self.world.authenticate(self._credential(request))
        self.world.check_enabled()
        _attributable.get()[0] = True
        return self._ok(self.world.region())

    async def _streaming(self, request: web.Request) -> web.StreamResponse:
        if self.streaming is None:  # only the Owner API and MyTeslaMate stream this way
            raise NotFound("not_found")
        return await self.streaming.handle(request)

    async def _sse(self, request: web.Request) -> web.StreamResponse:
        if self.sse is None:  # only Teslemetry streams Server-Sent Events
            raise NotFound("not_found")
        return await self.sse.handle(request)

    async def _me(self, request: web.Request) -> web.Response:
        self._caller(request)
        return self._ok(self.world.me())


def _bound_port(site: web.TCPSite) -> int:
    # aiohttp does not expose the port an ephemeral (port 0) site got; its server does.
    server = site._server
    sockets = getattr(server, "sockets", None)
    if not sockets:
        raise RuntimeError("the site is not listening")
    return int(sockets[0].getsockname()[1])
