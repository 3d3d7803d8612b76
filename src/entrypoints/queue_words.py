"""The queue's refusals worded for the command line: ``printcore queue …`` commands, and
times in the lab's zone (issue 14, defect 3).

:func:`refusal` takes any printcore error: a queue refusal (its ``reason`` is a key of
:data:`printcore.queue.refusals.REFUSALS`) gets the words below, which name the member
the command was run for (``member``, as typed); any other error keeps its own message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from printcore.errors import PrintcoreError
from printcore.queue.refusals import lab_time

__all__ = ["WORDS", "refusal"]

Q = "printcore queue"


def _state(value: object) -> str:
    return str(value or "").replace("_", " ")


_Words = Callable[[Mapping[str, Any], str, str], str]

#: reason → words(details, member, lab timezone).
WORDS: Mapping[str, _Words] = {
    "job_name_required": lambda d, m, z: (
        f"Name the job to print: {Q} join {m} JOB EST (e.g. {Q} join {m} bracket 1h30m)."),
    "estimate_out_of_range": lambda d, m, z: (
        "The estimate must be between 1 minute and 7 days, like 45m or 2h30m."),
    "remaining_out_of_range": lambda d, m, z: (
        "The remaining time must be between 1 minute and 7 days, like 20m or 1h."),
    "already_queued": lambda d, m, z: (
        f"{m} is already in the queue with ticket #{d['ticket']} ({d['job']!r}, "
        f"{_state(d['status'])}): '{Q} cancel {m}' first, or '{Q} update-time {m} EST' to "
        "change its estimate."),
    "offered_other_printer": lambda d, m, z: (
        f"{d['offered']} was offered to {m}, not {d['asked']}: "
        f"{Q} claim {m} {d['offered']}"),
    "claim_window_ended": lambda d, m, z: (
        f"{m}'s claim window for {d['printer']} has ended; it goes to the next member and "
        f"{m} stays in the queue just behind them ('{Q} status' shows the queue)."),
    "printer_busy": lambda d, m, z: (
        f"{d['printer']} is {_state(d['printer_status'])}; wait for an offer "
        f"('{Q} status' shows which printer is free)."),
    "not_your_turn": lambda d, m, z: (
        f"It is not {m}'s turn yet ({m} is number {d['position']}); '{Q} status' shows the "
        "queue with ETAs."),
    "lab_closed": lambda d, m, z: (
        f"The lab is closed; claims open again at {lab_time(d['opens_at'], z)}."),
    "already_holding": lambda d, m, z: (
        f"{m}'s ticket is already {_state(d['status'])} on {d['printer']}."),
    "outcome_required": lambda d, m, z: "Say how the print ended: finished or failed.",
    "photo_required": lambda d, m, z: (
        f"A failed print needs a photo: {Q} close {m} PRINTER failed --photo URL"),
    "no_open_print": lambda d, m, z: f"There is no open print on {d['printer']} to close.",
    "not_your_print": lambda d, m, z: (
        f"Only the member who printed on {d['printer']}, or whoever claimed it now, can close "
        "its print."),
    "end_given_twice": lambda d, m, z: (
        "Give --finished-at (when it ended) or --took (how long it took), not both."),
    "finished_at_out_of_range": lambda d, m, z: (
        f"The end given is not between the print's start ({lab_time(d['started_at'], z)}) "
        "and now: give --finished-at as a time like 23:10 (lab time) or --took as a "
        "duration like 58m."),
    "claim_first": lambda d, m, z: (
        f"{m} has not claimed a printer: {Q} claim {m} PRINTER, then {Q} start {m}"),
    "close_previous_first": lambda d, m, z: (
        f"Close the previous print on {d['printer']} first: "
        f"{Q} close {m} {d['printer']} finished (or failed --photo URL)"),
    "start_window_ended": lambda d, m, z: (
        f"{m}'s start window on {d['printer']} has ended; the printer goes to the next "
        "member."),
    "notdone_not_claimed": lambda d, m, z: (
        f"'{Q} notdone' is for the member who claimed a printer whose previous print is "
        f"still running; {m}'s ticket is {_state(d['status'])}."),
    "notdone_nothing_running": lambda d, m, z: (
        f"No previous print is open on {d['printer']}: {Q} start {m}, or {Q} cancel {m}"),
    "no_ticket": lambda d, m, z: (
        f"{m} has no ticket in the queue: {Q} join {m} JOB EST"),
    "print_started": lambda d, m, z: (
        f"{m}'s print has started, so it cannot be cancelled; close it when it ends: "
        f"{Q} close {m} {d['printer']} finished"),
    "nothing_to_release": lambda d, m, z: (
        f"{d['printer']} has no holder and no open print: nothing to release."),
}


def refusal(err: PrintcoreError, member: str | None, timezone: str) -> str:
    """The message for ``err`` on the command line. ``member`` is the MEMBER argument
    (None for commands without one: ``MEMBER`` is shown); ``timezone`` the lab's IANA
    zone."""
    words = WORDS.get(err.reason)
    if words is None:
        return err.message
    try:
        return words(err.details, member or "MEMBER", timezone)
    except (KeyError, TypeError, ValueError):
        return err.message
