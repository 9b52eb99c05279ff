"""The polling source: the machine's fetches carried out with the REST client.

``LIGHT`` is the free single-vehicle call, ``FULL`` is ``vehicle_data``. Every
outcome becomes one event for the machine: the answer as an observation, or a
:class:`FetchFailed` naming what went wrong and, when the client knows, when to
try again (the budget governor's "later", Retry-After, EXCEEDED_LIMIT). A payload
that cannot be read is logged with the car and the reason and reported as a
transport failure: the car's task goes on.

Pushed feeds (streaming, telemetry, SSE) plug in beside this as :class:`PushFeed`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from fleetlog.logs import log_event
from fleetlog.sources.tesla import (
    AuthError,
    BudgetDeferred,
    LimitExceeded,
    RateLimited,
    TeslaClient,
    TeslaError,
    TryLater,
    Unauthorized,
    VehicleInService,
    VehicleNotFound,
    VehicleUnavailable,
)
from fleetlog.sources.vehicle_data import (
    PayloadError,
    observation_from_vehicle_data,
    observation_from_vehicle_item,
)
from fleetlog.vehicle.events import (
    Event,
    FetchedFull,
    FetchedLight,
    FetchError,
    FetchFailed,
    FetchKind,
)
from fleetlog.vehicle.pacing import Mailbox
from fleetlog.vehicle.settings import Feed

log = logging.getLogger(__name__)


class Fetcher(Protocol):
    """Carries out one fetch the machine scheduled; never raises for Tesla's answers."""

    async def fetch(self, kind: FetchKind) -> Event: ...


class PushFeed(Protocol):
    """A pushed source for one car (stream, telemetry, SSE), for the issues that add them.

    ``run`` puts ``Observed``/``CarConnectivity``/``StreamConnected``/``StreamDisconnected``
    events into the car's mailbox until cancelled; ``connect``/``disconnect`` carry out the
    machine's ``ConnectStream``/``DisconnectStream``.
    """

    feed: Feed

    async def run(self, mailbox: Mailbox) -> None: ...

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...


class Now(Protocol):
    def now(self) -> datetime: ...


def failure_of(kind: FetchKind, exc: Exception) -> FetchFailed:
    """The machine's view of a failed fetch."""
    retry_at = exc.retry_at if isinstance(exc, TryLater) else None
    detail = str(exc)
    match exc:
        case BudgetDeferred():
            error = FetchError.BUDGET_LATER
        case VehicleUnavailable():
            error = FetchError.ASLEEP
        case VehicleInService():
            error = FetchError.IN_SERVICE
        case VehicleNotFound():
            error = FetchError.NOT_FOUND
        case RateLimited() | LimitExceeded():
            error = FetchError.RATE_LIMITED
        case Unauthorized() | AuthError():
            error = FetchError.UNAUTHORIZED
        case _:
            error = FetchError.TRANSPORT
    return FetchFailed(kind, error, retry_at=retry_at, detail=detail)


class RestFetcher:
    """Polling with the REST client for the car with product id `vehicle_id`."""

    def __init__(self, client: TeslaClient, vehicle_id: int, vin: str, clock: Now) -> None:
        self.client = client
        self.vehicle_id = vehicle_id
        self.vin = vin
        self.clock = clock

    async def fetch(self, kind: FetchKind) -> Event:
        try:
            if kind is FetchKind.LIGHT:
                vehicle = await self.client.vehicle(self.vehicle_id)
                obs = observation_from_vehicle_item(vehicle.raw, received_at=self.clock.now())
                return FetchedLight(obs)
            payload = await self.client.vehicle_data(self.vehicle_id)
            return FetchedFull(observation_from_vehicle_data(payload, received_at=self.clock.now()))
        except PayloadError as exc:
            log_event(log, logging.WARNING, "unreadable answer", vin=self.vin, error=str(exc))
            return FetchFailed(kind, FetchError.TRANSPORT, detail=str(exc))
        except TeslaError as exc:
            failure = failure_of(kind, exc)
            if failure.error not in (FetchError.ASLEEP, FetchError.BUDGET_LATER):
                log_event(
                    log,
                    logging.WARNING,
                    "fetch failed",
                    vin=self.vin,
                    kind=kind.value,
                    error=failure.error.value,
                    detail=failure.detail,
                )
            return failure
