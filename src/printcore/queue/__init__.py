"""The self-service printer queue (issue 3, in progress): printer and ticket state machines.

Not yet exported from :mod:`printcore`; the entities, services, sweep and adapters follow.
"""

from printcore.queue.machines import (
    PRINTER_EVENTS,
    TICKET_EVENTS,
    PrinterMachine,
    TicketMachine,
    fire_printer,
    fire_ticket,
)

__all__ = [
    "PRINTER_EVENTS",
    "TICKET_EVENTS",
    "PrinterMachine",
    "TicketMachine",
    "fire_printer",
    "fire_ticket",
]
