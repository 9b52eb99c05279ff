"""Progress reporting for long-running commands (imports, exports, backups).

The work itself only calls a :class:`Progress`; the command line hands in
:class:`RichProgress` (a rich progress bar on stderr), tests and library callers
hand in nothing (:class:`NoProgress`).
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import (
    Progress as _RichBar,
)


class Progress(Protocol):
    def start(self, total: int, description: str) -> None:
        """A new stage of `total` units begins."""
        ...

    def advance(self, units: int, note: str = "") -> None:
        """`units` more are done; `note` names what is being worked on."""
        ...


class NoProgress:
    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, units: int, note: str = "") -> None:
        pass


class RichProgress:
    """A rich progress bar on stderr (use as a context manager)."""

    def __init__(self, console: Console | None = None) -> None:
        self._bar = _RichBar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
            console=console or Console(file=sys.stderr),
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._bar.stop()

    def start(self, total: int, description: str) -> None:
        if self._task is not None:
            self._bar.update(self._task, completed=self._bar.tasks[-1].total)
        self._task = self._bar.add_task(description, total=max(total, 1), note="")

    def advance(self, units: int, note: str = "") -> None:
        if self._task is not None:
            self._bar.update(self._task, advance=units, note=note)
