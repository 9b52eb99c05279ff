"""Per-drive summaries read from positions (fleetlog_drive_summaries).

Revision ID: 0005_drive_summaries
Revises: 0004_telemetry_notices
Create Date: 2026-11-26

A fleetlog table only: what the analysis pages need from a closed drive's first and last
position (state of charge, coordinates), kept so that a page over ten years does not look
up 40,000 positions. The table is a cache: it starts empty (also on adopted TeslaMate
databases) and is filled by the logbook and lazily by the pages. Columns are spelled out
here, not imported, so the revision keeps creating the same table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_drive_summaries"
down_revision = "0004_telemetry_notices"
branch_labels = None
depends_on = None

TABLE = "fleetlog_drive_summaries"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column(
            "drive_id",
            sa.Integer(),
            sa.ForeignKey(
                "drives.id", ondelete="CASCADE", name="fleetlog_drive_summaries_drive_id_fkey"
            ),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("start_position_id", sa.Integer(), nullable=True),
        sa.Column("end_position_id", sa.Integer(), nullable=True),
        sa.Column("start_battery_level", sa.SmallInteger(), nullable=True),
        sa.Column("end_battery_level", sa.SmallInteger(), nullable=True),
        sa.Column("start_latitude", sa.Numeric(8, 6), nullable=True),
        sa.Column("start_longitude", sa.Numeric(9, 6), nullable=True),
        sa.Column("end_latitude", sa.Numeric(8, 6), nullable=True),
        sa.Column("end_longitude", sa.Numeric(9, 6), nullable=True),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
