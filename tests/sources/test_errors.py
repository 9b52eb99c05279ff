"""Every error of reference §1.5, from a real HTTP server on loopback that answers as scripted.

The simulator produces the common errors (see test_client_sim.py); the rare ones (412,
451, 540, a 401 without body, malformed bodies, Retry-After as a date, timeouts) come from
this small aiohttp server that answers each request with the next scripted response.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from aiohttp import web

from fleetlog.clock import ManualClock
from fleetlog.sources.tesla import (
    BadRequest,
    Forbidden,
    MalformedResponse,
    MissingScopes,
    PaymentRequired,
    PreconditionFailed,
    RateLimited,
    RequestTimeout,
    ServerError,
    TeslaClient,
    TransportError,
    Unauthorized,
    UnavailableForLegalReasons,
    UnexpectedStatus,
    VehicleError,
    VehicleInService,
    WrongRegion,
)
from fleetlog.sources.tesla._hosts import Mode, Profile, RefreshStyle
from fleetlog.sources.tesla._pricing import Pricing

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
SECRET = "provider-secret-token-0123456789"
Script = tuple[int, Any, dict[str, str]]


class Scripted:
    def __init__(self) -> None:
        self.script: list[Script] = []
        self.requests: list[web.Request] = []
        self.delay = 0.0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        status, body, headers = self.script.pop(0)
        if isinstance(body, bytes):
            return web.Response(status=status, body=body, headers=headers)
        return web.json_response(body, status=status, headers=headers)


@pytest.fixture
async def server() -> AsyncIterator[tuple[Scripted, str]]:
    scripted = Scripted()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield scripted, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def client_for(base: str, *, timeout: float = 5.0) -> tuple[TeslaClient, ManualClock]:
    profile = Profile(
        mode=Mode.PROVIDER,
        api_base=base,
        issuer=base + "/oauth2/v3",
        client_id="ownerapi",
        refresh_style=RefreshStyle.JSON,
        pricing=Pricing(),
        provider_token=SECRET,
    )
    clock = ManualClock(NOW)
    return TeslaClient(profile, None, clock=clock, http=httpx.AsyncClient(timeout=timeout)), clock


def err(error: str, description: str = "") -> dict[str, Any]:
    return {"response": None, "error": error, "error_description": description}


CASES: list[tuple[Script, type[Exception], str]] = [
    ((400, err("invalid_field", "endpoints"), {}), BadRequest, "invalid_field"),
    ((401, b"", {}), Unauthorized, "no error text"),
    ((401, err("token expired (401)"), {}), Unauthorized, "token expired"),
    ((402, err("insufficient_credits"), {}), PaymentRequired, "insufficient_credits"),
    ((403, err("Unauthorized missing scopes"), {}), MissingScopes, "vehicle_location"),
    ((403, err("forbidden, see https://developer.tesla.com"), {}), Forbidden, "forbidden"),
    ((405, err("vehicle is currently in service"), {}), VehicleInService, "in service"),
    ((412, err("Endpoint is only available on fleetapi"), {}), PreconditionFailed, "fleetapi"),
    ((418, err("client too old"), {}), UnexpectedStatus, "418"),
    ((451, err("privacy"), {}), UnavailableForLegalReasons, "451"),
    ((500, err("context deadline exceeded"), {}), ServerError, "deadline"),
    ((503, b"<html>upstream down</html>", {}), ServerError, "upstream down"),
    ((540, err("device unexpected response"), {}), VehicleError, "540"),
    ((200, b'{"response": {"vin": "5YJ', {}), MalformedResponse, "not JSON"),
    ((200, {"result": 1}, {}), MalformedResponse, "response"),
    ((200, b"", {}), MalformedResponse, "empty"),
]


@pytest.mark.parametrize(("script", "kind", "text"), CASES, ids=[str(c[0][0]) for c in CASES])
async def test_status_becomes_its_exception(
    server: tuple[Scripted, str], script: Script, kind: type[Exception], text: str
) -> None:
    scripted, base = server
    scripted.script = [script]
    client, _ = client_for(base)
    with pytest.raises(kind) as raised:
        await client.vehicle_data("5YJ3E7EB5MF959547")
    assert text in str(raised.value)
    assert SECRET not in str(raised.value) and SECRET not in repr(raised.value)
    status = script[0]
    billed = status < 500 and status != 401  # a malformed 200 is billed all the same
    assert client.governor.state(NOW).spent_usd == (0.002 if billed else 0.0)


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"Retry-After": "45"}, "Retry in 45 seconds", 45.0),
        ({"RateLimit-Reset": "120", "RateLimit-Limit": "300"}, "", 120.0),
        ({}, "Retry in 600 seconds", 600.0),
        ({}, "", 300.0),  # TeslaMate's default
        ({"Retry-After": format_datetime(NOW + timedelta(seconds=90), usegmt=True)}, "", 90.0),
        # fuzz findings: a naive date ("-0000") raised TypeError, a huge number OverflowError
        ({"Retry-After": "Mon, 04 May 2026 12:01:30 -0000"}, "", 90.0),
        ({"Retry-After": "8" * 40}, "", 86_400.0),
        ({}, "Retry in 99999999999999999999 seconds", 86_400.0),
    ],
)
async def test_429_reads_retry_after_in_every_form(
    server: tuple[Scripted, str], headers: dict[str, str], body: str, expected: float
) -> None:
    scripted, base = server
    scripted.script = [(429, err(body), headers)]
    client, clock = client_for(base)
    with pytest.raises(RateLimited) as limited:
        await client.products()
    assert limited.value.retry_after == expected
    assert limited.value.retry_at == clock.now() + timedelta(seconds=expected)


async def test_421_to_a_foreign_host_is_not_followed(server: tuple[Scripted, str]) -> None:
    scripted, base = server
    scripted.script = [(421, err("user out of region, use base URL: https://evil.example"), {})]
    client, _ = client_for(base)
    with pytest.raises(WrongRegion) as wrong:
        await client.products()
    assert wrong.value.base_url == "https://evil.example"
    assert client.api_base == base
    assert len(scripted.requests) == 1


async def test_timeout_and_refused_connection(server: tuple[Scripted, str]) -> None:
    scripted, base = server
    scripted.delay = 0.5
    scripted.script = [(200, {"response": []}, {})]
    client, clock = client_for(base, timeout=0.1)
    with pytest.raises(RequestTimeout) as timed_out:
        await client.vehicle_data("5YJ3E7EB5MF959547")
    assert timed_out.value.retry_at > clock.now()
    assert client.governor.state(NOW).spent_usd == 0, "no answer: not billed"
    refused, _ = client_for("http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(TransportError) as transport:
        await refused.products()
    assert SECRET not in str(transport.value)


async def test_token_as_bearer_or_as_query(server: tuple[Scripted, str]) -> None:
    scripted, base = server
    scripted.script = [(200, {"response": [], "count": 0}, {})] * 2
    client, _ = client_for(base)
    await client.products()
    first = scripted.requests[-1]
    assert first.headers["Authorization"] == f"Bearer {SECRET}"
    assert "token" not in first.query
    client.profile = Profile(**{**_fields(client.profile), "token_in_query": True})
    await client.products()
    second = scripted.requests[-1]
    assert second.query["token"] == SECRET
    assert "Authorization" not in second.headers


def _fields(profile: Profile) -> dict[str, Any]:
    return {name: getattr(profile, name) for name in Profile.__dataclass_fields__}
