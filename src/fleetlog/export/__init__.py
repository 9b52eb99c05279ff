"""fleetlog.export: history out of the database.

* :func:`fleetlog.export.gpx.gpx_for_drive` — one drive as a GPX 1.1 track (web and CLI);
* :mod:`fleetlog.export.logbook_csv` — drives and charges as CSV (a mileage / tax log);
* :mod:`fleetlog.export.full_json` — every logbook table as JSON Lines, importable again
  with ``fleetlog import json``.
"""

from fleetlog.export.gpx import DriveNotFound, gpx_for_drive

__all__ = ["DriveNotFound", "gpx_for_drive"]
