"""The migrated PostgreSQL schema, read back from the catalogs, against TeslaMate's schema.

The expectations below are written out from `reference/teslamate-schema.md` (§3–§5), not
derived from fleetlog's own table definitions, so a mistake in those shows up here.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from fleetlog.store import make_engine, upgrade

pytestmark = pytest.mark.postgres

TS = "timestamp without time zone"
TS0 = "timestamp(0) without time zone"
V255 = "character varying(255)"
NN = True  # NOT NULL
N = False  # nullable


def _serial(seq: str) -> str:
    return f"nextval('{seq}'::regclass)"


# table -> [(column, type, not null, default)] in physical order
COLUMNS: dict[str, list[tuple[str, str, bool, str | None]]] = {
    "cars": [
        ("id", "smallint", NN, _serial("cars_id_seq")),
        ("eid", "bigint", NN, None),
        ("vid", "bigint", NN, None),
        ("model", V255, N, None),
        ("efficiency", "double precision", N, None),
        ("inserted_at", TS0, NN, None),
        ("updated_at", TS0, NN, None),
        ("vin", "text", NN, None),
        ("name", "text", N, None),
        ("trim_badging", "text", N, None),
        ("settings_id", "bigint", NN, None),
        ("exterior_color", "text", N, None),
        ("spoiler_type", "text", N, None),
        ("wheel_type", "text", N, None),
        ("display_priority", "smallint", NN, "1"),
        ("marketing_name", V255, N, None),
    ],
    "car_settings": [
        ("id", "bigint", NN, _serial("car_settings_id_seq")),
        ("suspend_min", "integer", NN, "21"),
        ("suspend_after_idle_min", "integer", NN, "15"),
        ("req_not_unlocked", "boolean", NN, "false"),
        ("free_supercharging", "boolean", NN, "false"),
        ("use_streaming_api", "boolean", NN, "true"),
        ("enabled", "boolean", NN, "true"),
        ("lfp_battery", "boolean", NN, "false"),
    ],
    "settings": [
        ("id", "bigint", NN, _serial("settings_id_seq")),
        ("inserted_at", TS0, NN, None),
        ("updated_at", TS0, NN, None),
        ("unit_of_length", "unit_of_length", NN, "'km'::unit_of_length"),
        ("unit_of_temperature", "unit_of_temperature", NN, "'C'::unit_of_temperature"),
        ("preferred_range", "range", NN, "'rated'::range"),
        ("base_url", V255, N, None),
        ("grafana_url", V255, N, None),
        ("language", "text", NN, "'en'::text"),
        ("unit_of_pressure", "unit_of_pressure", NN, "'bar'::unit_of_pressure"),
        ("theme_mode", "text", NN, "'system'::text"),
    ],
    "positions": [
        ("id", "integer", NN, _serial("positions_id_seq")),
        ("date", TS, NN, None),
        ("latitude", "numeric(8,6)", NN, None),
        ("longitude", "numeric(9,6)", NN, None),
        ("speed", "smallint", N, None),
        ("power", "smallint", N, None),
        ("odometer", "double precision", N, None),
        ("ideal_battery_range_km", "numeric(6,2)", N, None),
        ("battery_level", "smallint", N, None),
        ("outside_temp", "numeric(4,1)", N, None),
        ("elevation", "smallint", N, None),
        ("fan_status", "integer", N, None),
        ("driver_temp_setting", "numeric(4,1)", N, None),
        ("passenger_temp_setting", "numeric(4,1)", N, None),
        ("is_climate_on", "boolean", N, None),
        ("is_rear_defroster_on", "boolean", N, None),
        ("is_front_defroster_on", "boolean", N, None),
        ("car_id", "smallint", NN, None),
        ("drive_id", "integer", N, None),
        ("inside_temp", "numeric(4,1)", N, None),
        ("battery_heater", "boolean", N, None),
        ("battery_heater_on", "boolean", N, None),
        ("battery_heater_no_power", "boolean", N, None),
        ("est_battery_range_km", "numeric(6,2)", N, None),
        ("rated_battery_range_km", "numeric(6,2)", N, None),
        ("usable_battery_level", "smallint", N, None),
        ("tpms_pressure_fl", "numeric(4,1)", N, None),
        ("tpms_pressure_fr", "numeric(4,1)", N, None),
        ("tpms_pressure_rl", "numeric(4,1)", N, None),
        ("tpms_pressure_rr", "numeric(4,1)", N, None),
    ],
    "drives": [
        ("id", "integer", NN, _serial("trips_id_seq")),
        ("start_date", TS, NN, None),
        ("end_date", TS, N, None),
        ("outside_temp_avg", "numeric(4,1)", N, None),
        ("speed_max", "smallint", N, None),
        ("power_max", "smallint", N, None),
        ("power_min", "smallint", N, None),
        ("start_ideal_range_km", "numeric(6,2)", N, None),
        ("end_ideal_range_km", "numeric(6,2)", N, None),
        ("start_km", "double precision", N, None),
        ("end_km", "double precision", N, None),
        ("distance", "double precision", N, None),
        ("duration_min", "smallint", N, None),
        ("car_id", "smallint", NN, None),
        ("inside_temp_avg", "numeric(4,1)", N, None),
        ("start_address_id", "integer", N, None),
        ("end_address_id", "integer", N, None),
        ("start_rated_range_km", "numeric(6,2)", N, None),
        ("end_rated_range_km", "numeric(6,2)", N, None),
        ("start_position_id", "integer", N, None),
        ("end_position_id", "integer", N, None),
        ("start_geofence_id", "integer", N, None),
        ("end_geofence_id", "integer", N, None),
        ("ascent", "smallint", N, None),
        ("descent", "smallint", N, None),
    ],
    "charging_processes": [
        ("id", "integer", NN, _serial("charging_processes_id_seq")),
        ("start_date", TS, NN, None),
        ("end_date", TS, N, None),
        ("charge_energy_added", "numeric(8,2)", N, None),
        ("start_ideal_range_km", "numeric(6,2)", N, None),
        ("end_ideal_range_km", "numeric(6,2)", N, None),
        ("start_battery_level", "smallint", N, None),
        ("end_battery_level", "smallint", N, None),
        ("duration_min", "smallint", N, None),
        ("outside_temp_avg", "numeric(4,1)", N, None),
        ("car_id", "smallint", NN, None),
        ("position_id", "integer", NN, None),
        ("address_id", "integer", N, None),
        ("start_rated_range_km", "numeric(6,2)", N, None),
        ("end_rated_range_km", "numeric(6,2)", N, None),
        ("geofence_id", "integer", N, None),
        ("charge_energy_used", "numeric(8,2)", N, None),
        ("cost", "numeric(14,2)", N, None),
    ],
    "charges": [
        ("id", "integer", NN, _serial("charges_id_seq")),
        ("date", TS, NN, None),
        ("battery_heater_on", "boolean", N, None),
        ("battery_level", "smallint", N, None),
        ("charge_energy_added", "numeric(8,2)", NN, None),
        ("charger_actual_current", "smallint", N, None),
        ("charger_phases", "smallint", N, None),
        ("charger_pilot_current", "smallint", N, None),
        ("charger_power", "smallint", NN, None),
        ("charger_voltage", "smallint", N, None),
        ("fast_charger_present", "boolean", N, None),
        ("conn_charge_cable", V255, N, None),
        ("fast_charger_brand", V255, N, None),
        ("fast_charger_type", V255, N, None),
        ("ideal_battery_range_km", "numeric(6,2)", NN, None),
        ("not_enough_power_to_heat", "boolean", N, None),
        ("outside_temp", "numeric(4,1)", N, None),
        ("charging_process_id", "integer", NN, None),
        ("battery_heater", "boolean", N, None),
        ("battery_heater_no_power", "boolean", N, None),
        ("rated_battery_range_km", "numeric(6,2)", N, None),
        ("usable_battery_level", "smallint", N, None),
    ],
    "states": [
        ("id", "integer", NN, _serial("states_id_seq")),
        ("state", "states_status", NN, None),
        ("start_date", TS, NN, None),
        ("end_date", TS, N, None),
        ("car_id", "smallint", NN, None),
    ],
    "updates": [
        ("id", "integer", NN, _serial("updates_id_seq")),
        ("start_date", TS, NN, None),
        ("end_date", TS, N, None),
        ("version", V255, N, None),
        ("car_id", "smallint", NN, None),
    ],
    "addresses": [
        ("id", "integer", NN, _serial("addresses_id_seq")),
        ("display_name", "character varying(512)", N, None),
        ("latitude", "numeric(8,6)", N, None),
        ("longitude", "numeric(9,6)", N, None),
        ("name", V255, N, None),
        ("house_number", V255, N, None),
        ("road", V255, N, None),
        ("neighbourhood", V255, N, None),
        ("city", V255, N, None),
        ("county", V255, N, None),
        ("postcode", V255, N, None),
        ("state", V255, N, None),
        ("state_district", V255, N, None),
        ("country", V255, N, None),
        ("raw", "jsonb", N, None),
        ("inserted_at", TS0, NN, None),
        ("updated_at", TS0, NN, None),
        ("osm_id", "bigint", N, None),
        ("osm_type", "text", N, None),
    ],
    "geofences": [
        ("id", "integer", NN, _serial("geofences_id_seq")),
        ("name", V255, NN, None),
        ("latitude", "numeric(8,6)", NN, None),
        ("longitude", "numeric(9,6)", NN, None),
        ("radius", "smallint", NN, "25"),
        ("inserted_at", TS0, NN, None),
        ("updated_at", TS0, NN, None),
        ("cost_per_unit", "numeric(9,4)", N, None),
        ("session_fee", "numeric(14,2)", N, None),
        ("billing_type", "billing_type", NN, "'per_kwh'::billing_type"),
    ],
    "private.tokens": [
        ("id", "integer", NN, _serial("private.tokens_id_seq")),
        ("inserted_at", TS0, NN, None),
        ("updated_at", TS0, NN, None),
        ("refresh", "bytea", N, None),
        ("access", "bytea", N, None),
    ],
    "import_runs": [
        ("id", "bigint", NN, _serial("import_runs_id_seq")),
        ("source_key", V255, NN, None),
        ("status", V255, NN, None),
        ("timezone", V255, NN, None),
        ("date_limit", TS, N, None),
        ("date_limit_captured", "boolean", NN, "false"),
        ("car_id", "bigint", N, None),
        ("inserted_at", TS, NN, None),
        ("updated_at", TS, NN, None),
    ],
    "import_file_checkpoints": [
        ("id", "bigint", NN, _serial("import_file_checkpoints_id_seq")),
        ("run_id", "bigint", NN, None),
        ("file_name", V255, NN, None),
        ("file_fingerprint", V255, NN, None),
        ("completed_at", TS, NN, None),
        ("inserted_at", TS, NN, None),
        ("updated_at", TS, NN, None),
    ],
    "import_rejections": [
        ("id", "bigint", NN, _serial("import_rejections_id_seq")),
        ("run_id", "bigint", NN, None),
        ("file_name", V255, NN, None),
        ("file_fingerprint", V255, NN, None),
        ("row", "integer", NN, None),
        ("reason", V255, NN, None),
        ("fields", "character varying(255)[]", NN, "ARRAY[]::character varying[]"),
        ("inserted_at", TS, NN, None),
        ("updated_at", TS, NN, None),
    ],
}

ENUMS = {
    "states_status": ["online", "offline", "asleep"],
    "unit_of_length": ["km", "mi"],
    "unit_of_temperature": ["C", "F"],
    "range": ["ideal", "rated"],
    "billing_type": ["per_kwh", "per_minute"],
    "unit_of_pressure": ["bar", "psi"],
}


def _btree(
    name: str, table: str, cols: str, *, unique: bool = False, schema: str = "public"
) -> str:
    kind = "UNIQUE INDEX" if unique else "INDEX"
    return f"CREATE {kind} {name} ON {schema}.{table} USING btree ({cols})"


def _pkey(table: str, name: str | None = None, schema: str = "public") -> tuple[str, str]:
    name = name or f"{table}_pkey"
    return name, _btree(name, table, "id", unique=True, schema=schema)


_BRIN_WITH = "WITH (autosummarize='true', pages_per_range='64')"

INDEXES: dict[str, str] = dict(
    [
        _pkey("cars"),
        ("cars_eid_index", _btree("cars_eid_index", "cars", "eid", unique=True)),
        ("cars_vid_index", _btree("cars_vid_index", "cars", "vid", unique=True)),
        ("cars_vin_index", _btree("cars_vin_index", "cars", "vin", unique=True)),
        (
            "cars_settings_id_index",
            _btree("cars_settings_id_index", "cars", "settings_id", unique=True),
        ),
        _pkey("car_settings"),
        _pkey("settings"),
        _pkey("positions"),
        ("positions_car_id_index", _btree("positions_car_id_index", "positions", "car_id")),
        (
            "positions_date_timestamp_minmax_multi_ops_index",
            "CREATE INDEX positions_date_timestamp_minmax_multi_ops_index ON public.positions"
            f" USING brin (date timestamp_minmax_multi_ops) {_BRIN_WITH}",
        ),
        (
            "positions_drive_id_date_timestamp_minmax_multi_ops_index",
            "CREATE INDEX positions_drive_id_date_timestamp_minmax_multi_ops_index ON"
            " public.positions USING brin (drive_id, date timestamp_minmax_multi_ops)"
            f" {_BRIN_WITH}",
        ),
        (
            "positions_car_id_date__ideal_battery_range_km_IS_NOT_NULL_index",
            'CREATE INDEX "positions_car_id_date__ideal_battery_range_km_IS_NOT_NULL_index"'
            " ON public.positions USING btree"
            " (car_id, date, ((ideal_battery_range_km IS NOT NULL)))"
            " WHERE (ideal_battery_range_km IS NOT NULL)",
        ),
        _pkey("drives", "trips_pkey"),
        ("trips_car_id_index", _btree("trips_car_id_index", "drives", "car_id")),
        (
            "trips_start_address_id_index",
            _btree("trips_start_address_id_index", "drives", "start_address_id"),
        ),
        (
            "trips_end_address_id_index",
            _btree("trips_end_address_id_index", "drives", "end_address_id"),
        ),
        *(
            (f"drives_{c}_index", _btree(f"drives_{c}_index", "drives", c))
            for c in (
                "start_position_id",
                "end_position_id",
                "start_geofence_id",
                "end_geofence_id",
            )
        ),
        _pkey("charging_processes"),
        *(
            (
                f"charging_processes_{c}_index",
                _btree(f"charging_processes_{c}_index", "charging_processes", c),
            )
            for c in ("car_id", "position_id", "address_id")
        ),
        _pkey("charges"),
        ("charges_date_index", _btree("charges_date_index", "charges", "date")),
        (
            "charges_charging_process_id_index",
            _btree("charges_charging_process_id_index", "charges", "charging_process_id"),
        ),
        _pkey("states"),
        ("states_car_id_index", _btree("states_car_id_index", "states", "car_id")),
        (
            "states_car_id__end_date_IS_NULL_index",
            'CREATE UNIQUE INDEX "states_car_id__end_date_IS_NULL_index" ON public.states'
            " USING btree (car_id, ((end_date IS NULL))) WHERE (end_date IS NULL)",
        ),
        _pkey("updates"),
        ("updates_car_id_index", _btree("updates_car_id_index", "updates", "car_id")),
        _pkey("addresses"),
        (
            "addresses_osm_id_osm_type_index",
            _btree("addresses_osm_id_osm_type_index", "addresses", "osm_id, osm_type", unique=True),
        ),
        _pkey("geofences"),
        _pkey("tokens", schema="private"),
        _pkey("import_runs"),
        (
            "import_runs_one_running_per_source",
            "CREATE UNIQUE INDEX import_runs_one_running_per_source ON public.import_runs"
            " USING btree (source_key) WHERE ((status)::text = 'running'::text)",
        ),
        _pkey("import_file_checkpoints"),
        (
            "import_file_checkpoints_identity",
            _btree(
                "import_file_checkpoints_identity",
                "import_file_checkpoints",
                "run_id, file_name, file_fingerprint",
                unique=True,
            ),
        ),
        _pkey("import_rejections"),
        (
            "import_rejections_row_identity",
            _btree(
                "import_rejections_row_identity",
                "import_rejections",
                'run_id, file_name, file_fingerprint, "row"',
                unique=True,
            ),
        ),
    ]
)


def _fk(table: str, col: str, target: str, action: str | None) -> tuple[str, str, str]:
    on_delete = f" ON DELETE {action}" if action else ""
    return (table, f"{table}_{col}_fkey", f"FOREIGN KEY ({col}) REFERENCES {target}(id){on_delete}")


# (table, constraint name, pg_get_constraintdef) for every FK and CHECK constraint
CONSTRAINTS = {
    _fk("cars", "settings_id", "car_settings", "CASCADE"),
    _fk("positions", "car_id", "cars", "CASCADE"),
    _fk("positions", "drive_id", "drives", "SET NULL"),
    _fk("drives", "car_id", "cars", "CASCADE"),
    _fk("drives", "start_address_id", "addresses", "SET NULL"),
    _fk("drives", "end_address_id", "addresses", "SET NULL"),
    _fk("drives", "start_position_id", "positions", "SET NULL"),
    _fk("drives", "end_position_id", "positions", "SET NULL"),
    _fk("drives", "start_geofence_id", "geofences", "SET NULL"),
    _fk("drives", "end_geofence_id", "geofences", "SET NULL"),
    _fk("charging_processes", "car_id", "cars", "CASCADE"),
    _fk("charging_processes", "position_id", "positions", None),
    _fk("charging_processes", "address_id", "addresses", "SET NULL"),
    _fk("charging_processes", "geofence_id", "geofences", "SET NULL"),
    _fk("charges", "charging_process_id", "charging_processes", "CASCADE"),
    _fk("states", "car_id", "cars", "CASCADE"),
    _fk("updates", "car_id", "cars", "CASCADE"),
    _fk("import_runs", "car_id", "cars", "SET NULL"),
    _fk("import_file_checkpoints", "run_id", "import_runs", "CASCADE"),
    _fk("import_rejections", "run_id", "import_runs", "CASCADE"),
    ("charges", "positive_charger_phases", "CHECK ((charger_phases > 0))"),
    ("states", "positive_duration", "CHECK ((end_date >= start_date))"),
    ("updates", "positive_duration", "CHECK ((end_date >= start_date))"),
}

# name -> (identity arguments, result, volatility, strict, cost, language)
FUNCTIONS = {
    "convert_km": ("n numeric, unit text", "numeric", "v", False, 100.0, "sql"),
    "convert_celsius": ("n numeric, unit text", "numeric", "v", False, 100.0, "sql"),
    "convert_m": ("n double precision, unit text", "double precision", "i", True, 100.0, "sql"),
    "convert_tire_pressure": ("n numeric, character varying", "numeric", "v", False, 100.0, "sql"),
}

# Sequences whose id column they serve (bigserial-style: data type bigint, OWNED BY the column).
SEQUENCE_OWNERS = {
    "public.trips_id_seq": "drives",
    "private.tokens_id_seq": "tokens",
    **{
        f"public.{t}_id_seq": t
        for t in (
            "cars",
            "car_settings",
            "settings",
            "positions",
            "charging_processes",
            "charges",
            "states",
            "updates",
            "addresses",
            "geofences",
            "import_runs",
            "import_file_checkpoints",
            "import_rejections",
        )
    },
}

# fleetlog's own tables all start with this; later revisions add more of them.
OWN_PREFIX = "fleetlog_"


@pytest.fixture(scope="module")
def conn(pg_url_module: str) -> Iterator[sa.Connection]:
    """A connection to a freshly migrated PostgreSQL database (shared: tests only read)."""
    engine = make_engine(pg_url_module)
    upgrade(engine)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def _rows(conn: sa.Connection, sql: str, **params: object) -> list[sa.Row[Any]]:
    return list(conn.execute(sa.text(sql), params).all())


def test_tables(conn: sa.Connection) -> None:
    found = _rows(
        conn,
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname IN ('public', 'private')",
    )
    names = {name if schema == "public" else f"{schema}.{name}" for schema, name in found}
    assert {n for n in names if not n.startswith(OWN_PREFIX)} == set(COLUMNS)
    assert {"fleetlog_meta", "fleetlog_alembic_version"} <= names


@pytest.mark.parametrize("table", sorted(COLUMNS))
def test_columns(conn: sa.Connection, table: str) -> None:
    qualified = table if "." in table else f"public.{table}"
    found = _rows(
        conn,
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
        " pg_get_expr(d.adbin, d.adrelid)"
        " FROM pg_attribute a LEFT JOIN pg_attrdef d"
        " ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        t=qualified,
    )
    assert [tuple(r) for r in found] == COLUMNS[table]


def test_enums(conn: sa.Connection) -> None:
    found = _rows(
        conn,
        "SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid"
        " JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'public'"
        " ORDER BY t.typname, e.enumsortorder",
    )
    enums: dict[str, list[str]] = {}
    for name, label in found:
        enums.setdefault(name, []).append(label)
    assert enums == ENUMS


def test_indexes(conn: sa.Connection) -> None:
    found = _rows(
        conn,
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname IN ('public', 'private')"
        " AND tablename NOT LIKE 'fleetlog\\_%'",
    )
    assert dict(found) == INDEXES


def test_constraints(conn: sa.Connection) -> None:
    found = _rows(
        conn,
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)"
        " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE n.nspname IN ('public', 'private') AND c.contype IN ('f', 'c') AND c.conrelid <> 0"
        " AND c.conrelid::regclass::text NOT LIKE 'fleetlog\\_%'",
    )
    assert {tuple(r) for r in found} == CONSTRAINTS


def test_primary_keys(conn: sa.Connection) -> None:
    found = _rows(
        conn,
        "SELECT c.conrelid::regclass::text, c.conname FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE n.nspname IN ('public', 'private') AND c.contype = 'p'",
    )
    pkeys = {table: name for table, name in found if not table.startswith(OWN_PREFIX)}
    expected = {t: f"{t.split('.')[-1]}_pkey" for t in COLUMNS}
    expected["drives"] = "trips_pkey"
    assert pkeys == expected


def test_sequences(conn: sa.Connection) -> None:
    found = _rows(
        conn,
        "SELECT s.seqrelid::regclass::text, format_type(s.seqtypid, NULL), t.relname, a.attname"
        " FROM pg_sequence s"
        " JOIN pg_depend d ON d.objid = s.seqrelid AND d.deptype = 'a'"
        " JOIN pg_class t ON t.oid = d.refobjid"
        " JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
        " WHERE t.relname NOT LIKE 'fleetlog\\_%'",
    )
    # regclass text omits `public.` on the search path; normalise for comparison
    seqs = {(s if "." in s else f"public.{s}"): (typ, tbl, col) for s, typ, tbl, col in found}
    assert seqs == {seq: ("bigint", table, "id") for seq, table in SEQUENCE_OWNERS.items()}


def test_functions(conn: sa.Connection) -> None:
    found = _rows(
        conn,
        "SELECT p.proname, pg_get_function_identity_arguments(p.oid),"
        " format_type(p.prorettype, NULL), p.provolatile, p.proisstrict, p.procost, l.lanname"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " JOIN pg_language l ON l.oid = p.prolang"
        " WHERE n.nspname = 'public' AND p.proname LIKE 'convert%'",
    )
    assert {r[0]: tuple(r[1:]) for r in found} == FUNCTIONS


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("convert_km(100, 'km')", Decimal("100")),
        ("round(convert_km(100, 'mi'), 4)", Decimal("62.1373")),
        ("convert_km(100, 'furlong')", None),
        ("convert_km(NULL, 'mi')", None),
        ("convert_km(100, NULL)", None),
        ("convert_celsius(20.5, 'C')", Decimal("20.5")),
        ("convert_celsius(20, 'F')", Decimal("68")),
        ("convert_celsius(-40, 'F')", Decimal("-40")),
        ("convert_celsius(20, 'K')", None),
        ("convert_m(100, 'm')", 100.0),
        ("round(convert_m(100, 'ft')::numeric, 3)", Decimal("328.084")),
        ("convert_m(100, 'yd')", None),
        ("convert_m(NULL, 'ft')", None),
        ("convert_tire_pressure(2.9, 'bar')", Decimal("2.9")),
        ("round(convert_tire_pressure(2.9, 'psi'), 6)", Decimal("42.060944")),
        ("convert_tire_pressure(2.9, 'kPa')", None),
        # Not rounded to the digest's numeric(6,2): PostgreSQL drops typmods in signatures.
        ("convert_km(1, 'mi') = 1 / 1.60934", True),
    ],
)
def test_function_semantics(conn: sa.Connection, expr: str, expected: object) -> None:
    value = conn.execute(sa.text(f"SELECT {expr}")).scalar_one()
    if isinstance(expected, Decimal) and value is not None:
        assert Decimal(value) == expected
    else:
        assert value == expected


def test_convert_km_rejects_double_precision(conn: sa.Connection) -> None:
    """As in TeslaMate, only the numeric overload exists (dashboards cast first)."""
    with pytest.raises(sa.exc.ProgrammingError):
        conn.execute(sa.text("SELECT convert_km(CAST(1.5 AS double precision), 'mi')"))
    conn.rollback()
