"""The full export: every logbook table as JSON Lines, and reading it back.

Format (``version`` 1), one JSON value per line, UTF-8, gzip when the name ends in
``.gz``::

    {"format": "fleetlog-export", "version": 1, "exported_at": "…", "revision": "…",
     "tables": {"cars": 2, "positions": 81234, …}}
    {"table": "cars", "columns": ["id", "eid", …], "rows": 2}
    [1, 123456, …]
    [2, 654321, …]
    {"table": "positions", …}
    …

Values: timestamps ISO 8601 (UTC, no offset, as stored), numerics as strings (exact),
``bytea`` as base64, JSON columns as JSON. Tables in the copier's order
(:data:`fleetlog.importers.table_copy.ALL_TABLES`), rows in key order, all read in one
snapshot. Streamed both ways: a ten-year history never sits in memory.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from fleetlog.importers.progress import NoProgress, Progress
from fleetlog.importers.table_copy import (
    ALL_TABLES,
    BATCH,
    CopyError,
    DatabaseSource,
    from_json,
    key_column,
    to_json,
)
from fleetlog.store import tables as t
from fleetlog.store.migrate import current_revision

FORMAT = "fleetlog-export"
VERSION = 1


def _open(path: Path, mode: str, *, gz: bool | None = None) -> IO[str]:
    if path.suffix == ".gz" if gz is None else gz:
        return io.TextIOWrapper(gzip.GzipFile(path, mode + "b"), encoding="utf-8")
    return path.open(mode, encoding="utf-8")


@dataclass(slots=True)
class ExportReport:
    path: Path
    tables: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"exported {sum(self.tables.values())} rows of {len(self.tables)} tables to {self.path}"
        )


def export_json(
    engine: sa.Engine,
    path: Path,
    *,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> ExportReport:
    """Write the whole logbook to `path` (see the module doc for the format)."""
    progress = progress or NoProgress()
    source = DatabaseSource(engine)
    report = ExportReport(path)
    try:
        present = [name for name in ALL_TABLES if source.has(name)]
        counts = {name: source.count(name) for name in present}
        progress.start(sum(counts.values()), "export")
        tmp = path.with_name(path.name + ".partial")
        with _open(tmp, "w", gz=path.suffix == ".gz") as out:
            header = {
                "format": FORMAT,
                "version": VERSION,
                "exported_at": (now or datetime.now(UTC)).isoformat(),
                "revision": current_revision(engine),
                "tables": counts,
            }
            out.write(json.dumps(header) + "\n")
            for name in present:
                columns = source.columns(name)
                out.write(json.dumps({"table": name, "columns": columns, "rows": counts[name]}))
                out.write("\n")
                for batch in source.rows(name, None):
                    for row in batch:
                        out.write(json.dumps([to_json(row[c]) for c in columns]) + "\n")
                    progress.advance(len(batch), name)
                report.tables[name] = counts[name]
        tmp.replace(path)  # a half-written export never carries the final name
    finally:
        source.close()
    return report


class JsonSource:
    """A full export as a :class:`~fleetlog.importers.table_copy.RowSource`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._columns: dict[str, list[str]] = {}
        self._counts: dict[str, int] = {}
        with _open(path, "r") as fh:
            first = fh.readline()
            try:
                header = json.loads(first)
            except json.JSONDecodeError:
                header = None
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise CopyError(f"{path} is not a fleetlog export")
            if header.get("version") != VERSION:
                raise CopyError(f"{path}: export version {header.get('version')} is not supported")
            for line in fh:
                if line.startswith("{"):
                    section = json.loads(line)
                    self._columns[section["table"]] = list(section["columns"])
                    self._counts[section["table"]] = int(section["rows"])

    def has(self, table: str) -> bool:
        return table in self._columns

    def columns(self, table: str) -> list[str]:
        ours = {c.name for c in t.table_by_name(table).columns}
        return [c for c in self._columns[table] if c in ours]

    def count(self, table: str) -> int:
        return self._counts[table]

    def rows(self, table: str, after: Any) -> Iterator[list[dict[str, Any]]]:
        ours = t.table_by_name(table)
        key = key_column(ours).name
        names = self._columns[table]
        wanted = [(i, ours.c[n]) for i, n in enumerate(names) if n in ours.c]
        batch: list[dict[str, Any]] = []
        with _open(self.path, "r") as fh:
            fh.readline()
            inside = False
            for line in fh:
                if line.startswith("{"):
                    if inside:
                        break
                    inside = json.loads(line)["table"] == table
                    continue
                if not inside:
                    continue
                values = json.loads(line)
                row = {col.name: from_json(col, values[i]) for i, col in wanted}
                if after is not None and row[key] <= after:
                    continue
                batch.append(row)
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
        if batch:
            yield batch
