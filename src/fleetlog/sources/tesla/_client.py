"""The REST client: every call to Tesla, the Owner API, the Fleet API or a provider.

One call, in order:

1. The governor decides whether it may go now (:class:`BudgetDeferred` if not).
2. The request goes out with the right credential: ``Authorization: Bearer`` with
   ``TOKEN`` (provider) or the owner's access token; ``?token=`` when the profile
   asks for it.
3. The answer is recorded in the ledger (status, billed, cost) and reported to the
   governor, whatever it is.
4. 2xx is unwrapped from ``{"response": …}``; a 401 triggers one immediate token
   refresh and one retry; a 421 moves the account to the base URL Tesla names (if
   it is a Tesla host) and retries once; everything else becomes the exception of
   :mod:`._exceptions` for its status.

What is logged (DEBUG): method, path, status, milliseconds, category, billed. Never
a header, never the query string of a call that carries ``?token=``, never a body.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from fleetlog.clock import Clock
from fleetlog.logs import log_event, redact, register_secret
from fleetlog.sources.tesla._budget import BudgetPolicy, Governor, Permit
from fleetlog.sources.tesla._exceptions import (
    BadRequest,
    BudgetDeferred,
    Forbidden,
    LimitExceeded,
    MalformedResponse,
    MissingScopes,
    PaymentRequired,
    PreconditionFailed,
    RateLimited,
    RequestTimeout,
    ServerError,
    TeslaError,
    TransportError,
    Unauthorized,
    UnavailableForLegalReasons,
    UnexpectedStatus,
    VehicleError,
    VehicleInService,
    VehicleNotFound,
    VehicleUnavailable,
    WakeNotRequested,
    WrongRegion,
)
from fleetlog.sources.tesla._hosts import Profile, trusted_region_switch
from fleetlog.sources.tesla._ledger import LedgerEntry
from fleetlog.sources.tesla._models import Region, Vehicle
from fleetlog.sources.tesla._pricing import Category
from fleetlog.sources.tesla._session import TokenKeeper

log = logging.getLogger(__name__)

DEFAULT_ENDPOINTS = (
    "charge_state;climate_state;closures_state;drive_state;gui_settings;location_data;"
    "vehicle_config;vehicle_state;vehicle_data_combo"
)
#: TeslaMate's receive timeout for REST calls.
DEFAULT_TIMEOUT_S = 35.0
#: TeslaMate waits this long after a 429 without Retry-After.
DEFAULT_RETRY_AFTER_S = 300.0
#: A longer Retry-After is read as this: Tesla's longest (the daily quota) ends at midnight.
MAX_RETRY_AFTER_S = 86_400.0
#: After EXCEEDED_LIMIT (the governor then probes hourly).
LIMIT_BACKOFF = timedelta(minutes=15)
#: After a timeout or transport error, for callers that want a time (TeslaMate: 10-30 s).
TRANSPORT_RETRY = timedelta(seconds=30)

_USE_BASE_URL = re.compile(r"use base URL:\s*(https?://[^\s,;\"']+)", re.IGNORECASE)
_RETRY_IN = re.compile(r"retry in (\d+) seconds", re.IGNORECASE)


class LedgerSink(Protocol):
    """Where the client writes one row per call (the SQL :class:`Ledger` is one)."""

    def record(self, entry: LedgerEntry) -> None: ...


class _RedactHttpLogs(logging.Filter):
    """httpx logs every request URL (INFO) and httpcore every header (DEBUG): redact them.

    With ``?token=`` the URL itself carries the provider's secret, and an application
    that turns on root DEBUG logging would otherwise print it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


# Logger filters apply only where a record is made, so every httpcore logger is named.
for _name in (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _RedactHttpLogs) for f in _logger.filters):
        _logger.addFilter(_RedactHttpLogs())


def auth_ssl_context() -> ssl.SSLContext:
    """TLS 1.3 only: Tesla's auth host rejects Owner API tokens minted over older TLS."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def make_auth_http(timeout_s: float = 60.0) -> httpx.AsyncClient:
    """HTTP client for token calls: TLS 1.3 only, HTTP/2 where offered, redirects followed."""
    return httpx.AsyncClient(
        http2=True,
        verify=auth_ssl_context(),
        timeout=timeout_s,
        follow_redirects=True,
        max_redirects=3,
        headers={"User-Agent": _user_agent()},
    )


def make_api_http(timeout_s: float = DEFAULT_TIMEOUT_S) -> httpx.AsyncClient:
    """HTTP client for REST calls: HTTP/2 where offered, no redirects (a token must not wander)."""
    return httpx.AsyncClient(
        http2=True,
        timeout=timeout_s,
        follow_redirects=False,
        headers={"User-Agent": _user_agent()},
    )


def _user_agent() -> str:
    from fleetlog import __version__

    return f"fleetlog/{__version__}"


class TeslaClient:
    """Async client of one account's REST API (see the module docstring for one call's life)."""

    def __init__(
        self,
        profile: Profile,
        keeper: TokenKeeper | None,
        *,
        clock: Clock,
        governor: Governor | None = None,
        ledger: LedgerSink | None = None,
        account: str = "default",
        http: httpx.AsyncClient | None = None,
        vehicle_data_endpoints: str = DEFAULT_ENDPOINTS,
        on_base_url_change: Callable[[str], None] | None = None,
    ) -> None:
        if keeper is None and not profile.provider_token:
            raise ValueError("a client needs a token keeper, or a provider TOKEN")
        register_secret(profile.provider_token)
        self.profile = profile
        self._keeper = keeper
        self._clock = clock
        self.governor = governor or Governor(
            BudgetPolicy(rates=profile.pricing.rates, priced=profile.pricing.priced), clock.now()
        )
        self._ledger = ledger
        self.account = account
        self._http = http or make_api_http()
        self._owns_http = http is None
        self._endpoints = vehicle_data_endpoints
        self._on_base_url_change = on_base_url_change
        self._api_base = profile.api_base

    def __repr__(self) -> str:
        return f"TeslaClient(api_base={self._api_base}, mode={self.profile.mode})"

    @property
    def api_base(self) -> str:
        """The REST base in use (it moves when Tesla answers 421)."""
        return self._api_base

    def move_to(self, base_url: str) -> None:
        """Use `base_url` from now on (a region remembered from an earlier 421)."""
        self._api_base = base_url.rstrip("/")

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> TeslaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- endpoints -----------------------------------------------------------------

    async def products(self) -> list[Vehicle]:
        """The account's cars via ``/api/1/products`` (energy sites dropped), free."""
        response = await self._call("GET", "/api/1/products", "products", Category.NONE, None)
        return self._vehicles(response, "products", keep=lambda item: "vehicle_id" in item)

    async def vehicles(self) -> list[Vehicle]:
        """The account's cars via ``/api/1/vehicles`` (Fleet API only), free."""
        response = await self._call("GET", "/api/1/vehicles", "vehicles", Category.NONE, None)
        return self._vehicles(response, "vehicles", keep=lambda item: True)

    async def vehicle(self, vehicle: int | str) -> Vehicle:
        """One car's state (online, asleep, …), free and without waking it."""
        path = f"/api/1/vehicles/{_vehicle_ref(vehicle)}"
        response = await self._call("GET", path, "vehicle", Category.NONE, str(vehicle))
        return self._vehicle(response, "vehicle")

    async def vehicle_data(
        self, vehicle: int | str, endpoints: Sequence[str] | str | None = None
    ) -> dict[str, Any]:
        """The full snapshot (billed as Data). A sleeping car answers 408, billed too."""
        if endpoints is None:
            wanted = self._endpoints
        elif isinstance(endpoints, str):
            wanted = endpoints
        else:
            wanted = ";".join(endpoints)
        path = f"/api/1/vehicles/{_vehicle_ref(vehicle)}/vehicle_data"
        response = await self._call(
            "GET", path, "vehicle_data", Category.DATA, str(vehicle), params={"endpoints": wanted}
        )
        if not isinstance(response, dict):
            raise MalformedResponse("vehicle_data", 200, "response is not an object")
        return response

    async def wake_up(self, vehicle: int | str, *, requested_by: str) -> Vehicle:
        """Wake the car (billed as Wake). Only for a person's explicit request."""
        if not requested_by.strip():
            raise WakeNotRequested("wake_up needs requested_by: who asked for the wake")
        path = f"/api/1/vehicles/{_vehicle_ref(vehicle)}/wake_up"
        log_event(log, logging.INFO, "tesla wake requested", vehicle=vehicle, by=requested_by)
        response = await self._call(
            "POST", path, "wake_up", Category.WAKE, str(vehicle), user_requested=True
        )
        return self._vehicle(response, "wake_up")

    async def fleet_status(self, vins: Sequence[str]) -> dict[str, Any]:
        """Key pairing, firmware and telemetry version per VIN, free."""
        response = await self._call(
            "POST",
            "/api/1/vehicles/fleet_status",
            "fleet_status",
            Category.NONE,
            None,
            body={"vins": list(vins)},
        )
        return _object(response, "fleet_status")

    async def fleet_telemetry_config(self, vin: str) -> dict[str, Any]:
        """The car's Fleet Telemetry config (``synced``, ``config``, ``limit_reached``)."""
        path = f"/api/1/vehicles/{_vehicle_ref(vin)}/fleet_telemetry_config"
        response = await self._call("GET", path, "fleet_telemetry_config", Category.NONE, vin)
        return _object(response, "fleet_telemetry_config")

    async def fleet_telemetry_errors(self, vin: str) -> list[dict[str, Any]]:
        """What the car reported about its telemetry config (bad hostname, CA, …), free."""
        path = f"/api/1/vehicles/{_vehicle_ref(vin)}/fleet_telemetry_errors"
        response = await self._call("GET", path, "fleet_telemetry_errors", Category.NONE, vin)
        errors = _object(response, "fleet_telemetry_errors").get("fleet_telemetry_errors")
        if not isinstance(errors, list):
            raise MalformedResponse("fleet_telemetry_errors", 200, "fleet_telemetry_errors missing")
        return [e for e in errors if isinstance(e, dict)]

    async def set_fleet_telemetry_config(
        self, vins: Sequence[str], config: Mapping[str, Any]
    ) -> dict[str, Any]:
        """POST a telemetry config for `vins` (needs the signing proxy or a Tesla cert)."""
        response = await self._call(
            "POST",
            "/api/1/vehicles/fleet_telemetry_config",
            "fleet_telemetry_config",
            Category.NONE,
            None,
            body={"vins": list(vins), "config": dict(config)},
        )
        return _object(response, "fleet_telemetry_config")

    async def delete_fleet_telemetry_config(self, vin: str) -> dict[str, Any]:
        """Remove the car's telemetry config."""
        path = f"/api/1/vehicles/{_vehicle_ref(vin)}/fleet_telemetry_config"
        response = await self._call("DELETE", path, "fleet_telemetry_config", Category.NONE, vin)
        return _object(response, "fleet_telemetry_config")

    async def region(self) -> Region:
        """The account's region and Fleet API base URL (``/api/1/users/region``)."""
        response = await self._call(
            "GET", "/api/1/users/region", "users/region", Category.NONE, None
        )
        obj = _object(response, "users/region")
        region, base = obj.get("region"), obj.get("fleet_api_base_url")
        if not isinstance(region, str) or not isinstance(base, str):
            raise MalformedResponse("users/region", 200, "region or fleet_api_base_url missing")
        return Region(region, base.rstrip("/"))

    # --- one call --------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        endpoint: str,
        category: Category,
        vehicle: str | None,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        user_requested: bool = False,
    ) -> Any:
        refreshed = False
        moved = False
        while True:
            # With a provider, TOKEN replaces the owner's token on every call (as TeslaMate
            # does): the provider holds the real credentials, so the owner's never travels.
            access = None
            if self._keeper is not None and not self.profile.provider_token:
                access = self._keeper.access_token
            permit = self._acquire(endpoint, vehicle, category, user_requested)
            try:
                status, payload, headers = await self._send(
                    method, path, endpoint, category, vehicle, permit, params, body, access
                )
            except WrongRegion as exc:
                if moved or not self._move(exc):
                    raise
                moved = True
                continue
            except Unauthorized:
                if refreshed or self._keeper is None or access is None:
                    raise
                refreshed = True
                await self._keeper.refresh(reason="401 from the API", spent_access=access)
                continue
            del status, headers
            return payload["response"]

    def _acquire(
        self, endpoint: str, vehicle: str | None, category: Category, user_requested: bool
    ) -> Permit:
        decision = self.governor.acquire(
            self._clock.now(), vehicle, category, user_requested=user_requested
        )
        if not decision.go or decision.permit is None:
            log_event(
                log,
                logging.DEBUG,
                "tesla call deferred",
                endpoint=endpoint,
                vehicle=vehicle,
                until=decision.at,
                reason=decision.reason,
            )
            raise BudgetDeferred(endpoint, decision.reason, decision.at)
        return decision.permit

    async def _send(
        self,
        method: str,
        path: str,
        endpoint: str,
        category: Category,
        vehicle: str | None,
        permit: Permit,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        access: str | None,
    ) -> tuple[int, dict[str, Any], httpx.Headers]:
        query = dict(params or {})
        headers = {"Accept": "application/json"}
        token = self.profile.provider_token
        if token and self.profile.token_in_query:
            query["token"] = token
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        elif access:
            headers["Authorization"] = f"Bearer {access}"
        url = self._api_base + path
        started = time.monotonic()  # duration only; never "now"
        status: int | None = None
        outcome = "ok"
        app_disabled = False
        try:
            try:
                response = await self._http.request(
                    method,
                    url,
                    params=query or None,
                    json=dict(body) if body is not None else None,
                    headers=headers,
                )
            except httpx.TimeoutException as exc:
                outcome = "RequestTimeout"
                raise RequestTimeout(
                    endpoint, type(exc).__name__, self._clock.now() + TRANSPORT_RETRY
                ) from None
            except httpx.HTTPError as exc:
                outcome = "TransportError"
                raise TransportError(
                    endpoint, f"{type(exc).__name__}: {redact(str(exc))}"
                ) from None
            status = response.status_code
            try:
                payload, error = _payload(response, endpoint)
                app_disabled = status == 403 and "EXCEEDED_LIMIT" in error
                if not 200 <= status < 300:
                    raise self._error(endpoint, status, payload, error, response.headers)
                if "response" not in payload:
                    raise MalformedResponse(endpoint, status, 'no "response" in the body')
            except TeslaError as exc:
                outcome = type(exc).__name__
                raise
            return status, payload, response.headers
        finally:
            self._settle(
                method,
                path,
                endpoint,
                category,
                vehicle,
                permit,
                status,
                outcome,
                app_disabled,
                started,
            )

    def _settle(
        self,
        method: str,
        path: str,
        endpoint: str,
        category: Category,
        vehicle: str | None,
        permit: Permit,
        status: int | None,
        outcome: str,
        app_disabled: bool,
        started: float,
    ) -> None:
        now = self._clock.now()
        pricing = self.profile.pricing
        billed = pricing.billed(category, status, app_disabled=app_disabled)
        cost = pricing.cost(category, status, app_disabled=app_disabled)
        self.governor.release(now, permit, status=status, billed=billed)
        ms = int((time.monotonic() - started) * 1000)
        log_event(
            log,
            logging.DEBUG,
            "tesla call",
            method=method,
            path=path,
            status=status,
            ms=ms,
            category=category.value,
            billed=billed,
            outcome=outcome,
        )
        if self._ledger is not None:
            try:
                self._ledger.record(
                    LedgerEntry(
                        at=now,
                        account=self.account,
                        vehicle=vehicle,
                        method=method,
                        endpoint=endpoint,
                        category=category,
                        status=status,
                        billed=billed,
                        cost_micro_usd=cost,
                        duration_ms=ms,
                        outcome=outcome,
                    )
                )
            except Exception as exc:  # the call happened; its record must not undo it
                log_event(
                    log,
                    logging.ERROR,
                    "request ledger failed",
                    path=path,
                    status=status,
                    error=f"{type(exc).__name__}: {exc}"[:300],
                )

    def _error(
        self,
        endpoint: str,
        status: int,
        payload: Mapping[str, Any],
        error: str,
        headers: httpx.Headers,
    ) -> TeslaError:
        description = str(payload.get("error_description") or "")
        txid = payload.get("txid") or headers.get("x-txid")
        txid = str(txid) if txid else None
        now = self._clock.now()
        if status == 400:
            return BadRequest(endpoint, status, error, description, txid)
        if status == 401:
            return Unauthorized(endpoint, status, error, description, txid)
        if status == 402:
            return PaymentRequired(endpoint, status, error, description, txid)
        if status == 403:
            if "EXCEEDED_LIMIT" in error:
                until = self.governor.limit_exceeded(now)
                return LimitExceeded(endpoint, status, error, until)
            if "missing scopes" in error.lower() or error == "invalid_scope":
                return MissingScopes(
                    endpoint,
                    status,
                    error,
                    "sign in again and grant vehicle_device_data and vehicle_location "
                    "(`fleetlog login fleet`)",
                    txid,
                )
            return Forbidden(endpoint, status, error, description, txid)
        if status == 404:
            return VehicleNotFound(endpoint, status, error, description, txid)
        if status == 405:
            return VehicleInService(endpoint, status, error, description, txid)
        if status == 408:
            return VehicleUnavailable(endpoint, status, error, description, txid)
        if status == 412:
            return PreconditionFailed(endpoint, status, error, description, txid)
        if status == 421:
            match = _USE_BASE_URL.search(error) or _USE_BASE_URL.search(description)
            base = match.group(1).rstrip("/.") if match else None
            return WrongRegion(endpoint, status, error, base)
        if status == 429:
            retry_after = _retry_after(headers, error, now)
            until = self.governor.rate_limited(now, now + timedelta(seconds=retry_after))
            return RateLimited(endpoint, status, error, until, retry_after)
        if status == 451:
            return UnavailableForLegalReasons(endpoint, status, error, description, txid)
        if status == 540:
            return VehicleError(endpoint, status, error, description, txid)
        if status >= 500:
            return ServerError(endpoint, status, error, description, txid)
        return UnexpectedStatus(endpoint, status, error, description, txid)

    def _move(self, exc: WrongRegion) -> bool:
        """Follow a 421 to the base URL it names, if that is a host fleetlog trusts."""
        new = exc.base_url
        if not new or not trusted_region_switch(self._api_base, new) or new == self._api_base:
            log_event(
                log,
                logging.WARNING,
                "tesla wrong region not followed",
                named=new,
                current=self._api_base,
            )
            return False
        log_event(log, logging.WARNING, "tesla region switched", old=self._api_base, new=new)
        self._api_base = new
        if self._on_base_url_change is not None:
            self._on_base_url_change(new)
        return True

    # --- parsing ---------------------------------------------------------------------

    def _vehicles(
        self, response: Any, endpoint: str, keep: Callable[[Mapping[str, Any]], bool]
    ) -> list[Vehicle]:
        if not isinstance(response, list):
            raise MalformedResponse(endpoint, 200, "response is not a list")
        out = []
        for item in response:
            if isinstance(item, dict) and not keep(item):
                continue
            out.append(self._vehicle(item, endpoint))
        return out

    @staticmethod
    def _vehicle(obj: Any, endpoint: str) -> Vehicle:
        try:
            return Vehicle.from_json(obj)
        except ValueError as exc:
            raise MalformedResponse(endpoint, 200, str(exc)) from None


def _vehicle_ref(vehicle: int | str) -> str:
    ref = str(vehicle).strip()
    if not ref.isalnum():
        raise ValueError(f"a vehicle is its numeric id or its 17-character VIN, not {ref!r}")
    return ref


def _object(response: Any, endpoint: str) -> dict[str, Any]:
    if not isinstance(response, dict):
        raise MalformedResponse(endpoint, 200, "response is not an object")
    return response


def _payload(response: httpx.Response, endpoint: str) -> tuple[dict[str, Any], str]:
    """The JSON body (errors may come without one) and its ``error`` text."""
    status = response.status_code
    raw = response.content
    if not raw.strip():
        if 200 <= status < 300:
            raise MalformedResponse(endpoint, status, "empty body")
        return {}, ""
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        if 200 <= status < 300:
            raise MalformedResponse(endpoint, status, "not JSON") from None
        text = raw[:200].decode("utf-8", "replace").strip()
        return {}, text
    if not isinstance(payload, dict):
        if 200 <= status < 300:
            raise MalformedResponse(endpoint, status, "not a JSON object")
        return {}, ""
    error = payload.get("error")
    return payload, str(error) if error else ""


def _retry_after(headers: httpx.Headers, error: str, now: datetime) -> float:
    """Seconds to wait after a 429: Retry-After, else RateLimit-Reset, else the body, else 300.

    At most a day: a 40-digit Retry-After would otherwise overflow the wait's datetime.
    """
    return min(_stated_retry_after(headers, error, now), MAX_RETRY_AFTER_S)


def _stated_retry_after(headers: httpx.Headers, error: str, now: datetime) -> float:
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:  # "-0000": UTC, its origin unknown (RFC 5322)
                when = when.replace(tzinfo=UTC)
            return max(0.0, (when - now).total_seconds())
    reset = headers.get("ratelimit-reset")
    if reset and reset.strip().isdigit():
        return float(reset.strip())
    match = _RETRY_IN.search(error)
    if match:
        return float(match.group(1))
    return DEFAULT_RETRY_AFTER_S
