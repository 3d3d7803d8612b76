"""The self-service queue's two state machines, bound to their entities' ``status``.

Printer (DESIGN.md, "Printer queue")::

    idle ──offer──▶ offered ──claim──▶ claimed ──start──▶ printing ──finish──▶ idle
      ▲               │ lapse            │ release                │ offer (predicted end
      └───────────────┴──────────────────┘                         ▼  passed, print unclosed)
    any ──take_out──▶ out_of_service ──put_back──▶ idle          offered

    lapse/release/put_back go to ``printing`` instead of ``idle`` while the previous print on
    the printer is still unclosed (the entity's ``has_open_print``).

Ticket::

    queued ──offer──▶ offered ──claim──▶ claimed ──start──▶ printing ──close──▶ done
      ▲                 │ miss (back in the queue)  │ miss / release (notdone)
      └─────────────────┴───────────────────────────┘
    queued/offered/claimed ──cancel──▶ cancelled;  offered/claimed ──expire──▶ expired

Both are python-statemachine ``StateMachine`` classes (never ``StateChart``, which
ignores illegal events); restore from the stored status, never with ``start_value``.
An event not allowed raises :class:`~printcore.errors.InvalidTransitionError` through
:func:`fire_printer` / :func:`fire_ticket`, and the entity is unchanged.
"""

from __future__ import annotations

import functools
from typing import Any

from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

from printcore.errors import InvalidTransitionError

__all__ = ["PrinterMachine", "TicketMachine", "fire_printer", "fire_ticket", "fire_with_machine"]


class PrinterMachine(StateMachine):
    """A printer's availability. ``printing`` may be offered again once its predicted end
    has passed, while the print on it is still unclosed (the service checks the time)."""

    validate_final_reachability = False  # printers live forever: no final state

    idle = State("Idle", initial=True, value="idle")
    offered = State("Offered", value="offered")
    claimed = State("Claimed", value="claimed")
    printing = State("Printing", value="printing")
    out_of_service = State("Out of service", value="out_of_service")

    offer = idle.to(offered) | printing.to(offered)
    # Losing the holder: back to printing while the previous print is still unclosed.
    lapse = offered.to(printing, cond="has_open_print") | offered.to(idle)
    claim = idle.to(claimed) | offered.to(claimed)
    release = claimed.to(printing, cond="has_open_print") | claimed.to(idle)
    start = claimed.to(printing)
    finish = printing.to(idle)
    take_out = (
        idle.to(out_of_service)
        | offered.to(out_of_service)
        | claimed.to(out_of_service)
        | printing.to(out_of_service)
    )
    # Back in service: printing again while the print left on the bed is unclosed.
    put_back = out_of_service.to(printing, cond="has_open_print") | out_of_service.to(idle)


class TicketMachine(StateMachine):
    """A member's place in the queue."""

    queued = State("Queued", initial=True, value="queued")
    offered = State("Offered", value="offered")
    claimed = State("Claimed", value="claimed")
    printing = State("Printing", value="printing")
    done = State("Done", final=True, value="done")
    cancelled = State("Cancelled", final=True, value="cancelled")
    expired = State("Expired", final=True, value="expired")

    offer = queued.to(offered)
    claim = queued.to(claimed) | offered.to(claimed)
    miss = offered.to(queued) | claimed.to(queued)
    release = claimed.to(queued)
    start = claimed.to(printing)
    close = printing.to(done)
    cancel = queued.to(cancelled) | offered.to(cancelled) | claimed.to(cancelled)
    expire = offered.to(expired) | claimed.to(expired)


PRINTER_EVENTS: tuple[str, ...] = (
    "offer", "lapse", "claim", "release", "start", "finish", "take_out", "put_back",
)
TICKET_EVENTS: tuple[str, ...] = (
    "offer", "claim", "miss", "release", "start", "close", "cancel", "expire",
)


@functools.cache
def _table(machine_cls: type[StateMachine]) -> dict[tuple[str, str], tuple[tuple[str, tuple[str, ...]], ...]]:
    """The machine's transitions as ``{(state, event): ((target, cond names), ...)}``, read
    once from the class (in declaration order, as the library tries them). The queue's
    machines have no actions, only conditions naming a property of the entity, so firing
    from this table is what ``machine_cls(model=entity).send(event)`` does, without
    building a machine per call (about 1 ms each: it dominated a sweep's time)."""
    table: dict[tuple[str, str], list[tuple[str, tuple[str, ...]]]] = {}
    for state in machine_cls.states:
        for transition in state.transitions:
            conds = tuple(str(c) for c in transition.cond)
            table.setdefault((state.value, transition.event), []).append(
                (transition.target.value, conds))
    return {key: tuple(found) for key, found in table.items()}


def _holds(entity: Any, cond: str) -> bool:
    value = getattr(entity, cond)
    return bool(value() if callable(value) else value)


def _fire(machine_cls: type[StateMachine], entity: Any, event: str, what: str) -> None:
    for target, conds in _table(machine_cls).get((entity.status, event), ()):
        if all(_holds(entity, c) for c in conds):
            entity.status = target
            return
    state = str(entity.status).replace("_", " ")
    raise InvalidTransitionError(
        event, entity.status, f"Cannot {event.replace('_', ' ')} while the {what} is {state}.")


def fire_with_machine(machine_cls: type[StateMachine], entity: Any, event: str) -> None:
    """Fire through a python-statemachine instance bound to ``entity`` (the reference
    :func:`fire_printer` / :func:`fire_ticket` are tested against). Raises
    InvalidTransitionError."""
    machine = machine_cls(model=entity, state_field="status")
    try:
        machine.send(event)
    except TransitionNotAllowed:
        raise InvalidTransitionError(event, entity.status, f"Cannot {event}.") from None


def fire_printer(printer: Any, event: str) -> None:
    """Apply ``event`` to a printer's ``status``. Raises InvalidTransitionError."""
    if event not in PRINTER_EVENTS:
        raise InvalidTransitionError(event, printer.status, f"Unknown printer action {event!r}.")
    _fire(PrinterMachine, printer, event, "printer")


def fire_ticket(ticket: Any, event: str) -> None:
    """Apply ``event`` to a ticket's ``status``. Raises InvalidTransitionError."""
    if event not in TICKET_EVENTS:
        raise InvalidTransitionError(event, ticket.status, f"Unknown ticket action {event!r}.")
    _fire(TicketMachine, ticket, event, "ticket")
