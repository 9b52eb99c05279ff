"""Errors raised by the storage layer.

The whole hierarchy::

    StoreError                      base class: anything that went wrong in fleetlog.store
     ├── UnsupportedDatabaseError   URL scheme or server version fleetlog cannot use
     ├── TeslaMateDatabaseError     a TeslaMate database that fleetlog was not told to adopt
     ├── SchemaConflictError        tables fleetlog would create already exist (not ours)
     └── MigrationError             a migration step failed or the database is in an odd state

Messages are written for the person running `fleetlog migrate`: they say what was found and
what to do next. They never contain a password (URLs are rendered masked).
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class for storage-layer errors."""


class UnsupportedDatabaseError(StoreError):
    """The database URL or server is not one fleetlog can work with."""


class TeslaMateDatabaseError(StoreError):
    """The target is an existing TeslaMate database and adopting it was not requested."""


class SchemaConflictError(StoreError):
    """Tables that the initial migration would create already exist."""


class MigrationError(StoreError):
    """A migration could not be applied or the recorded state is inconsistent."""
