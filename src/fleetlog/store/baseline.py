"""The schema as revision 0001 creates it — frozen.

This module is the single written-out definition of TeslaMate's tables (exactly as in
`reference/teslamate-schema.md` §3–§5: names, column order, types, NOT NULL, defaults, index,
constraint and sequence names) plus fleetlog's first own table, `fleetlog_meta`.

Rules, because migrations must keep producing the same database forever:

* Never edit a table here once released. A later change is a new Alembic revision *and* a change
  in :mod:`fleetlog.store.tables` (which starts from this baseline and may replace tables).
* Never add columns to TeslaMate's tables: fleetlog's additions go in their own tables
  (dashboards do `SELECT tbl.*` and break on ambiguous extra columns).

Portability: on PostgreSQL the types are TeslaMate's exactly. On SQLite the same definitions
degrade gracefully: every id becomes `INTEGER PRIMARY KEY` (SQLite's rowid, the only
auto-incrementing type there), enums become VARCHAR with a CHECK, `jsonb`/`varchar[]` become
JSON text, numerics are stored with NUMERIC affinity, BRIN indexes become btree, and the
`private` schema is translated away by the engine.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement

from fleetlog.store.engine import PRIVATE_SCHEMA

#: TeslaMate tables, in the order their creation does not violate foreign keys.
TESLAMATE_TABLES: tuple[str, ...] = (
    "car_settings",
    "cars",
    "settings",
    "addresses",
    "geofences",
    "drives",
    "positions",
    "charging_processes",
    "charges",
    "states",
    "updates",
    "tokens",
    "import_runs",
    "import_file_checkpoints",
    "import_rejections",
)

#: fleetlog's own tables created by revision 0001.
FLEETLOG_TABLES: tuple[str, ...] = ("fleetlog_meta",)

# Event timestamps keep microseconds; the Ecto `timestamps()` columns are whole seconds.
_TS = sa.DateTime()
_TS0 = sa.DateTime().with_variant(postgresql.TIMESTAMP(precision=0), "postgresql")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_VARCHAR_ARRAY = sa.JSON().with_variant(postgresql.ARRAY(sa.String(255)), "postgresql")
# SQLite only auto-increments a column typed exactly INTEGER PRIMARY KEY.
_SMALL_ID = sa.SmallInteger().with_variant(sa.Integer(), "sqlite")
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_FALSE = sa.text("false")
_TRUE = sa.text("true")


class _EmptyArray(ColumnElement[object]):
    """Server default for an empty `varchar(255)[]` (PostgreSQL) or JSON list (SQLite)."""

    inherit_cache = True


@compiles(_EmptyArray)
def _empty_array_default(_element: _EmptyArray, _compiler: SQLCompiler, **_kw: object) -> str:
    return "'[]'"


@compiles(_EmptyArray, "postgresql")
def _empty_array_pg(_element: _EmptyArray, _compiler: SQLCompiler, **_kw: object) -> str:
    return "ARRAY[]::varchar[]"


def _enum(name: str, *labels: str) -> sa.Enum:
    # create_constraint: SQLite has no enum type, so at least keep the values honest there.
    return sa.Enum(*labels, name=name, create_constraint=True)


def _id(
    table: str, type_: sa.types.TypeEngine[int], *, sequence: str | None = None
) -> sa.Column[int]:
    """The `id` column with TeslaMate's (bigserial-style) sequence name."""
    schema = PRIVATE_SCHEMA if table == "tokens" else None
    seq = sa.Sequence(sequence or f"{table}_id_seq", data_type=sa.BigInteger(), schema=schema)
    return sa.Column("id", type_, seq, primary_key=True, nullable=False)


def _serial_default(table: sa.Table) -> None:
    """Make the id behave like Ecto's `bigserial`: nextval default, sequence owned by the column.

    SQLAlchemy would otherwise only call the sequence from its own INSERTs; raw SQL (psql,
    TeslaMate itself, importers) relies on the column default.
    """
    seq = table.c.id.default
    assert isinstance(seq, sa.Sequence)
    qtable = f"{table.schema}.{table.name}" if table.schema else table.name
    qseq = f"{seq.schema}.{seq.name}" if seq.schema else seq.name
    ddl = sa.DDL(  # type: ignore[no-untyped-call]
        f"ALTER TABLE {qtable} ALTER COLUMN id SET DEFAULT nextval('{qseq}'::regclass);"
        f" ALTER SEQUENCE {qseq} OWNED BY {qtable}.id"
    )
    sa.event.listen(table, "after_create", ddl.execute_if(dialect="postgresql"))


def _fk(
    col: str, target: str, ondelete: str | None, table: str, *, use_alter: bool = False
) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [col], [f"{target}.id"], name=f"{table}_{col}_fkey", ondelete=ondelete, use_alter=use_alter
    )


def _brin(name: str, *columns: str) -> sa.Index:
    """TeslaMate's BRIN index on `date` (minmax-multi); SQLite has no BRIN and gets a btree."""
    return sa.Index(
        name,
        *columns,
        postgresql_using="brin",
        postgresql_ops={"date": "timestamp_minmax_multi_ops"},
        postgresql_with={"autosummarize": "true", "pages_per_range": "64"},
    )


def define_baseline(metadata: sa.MetaData) -> None:
    """Add the revision-0001 tables (TeslaMate's and fleetlog_meta) to `metadata`."""
    m = metadata

    sa.Table(
        "car_settings",
        m,
        _id("car_settings", _BIG_ID),
        sa.Column("suspend_min", sa.Integer, nullable=False, server_default=sa.text("21")),
        sa.Column(
            "suspend_after_idle_min", sa.Integer, nullable=False, server_default=sa.text("15")
        ),
        sa.Column("req_not_unlocked", sa.Boolean, nullable=False, server_default=_FALSE),
        sa.Column("free_supercharging", sa.Boolean, nullable=False, server_default=_FALSE),
        sa.Column("use_streaming_api", sa.Boolean, nullable=False, server_default=_TRUE),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=_TRUE),
        sa.Column("lfp_battery", sa.Boolean, nullable=False, server_default=_FALSE),
        sa.PrimaryKeyConstraint("id", name="car_settings_pkey"),
    )

    sa.Table(
        "cars",
        m,
        _id("cars", _SMALL_ID),
        sa.Column("eid", sa.BigInteger, nullable=False),
        sa.Column("vid", sa.BigInteger, nullable=False),
        sa.Column("model", sa.String(255)),
        sa.Column("efficiency", sa.Double),
        sa.Column("inserted_at", _TS0, nullable=False),
        sa.Column("updated_at", _TS0, nullable=False),
        sa.Column("vin", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("trim_badging", sa.Text),
        sa.Column("settings_id", sa.BigInteger, nullable=False),
        sa.Column("exterior_color", sa.Text),
        sa.Column("spoiler_type", sa.Text),
        sa.Column("wheel_type", sa.Text),
        sa.Column("display_priority", sa.SmallInteger, nullable=False, server_default=sa.text("1")),
        sa.Column("marketing_name", sa.String(255)),
        sa.PrimaryKeyConstraint("id", name="cars_pkey"),
        _fk("settings_id", "car_settings", "CASCADE", "cars"),
        sa.Index("cars_eid_index", "eid", unique=True),
        sa.Index("cars_vid_index", "vid", unique=True),
        sa.Index("cars_vin_index", "vin", unique=True),
        sa.Index("cars_settings_id_index", "settings_id", unique=True),
    )

    sa.Table(
        "settings",
        m,
        _id("settings", _BIG_ID),
        sa.Column("inserted_at", _TS0, nullable=False),
        sa.Column("updated_at", _TS0, nullable=False),
        sa.Column(
            "unit_of_length",
            _enum("unit_of_length", "km", "mi"),
            nullable=False,
            server_default="km",
        ),
        sa.Column(
            "unit_of_temperature",
            _enum("unit_of_temperature", "C", "F"),
            nullable=False,
            server_default="C",
        ),
        sa.Column(
            "preferred_range",
            _enum("range", "ideal", "rated"),
            nullable=False,
            server_default="rated",
        ),
        sa.Column("base_url", sa.String(255)),
        sa.Column("grafana_url", sa.String(255)),
        sa.Column("language", sa.Text, nullable=False, server_default="en"),
        sa.Column(
            "unit_of_pressure",
            _enum("unit_of_pressure", "bar", "psi"),
            nullable=False,
            server_default="bar",
        ),
        sa.Column("theme_mode", sa.Text, nullable=False, server_default="system"),
        sa.PrimaryKeyConstraint("id", name="settings_pkey"),
    )

    sa.Table(
        "addresses",
        m,
        _id("addresses", sa.Integer()),
        sa.Column("display_name", sa.String(512)),
        sa.Column("latitude", sa.Numeric(8, 6)),
        sa.Column("longitude", sa.Numeric(9, 6)),
        *(
            sa.Column(name, sa.String(255))
            for name in (
                "name",
                "house_number",
                "road",
                "neighbourhood",
                "city",
                "county",
                "postcode",
                "state",
                "state_district",
                "country",
            )
        ),
        sa.Column("raw", _JSON),
        sa.Column("inserted_at", _TS0, nullable=False),
        sa.Column("updated_at", _TS0, nullable=False),
        sa.Column("osm_id", sa.BigInteger),
        sa.Column("osm_type", sa.Text),
        sa.PrimaryKeyConstraint("id", name="addresses_pkey"),
        sa.Index("addresses_osm_id_osm_type_index", "osm_id", "osm_type", unique=True),
    )

    sa.Table(
        "geofences",
        m,
        _id("geofences", sa.Integer()),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("latitude", sa.Numeric(8, 6), nullable=False),
        sa.Column("longitude", sa.Numeric(9, 6), nullable=False),
        sa.Column("radius", sa.SmallInteger, nullable=False, server_default=sa.text("25")),
        sa.Column("inserted_at", _TS0, nullable=False),
        sa.Column("updated_at", _TS0, nullable=False),
        sa.Column("cost_per_unit", sa.Numeric(9, 4)),
        sa.Column("session_fee", sa.Numeric(14, 2)),
        sa.Column(
            "billing_type",
            _enum("billing_type", "per_kwh", "per_minute"),
            nullable=False,
            server_default="per_kwh",
        ),
        sa.PrimaryKeyConstraint("id", name="geofences_pkey"),
    )

    # Created as `trips` in 2019; the rename kept the old pkey, sequence and three index names.
    sa.Table(
        "drives",
        m,
        _id("drives", sa.Integer(), sequence="trips_id_seq"),
        sa.Column("start_date", _TS, nullable=False),
        sa.Column("end_date", _TS),
        sa.Column("outside_temp_avg", sa.Numeric(4, 1)),
        sa.Column("speed_max", sa.SmallInteger),
        sa.Column("power_max", sa.SmallInteger),
        sa.Column("power_min", sa.SmallInteger),
        sa.Column("start_ideal_range_km", sa.Numeric(6, 2)),
        sa.Column("end_ideal_range_km", sa.Numeric(6, 2)),
        sa.Column("start_km", sa.Double),
        sa.Column("end_km", sa.Double),
        sa.Column("distance", sa.Double),
        sa.Column("duration_min", sa.SmallInteger),
        sa.Column("car_id", sa.SmallInteger, nullable=False),
        sa.Column("inside_temp_avg", sa.Numeric(4, 1)),
        sa.Column("start_address_id", sa.Integer),
        sa.Column("end_address_id", sa.Integer),
        sa.Column("start_rated_range_km", sa.Numeric(6, 2)),
        sa.Column("end_rated_range_km", sa.Numeric(6, 2)),
        sa.Column("start_position_id", sa.Integer),
        sa.Column("end_position_id", sa.Integer),
        sa.Column("start_geofence_id", sa.Integer),
        sa.Column("end_geofence_id", sa.Integer),
        sa.Column("ascent", sa.SmallInteger),
        sa.Column("descent", sa.SmallInteger),
        sa.PrimaryKeyConstraint("id", name="trips_pkey"),
        _fk("car_id", "cars", "CASCADE", "drives"),
        _fk("start_address_id", "addresses", "SET NULL", "drives"),
        _fk("end_address_id", "addresses", "SET NULL", "drives"),
        _fk("start_position_id", "positions", "SET NULL", "drives"),
        _fk("end_position_id", "positions", "SET NULL", "drives"),
        _fk("start_geofence_id", "geofences", "SET NULL", "drives"),
        _fk("end_geofence_id", "geofences", "SET NULL", "drives"),
        sa.Index("trips_car_id_index", "car_id"),
        sa.Index("trips_start_address_id_index", "start_address_id"),
        sa.Index("trips_end_address_id_index", "end_address_id"),
        sa.Index("drives_start_position_id_index", "start_position_id"),
        sa.Index("drives_end_position_id_index", "end_position_id"),
        sa.Index("drives_start_geofence_id_index", "start_geofence_id"),
        sa.Index("drives_end_geofence_id_index", "end_geofence_id"),
    )

    positions = sa.Table(
        "positions",
        m,
        _id("positions", sa.Integer()),
        sa.Column("date", _TS, nullable=False),
        sa.Column("latitude", sa.Numeric(8, 6), nullable=False),
        sa.Column("longitude", sa.Numeric(9, 6), nullable=False),
        sa.Column("speed", sa.SmallInteger),
        sa.Column("power", sa.SmallInteger),
        sa.Column("odometer", sa.Double),
        sa.Column("ideal_battery_range_km", sa.Numeric(6, 2)),
        sa.Column("battery_level", sa.SmallInteger),
        sa.Column("outside_temp", sa.Numeric(4, 1)),
        sa.Column("elevation", sa.SmallInteger),
        sa.Column("fan_status", sa.Integer),
        sa.Column("driver_temp_setting", sa.Numeric(4, 1)),
        sa.Column("passenger_temp_setting", sa.Numeric(4, 1)),
        sa.Column("is_climate_on", sa.Boolean),
        sa.Column("is_rear_defroster_on", sa.Boolean),
        sa.Column("is_front_defroster_on", sa.Boolean),
        sa.Column("car_id", sa.SmallInteger, nullable=False),
        sa.Column("drive_id", sa.Integer),
        sa.Column("inside_temp", sa.Numeric(4, 1)),
        sa.Column("battery_heater", sa.Boolean),
        sa.Column("battery_heater_on", sa.Boolean),
        sa.Column("battery_heater_no_power", sa.Boolean),
        sa.Column("est_battery_range_km", sa.Numeric(6, 2)),
        sa.Column("rated_battery_range_km", sa.Numeric(6, 2)),
        sa.Column("usable_battery_level", sa.SmallInteger),
        sa.Column("tpms_pressure_fl", sa.Numeric(4, 1)),
        sa.Column("tpms_pressure_fr", sa.Numeric(4, 1)),
        sa.Column("tpms_pressure_rl", sa.Numeric(4, 1)),
        sa.Column("tpms_pressure_rr", sa.Numeric(4, 1)),
        sa.PrimaryKeyConstraint("id", name="positions_pkey"),
        _fk("car_id", "cars", "CASCADE", "positions"),
        # positions <-> drives reference each other; this side is added after both exist.
        _fk("drive_id", "drives", "SET NULL", "positions", use_alter=True),
        sa.Index("positions_car_id_index", "car_id"),
        _brin("positions_date_timestamp_minmax_multi_ops_index", "date"),
        _brin("positions_drive_id_date_timestamp_minmax_multi_ops_index", "drive_id", "date"),
    )
    complete = positions.c.ideal_battery_range_km.is_not(None)
    sa.Index(
        "positions_car_id_date__ideal_battery_range_km_IS_NOT_NULL_index",
        positions.c.car_id,
        positions.c.date,
        complete.self_group(),
        postgresql_where=complete,
        sqlite_where=complete,
    )

    sa.Table(
        "charging_processes",
        m,
        _id("charging_processes", sa.Integer()),
        sa.Column("start_date", _TS, nullable=False),
        sa.Column("end_date", _TS),
        sa.Column("charge_energy_added", sa.Numeric(8, 2)),
        sa.Column("start_ideal_range_km", sa.Numeric(6, 2)),
        sa.Column("end_ideal_range_km", sa.Numeric(6, 2)),
        sa.Column("start_battery_level", sa.SmallInteger),
        sa.Column("end_battery_level", sa.SmallInteger),
        sa.Column("duration_min", sa.SmallInteger),
        sa.Column("outside_temp_avg", sa.Numeric(4, 1)),
        sa.Column("car_id", sa.SmallInteger, nullable=False),
        sa.Column("position_id", sa.Integer, nullable=False),
        sa.Column("address_id", sa.Integer),
        sa.Column("start_rated_range_km", sa.Numeric(6, 2)),
        sa.Column("end_rated_range_km", sa.Numeric(6, 2)),
        sa.Column("geofence_id", sa.Integer),
        sa.Column("charge_energy_used", sa.Numeric(8, 2)),
        sa.Column("cost", sa.Numeric(14, 2)),
        sa.PrimaryKeyConstraint("id", name="charging_processes_pkey"),
        _fk("car_id", "cars", "CASCADE", "charging_processes"),
        # No ON DELETE action, as in TeslaMate: a referenced position cannot be deleted.
        _fk("position_id", "positions", None, "charging_processes"),
        _fk("address_id", "addresses", "SET NULL", "charging_processes"),
        _fk("geofence_id", "geofences", "SET NULL", "charging_processes"),
        sa.Index("charging_processes_car_id_index", "car_id"),
        sa.Index("charging_processes_position_id_index", "position_id"),
        sa.Index("charging_processes_address_id_index", "address_id"),
    )

    sa.Table(
        "charges",
        m,
        _id("charges", sa.Integer()),
        sa.Column("date", _TS, nullable=False),
        sa.Column("battery_heater_on", sa.Boolean),
        sa.Column("battery_level", sa.SmallInteger),
        sa.Column("charge_energy_added", sa.Numeric(8, 2), nullable=False),
        sa.Column("charger_actual_current", sa.SmallInteger),
        sa.Column("charger_phases", sa.SmallInteger),
        sa.Column("charger_pilot_current", sa.SmallInteger),
        sa.Column("charger_power", sa.SmallInteger, nullable=False),
        sa.Column("charger_voltage", sa.SmallInteger),
        sa.Column("fast_charger_present", sa.Boolean),
        sa.Column("conn_charge_cable", sa.String(255)),
        sa.Column("fast_charger_brand", sa.String(255)),
        sa.Column("fast_charger_type", sa.String(255)),
        sa.Column("ideal_battery_range_km", sa.Numeric(6, 2), nullable=False),
        sa.Column("not_enough_power_to_heat", sa.Boolean),
        sa.Column("outside_temp", sa.Numeric(4, 1)),
        sa.Column("charging_process_id", sa.Integer, nullable=False),
        sa.Column("battery_heater", sa.Boolean),
        sa.Column("battery_heater_no_power", sa.Boolean),
        sa.Column("rated_battery_range_km", sa.Numeric(6, 2)),
        sa.Column("usable_battery_level", sa.SmallInteger),
        sa.PrimaryKeyConstraint("id", name="charges_pkey"),
        sa.CheckConstraint("charger_phases > 0", name="positive_charger_phases"),
        _fk("charging_process_id", "charging_processes", "CASCADE", "charges"),
        sa.Index("charges_date_index", "date"),
        sa.Index("charges_charging_process_id_index", "charging_process_id"),
    )

    states = sa.Table(
        "states",
        m,
        _id("states", sa.Integer()),
        sa.Column("state", _enum("states_status", "online", "offline", "asleep"), nullable=False),
        sa.Column("start_date", _TS, nullable=False),
        sa.Column("end_date", _TS),
        sa.Column("car_id", sa.SmallInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="states_pkey"),
        sa.CheckConstraint("end_date >= start_date", name="positive_duration"),
        _fk("car_id", "cars", "CASCADE", "states"),
        sa.Index("states_car_id_index", "car_id"),
    )
    open_state = states.c.end_date.is_(None)
    # At most one open state per car; the application refers to this index by name.
    sa.Index(
        "states_car_id__end_date_IS_NULL_index",
        states.c.car_id,
        open_state.self_group(),
        unique=True,
        postgresql_where=open_state,
        sqlite_where=open_state,
    )

    sa.Table(
        "updates",
        m,
        _id("updates", sa.Integer()),
        sa.Column("start_date", _TS, nullable=False),
        sa.Column("end_date", _TS),
        sa.Column("version", sa.String(255)),
        sa.Column("car_id", sa.SmallInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="updates_pkey"),
        sa.CheckConstraint("end_date >= start_date", name="positive_duration"),
        _fk("car_id", "cars", "CASCADE", "updates"),
        sa.Index("updates_car_id_index", "car_id"),
    )

    sa.Table(
        "tokens",
        m,
        _id("tokens", sa.Integer()),
        sa.Column("inserted_at", _TS0, nullable=False),
        sa.Column("updated_at", _TS0, nullable=False),
        sa.Column("refresh", sa.LargeBinary),
        sa.Column("access", sa.LargeBinary),
        sa.PrimaryKeyConstraint("id", name="tokens_pkey"),
        schema=PRIVATE_SCHEMA,
    )

    import_runs = sa.Table(
        "import_runs",
        m,
        _id("import_runs", _BIG_ID),
        sa.Column("source_key", sa.String(255), nullable=False),
        sa.Column("status", sa.String(255), nullable=False),
        sa.Column("timezone", sa.String(255), nullable=False),
        sa.Column("date_limit", _TS),
        sa.Column("date_limit_captured", sa.Boolean, nullable=False, server_default=_FALSE),
        sa.Column("car_id", sa.BigInteger),
        sa.Column("inserted_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="import_runs_pkey"),
        _fk("car_id", "cars", "SET NULL", "import_runs"),
    )
    running = import_runs.c.status == sa.literal_column("'running'")
    sa.Index(
        "import_runs_one_running_per_source",
        import_runs.c.source_key,
        unique=True,
        postgresql_where=running,
        sqlite_where=running,
    )

    sa.Table(
        "import_file_checkpoints",
        m,
        _id("import_file_checkpoints", _BIG_ID),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("file_fingerprint", sa.String(255), nullable=False),
        sa.Column("completed_at", _TS, nullable=False),
        sa.Column("inserted_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="import_file_checkpoints_pkey"),
        _fk("run_id", "import_runs", "CASCADE", "import_file_checkpoints"),
        sa.Index(
            "import_file_checkpoints_identity",
            "run_id",
            "file_name",
            "file_fingerprint",
            unique=True,
        ),
    )

    sa.Table(
        "import_rejections",
        m,
        _id("import_rejections", _BIG_ID),
        sa.Column("run_id", sa.BigInteger, nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("file_fingerprint", sa.String(255), nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("fields", _VARCHAR_ARRAY, nullable=False, server_default=_EmptyArray()),
        sa.Column("inserted_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="import_rejections_pkey"),
        _fk("run_id", "import_runs", "CASCADE", "import_rejections"),
        sa.Index(
            "import_rejections_row_identity",
            "run_id",
            "file_name",
            "file_fingerprint",
            "row",
            unique=True,
        ),
    )

    # fleetlog's own key/value facts about this database (instance id, adoption, extensions).
    sa.Table(
        "fleetlog_meta",
        m,
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("key", name="fleetlog_meta_pkey"),
    )

    for name in TESLAMATE_TABLES:
        key = f"{PRIVATE_SCHEMA}.{name}" if name == "tokens" else name
        _serial_default(m.tables[key])
