"""Alembic environment for fleetlog's own migrations.

Configured entirely by :mod:`fleetlog.store.migrate` (no alembic.ini, no cwd): it hands over an
open connection, already inside the transaction that wraps the whole upgrade.
"""

from __future__ import annotations

from alembic import context

from fleetlog.store.errors import MigrationError
from fleetlog.store.migrate import CONNECTION_KEY, VERSION_TABLE
from fleetlog.store.tables import metadata

if context.is_offline_mode():
    raise MigrationError("fleetlog migrations run online only (use fleetlog.store.migrate)")

connection = context.config.attributes.get(CONNECTION_KEY)
if connection is None:
    raise MigrationError("run migrations through fleetlog.store.migrate, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
