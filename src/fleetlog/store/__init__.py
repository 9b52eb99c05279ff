"""fleetlog.store: the database (SQLite or PostgreSQL) behind fleetlog.

Public API::

    engine = make_engine(url)          # SQLite (WAL) or PostgreSQL (psycopg 3), configured
    report = upgrade(engine)           # to head; a TeslaMate DB needs adopt_teslamate=True
    status = database_status(engine)   # revision, ownership, row counts

Tables (SQLAlchemy Core) are in :mod:`fleetlog.store.tables`; errors in
:mod:`fleetlog.store.errors`.
"""

from fleetlog.store.engine import make_engine, masked_url, normalise_url
from fleetlog.store.errors import (
    MigrationError,
    SchemaConflictError,
    StoreError,
    TeslaMateDatabaseError,
    UnsupportedDatabaseError,
)
from fleetlog.store.migrate import (
    MigrationReport,
    current_revision,
    detect_teslamate,
    downgrade,
    head_revision,
    upgrade,
)
from fleetlog.store.status import DatabaseStatus, database_status

__all__ = [
    "DatabaseStatus",
    "MigrationError",
    "MigrationReport",
    "SchemaConflictError",
    "StoreError",
    "TeslaMateDatabaseError",
    "UnsupportedDatabaseError",
    "current_revision",
    "database_status",
    "detect_teslamate",
    "downgrade",
    "head_revision",
    "make_engine",
    "masked_url",
    "normalise_url",
    "upgrade",
]
