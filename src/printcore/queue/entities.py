"""Printers and tickets of the self-service queue (DESIGN.md, "Printer queue").

Members are identified by ``member`` (a stable id: the Discord user id, or a local name
for the CLI) and shown by ``member_name``. Times are timezone-aware UTC; durations are
whole minutes.
"""

from __future__ import annotations

from datetime import datetime

import attrs

__all__ = ["OPEN_TICKET_STATUSES", "Printer", "Ticket"]

#: Ticket states that hold a place in the queue or on a printer.
OPEN_TICKET_STATUSES: tuple[str, ...] = ("queued", "offered", "claimed", "printing")


@attrs.define
class Printer:
    """One of the lab's self-service printers (configured by name; no address needed).

    ``holder_ticket``/``holder``: the ticket and member the printer is offered to or
    claimed by. ``print_ticket``/``print_member``: the print on the bed that is not closed
    yet, with ``started_at`` and ``predicted_end``. ``claim_deadline`` ends the claim
    window of an offer, ``start_deadline`` the start window of a claim.
    ``offer_not_before``: no new offer before this time (set by ``notdone``).
    ``live_*``: the last state the printer itself reported (issue 15;
    :class:`printcore.queue.printer_status.PrinterLiveState`), None for a printer only
    members report on. ``print_key`` names the open print as the printer knows it,
    ``last_print_key`` the last one closed (a repeated report changes nothing).
    ``unclaimed_since``: the printer reported a print nobody in the queue claimed.
    """

    name: str
    label: str = ""
    id: int | None = None
    status: str = "idle"
    version: int = 0
    holder_ticket: int | None = None
    holder: str | None = None
    claim_deadline: datetime | None = None
    start_deadline: datetime | None = None
    print_ticket: int | None = None
    print_member: str | None = None
    started_at: datetime | None = None
    predicted_end: datetime | None = None
    offer_not_before: datetime | None = None
    # What a watched printer last reported (issue 15): see PrinterLiveState.
    live_state: str | None = None
    live_at: datetime | None = None
    live_percent: int | None = None
    live_layer: int | None = None
    live_total_layers: int | None = None
    live_remaining_minutes: int | None = None
    live_file: str | None = None
    live_error: str | None = None
    print_key: str | None = None
    last_print_key: str | None = None
    unclaimed_since: datetime | None = None

    @property
    def watched(self) -> bool:
        """The printer reports for itself (a printer-status source has heard from it)."""
        return self.live_state is not None

    @property
    def has_open_print(self) -> bool:
        """A previous print is on the bed and not closed (finished/failed) yet."""
        return self.print_ticket is not None


@attrs.define
class Ticket:
    """A member's place in the queue.

    ``queue_key`` orders the queue (lowest first): the join time as a UTC timestamp, moved
    behind the next member after a missed window. ``misses`` counts missed windows in a
    row (a second one expires the ticket). ``est_minutes`` is the member's estimate;
    ``outcome`` is ``finished`` or ``failed`` (with ``photo_url``).

    How long a print took is *known* only when someone said when it ended or the printer
    reported it: then ``ended_at`` is that end, ``ended_by`` who said so (``member``,
    ``printer``, ``staff``) and ``actual_minutes`` = end − start. Otherwise
    ``bound_minutes`` = close − start is an upper bound (the print may have finished
    hours before someone closed it) and ``actual_minutes`` is None.
    """

    member: str
    member_name: str
    job_name: str
    est_minutes: int
    created_at: datetime
    queue_key: float
    id: int | None = None
    status: str = "queued"
    version: int = 0
    printer: str | None = None
    offered_at: datetime | None = None
    claimed_at: datetime | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None
    outcome: str | None = None
    actual_minutes: int | None = None
    photo_url: str | None = None
    misses: int = 0
    ended_at: datetime | None = None
    ended_by: str | None = None
    bound_minutes: int | None = None

    @property
    def duration_known(self) -> bool:
        return self.actual_minutes is not None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_TICKET_STATUSES
