"""The web app: live cars, drives, charges, battery, efficiency, costs, timeline, maps.

Public API::

    app = create_app(settings, engine, live=board)   # FastAPI; serve with uvicorn
    board = LiveBoard()                              # in-memory LiveCars for the runtime

See :mod:`fleetlog.web.live` for what a runtime provides and ``docs/web.md`` for the pages.
"""

from fleetlog.web.app import create_app
from fleetlog.web.live import LiveBoard, LiveCars, Outcome
from fleetlog.web.security import ExposureError

__all__ = ["ExposureError", "LiveBoard", "LiveCars", "Outcome", "create_app"]
