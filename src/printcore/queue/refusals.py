"""Why the queue refuses a command: the reasons its errors carry, and the lab-zone time
the domain's own messages use (issue 14, defect 3).

Every refusal of :class:`printcore.queue.service.QueueService` is a printcore error
(``NotFoundError``, ``InvalidTransitionError``, ``ValidationError``) whose ``reason`` is a
key of :data:`REFUSALS` and whose ``details`` hold the keys listed there: printer names
(``str``), ticket ids (``int``), states (``str``), positions (``int``, 1-based), datetimes
(timezone-aware UTC). The error's message is the domain's wording: it names no front
end's commands (no ``/claim``, no ``printcore queue claim``, no buttons) and gives times
in the lab's zone (:func:`lab_time`). Each front end words each reason for its readers:
slash commands on Discord (``adapters.discord.refusals``), ``printcore queue …`` on the
command line (``entrypoints.queue_words``); a test checks that both word every reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

__all__ = ["REFUSALS", "lab_time"]

#: reason → the keys of its ``details``.
REFUSALS: Mapping[str, tuple[str, ...]] = {
    # join / update_time / notdone input
    "job_name_required": (),
    "estimate_out_of_range": (),
    "remaining_out_of_range": (),
    "already_queued": ("ticket", "job", "status"),
    # claim
    "offered_other_printer": ("offered", "asked"),
    "claim_window_ended": ("printer",),
    "printer_busy": ("printer", "printer_status"),
    "not_your_turn": ("position",),
    "lab_closed": ("opens_at",),
    "already_holding": ("status", "printer"),
    # close
    "outcome_required": (),
    "photo_required": (),
    "no_open_print": ("printer",),
    "not_your_print": ("printer",),
    "end_given_twice": (),
    "finished_at_out_of_range": ("started_at", "closed_at"),
    # report started
    "claim_first": ("status",),
    "close_previous_first": ("printer",),
    "start_window_ended": ("printer",),
    # notdone
    "notdone_not_claimed": ("status",),
    "notdone_nothing_running": ("printer",),
    # any member command
    "no_ticket": (),
    # cancel
    "print_started": ("printer",),
    # staff
    "nothing_to_release": ("printer",),
}


def lab_time(moment: datetime, timezone: str) -> str:
    """``moment`` (aware; naive is read as UTC) as the lab's clock shows it, e.g.
    ``Tue 01 Dec 09:00 CST`` for ``timezone="America/Chicago"`` (an IANA name)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(timezone)).strftime("%a %d %b %H:%M %Z")
