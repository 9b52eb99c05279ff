"""Alembic migrations for fleetlog's database (see :mod:`fleetlog.store.migrate`)."""
