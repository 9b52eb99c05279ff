"""docs/machine.md shows the diagram of the current transition table."""

from __future__ import annotations

from fleetlog.vehicle import diagram
from fleetlog.vehicle.machine import TRANSITIONS


def test_machine_doc_diagram_is_current() -> None:
    assert diagram.main(["--check"]) == 0, "run: python -m fleetlog.vehicle.diagram"


def test_every_transition_is_drawn() -> None:
    drawn = diagram.mermaid()
    for (frm, trigger), to in TRANSITIONS.items():
        assert f"{frm.value} --> {to.value}:" in drawn
        assert trigger.value in drawn
