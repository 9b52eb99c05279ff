"""What every handler shares: the app's state (:class:`Web`) and the template basics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import Request
from fastapi.templating import Jinja2Templates

from fleetlog.config import Settings
from fleetlog.web.live import LiveCars
from fleetlog.web.security import Access, Signer


@dataclass(frozen=True, slots=True)
class Web:
    """Everything a handler needs, kept on ``app.state.web``."""

    settings: Settings
    engine: sa.Engine
    live: LiveCars | None
    access: Access
    signer: Signer
    templates: Jinja2Templates
    tz: ZoneInfo
    tile_url: str


def web_of(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


def template_context(request: Request, **extra: Any) -> dict[str, Any]:
    """What every template gets besides its page's data."""
    web = web_of(request)
    return {
        "request": request,
        "base": request.scope.get("root_path", "").rstrip("/"),
        "csrf": web.signer.csrf_token(request.state.csrf_cookie),
        "auth_on": web.access.required,
        "tile_url": web.tile_url,
        **extra,
    }
