"""The JSON API: what the pages show, in canonical units, plus TeslaMate's logging endpoints.

``PUT /api/car/{id}/logging/suspend|resume`` keep TeslaMate's paths and answers (204 when done,
412 with the reason when the car cannot be suspended now) so phone shortcuts keep working.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from fleetlog.costs import Tariff
from fleetlog.places import geofences as fences
from fleetlog.web import changes, reads, tariff_edit, tesla_account
from fleetlog.web.context import Web, web_of
from fleetlog.web.display import load_prefs
from fleetlog.web.reads import (
    battery,
    cars,
    charges,
    drives,
    efficiency,
    idle,
    places,
    spending,
    statistics,
    timeline,
    updates,
)
from fleetlog.web.window import Window, list_cars, parse_window

router = APIRouter(prefix="/api", tags=["fleetlog"])

Car = Annotated[str | None, Query(description="Car id, or `all`; default: the first car.")]
From = Annotated[
    str | None,
    Query(alias="from", description="First local day (YYYY-MM-DD); empty: the beginning."),
]
To = Annotated[str | None, Query(description="Last local day (YYYY-MM-DD), inclusive.")]


@contextmanager
def _read(
    request: Request,
    car: str | None,
    start: str | None,
    end: str | None,
    default_days: int | None = 90,
) -> Iterator[tuple[Web, sa.Connection, str, Window]]:
    web = web_of(request)
    with web.engine.connect() as conn:
        reads.no_jit(conn)
        prefs = load_prefs(conn, web.tz)
        try:
            window = parse_window(
                car, start, end, tz=web.tz, cars=list_cars(conn), default_days=default_days
            )
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        yield web, conn, prefs.preferred_range, window


# --- cars and live state ---------------------------------------------------------------


@router.get("/cars", summary="Every car with its settings and current summary")
def api_cars(request: Request) -> list[dict[str, Any]]:
    web = web_of(request)
    out = []
    with web.engine.connect() as conn:
        for ref in list_cars(conn):
            live = web.live.summary(ref.id) if web.live else None
            out.append(
                {
                    "id": ref.id,
                    "name": ref.name,
                    "vin": ref.vin,
                    "settings": cars.car_info(conn, ref.id),
                    "summary": dict(live) if live else cars.recorded_summary(conn, ref.id),
                    "live": live is not None,
                }
            )
    return out


@router.get("/events", summary="Server-Sent Events: `summary` events as cars change")
async def api_events(request: Request) -> StreamingResponse:
    web = web_of(request)

    async def stream() -> AsyncIterator[str]:
        yield "retry: 5000\n\n"
        if web.live is None:
            # Nothing will change without a runtime; keep the connection politely idle.
            while not await request.is_disconnected():
                yield ": idle\n\n"
                await asyncio.sleep(15)
            return
        updates_ = web.live.subscribe()
        try:
            while True:
                try:
                    car_id, summary = await asyncio.wait_for(anext(updates_), timeout=15)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                data = json.dumps(jsonable_encoder({"car_id": car_id, "summary": summary}))
                yield f"event: summary\ndata: {data}\n\n"
        finally:
            await updates_.aclose()  # type: ignore[attr-defined]

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _logging(request: Request, car_id: int, action: Literal["suspend", "resume"]) -> Response:
    web = web_of(request)
    with web.engine.connect() as conn:
        if cars.car_info(conn, car_id) is None:
            raise HTTPException(404, f"no car with id {car_id}")
    if web.live is None:
        return JSONResponse({"error": "the logger is not running in this process"}, 503)
    if action == "suspend":
        outcome = await web.live.suspend_logging(car_id)
    else:
        outcome = await web.live.resume_logging(car_id)
    if outcome.ok:
        return Response(status_code=204)
    return JSONResponse({"error": outcome.reason or "refused"}, status_code=412)


@router.put(
    "/car/{car_id}/logging/suspend",
    status_code=204,
    summary="Let the car fall asleep (TeslaMate-compatible)",
    responses={412: {"description": "Refused now; `error` says why"}, 503: {}},
)
async def api_suspend(request: Request, car_id: int) -> Response:
    return await _logging(request, car_id, "suspend")


@router.put(
    "/car/{car_id}/logging/resume",
    status_code=204,
    summary="Resume normal logging now (TeslaMate-compatible)",
    responses={412: {}, 503: {}},
)
async def api_resume(request: Request, car_id: int) -> Response:
    return await _logging(request, car_id, "resume")


@router.get("/budget", summary="Tesla API spend this month per car and category, projected")
def api_budget(request: Request) -> dict[str, Any]:
    web = web_of(request)
    with web.engine.connect() as conn:
        out = spending.api_spend(
            web.engine, conn, credit_usd=float(web.settings.budget_monthly_usd)
        )
    out["governor"] = web.live.budget_state() if web.live else None
    return out


# --- history ---------------------------------------------------------------------------


@router.get("/drives", summary="Drives, newest first, with totals")
def api_drives(
    request: Request,
    car: Car = None,
    start: From = None,
    to: To = None,
    offset: int = 0,
    limit: Annotated[int, Query(le=1000)] = drives.PAGE_SIZE,
) -> dict[str, Any]:
    with _read(request, car, start, to) as (_, conn, pref, window):
        rows, totals = drives.list_drives(conn, window, pref, offset=offset, limit=limit)
    return {"window": window.as_dict(), "totals": totals, "drives": rows}


@router.get("/drives/{drive_id}", summary="One drive with its positions")
def api_drive(request: Request, drive_id: int) -> dict[str, Any]:
    with _read(request, "all", None, None) as (_, conn, pref, _w):
        drive = drives.get_drive(conn, drive_id, pref)
        if drive is None:
            raise HTTPException(404, f"no drive {drive_id}")
        return {"drive": drive, "positions": drives.drive_positions(conn, drive_id)}


@router.get("/charges", summary="Charging processes, newest first, with totals")
def api_charges(
    request: Request,
    car: Car = None,
    start: From = None,
    to: To = None,
    offset: int = 0,
    limit: Annotated[int, Query(le=1000)] = charges.PAGE_SIZE,
) -> dict[str, Any]:
    with _read(request, car, start, to) as (_, conn, pref, window):
        rows, totals = charges.list_charges(conn, window, pref, offset=offset, limit=limit)
    return {"window": window.as_dict(), "totals": totals, "charges": rows}


@router.get("/charges/{charge_id}", summary="One charging process with its samples")
def api_charge(request: Request, charge_id: int) -> dict[str, Any]:
    with _read(request, "all", None, None) as (_, conn, pref, _w):
        charge = charges.get_charge(conn, charge_id, pref)
        if charge is None:
            raise HTTPException(404, f"no charge {charge_id}")
        return {"charge": charge, "samples": charges.charge_samples(conn, charge_id)}


class CostIn(BaseModel):
    """A charge's cost: an absolute amount, a price per kWh or per minute, or clear it."""

    mode: Literal["absolute", "per_kwh", "per_minute", "clear"]
    amount: Decimal | None = Field(None, ge=0)


@router.put("/charges/{charge_id}/cost", summary="Set a charge's cost by hand")
def api_charge_cost(request: Request, charge_id: int, body: CostIn) -> dict[str, Any]:
    web = web_of(request)
    try:
        with web.engine.begin() as conn:
            cost = changes.set_charge_cost(conn, charge_id, body.mode, body.amount)
    except changes.ChangeError as exc:
        status = 404 if "no charge" in str(exc) else 422
        raise HTTPException(status, str(exc)) from None
    return {"id": charge_id, "cost": cost}


@router.get("/battery", summary="Usable capacity, range at 100 % and charge levels")
def api_battery(request: Request, car: Car = None, start: From = None, to: To = None) -> Any:
    with _read(request, car, start, to, None) as (_, conn, pref, window):
        return {
            "window": window.as_dict(),
            **battery.battery_health(conn, window, pref),
            "charge_levels": battery.charge_levels(conn, window),
        }


@router.get("/efficiency", summary="Net and gross consumption; by temperature and speed")
def api_efficiency(request: Request, car: Car = None, start: From = None, to: To = None) -> Any:
    with _read(request, car, start, to, 365) as (_, conn, pref, window):
        return {"window": window.as_dict(), **efficiency.efficiency(conn, window, pref)}


@router.get("/vampire", summary="Idle periods: range lost per hour, share asleep")
def api_vampire(request: Request, car: Car = None, start: From = None, to: To = None) -> Any:
    with _read(request, car, start, to) as (_, conn, pref, window):
        return {"window": window.as_dict(), **idle.vampire_drain(conn, window, pref)}


@router.get("/timeline", summary="Driving, charging, updating, parked, asleep, offline, gaps")
def api_timeline(request: Request, car: Car = None, start: From = None, to: To = None) -> Any:
    with _read(request, car, start, to, 7) as (_, conn, _p, window):
        return {"window": window.as_dict(), "segments": timeline.timeline(conn, window)}


@router.get("/statistics", summary="Per day, week, month or year")
def api_statistics(
    request: Request,
    car: Car = None,
    start: From = None,
    to: To = None,
    period: Literal["day", "week", "month", "year"] = "month",
) -> Any:
    with _read(request, car, start, to, None) as (_, conn, pref, window):
        return {
            "window": window.as_dict(),
            "period": period,
            "rows": statistics.statistics(conn, window, pref, period),
        }


@router.get("/locations", summary="Visited places and drive end points")
def api_locations(request: Request, car: Car = None, start: From = None, to: To = None) -> Any:
    with _read(request, car, start, to, None) as (_, conn, _p, window):
        return {
            "window": window.as_dict(),
            "visited": places.visited(conn, window),
            "points": places.route_points(conn, window),
        }


@router.get("/updates", summary="Software updates")
def api_updates(request: Request, car: Car = None, start: From = None, to: To = None) -> Any:
    with _read(request, car, start, to, None) as (_, conn, _p, window):
        return {"window": window.as_dict(), "updates": updates.software_updates(conn, window)}


@router.get("/costs", summary="Charging cost per month and per 100 km")
def api_costs(request: Request, car: Car = None, start: From = None, to: To = None) -> Any:
    with _read(request, car, start, to, 365) as (_, conn, _p, window):
        return {"window": window.as_dict(), "months": spending.charging_costs(conn, window)}


# --- geofences -------------------------------------------------------------------------


class GeofenceIn(BaseModel):
    """A circular place; money in the user's currency."""

    name: str = Field(min_length=1, max_length=255)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    radius: int = Field(25, gt=0, lt=5000, description="metres")
    billing_type: Literal["per_kwh", "per_minute"] = "per_kwh"
    cost_per_unit: Decimal | None = Field(None, ge=0)
    session_fee: Decimal | None = Field(None, ge=0)

    def spec(self) -> fences.GeofenceSpec:
        return fences.GeofenceSpec(
            name=self.name,
            latitude=self.latitude,
            longitude=self.longitude,
            radius=self.radius,
            billing_type=self.billing_type,
            cost_per_unit=self.cost_per_unit,
            session_fee=self.session_fee,
        )


@router.get("/geofences", summary="Every geofence")
def api_geofences(request: Request) -> list[dict[str, Any]]:
    with web_of(request).engine.connect() as conn:
        return places.geofences(conn)


@router.post("/geofences", status_code=201, summary="Create a geofence (relabels history)")
def api_geofence_create(request: Request, body: GeofenceIn) -> dict[str, Any]:
    try:
        with web_of(request).engine.begin() as conn:
            fence, relabelled = fences.create_geofence(conn, body.spec())
    except fences.GeofenceError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"id": fence.id, "relabelled": relabelled.total}


@router.put("/geofences/{fence_id}", summary="Change a geofence (relabels history)")
def api_geofence_update(request: Request, fence_id: int, body: GeofenceIn) -> dict[str, Any]:
    try:
        with web_of(request).engine.begin() as conn:
            fence, relabelled = fences.update_geofence(conn, fence_id, body.spec())
    except fences.GeofenceError as exc:
        raise HTTPException(404 if "no geofence" in str(exc) else 422, str(exc)) from None
    return {"id": fence.id, "relabelled": relabelled.total}


@router.delete("/geofences/{fence_id}", status_code=204, summary="Delete a geofence")
def api_geofence_delete(request: Request, fence_id: int) -> Response:
    try:
        with web_of(request).engine.begin() as conn:
            fences.delete_geofence(conn, fence_id)
    except fences.GeofenceError as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(status_code=204)


# --- tariffs ---------------------------------------------------------------------------


class TariffWindowIn(BaseModel):
    """One price window: local times in the tariff's zone; an end not after the start runs
    past midnight. The season (both days or neither) is inclusive and may wrap the year."""

    days: str = Field("*", description="`*`, `mon`, `mon-fri`, `sat,sun`", examples=["mon-fri"])
    start: str = Field(description="HH:MM", examples=["22:00"])
    end: str = Field(description="HH:MM, up to 24:00", examples=["06:00"])
    price: Decimal = Field(ge=0, description="per kWh or per minute, as the geofence bills")
    season_from: str | None = Field(None, description="MM-DD", examples=["11-01"])
    season_to: str | None = Field(None, description="MM-DD", examples=["02-28"])

    def fields(self) -> tariff_edit.WindowFields:
        return tariff_edit.WindowFields(
            days=self.days,
            start=self.start,
            end=self.end,
            price=str(self.price),
            season_from=self.season_from or "",
            season_to=self.season_to or "",
        )


class TariffIn(BaseModel):
    """A geofence's time-of-use tariff. Windows may not overlap; outside every window the
    default price applies (else the geofence's cost per unit)."""

    currency: str = Field(min_length=3, max_length=3, examples=["EUR"])
    time_zone: str | None = Field(None, description="IANA zone; default: the TZ setting")
    default_price: Decimal | None = Field(None, ge=0)
    windows: list[TariffWindowIn] = Field(default_factory=list, max_length=100)

    def tariff(self) -> Tariff:
        return tariff_edit.build_tariff(
            self.currency, self.time_zone, self.default_price, [w.fields() for w in self.windows]
        )


def _tariff_body(body: TariffIn) -> Tariff:
    try:
        return body.tariff()
    except tariff_edit.TariffInputError as exc:
        raise HTTPException(422, {"error": str(exc), "problems": exc.problems}) from None


def _tariff_change(
    request: Request, fence_id: int, tariff: Tariff | None, *, apply: bool
) -> dict[str, Any]:
    web = web_of(request)
    run = tariff_edit.apply if apply else tariff_edit.preview
    try:
        outcome = run(web.engine, fence_id, tariff, default_tz=str(web.settings.tz or "UTC"))
    except tariff_edit.NoGeofence as exc:
        raise HTTPException(404, str(exc)) from None
    return outcome.as_dict()


@router.get("/geofences/{fence_id}/tariff", summary="A geofence's time-of-use tariff")
def api_tariff(request: Request, fence_id: int) -> dict[str, Any]:
    """`tariff` is null when the geofence bills a flat `cost_per_unit`."""
    with web_of(request).engine.connect() as conn:
        try:
            fence, tariff = tariff_edit.current(conn, fence_id)
        except tariff_edit.NoGeofence as exc:
            raise HTTPException(404, str(exc)) from None
    return {
        "geofence_id": fence_id,
        "billing_type": str(fence["billing_type"]),
        "cost_per_unit": fence["cost_per_unit"],
        "session_fee": fence["session_fee"],
        "tariff": tariff_edit.tariff_json(tariff),
    }


@router.put(
    "/geofences/{fence_id}/tariff",
    summary="Set a geofence's tariff and reprice its past charges",
    responses={422: {"description": "`problems` lists what is wrong with the tariff"}},
)
def api_tariff_set(request: Request, fence_id: int, body: TariffIn) -> dict[str, Any]:
    """Charges with a cost set by hand keep it. Answers the cost changes made (old → new)."""
    tariff = _tariff_body(body)
    return _tariff_change(request, fence_id, tariff, apply=True)


@router.post(
    "/geofences/{fence_id}/tariff/preview",
    summary="Dry run: the cost changes setting this tariff would make",
    responses={422: {"description": "`problems` lists what is wrong with the tariff"}},
)
def api_tariff_preview(request: Request, fence_id: int, body: TariffIn) -> dict[str, Any]:
    """Nothing is written; `changes` is what `PUT` would answer."""
    tariff = _tariff_body(body)
    return _tariff_change(request, fence_id, tariff, apply=False)


@router.delete(
    "/geofences/{fence_id}/tariff",
    summary="Clear a geofence's tariff (flat billing again) and reprice its past charges",
)
def api_tariff_clear(
    request: Request,
    fence_id: int,
    dry_run: Annotated[bool, Query(description="Only report the cost changes")] = False,
) -> dict[str, Any]:
    return _tariff_change(request, fence_id, None, apply=not dry_run)


# --- Tesla account ---------------------------------------------------------------------


class TeslaTokensIn(BaseModel):
    """An access + refresh token pair (leave both out when `TOKEN` is set: provider sign-in)."""

    access_token: str = Field("", max_length=20000)
    refresh_token: str = Field("", max_length=20000)


@router.get("/tesla/account", summary="Tesla sign-in state (never a token)")
def api_tesla_account(request: Request) -> dict[str, Any]:
    web = web_of(request)
    return tesla_account.account_state(web.settings, web.engine, web.live)


@router.post(
    "/tesla/sign-in",
    summary="Sign in to Tesla: store a token pair encrypted and check it (as `fleetlog login`)",
    responses={422: {"description": "`error`: why Tesla or the provider refused"}},
)
def api_tesla_sign_in(request: Request, body: TeslaTokensIn) -> Any:
    """Checked with one free products call (a refresh first when the access token expired);
    with `TOKEN` set, the provider sign-in. Answers the cars found."""
    web = web_of(request)
    try:
        done = tesla_account.sign_in(
            web.settings, web.engine, body.access_token, body.refresh_token
        )
    except tesla_account.SignInError as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    return {"signed_in": True, "mode": done.mode, "api_base": done.api_base, "cars": done.cars}


@router.delete("/tesla/tokens", status_code=204, summary="Sign out of Tesla: delete the tokens")
def api_tesla_sign_out(request: Request) -> Response:
    tesla_account.sign_out(web_of(request).engine)
    return Response(status_code=204)
