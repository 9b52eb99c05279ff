"""Telemetry records → observations, per VIN: resends dropped, late records ordered (pure).

Theory of operation. Cars send only what changed, so a record is a delta; the merged
state lives in the car machine. What this file guards is the *order* and *uniqueness*
of those deltas, which the transports do not:

- Records wait ``hold_s`` seconds (of the caller's clock) after arrival, then leave in
  the order of their own time, so a record overtaken on the way still comes first.
- Each field remembers the time of its newest value. A value older than that (a record
  later than the hold) is stale and dropped; the same value at the same time (a
  redelivery, an ``isCache`` replay) is a duplicate and dropped; a resend
  (``is_resend``) of a value already known adds nothing and is dropped.
- Records without a time (the MQTT dispatcher drops ``created_at``) are stamped with
  their arrival and, per VIN, gathered while held: the fields of one record arrive as
  separate messages and belong in one observation.

No clock is read here: the caller passes arrival times and "now".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fleetlog.model.observation import Observation, Source
from fleetlog.sources.streaming.fields import Plain, state_from_fields
from fleetlog.sources.streaming.records import VRecord


@dataclass(slots=True)
class _Pending:
    vin: str
    at: datetime
    arrived: datetime
    data: dict[str, Plain]
    is_resend: bool
    stamped: bool  # the record carried its own time


@dataclass(slots=True)
class _Known:
    times: dict[str, datetime] = field(default_factory=dict)
    values: dict[str, Plain] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Released:
    """An observation ready for the car (None: nothing readable), and the unreadable fields."""

    vin: str
    observation: Observation | None
    problems: tuple[str, ...] = ()


class Sequencer:
    """Orders and de-duplicates one feed's V records; see the module docstring."""

    def __init__(self, source: Source, *, hold_s: float = 0.5) -> None:
        self._source = source
        self._hold = timedelta(seconds=hold_s)
        self._pending: list[_Pending] = []
        self._open_unstamped: dict[str, _Pending] = {}
        self._known: dict[str, _Known] = {}

    def add(self, record: VRecord, arrived: datetime) -> None:
        """Take a record that arrived at `arrived` (it leaves with :meth:`release`)."""
        if not record.vin or not record.data:
            return
        if record.created_at is None:
            group = self._open_unstamped.get(record.vin)
            names = {name for name, _ in record.data}
            if group is not None and not names & group.data.keys():
                group.data.update(record.data)
                return
            pending = _Pending(record.vin, arrived, arrived, dict(record.data), False, False)
            self._open_unstamped[record.vin] = pending
        else:
            pending = _Pending(
                record.vin,
                record.created_at,
                arrived,
                dict(record.data),
                record.is_resend,
                True,
            )
        self._pending.append(pending)

    def pending(self) -> int:
        return len(self._pending)

    def next_due(self) -> datetime | None:
        """When the oldest held record may leave (None: nothing held)."""
        if not self._pending:
            return None
        return min(p.arrived for p in self._pending) + self._hold

    def release(self, now: datetime, *, everything: bool = False) -> list[Released]:
        """Observations of the records held long enough, in the order of their time."""
        due = [p for p in self._pending if everything or p.arrived + self._hold <= now]
        if not due:
            return []
        self._pending = [p for p in self._pending if p not in due]
        for p in due:
            if self._open_unstamped.get(p.vin) is p:
                del self._open_unstamped[p.vin]
        due.sort(key=lambda p: p.at)
        return [r for r in map(self._admit, due) if r is not None]

    def known_fields(self, vin: str) -> dict[str, Plain]:
        """The newest value of every field of `vin` seen so far."""
        known = self._known.get(vin)
        return dict(known.values) if known else {}

    def _admit(self, p: _Pending) -> Released | None:
        known = self._known.setdefault(p.vin, _Known())
        fresh: dict[str, Plain] = {}
        for name, value in p.data.items():
            last = known.times.get(name)
            if last is not None and p.at < last:
                continue  # stale: a newer value is already out
            same = name in known.values and known.values[name] == value
            if same and (p.at == last or p.is_resend):
                continue  # a redelivery or a resend of what we have
            fresh[name] = value
        if not fresh:
            return None
        for name, value in fresh.items():
            known.times[name] = p.at
            known.values[name] = value
        state, problems = state_from_fields(fresh, known.values)
        if not state.known():
            return Released(p.vin, None, tuple(problems)) if problems else None
        return Released(p.vin, Observation(p.vin, p.at, self._source, state), tuple(problems))

    def forget(self, vins: Iterable[str]) -> None:
        for vin in vins:
            self._known.pop(vin, None)
