"""The database schema as fleetlog's code sees it today (SQLAlchemy Core).

Import tables from here, never from :mod:`fleetlog.store.baseline`: the baseline is what
revision 0001 created and stays frozen, while this module follows the latest revision. Today
the two are the same; a later revision that adds a table defines it here (and creates it in its
own migration file).

TeslaMate's tokens table lives in the `private` schema on PostgreSQL; on SQLite the engine
translates that schema away, so `tokens` is a plain table there. Use engines made by
:func:`fleetlog.store.engine.make_engine` for that to work.
"""

from __future__ import annotations

import sqlalchemy as sa

from fleetlog.store.baseline import FLEETLOG_TABLES, TESLAMATE_TABLES, define_baseline
from fleetlog.store.engine import PRIVATE_SCHEMA

metadata = sa.MetaData()
define_baseline(metadata)

# TeslaMate's tables (never add columns to these).
cars = metadata.tables["cars"]
car_settings = metadata.tables["car_settings"]
settings = metadata.tables["settings"]
positions = metadata.tables["positions"]
drives = metadata.tables["drives"]
charging_processes = metadata.tables["charging_processes"]
charges = metadata.tables["charges"]
states = metadata.tables["states"]
updates = metadata.tables["updates"]
addresses = metadata.tables["addresses"]
geofences = metadata.tables["geofences"]
tokens = metadata.tables[f"{PRIVATE_SCHEMA}.tokens"]
import_runs = metadata.tables["import_runs"]
import_file_checkpoints = metadata.tables["import_file_checkpoints"]
import_rejections = metadata.tables["import_rejections"]

# fleetlog's own tables.
fleetlog_meta = metadata.tables["fleetlog_meta"]

#: Names (without schema) of the TeslaMate tables, in creation order.
TESLAMATE_TABLE_NAMES: tuple[str, ...] = TESLAMATE_TABLES
#: Names of fleetlog's own tables.
FLEETLOG_TABLE_NAMES: tuple[str, ...] = FLEETLOG_TABLES


def table_by_name(name: str) -> sa.Table:
    """Look a table up by its bare name (`tokens` included, whatever its schema)."""
    if name == "tokens":
        return tokens
    return metadata.tables[name]
