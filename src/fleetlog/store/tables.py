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

# Places and costs (revision 0003_places_costs): time-of-use tariffs per geofence and
# manual charge costs, kept beside TeslaMate's `geofences` and `charging_processes`.
_OWN_ID = sa.Integer()
_OWN_TS = sa.DateTime()

tariffs = sa.Table(
    "fleetlog_tariffs",
    metadata,
    sa.Column("id", _OWN_ID, primary_key=True, autoincrement=True),
    sa.Column(
        "geofence_id",
        sa.Integer,
        sa.ForeignKey("geofences.id", ondelete="CASCADE", name="fleetlog_tariffs_geofence_id_fkey"),
        nullable=False,
    ),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("time_zone", sa.String(64)),  # NULL: the TZ setting
    sa.Column("default_price", sa.Numeric(9, 4)),  # outside every window; NULL: cost_per_unit
    sa.Column("inserted_at", _OWN_TS, nullable=False),
    sa.Column("updated_at", _OWN_TS, nullable=False),
    sa.UniqueConstraint("geofence_id", name="fleetlog_tariffs_geofence_id_key"),
)

tariff_windows = sa.Table(
    "fleetlog_tariff_windows",
    metadata,
    sa.Column("id", _OWN_ID, primary_key=True, autoincrement=True),
    sa.Column(
        "tariff_id",
        sa.Integer,
        sa.ForeignKey(
            "fleetlog_tariffs.id",
            ondelete="CASCADE",
            name="fleetlog_tariff_windows_tariff_id_fkey",
        ),
        nullable=False,
    ),
    sa.Column("position", sa.SmallInteger, nullable=False),  # first matching window wins
    sa.Column("weekdays", sa.SmallInteger, nullable=False),  # bit 0 = Monday … bit 6 = Sunday
    sa.Column("start_minute", sa.SmallInteger, nullable=False),  # local minutes after midnight
    sa.Column("end_minute", sa.SmallInteger, nullable=False),  # <= start: runs past midnight
    sa.Column("season_start", sa.SmallInteger),  # MMDD, e.g. 601; NULL: all year
    sa.Column("season_end", sa.SmallInteger),  # MMDD, inclusive
    sa.Column("price", sa.Numeric(9, 4), nullable=False),
    sa.UniqueConstraint("tariff_id", "position", name="fleetlog_tariff_windows_position_key"),
)

charge_cost_overrides = sa.Table(
    "fleetlog_charge_cost_overrides",
    metadata,
    sa.Column(
        "charging_process_id",
        sa.Integer,
        sa.ForeignKey(
            "charging_processes.id",
            ondelete="CASCADE",
            name="fleetlog_charge_cost_overrides_charging_process_id_fkey",
        ),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("amount", sa.Numeric(14, 4), nullable=False),
    sa.Column("inserted_at", _OWN_TS, nullable=False),
    sa.Column("updated_at", _OWN_TS, nullable=False),
    sa.CheckConstraint(
        "kind IN ('absolute', 'per_kwh', 'per_minute')",
        name="fleetlog_charge_cost_overrides_kind_check",
    ),
)

# Telemetry alerts and errors (revision 0004_telemetry_notices): what Fleet Telemetry's
# `alerts` and `errors` records report, one row per (car, kind, name, time).
telemetry_notices = sa.Table(
    "fleetlog_telemetry_notices",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("vin", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("at", _OWN_TS, nullable=False),  # UTC: an alert's start, an error's creation
    sa.Column("ended_at", _OWN_TS),  # alerts: NULL while active
    sa.Column("audiences", sa.String(255), nullable=False),  # comma-separated
    sa.Column("tags", sa.Text(), nullable=False),  # JSON object
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("source", sa.String(255), nullable=False),  # the feed, without credentials
    sa.Column("inserted_at", _OWN_TS, nullable=False),
    sa.CheckConstraint("kind IN ('alert', 'error')", name="fleetlog_telemetry_notices_kind_check"),
    sa.UniqueConstraint("vin", "kind", "name", "at", name="fleetlog_telemetry_notices_key"),
)

# Drive summaries (revision 0005_drive_summaries): a cache of what the analysis pages read
# from a closed drive's first and last position. A row is valid while its position ids equal
# the drive's; see :mod:`fleetlog.logbook.summaries`.
drive_summaries = sa.Table(
    "fleetlog_drive_summaries",
    metadata,
    sa.Column(
        "drive_id",
        sa.Integer,
        sa.ForeignKey(
            "drives.id", ondelete="CASCADE", name="fleetlog_drive_summaries_drive_id_fkey"
        ),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("start_position_id", sa.Integer),
    sa.Column("end_position_id", sa.Integer),
    sa.Column("start_battery_level", sa.SmallInteger),
    sa.Column("end_battery_level", sa.SmallInteger),
    sa.Column("start_latitude", sa.Numeric(8, 6)),
    sa.Column("start_longitude", sa.Numeric(9, 6)),
    sa.Column("end_latitude", sa.Numeric(8, 6)),
    sa.Column("end_longitude", sa.Numeric(9, 6)),
)

#: Names (without schema) of the TeslaMate tables, in creation order.
TESLAMATE_TABLE_NAMES: tuple[str, ...] = TESLAMATE_TABLES
#: Names of fleetlog's own tables.
FLEETLOG_TABLE_NAMES: tuple[str, ...] = FLEETLOG_TABLES


def table_by_name(name: str) -> sa.Table:
    """Look a table up by its bare name (`tokens` included, whatever its schema)."""
    if name == "tokens":
        return tokens
    return metadata.tables[name]
