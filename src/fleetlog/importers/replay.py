"""Replaying history through the car machine: the importer is one more source.

Each imported row becomes the event a live poller would have produced — a full row a
``vehicle_data`` answer (:class:`FetchedFull`), an asleep/offline row the free endpoint's
answer (:class:`FetchedLight`) — and goes through the same pure :func:`step` at the row's
own time, with the executor and the logbook writes of the live worker. The position timer
is honoured between rows (it fires at its own time, as it would have live); fetch
schedules are ignored, because the rows *are* the fetches.

Two things differ from live logging, both because imported history is written *beside*
live data rather than after it:

* ``states`` rows are written closed (their end moved forward as the next one starts),
  never open: the live logger's open state must stay the car's only open one, and it is
  never closed by an import.
* All writes of a step go to the connection of the file being imported, under a savepoint,
  so a whole file commits with its checkpoint or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from fleetlog.logbook.writer import (
    DB_EFFECTS,
    CarLogbook,
    ChargeCost,
    Places,
    Refs,
    close_charge,
    close_drive,
    db_time,
    recalculate_efficiency,
)
from fleetlog.model.observation import Connectivity, Observation, Source, VehicleState
from fleetlog.store import tables as t
from fleetlog.vehicle import effects as fx
from fleetlog.vehicle.events import Boot, Event, FetchedFull, FetchedLight, TimerFired
from fleetlog.vehicle.executor import Executor
from fleetlog.vehicle.machine import CarState, step
from fleetlog.vehicle.settings import CarSettings, Feed, Timing


class ImportLogbook(CarLogbook):
    """The live logbook's writes on one open connection; without one, a dry run."""

    def __init__(
        self,
        engine: sa.Engine,
        car_id: int,
        *,
        places: Places | None = None,
        costs: ChargeCost | None = None,
    ) -> None:
        super().__init__(engine, car_id, places=places, costs=costs)
        self.conn: sa.Connection | None = None

    def apply_steps(self, steps: Sequence[Sequence[fx.Effect]]) -> None:
        todo = [e for effects in steps for e in effects if isinstance(e, DB_EFFECTS)]
        conn = self.conn
        if not todo or conn is None:
            return  # dry: the machine's state is being rebuilt, the rows are stored already
        refs = self.refs.copy()
        with conn.begin_nested():
            for effect in todo:
                if isinstance(effect, fx.StartState):
                    self._closed_state(conn, refs, effect)
                else:
                    self._apply(conn, refs, effect)
        self.refs = refs

    def _closed_state(self, conn: sa.Connection, refs: Refs, e: fx.StartState) -> None:
        at = db_time(e.start)
        st = t.states
        previous = refs.states.pop(e.closes, None) if e.closes is not None else None
        if previous is not None:
            conn.execute(
                sa.update(st).where(st.c.id == previous, st.c.start_date <= at).values(end_date=at)
            )
        refs.states[e.ref] = int(
            conn.execute(
                sa.insert(st)
                .values(car_id=self.car_id, state=e.status.value, start_date=at, end_date=at)
                .returning(st.c.id)
            ).scalar_one()
        )


@dataclass(slots=True)
class CarReplay:
    """One car's machine, executor and logbook for an import."""

    car_id: int
    state: CarState
    logbook: ImportLogbook
    executor: Executor
    booted: bool = False
    last_at: datetime | None = None
    rows: int = 0
    errors: list[str] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        engine: sa.Engine,
        car_id: int,
        vin: str,
        settings: CarSettings,
        *,
        places: Places | None = None,
        costs: ChargeCost | None = None,
    ) -> CarReplay:
        logbook = ImportLogbook(engine, car_id, places=places, costs=costs)
        state = CarState(vin, settings=settings, timing=Timing(), feed=Feed.NONE)
        return cls(car_id, state, logbook, Executor(vin, logbook))

    def feed(self, connectivity: Connectivity, observation: Observation) -> None:
        """Replay one row: a full snapshot, or an asleep/offline answer, at its own time."""
        at = observation.at
        if not self.booted:
            self._step(Boot(), at)
            self.booted = True
        self._fire_timers(at)
        event: Event
        if connectivity is Connectivity.ONLINE:
            event = FetchedFull(observation)
        else:
            light = VehicleState(connectivity=connectivity)
            event = FetchedLight(Observation(observation.vin, at, Source.IMPORT, light))
        self._step(event, at)
        self.last_at = at
        self.rows += 1

    def _step(self, event: Event, now: datetime) -> None:
        self.state, effects = step(self.state, event, now)
        self.executor.execute(effects)
        self.executor.fetch = None  # the next row is the next fetch

    def _fire_timers(self, until: datetime) -> None:
        while True:
            due = [(at, kind) for kind, at in self.executor.timers.items() if at <= until]
            if not due:
                return
            at, kind = min(due)
            del self.executor.timers[kind]
            self._step(TimerFired(kind), at)

    def bind_open_rows(self, conn: sa.Connection, limit: datetime | None) -> None:
        """After a dry replay: map the machine's open refs to the rows stored for them."""
        refs = Refs()
        s = self.state

        def newest(table: sa.Table, date: sa.Column[datetime], *open_only: bool) -> int | None:
            q = sa.select(table.c.id).where(table.c.car_id == self.car_id)
            if open_only:
                q = q.where(table.c.end_date.is_(None))
            if limit is not None:
                q = q.where(date < db_time(limit))
            found = conn.execute(q.order_by(date.desc(), table.c.id.desc()).limit(1)).scalar()
            return None if found is None else int(found)

        if s.drive is not None and (i := newest(t.drives, t.drives.c.start_date, True)):
            refs.drives[s.drive.ref] = i
        cp = t.charging_processes
        if s.charge is not None and (i := newest(cp, cp.c.start_date, True)):
            refs.charges[s.charge.ref] = i
        if s.update is not None and (i := newest(t.updates, t.updates.c.start_date, True)):
            refs.updates[s.update.ref] = i
        if s.state_row is not None and (i := newest(t.states, t.states.c.start_date)):
            refs.states[s.state_row.ref] = i
        self.logbook.refs = refs

    def finish(self, conn: sa.Connection) -> None:
        """The history ends here: close what is open at the last row's time."""
        end = self.last_at
        if end is None:
            return
        refs, book = self.logbook.refs, self.logbook
        for drive_id in refs.drives.values():
            close_drive(conn, self.car_id, drive_id, book.places)
        for process_id in refs.charges.values():
            close_charge(conn, self.car_id, process_id, end, book.costs)
            recalculate_efficiency(conn, self.car_id)
        for update_id in refs.updates.values():
            conn.execute(
                sa.update(t.updates)
                .where(t.updates.c.id == update_id)
                .values(end_date=db_time(end))
            )
        for state_id in refs.states.values():
            conn.execute(
                sa.update(t.states)
                .where(t.states.c.id == state_id, t.states.c.start_date <= db_time(end))
                .values(end_date=db_time(end))
            )
        self.logbook.refs = Refs()
