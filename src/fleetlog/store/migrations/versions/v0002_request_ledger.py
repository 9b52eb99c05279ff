"""fleetlog's request ledger: one row per call to Tesla (fleetlog_api_requests).

Revision ID: 0002_request_ledger
Revises: 0001
Create Date: 2026-11-26

A fleetlog table only, so it is created on adopted TeslaMate databases too. The
columns are spelled out here (not imported from the code) so this revision keeps
creating the same table whatever the code's definition becomes later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_request_ledger"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLE = "fleetlog_api_requests"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("vehicle", sa.String(32), nullable=True),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("category", sa.String(8), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("billed", sa.Boolean(), nullable=False),
        sa.Column("cost_micro_usd", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(48), nullable=False),
        sa.CheckConstraint(
            "category IN ('data', 'wake', 'command', 'none')",
            name="fleetlog_api_requests_category_check",
        ),
    )
    op.create_index("fleetlog_api_requests_account_day_idx", TABLE, ["account", "day"])
    op.create_index("fleetlog_api_requests_vehicle_day_idx", TABLE, ["vehicle", "day"])


def downgrade() -> None:
    op.drop_table(TABLE)
