"""Printer and ticket machines: every state × every event against the table in
printcore/queue/machines.py; refused events raise InvalidTransitionError and change nothing."""

from __future__ import annotations

import attrs
import pytest

from printcore.errors import InvalidTransitionError
from printcore.queue import (
    PRINTER_EVENTS,
    TICKET_EVENTS,
    PrinterMachine,
    TicketMachine,
    fire_printer,
    fire_ticket,
)


@attrs.define
class Thing:
    status: str
    has_open_print: bool = False


PRINTER_TABLE = {
    ("idle", "offer"): "offered", ("printing", "offer"): "offered",
    ("offered", "lapse"): "idle",
    ("idle", "claim"): "claimed", ("offered", "claim"): "claimed",
    ("claimed", "release"): "idle", ("claimed", "start"): "printing",
    ("printing", "finish"): "idle",
    ("idle", "take_out"): "out_of_service", ("offered", "take_out"): "out_of_service",
    ("claimed", "take_out"): "out_of_service", ("printing", "take_out"): "out_of_service",
    ("out_of_service", "put_back"): "idle",
}

TICKET_TABLE = {
    ("queued", "offer"): "offered",
    ("queued", "claim"): "claimed", ("offered", "claim"): "claimed",
    ("offered", "miss"): "queued", ("claimed", "miss"): "queued",
    ("claimed", "release"): "queued", ("claimed", "start"): "printing",
    ("printing", "close"): "done",
    ("queued", "cancel"): "cancelled", ("offered", "cancel"): "cancelled",
    ("claimed", "cancel"): "cancelled",
    ("offered", "expire"): "expired", ("claimed", "expire"): "expired",
}

PRINTER_STATES = [s.value for s in PrinterMachine.states]
TICKET_STATES = [s.value for s in TicketMachine.states]


@pytest.mark.parametrize("state", PRINTER_STATES)
@pytest.mark.parametrize("event", PRINTER_EVENTS)
def test_printer_state_by_event(state: str, event: str) -> None:
    printer = Thing(state)
    expected = PRINTER_TABLE.get((state, event))
    if expected is None:
        with pytest.raises(InvalidTransitionError) as err:
            fire_printer(printer, event)
        assert printer.status == state and err.value.state == state
        assert "printer" in str(err.value)
    else:
        fire_printer(printer, event)
        assert printer.status == expected


@pytest.mark.parametrize("state", TICKET_STATES)
@pytest.mark.parametrize("event", TICKET_EVENTS)
def test_ticket_state_by_event(state: str, event: str) -> None:
    ticket = Thing(state)
    expected = TICKET_TABLE.get((state, event))
    if expected is None:
        with pytest.raises(InvalidTransitionError):
            fire_ticket(ticket, event)
        assert ticket.status == state
    else:
        fire_ticket(ticket, event)
        assert ticket.status == expected


def test_final_ticket_states_never_move() -> None:
    for state in ("done", "cancelled", "expired"):
        for event in TICKET_EVENTS:
            ticket = Thing(state)
            with pytest.raises(InvalidTransitionError):
                fire_ticket(ticket, event)


def test_unknown_events_are_refused() -> None:
    with pytest.raises(InvalidTransitionError):
        fire_printer(Thing("idle"), "explode")
    with pytest.raises(InvalidTransitionError):
        fire_ticket(Thing("queued"), "teleport")


def test_losing_the_holder_returns_to_printing_while_a_print_is_unclosed() -> None:
    for state, event in (("offered", "lapse"), ("claimed", "release"),
                         ("out_of_service", "put_back")):
        printer = Thing(state, has_open_print=True)
        fire_printer(printer, event)
        assert printer.status == "printing"


@pytest.mark.parametrize("open_print", [False, True])
def test_firing_from_the_table_is_what_the_state_machine_does(open_print: bool) -> None:
    """fire_printer / fire_ticket use a table read from the python-statemachine classes;
    for every state, every event (known or not) and both values of the printer's
    condition, they give the same status or refuse like a machine instance does."""
    from printcore.errors import InvalidTransitionError
    from printcore.queue.machines import (
        PRINTER_EVENTS,
        TICKET_EVENTS,
        PrinterMachine,
        TicketMachine,
        fire_printer,
        fire_ticket,
        fire_with_machine,
    )

    for cls, fire, events in ((PrinterMachine, fire_printer, PRINTER_EVENTS),
                              (TicketMachine, fire_ticket, TICKET_EVENTS)):
        for state in cls.states:
            for event in events:
                fast, slow = _Entity(state.value, open_print), _Entity(state.value, open_print)
                try:
                    fire(fast, event)
                except InvalidTransitionError:
                    fast.status = "refused"
                try:
                    fire_with_machine(cls, slow, event)
                except InvalidTransitionError:
                    slow.status = "refused"
                assert fast.status == slow.status, (cls.__name__, state.value, event)


class _Entity:
    def __init__(self, status: str, open_print: bool) -> None:
        self.status = status
        self._open = open_print

    @property
    def has_open_print(self) -> bool:
        return self._open
