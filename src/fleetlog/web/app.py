"""The app factory: routes, templates, static files, sign-in and CSRF around them.

``create_app(settings, engine, live=...)`` is all a runtime needs. Handlers are plain ``def``
functions: FastAPI runs them in its thread pool, which suits SQLAlchemy's synchronous engine;
only the event stream (SSE) is async.
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from fleetlog import __version__
from fleetlog.config import Settings
from fleetlog.web import api, pages
from fleetlog.web.context import Web, web_of
from fleetlog.web.live import LiveCars
from fleetlog.web.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Access,
    Signer,
    check_exposure,
    cookie_options,
    new_csrf_cookie,
)

_HERE = Path(str(resources.files("fleetlog.web")))


# Served from the installed plotly package: the same file the Python library embeds, so no
# CDN and no copy of third-party JavaScript in this repository.
def _plotly_js() -> Path:
    spec = importlib.util.find_spec("plotly")  # found, not imported: plotly's Python is heavy
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is missing; reinstall fleetlog")
    return Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"


PLOTLY_JS = _plotly_js()

# Reachable without signing in: the sign-in page itself and what it needs to render.
_PUBLIC_PREFIXES = ("/static/", "/sign-in", "/favicon.ico")


class _Guard(BaseHTTPMiddleware):
    """Sign-in (when configured) and the per-browser CSRF cookie."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        web = web_of(request)
        path = request.url.path[len(request.scope.get("root_path", "")) :] or request.url.path
        csrf_cookie = request.cookies.get(CSRF_COOKIE)
        fresh_cookie = None
        if not csrf_cookie:
            fresh_cookie = csrf_cookie = new_csrf_cookie()
        request.state.csrf_cookie = csrf_cookie
        if web.access.required and not path.startswith(_PUBLIC_PREFIXES):
            signed_in = web.signer.session_valid(request.cookies.get(SESSION_COOKIE))
            if not signed_in and not web.access.check_header(request.headers.get("authorization")):
                if path.startswith("/api"):
                    return JSONResponse(
                        {"error": "authentication required"},
                        status_code=401,
                        headers={"WWW-Authenticate": 'Basic realm="fleetlog"'},
                    )
                base = request.scope.get("root_path", "")
                target = quote(path + (f"?{request.url.query}" if request.url.query else ""))
                return RedirectResponse(f"{base}/sign-in?next={target}", status_code=303)
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if fresh_cookie:
            response.set_cookie(
                CSRF_COOKIE, fresh_cookie, **cookie_options(request.url.scheme == "https")
            )
        return response


def create_app(
    settings: Settings,
    engine: sa.Engine,
    live: LiveCars | None = None,
    *,
    check_binding: bool = True,
) -> FastAPI:
    """The web app on `engine`; `live` is the runtime's side (see :mod:`fleetlog.web.live`).

    Raises :class:`fleetlog.web.security.ExposureError` when the binding address would expose
    the app without authentication.
    """
    access = Access.from_setting(
        settings.web_auth, allow_anonymous=bool(settings.web_allow_unauthenticated)
    )
    if check_binding:
        check_exposure(str(settings.http_binding_address), access)
    key = settings.web_secret_key
    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    templates.env.globals["version"] = __version__
    app = FastAPI(
        title="fleetlog",
        version=__version__,
        description=(
            "The JSON API behind fleetlog's web app. Values are in TeslaMate's canonical units "
            "(km, km/h, kWh, °C, bar, %); times are UTC (ISO 8601). Every list takes `car`, "
            "`from` and `to` (local days, YYYY-MM-DD; `from` empty: since the beginning). "
            "With FLEETLOG_WEB_AUTH set, send `Authorization: Basic` or `Bearer`."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.web = Web(
        settings=settings,
        engine=engine,
        live=live,
        access=access,
        signer=Signer(key.encode() if key else None),
        templates=templates,
        tz=ZoneInfo(str(settings.tz or "UTC")),
        tile_url=str(settings.web_tile_url or ""),
    )
    app.add_middleware(_Guard)
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")

    @app.get("/static-vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(
            PLOTLY_JS,
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=604800"},
        )

    app.include_router(api.router)
    app.include_router(pages.router)
    return app
