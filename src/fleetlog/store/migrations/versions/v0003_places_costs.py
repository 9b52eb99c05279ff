"""Places and costs: time-of-use tariffs per geofence and manual charge costs.

Revision ID: 0003_places_costs
Revises: 0002_request_ledger
Create Date: 2026-11-26

fleetlog tables only (TeslaMate's `geofences` and `charging_processes` are referenced,
never changed), so this runs on adopted TeslaMate databases too. The columns are spelled
out here rather than imported, so the revision keeps creating the same tables whatever the
code's definitions become later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_places_costs"
down_revision = "0002_request_ledger"
branch_labels = None
depends_on = None


def _references(
    table: str, *constraint: sa.ForeignKeyConstraint
) -> tuple[sa.ForeignKeyConstraint, ...]:
    # An adopted TeslaMate database always has the referenced table; a database that only
    # carries TeslaMate's marker (a half-made or test database) may not, and a foreign key
    # to a missing table would fail the whole upgrade.
    return constraint if sa.inspect(op.get_bind()).has_table(table) else ()


def upgrade() -> None:
    op.create_table(
        "fleetlog_tariffs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("geofence_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=True),
        sa.Column("default_price", sa.Numeric(9, 4), nullable=True),
        sa.Column("inserted_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        *_references(
            "geofences",
            sa.ForeignKeyConstraint(
                ["geofence_id"],
                ["geofences.id"],
                ondelete="CASCADE",
                name="fleetlog_tariffs_geofence_id_fkey",
            ),
        ),
        sa.UniqueConstraint("geofence_id", name="fleetlog_tariffs_geofence_id_key"),
    )
    op.create_table(
        "fleetlog_tariff_windows",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tariff_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("weekdays", sa.SmallInteger(), nullable=False),
        sa.Column("start_minute", sa.SmallInteger(), nullable=False),
        sa.Column("end_minute", sa.SmallInteger(), nullable=False),
        sa.Column("season_start", sa.SmallInteger(), nullable=True),
        sa.Column("season_end", sa.SmallInteger(), nullable=True),
        sa.Column("price", sa.Numeric(9, 4), nullable=False),
        sa.ForeignKeyConstraint(
            ["tariff_id"],
            ["fleetlog_tariffs.id"],
            ondelete="CASCADE",
            name="fleetlog_tariff_windows_tariff_id_fkey",
        ),
        sa.UniqueConstraint("tariff_id", "position", name="fleetlog_tariff_windows_position_key"),
    )
    op.create_table(
        "fleetlog_charge_cost_overrides",
        sa.Column("charging_process_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.Numeric(14, 4), nullable=False),
        sa.Column("inserted_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        *_references(
            "charging_processes",
            sa.ForeignKeyConstraint(
                ["charging_process_id"],
                ["charging_processes.id"],
                ondelete="CASCADE",
                name="fleetlog_charge_cost_overrides_charging_process_id_fkey",
            ),
        ),
        sa.CheckConstraint(
            "kind IN ('absolute', 'per_kwh', 'per_minute')",
            name="fleetlog_charge_cost_overrides_kind_check",
        ),
    )


def downgrade() -> None:
    op.drop_table("fleetlog_charge_cost_overrides")
    op.drop_table("fleetlog_tariff_windows")
    op.drop_table("fleetlog_tariffs")
