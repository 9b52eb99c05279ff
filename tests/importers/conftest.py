"""The import/export fixtures of tests/export/conftest.py, shared here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "export_conftest", Path(__file__).parents[1] / "export" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)

logbook = _shared.logbook
second_db_url = _shared.second_db_url
