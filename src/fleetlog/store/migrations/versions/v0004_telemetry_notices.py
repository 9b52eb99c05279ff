"""Fleet Telemetry alerts and errors (fleetlog_telemetry_notices).

Revision ID: 0004_telemetry_notices
Revises: 0003_places_costs
Create Date: 2026-11-26

A fleetlog table only, so it is created on adopted TeslaMate databases too. The columns
are spelled out here rather than imported, so the revision keeps creating the same table
whatever the code's definition becomes later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_telemetry_notices"
down_revision = "0003_places_costs"
branch_labels = None
depends_on = None

TABLE = "fleetlog_telemetry_notices"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("vin", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("audiences", sa.String(255), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("inserted_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('alert', 'error')", name="fleetlog_telemetry_notices_kind_check"
        ),
        sa.UniqueConstraint("vin", "kind", "name", "at", name="fleetlog_telemetry_notices_key"),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
