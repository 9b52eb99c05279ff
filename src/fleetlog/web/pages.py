"""The HTML pages. Each handler reads through :mod:`fleetlog.web.reads`, converts for display
and hands the template its rows plus chart and map specs (plain JSON that our static JS turns
into plotly figures)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Form, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from fleetlog.costs import Tariff
from fleetlog.costs.tariff import format_price
from fleetlog.places import geofences as fences
from fleetlog.web import changes, reads, tariff_edit, tesla_account
from fleetlog.web.context import Web, template_context, web_of
from fleetlog.web.display import LANGUAGES, Prefs, load_prefs, template_helpers
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
from fleetlog.web.security import SESSION_COOKIE, cookie_options
from fleetlog.web.window import PRESETS, CarRef, Window, list_cars, parse_window

router = APIRouter(include_in_schema=False)

From = Annotated[str | None, Query(alias="from")]

NAV = (
    ("/", "Cars"),
    ("/drives", "Drives"),
    ("/charges", "Charges"),
    ("/battery", "Battery"),
    ("/efficiency", "Efficiency"),
    ("/vampire", "Vampire drain"),
    ("/timeline", "Timeline"),
    ("/statistics", "Statistics"),
    ("/locations", "Locations"),
    ("/updates", "Updates"),
    ("/costs", "Costs"),
    ("/settings", "Settings"),
)


@dataclass
class View:
    """One page being built: its connection, the user's preferences, cars and window."""

    request: Request
    web: Web
    conn: sa.Connection
    prefs: Prefs
    cars: list[CarRef]
    window: Window

    def ts(self, dt: datetime | None) -> str | None:
        """A time for a chart axis: local wall-clock time without a zone."""
        local = self.prefs.local(dt)
        return None if local is None else local.strftime("%Y-%m-%d %H:%M:%S")

    def render(self, template: str, **data: Any) -> HTMLResponse:
        context = template_context(
            self.request,
            nav=NAV,
            cars=self.cars,
            window=self.window,
            presets=PRESETS,
            **template_helpers(self.prefs),
            **data,
        )
        return self.web.templates.TemplateResponse(self.request, template, context)


@contextmanager
def view(
    request: Request,
    car: str | None = None,
    start: str | None = None,
    end: str | None = None,
    *,
    default_days: int | None = 90,
) -> Iterator[View]:
    web = web_of(request)
    with web.engine.connect() as conn:
        reads.no_jit(conn)
        prefs = load_prefs(conn, web.tz)
        car_refs = list_cars(conn)
        try:
            window = parse_window(
                car, start, end, tz=web.tz, cars=car_refs, default_days=default_days
            )
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        yield View(request, web, conn, prefs, car_refs, window)


def _check_csrf(request: Request, token: str) -> None:
    if not web_of(request).signer.csrf_valid(request.state.csrf_cookie, token):
        raise HTTPException(403, "the form expired or came from another site; reload and retry")


def _back(request: Request, path: str, **query: Any) -> RedirectResponse:
    base = request.scope.get("root_path", "").rstrip("/")
    q = urlencode({k: v for k, v in query.items() if v is not None})
    return RedirectResponse(f"{base}{path}{'?' + q if q else ''}", status_code=303)


# --- cars ------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def cars_page(request: Request) -> HTMLResponse:
    with view(request, "all") as v:
        entries = []
        for ref in v.cars:
            live = v.web.live.summary(ref.id) if v.web.live else None
            # A runtime's summary may lack keys (a car never seen charging): show them as "–".
            summary: defaultdict[str, Any] = defaultdict(
                lambda: None, live if live else cars.recorded_summary(v.conn, ref.id)
            )
            entries.append({"car": ref, "info": cars.car_info(v.conn, ref.id), "summary": summary})
        return v.render("cars.html", entries=entries, live_on=v.web.live is not None)


# --- drives ----------------------------------------------------------------------------


@router.get("/drives", response_class=HTMLResponse)
def drives_page(
    request: Request,
    car: str | None = None,
    start: From = None,
    to: str | None = None,
    page: int = 0,
    min_km: float | None = None,
) -> HTMLResponse:
    with view(request, car, start, to) as v:
        rows, totals = drives.list_drives(
            v.conn,
            v.window,
            v.prefs.preferred_range,
            offset=max(0, page) * drives.PAGE_ROWS,
            limit=drives.PAGE_ROWS,
            min_distance_km=min_km,
        )
        chart = {
            "data": [
                {
                    "type": "bar",
                    "x": [v.ts(r["start_date"]) for r in rows],
                    "y": [v.prefs.dist(r["distance_km"]) for r in rows],
                    "name": v.prefs.dist_unit,
                }
            ],
            "layout": {"yaxis": {"title": {"text": v.prefs.dist_unit}}},
        }
        return v.render("drives.html", rows=rows, totals=totals, chart=chart, page=page)


@router.get("/drives/{drive_id}", response_class=HTMLResponse)
def drive_page(request: Request, drive_id: int) -> HTMLResponse:
    with view(request) as v:
        drive = drives.get_drive(v.conn, drive_id, v.prefs.preferred_range)
        if drive is None:
            raise HTTPException(404, f"no drive {drive_id}")
        points = drives.drive_positions(v.conn, drive_id)
        x = [v.ts(p["date"]) for p in points]
        p = v.prefs

        def series(name: str, values: list[Any], axis: str = "y") -> dict[str, Any]:
            return {
                "type": "scatter",
                "mode": "lines",
                "x": x,
                "y": values,
                "name": name,
                "yaxis": axis,
            }

        charts = [
            (
                "Speed and power",
                {
                    "data": [
                        series(p.speed_unit, [p.speed(q["speed_kmh"]) for q in points]),
                        series("kW", [q["power_kw"] for q in points], "y2"),
                    ],
                    "layout": {
                        "yaxis": {"title": {"text": p.speed_unit}},
                        "yaxis2": {"title": {"text": "kW"}, "overlaying": "y", "side": "right"},
                    },
                },
            ),
            (
                "Battery and elevation",
                {
                    "data": [
                        series("SoC %", [q["battery_level"] for q in points]),
                        series("m", [q["elevation_m"] for q in points], "y2"),
                    ],
                    "layout": {
                        "yaxis": {"title": {"text": "%"}},
                        "yaxis2": {"title": {"text": "m"}, "overlaying": "y", "side": "right"},
                    },
                },
            ),
        ]
        route = {
            "traces": [
                {
                    "lat": [q["latitude"] for q in points],
                    "lng": [q["longitude"] for q in points],
                    "mode": "lines",
                    "name": "route",
                }
            ],
            "markers": [
                m
                for m in (
                    _marker(points[0], drive["start_place"] or "start") if points else None,
                    _marker(points[-1], drive["end_place"] or "end") if points else None,
                )
                if m
            ],
        }
        return v.render("drive.html", drive=drive, charts=charts, route=route, points=len(points))


def _marker(point: dict[str, Any], name: str) -> dict[str, Any]:
    return {"lat": point["latitude"], "lng": point["longitude"], "name": name}


@router.get("/drives/{drive_id}/gpx")
@router.get("/drive/{drive_id}/gpx")  # TeslaMate's path, for old links
def drive_gpx(request: Request, drive_id: int) -> Response:
    with view(request) as v:
        drive = drives.get_drive(v.conn, drive_id, v.prefs.preferred_range)
        if drive is None:
            raise HTTPException(404, f"no drive {drive_id}")
        body = drives.gpx(drive, drives.drive_positions(v.conn, drive_id))
    return Response(
        body,
        media_type="application/gpx+xml",
        headers={"Content-Disposition": f'attachment; filename="drive-{drive_id}.gpx"'},
    )


# --- charges ---------------------------------------------------------------------------


@router.get("/charges", response_class=HTMLResponse)
def charges_page(
    request: Request,
    car: str | None = None,
    start: From = None,
    to: str | None = None,
    page: int = 0,
) -> HTMLResponse:
    with view(request, car, start, to) as v:
        rows, totals = charges.list_charges(
            v.conn,
            v.window,
            v.prefs.preferred_range,
            offset=max(0, page) * charges.PAGE_ROWS,
            limit=charges.PAGE_ROWS,
        )
        chart = {
            "data": [
                {
                    "type": "bar",
                    "x": [v.ts(r["start_date"]) for r in rows if r["kind"] == kind],
                    "y": [r["energy_added_kwh"] for r in rows if r["kind"] == kind],
                    "name": kind,
                }
                for kind in ("AC", "DC")
            ],
            "layout": {"barmode": "stack", "yaxis": {"title": {"text": "kWh"}}},
        }
        return v.render("charges.html", rows=rows, totals=totals, chart=chart, page=page)


@router.get("/charges/{charge_id}", response_class=HTMLResponse)
def charge_page(
    request: Request, charge_id: int, saved: str | None = None, error: str | None = None
) -> HTMLResponse:
    with view(request) as v:
        charge = charges.get_charge(v.conn, charge_id, v.prefs.preferred_range)
        if charge is None:
            raise HTTPException(404, f"no charge {charge_id}")
        samples = charges.charge_samples(v.conn, charge_id)
        curve = {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": [s["battery_level"] for s in samples],
                    "y": [s["power_kw"] for s in samples],
                    "name": "kW",
                }
            ],
            "layout": {"xaxis": {"title": {"text": "SoC %"}}, "yaxis": {"title": {"text": "kW"}}},
        }
        over_time = {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": [v.ts(s["date"]) for s in samples],
                    "y": [s["power_kw"] for s in samples],
                    "name": "kW",
                },
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": [v.ts(s["date"]) for s in samples],
                    "y": [s["battery_level"] for s in samples],
                    "name": "SoC %",
                    "yaxis": "y2",
                },
            ],
            "layout": {
                "yaxis": {"title": {"text": "kW"}},
                "yaxis2": {"title": {"text": "%"}, "overlaying": "y", "side": "right"},
            },
        }
        where = None
        if charge["latitude"] is not None:
            where = {
                "traces": [],
                "markers": [
                    {
                        "lat": charge["latitude"],
                        "lng": charge["longitude"],
                        "name": charge["place"] or "charge",
                    }
                ],
            }
        return v.render(
            "charge.html",
            charge=charge,
            curve=curve,
            over_time=over_time,
            where=where,
            saved=saved,
            error=error,
        )


@router.post("/charges/{charge_id}/cost")
def charge_cost_form(
    request: Request,
    charge_id: int,
    csrf: Annotated[str, Form()],
    mode: Annotated[str, Form()],
    amount: Annotated[str, Form()] = "",
) -> RedirectResponse:
    _check_csrf(request, csrf)
    web = web_of(request)
    try:
        value = changes.decimal_or_none(amount)
        with web.engine.begin() as conn:
            changes.set_charge_cost(conn, charge_id, mode, value)  # type: ignore[arg-type]
    except changes.ChangeError as exc:
        return _back(request, f"/charges/{charge_id}", error=str(exc))
    return _back(request, f"/charges/{charge_id}", saved="1")


# --- analysis pages --------------------------------------------------------------------


@router.get("/battery", response_class=HTMLResponse)
def battery_page(
    request: Request, car: str | None = None, start: From = None, to: str | None = None
) -> HTMLResponse:
    with view(request, car, start, to, default_days=None) as v:
        health = battery.battery_health(v.conn, v.window, v.prefs.preferred_range)
        pts = health["points"]
        p = v.prefs
        capacity = {
            "data": [
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": [v.ts(q["date"]) for q in pts],
                    "y": [q["capacity_kwh"] for q in pts],
                    "name": "kWh",
                }
            ],
            "layout": {"yaxis": {"title": {"text": "usable kWh"}}},
        }
        by_mileage = {
            "data": [
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": [p.dist(q["odometer_km"]) for q in pts],
                    "y": [q["capacity_kwh"] for q in pts],
                    "name": "kWh",
                }
            ],
            "layout": {
                "xaxis": {"title": {"text": f"odometer ({p.dist_unit})"}},
                "yaxis": {"title": {"text": "usable kWh"}},
            },
        }
        full_range = {
            "data": [
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": [v.ts(q["date"]) for q in pts],
                    "y": [p.dist(q["range_at_100_km"]) for q in pts],
                    "name": p.dist_unit,
                }
            ],
            "layout": {"yaxis": {"title": {"text": f"range at 100 % ({p.dist_unit})"}}},
        }
        levels = battery.charge_level_chart(v.conn, v.window)
        if "points" in levels:
            level_data = [
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": [v.ts(q["date"]) for q in levels["points"]],
                    "y": [q["battery_level"] for q in levels["points"]],
                    "name": "SoC %",
                    "line": {"shape": "linear"},
                }
            ]
        else:
            # A long history: the lowest and highest level per bucket, the band between.
            xs = [v.ts(q["date"]) for q in levels["buckets"]]
            level_data = [
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": xs,
                    "y": [q["max_level"] for q in levels["buckets"]],
                    "name": f"highest SoC % per {levels['bucket_hours']:.0f} h",
                    "line": {"width": 1},
                },
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": xs,
                    "y": [q["min_level"] for q in levels["buckets"]],
                    "name": f"lowest SoC % per {levels['bucket_hours']:.0f} h",
                    "fill": "tonexty",
                    "line": {"width": 1},
                },
            ]
        level_chart = {
            "data": level_data,
            "layout": {"yaxis": {"title": {"text": "%"}, "range": [0, 100]}},
        }
        return v.render(
            "battery.html",
            health=health,
            charts=[
                ("Usable capacity over time", capacity),
                ("Usable capacity by mileage", by_mileage),
                ("Projected range at 100 %", full_range),
                ("Charge level", level_chart),
            ],
        )


@router.get("/efficiency", response_class=HTMLResponse)
def efficiency_page(
    request: Request, car: str | None = None, start: From = None, to: str | None = None
) -> HTMLResponse:
    with view(request, car, start, to, default_days=365) as v:
        eff = efficiency.efficiency(
            v.conn, v.window, v.prefs.preferred_range, scatter_max=efficiency.SCATTER_POINTS
        )
        p = v.prefs
        temp = {
            "data": [
                {
                    "type": "scatter",
                    "mode": "markers",
                    "x": [p.temp(d["outside_temp_c"]) for d in eff["drives"]],
                    "y": [p.per_dist(d["consumption_wh_per_km"]) for d in eff["drives"]],
                    "name": "drives",
                    "marker": {"size": 5, "opacity": 0.5},
                },
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": [p.temp(b["from"] + 2.5) for b in eff["by_temperature"]],
                    "y": [p.per_dist(b["consumption_wh_per_km"]) for b in eff["by_temperature"]],
                    "name": "mean",
                },
            ],
            "layout": {
                "xaxis": {"title": {"text": p.temp_unit}},
                "yaxis": {"title": {"text": p.cons_unit}},
            },
        }
        speed = {
            "data": [
                {
                    "type": "bar",
                    "x": [p.speed(b["from"] + 5) for b in eff["by_speed"]],
                    "y": [p.per_dist(b["consumption_wh_per_km"]) for b in eff["by_speed"]],
                    "name": p.cons_unit,
                },
            ],
            "layout": {
                "xaxis": {"title": {"text": f"average speed ({p.speed_unit})"}},
                "yaxis": {"title": {"text": p.cons_unit}},
            },
        }
        return v.render(
            "efficiency.html",
            eff=eff,
            charts=[
                ("Consumption against temperature", temp),
                ("Consumption against speed", speed),
            ],
        )


@router.get("/vampire", response_class=HTMLResponse)
def vampire_page(
    request: Request, car: str | None = None, start: From = None, to: str | None = None
) -> HTMLResponse:
    with view(request, car, start, to) as v:
        drain = idle.vampire_drain(v.conn, v.window, v.prefs.preferred_range)
        bars = idle.chart_bars(drain["periods"])
        chart = {
            "data": [
                {
                    "type": "bar",
                    "x": [v.ts(q["start_date"]) for q in bars],
                    "y": [v.prefs.dist(q["range_lost_per_hour_km"]) for q in bars],
                    "name": f"{v.prefs.dist_unit}/h",
                }
            ],
            "layout": {"yaxis": {"title": {"text": f"range lost ({v.prefs.dist_unit}/h)"}}},
        }
        return v.render("vampire.html", drain=drain, chart=chart)


_KIND_COLOURS = {
    "driving": "#2f6fdd",
    "charging": "#1f9d55",
    "updating": "#9b59b6",
    "parked": "#f0ad4e",
    "asleep": "#7f8c8d",
    "offline": "#c0392b",
    "gap": "#ffffff",
}


@router.get("/timeline", response_class=HTMLResponse)
def timeline_page(
    request: Request,
    car: str | None = None,
    start: From = None,
    to: str | None = None,
    kind: str | None = None,
) -> HTMLResponse:
    with view(request, car, start, to, default_days=7) as v:
        segments = timeline.timeline(v.conn, v.window)
        shown = [s for s in segments if not kind or s["kind"] == kind]
        chart = {
            "data": [
                {
                    "type": "bar",
                    "orientation": "h",
                    "name": k,
                    "y": [str(s["car_id"]) for s in segments if s["kind"] == k],
                    "base": [v.ts(s["start"]) for s in segments if s["kind"] == k],
                    "x": [s["duration_min"] * 60000 for s in segments if s["kind"] == k],
                    "marker": {
                        "color": _KIND_COLOURS[k],
                        "line": {"color": "#999", "width": 1 if k == "gap" else 0},
                    },
                }
                for k in timeline.KINDS
            ],
            "layout": {
                "barmode": "overlay",
                "xaxis": {"type": "date"},
                "yaxis": {"title": {"text": "car"}},
                "height": 220,
            },
        }
        return v.render(
            "timeline.html", segments=shown[:500], chart=chart, kinds=timeline.KINDS, kind=kind
        )


@router.get("/statistics", response_class=HTMLResponse)
def statistics_page(
    request: Request,
    car: str | None = None,
    start: From = None,
    to: str | None = None,
    period: str = "month",
    page: int = 0,
) -> HTMLResponse:
    with view(request, car, start, to, default_days=None) as v:
        try:
            rows = statistics.statistics(v.conn, v.window, v.prefs.preferred_range, period)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        chart = {
            "data": [
                {
                    "type": "bar",
                    "x": [r["period"] for r in rows],
                    "y": [v.prefs.dist(r["distance_km"]) for r in rows],
                    "name": v.prefs.dist_unit,
                },
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": [r["period"] for r in rows],
                    "y": [r["energy_added_kwh"] for r in rows],
                    "name": "kWh charged",
                    "yaxis": "y2",
                },
            ],
            "layout": {
                "xaxis": {"type": "category", "autorange": "reversed"},
                "yaxis": {"title": {"text": v.prefs.dist_unit}},
                "yaxis2": {"title": {"text": "kWh"}, "overlaying": "y", "side": "right"},
            },
        }
        # The chart keeps every period; the table shows one page of them (ten years of days
        # are 3,650 rows).
        page = max(0, page)
        size = statistics.PAGE_ROWS
        return v.render(
            "statistics.html",
            rows=rows[page * size : (page + 1) * size],
            count=len(rows),
            page=page,
            size=size,
            period=period,
            periods=statistics.PERIODS,
            chart=chart,
        )


@router.get("/locations", response_class=HTMLResponse)
def locations_page(
    request: Request, car: str | None = None, start: From = None, to: str | None = None
) -> HTMLResponse:
    with view(request, car, start, to, default_days=None) as v:
        rows = places.visited(v.conn, v.window)
        points = places.route_points(v.conn, v.window)
        fence_rows = places.geofences(v.conn)
        visited_map = {
            "traces": [
                {
                    "lat": [q[0] for q in points],
                    "lng": [q[1] for q in points],
                    "mode": "markers",
                    "name": "stops",
                }
            ],
            "circles": [_circle(f) for f in fence_rows],
        }
        return v.render("locations.html", rows=rows, fences=fence_rows, visited_map=visited_map)


def _circle(f: dict[str, Any]) -> dict[str, Any]:
    return {
        "lat": f["latitude"],
        "lng": f["longitude"],
        "radius_m": f["radius_m"],
        "name": f["name"],
    }


@router.get("/updates", response_class=HTMLResponse)
def updates_page(
    request: Request, car: str | None = None, start: From = None, to: str | None = None
) -> HTMLResponse:
    with view(request, car, start, to, default_days=None) as v:
        return v.render("updates.html", rows=updates.software_updates(v.conn, v.window))


@router.get("/costs", response_class=HTMLResponse)
def costs_page(
    request: Request, car: str | None = None, start: From = None, to: str | None = None
) -> HTMLResponse:
    with view(request, car, start, to, default_days=365) as v:
        months = spending.charging_costs(v.conn, v.window)
        api = spending.api_spend(
            v.web.engine, v.conn, credit_usd=float(v.web.settings.budget_monthly_usd)
        )
        budget = v.web.live.budget_state() if v.web.live else None
        chart = {
            "data": [
                {
                    "type": "bar",
                    "x": [m["month"] for m in months],
                    "y": [m["cost"] for m in months],
                    "name": "charging cost",
                },
            ],
            "layout": {"xaxis": {"type": "category", "autorange": "reversed"}},
        }
        api_chart = {
            "data": [
                {
                    "type": "bar",
                    "x": [h["month"] for h in api["history"]],
                    "y": [h["cost_usd"] for h in api["history"]],
                    "name": "API USD",
                },
            ],
            "layout": {
                "xaxis": {"type": "category"},
                "shapes": [
                    {
                        "type": "line",
                        "xref": "paper",
                        "x0": 0,
                        "x1": 1,
                        "y0": api["credit_usd"],
                        "y1": api["credit_usd"],
                        "line": {"dash": "dot", "color": "#c0392b"},
                    }
                ],
            },
        }
        return v.render(
            "costs.html", months=months, api=api, budget=budget, chart=chart, api_chart=api_chart
        )


# --- settings and geofences ------------------------------------------------------------


@router.get("/settings", response_class=HTMLResponse)
def settings_page(
    request: Request, saved: str | None = None, error: str | None = None
) -> HTMLResponse:
    with view(request, "all") as v:
        infos = [cars.car_info(v.conn, c.id) for c in v.cars]
        return v.render(
            "settings.html",
            infos=infos,
            languages=LANGUAGES,
            saved=saved,
            error=error,
            flags=changes.CAR_FLAGS,
        )


@router.post("/settings")
def settings_form(
    request: Request,
    csrf: Annotated[str, Form()],
    unit_of_length: Annotated[str, Form()],
    unit_of_temperature: Annotated[str, Form()],
    unit_of_pressure: Annotated[str, Form()],
    preferred_range: Annotated[str, Form()],
    language: Annotated[str, Form()],
) -> RedirectResponse:
    _check_csrf(request, csrf)
    try:
        with web_of(request).engine.begin() as conn:
            changes.save_settings(
                conn,
                unit_of_length=unit_of_length,
                unit_of_temperature=unit_of_temperature,
                unit_of_pressure=unit_of_pressure,
                preferred_range=preferred_range,
                language=language,
            )
    except changes.ChangeError as exc:
        return _back(request, "/settings", error=str(exc))
    return _back(request, "/settings", saved="1")


@router.post("/settings/cars/{car_id}")
async def car_settings_form(request: Request, car_id: int) -> RedirectResponse:
    form = await request.form()
    _check_csrf(request, str(form.get("csrf", "")))
    try:
        suspend_min = int(str(form.get("suspend_min", "21")))
        idle_min = int(str(form.get("suspend_after_idle_min", "15")))
    except ValueError:
        return _back(request, "/settings", error="sleep times must be whole minutes")
    flags = {f: form.get(f) == "on" for f in changes.CAR_FLAGS}
    try:
        with web_of(request).engine.begin() as conn:
            changes.save_car_settings(
                conn, car_id, suspend_min=suspend_min, suspend_after_idle_min=idle_min, flags=flags
            )
    except changes.ChangeError as exc:
        return _back(request, "/settings", error=str(exc))
    return _back(request, "/settings", saved="1")


@router.get("/geofences", response_class=HTMLResponse)
def geofences_page(request: Request) -> HTMLResponse:
    with view(request, "all") as v:
        rows = places.geofences(v.conn)
        fence_map = {"traces": [], "circles": [_circle(f) for f in rows]}
        return v.render("geofences.html", fences=rows, fence_map=fence_map)


@router.get("/geofences/new", response_class=HTMLResponse)
@router.get("/geofences/{fence_id}/edit", response_class=HTMLResponse)
def geofence_edit_page(
    request: Request,
    fence_id: int | None = None,
    lat: float | None = None,
    lng: float | None = None,
    error: str | None = None,
    tariff_saved: str | None = None,
) -> HTMLResponse:
    return _fence_editor(
        request, fence_id, lat=lat, lng=lng, error=error, tariff_saved=tariff_saved
    )


def _fence_editor(
    request: Request,
    fence_id: int | None,
    *,
    lat: float | None = None,
    lng: float | None = None,
    error: str | None = None,
    tariff_saved: str | None = None,
    tariff_form: dict[str, Any] | None = None,
    tariff_problems: list[str] | None = None,
    tariff_preview: dict[str, Any] | None = None,
) -> HTMLResponse:
    with view(request, "all") as v:
        fence: dict[str, Any] | None = None
        if fence_id is not None:
            fence = places.geofence(v.conn, fence_id)
            if fence is None:
                raise HTTPException(404, f"no geofence {fence_id}")
            if tariff_form is None:
                tariff_form = _tariff_form_of(tariff_edit.current(v.conn, fence_id)[1])
        else:
            last = places.route_points(v.conn, v.window, limit=1)
            centre = (
                (lat, lng)
                if lat is not None and lng is not None
                else (tuple(last[0]) if last else (52.52, 13.405))
            )
            fence = {
                "id": None,
                "name": "",
                "latitude": centre[0],
                "longitude": centre[1],
                "radius_m": 50,
                "billing_type": "per_kwh",
                "cost_per_unit": None,
                "session_fee": None,
            }
        others = [f for f in places.geofences(v.conn) if f["id"] != fence["id"]]
        editor_map = {"traces": [], "circles": [_circle(f) for f in others], "edit": True}
        return v.render(
            "geofence_edit.html",
            fence=fence,
            editor_map=editor_map,
            error=error,
            tariff=tariff_form,
            tariff_saved=tariff_saved,
            tariff_problems=tariff_problems or [],
            tariff_preview=tariff_preview,
            default_tz=str(v.web.settings.tz or "UTC"),
        )


def _tariff_form_of(tariff: Tariff | None) -> dict[str, Any]:
    """The editor's fields for a stored tariff (or an empty one)."""
    if tariff is None:
        return {"exists": False, "currency": "EUR", "time_zone": "", "default_price": "",
                "windows": []}  # fmt: skip
    return {
        "exists": True,
        "currency": tariff.currency,
        "time_zone": tariff.time_zone or "",
        "default_price": "" if tariff.default_price is None else format_price(tariff.default_price),
        "windows": [tariff_edit.window_fields(w) for w in tariff.windows],
    }


def _spec(
    name: str,
    latitude: str,
    longitude: str,
    radius: str,
    billing_type: str,
    cost_per_unit: str,
    session_fee: str,
) -> fences.GeofenceSpec:
    try:
        lat, lng, rad = float(latitude), float(longitude), int(float(radius))
    except ValueError:
        raise fences.GeofenceError("latitude, longitude and radius must be numbers") from None
    if billing_type not in ("per_kwh", "per_minute"):
        raise fences.GeofenceError("billing type must be per_kwh or per_minute")
    return fences.GeofenceSpec(
        name=name,
        latitude=lat,
        longitude=lng,
        radius=rad,
        billing_type=billing_type,  # type: ignore[arg-type]
        cost_per_unit=changes.decimal_or_none(cost_per_unit),
        session_fee=changes.decimal_or_none(session_fee),
    )


@router.post("/geofences")
@router.post("/geofences/{fence_id}")
def geofence_form(
    request: Request,
    csrf: Annotated[str, Form()],
    name: Annotated[str, Form()],
    latitude: Annotated[str, Form()],
    longitude: Annotated[str, Form()],
    radius: Annotated[str, Form()],
    billing_type: Annotated[str, Form()] = "per_kwh",
    cost_per_unit: Annotated[str, Form()] = "",
    session_fee: Annotated[str, Form()] = "",
    fence_id: int | None = None,
) -> RedirectResponse:
    _check_csrf(request, csrf)
    try:
        spec = _spec(name, latitude, longitude, radius, billing_type, cost_per_unit, session_fee)
        with web_of(request).engine.begin() as conn:
            if fence_id is None:
                fences.create_geofence(conn, spec)
            else:
                fences.update_geofence(conn, fence_id, spec)
    except (fences.GeofenceError, changes.ChangeError) as exc:
        path = "/geofences/new" if fence_id is None else f"/geofences/{fence_id}/edit"
        return _back(request, path, error=str(exc))
    return _back(request, "/geofences")


@router.post("/geofences/{fence_id}/delete")
def geofence_delete_form(
    request: Request, fence_id: int, csrf: Annotated[str, Form()]
) -> RedirectResponse:
    _check_csrf(request, csrf)
    try:
        with web_of(request).engine.begin() as conn:
            fences.delete_geofence(conn, fence_id)
    except fences.GeofenceError as exc:
        raise HTTPException(404, str(exc)) from None
    return _back(request, "/geofences")


@router.post("/geofences/{fence_id}/tariff", response_model=None)
async def tariff_form(request: Request, fence_id: int) -> HTMLResponse | RedirectResponse:
    """Preview (dry run) or save the tariff typed into the editor."""
    form = await request.form()
    _check_csrf(request, str(form.get("csrf", "")))
    action = str(form.get("action", "preview"))
    columns = ("w_days", "w_start", "w_end", "w_price", "w_season_from", "w_season_to")
    values = [[str(x) for x in form.getlist(c)] for c in columns]
    rows = max((len(v) for v in values), default=0)
    cell = [v + [""] * (rows - len(v)) for v in values]
    windows = [
        tariff_edit.WindowFields(*(cell[c][r] for c in range(len(columns)))) for r in range(rows)
    ]
    windows = [w for w in windows if not w.blank]
    currency = str(form.get("currency", ""))
    zone = str(form.get("time_zone", ""))
    default_price = str(form.get("default_price", ""))
    entered = {
        "exists": form.get("exists") == "1",
        "currency": currency,
        "time_zone": zone,
        "default_price": default_price,
        "windows": windows,
    }
    web = web_of(request)
    tz = str(web.settings.tz or "UTC")
    try:
        tariff = tariff_edit.build_tariff(currency, zone, default_price, windows)
        if action == "save":
            outcome = await run_in_threadpool(
                tariff_edit.apply, web.engine, fence_id, tariff, default_tz=tz
            )
            return _back(
                request, f"/geofences/{fence_id}/edit", tariff_saved=str(len(outcome.changes))
            )
        outcome = await run_in_threadpool(
            tariff_edit.preview, web.engine, fence_id, tariff, default_tz=tz
        )
    except tariff_edit.TariffInputError as exc:
        problems = exc.problems
        return await run_in_threadpool(
            lambda: _fence_editor(request, fence_id, tariff_form=entered, tariff_problems=problems)
        )
    except tariff_edit.NoGeofence as exc:
        raise HTTPException(404, str(exc)) from None
    return await run_in_threadpool(
        lambda: _fence_editor(
            request, fence_id, tariff_form=entered, tariff_preview=outcome.as_dict()
        )
    )


@router.post("/geofences/{fence_id}/tariff/clear", response_model=None)
def tariff_clear_form(
    request: Request,
    fence_id: int,
    csrf: Annotated[str, Form()],
    action: Annotated[str, Form()] = "preview",
) -> HTMLResponse | RedirectResponse:
    """Preview clearing the tariff, or clear it (flat billing again) and reprice."""
    _check_csrf(request, csrf)
    web = web_of(request)
    tz = str(web.settings.tz or "UTC")
    try:
        if action == "clear":
            outcome = tariff_edit.apply(web.engine, fence_id, None, default_tz=tz)
            return _back(
                request, f"/geofences/{fence_id}/edit", tariff_saved=str(len(outcome.changes))
            )
        outcome = tariff_edit.preview(web.engine, fence_id, None, default_tz=tz)
    except tariff_edit.NoGeofence as exc:
        raise HTTPException(404, str(exc)) from None
    preview = outcome.as_dict() | {"clearing": True}
    return _fence_editor(request, fence_id, tariff_preview=preview)


# --- Tesla account ---------------------------------------------------------------------


@router.get("/settings/tesla", response_class=HTMLResponse)
def tesla_page(
    request: Request,
    signed_in: str | None = None,
    signed_out: str | None = None,
) -> HTMLResponse:
    return _tesla_page(request, notice=_TESLA_NOTICES.get(signed_in or signed_out or ""))


_TESLA_NOTICES = {"1": "Signed in; the tokens are stored encrypted.", "0": "Signed out."}


def _tesla_page(
    request: Request, *, notice: str | None = None, error: str | None = None, done: Any = None
) -> HTMLResponse:
    web = web_of(request)
    with view(request, "all") as v:
        state = tesla_account.account_state(web.settings, web.engine, web.live)
        return v.render("tesla.html", account=state, notice=notice, error=error, done=done)


@router.post("/settings/tesla/sign-in", response_model=None)
def tesla_sign_in_form(
    request: Request,
    csrf: Annotated[str, Form()],
    access_token: Annotated[str, Form()] = "",
    refresh_token: Annotated[str, Form()] = "",
) -> HTMLResponse | RedirectResponse:
    """Store and check a pasted token pair, or (``TOKEN`` set) the provider sign-in."""
    _check_csrf(request, csrf)
    web = web_of(request)
    try:
        done = tesla_account.sign_in(web.settings, web.engine, access_token, refresh_token)
    except tesla_account.SignInError as exc:
        return _tesla_page(request, error=str(exc))  # the tokens are not put back in the form
    return _tesla_page(request, notice=_TESLA_NOTICES["1"], done=done)


@router.post("/settings/tesla/sign-out")
def tesla_sign_out_form(
    request: Request, csrf: Annotated[str, Form()], confirm: Annotated[str, Form()] = ""
) -> RedirectResponse:
    _check_csrf(request, csrf)
    if confirm != "yes":
        return _back(request, "/settings/tesla")
    tesla_account.sign_out(web_of(request).engine)
    return _back(request, "/settings/tesla", signed_out="0")


# --- sign-in ---------------------------------------------------------------------------


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str = "/", failed: str | None = None) -> HTMLResponse:
    web = web_of(request)
    context = template_context(
        request,
        next=next,
        failed=failed,
        nav=(),
        cars=[],
        token_only=web.access.token is not None,
        **template_helpers(Prefs(tz=web.tz)),
    )
    return web.templates.TemplateResponse(request, "sign_in.html", context)


@router.post("/sign-in")
def sign_in_form(
    request: Request,
    csrf: Annotated[str, Form()],
    password: Annotated[str, Form()],
    user: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> RedirectResponse:
    _check_csrf(request, csrf)
    web = web_of(request)
    # Only local paths: a crafted link must not bounce a signed-in user to another site.
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    if not web.access.check_password(user, password):
        return _back(request, "/sign-in", failed="1", next=target)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE, web.signer.session(), **cookie_options(request.url.scheme == "https")
    )
    return response


@router.post("/sign-out")
def sign_out_form(request: Request, csrf: Annotated[str, Form()]) -> RedirectResponse:
    _check_csrf(request, csrf)
    response = _back(request, "/sign-in")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/api", response_class=HTMLResponse)
def api_index(request: Request) -> HTMLResponse:
    """A readable list of the JSON API, from the OpenAPI document (no external assets)."""
    web = web_of(request)
    schema = request.app.openapi()
    context = template_context(
        request, schema=schema, nav=NAV, cars=[], **template_helpers(Prefs(tz=web.tz))
    )
    return web.templates.TemplateResponse(request, "api.html", context)
