"""The queue's refusals worded for Discord members: slash commands, and times as the lab's
clock shows them with Discord's relative-time markup beside (issue 14, defect 3).

:func:`refusal` takes any printcore error: a queue refusal (its ``reason`` is a key of
:data:`printcore.queue.refusals.REFUSALS`) gets the words below; any other error keeps
its own message, which names no front end's commands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from discord.utils import escape_markdown, escape_mentions, format_dt

from printcore.errors import PrintcoreError
from printcore.queue.refusals import lab_time

__all__ = ["WORDS", "refusal"]


def _clean(text: object) -> str:
    return escape_mentions(escape_markdown(str(text)))


def _at(moment: datetime, timezone: str) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{lab_time(moment, timezone)} ({format_dt(moment, 'R')})"


def _state(value: object) -> str:
    return str(value or "").replace("_", " ")


_Words = Callable[[Mapping[str, Any], str], str]

#: reason → words(details, lab timezone).
WORDS: Mapping[str, _Words] = {
    "job_name_required": lambda d, z: "Name the job you want to print: /join job est_time.",
    "estimate_out_of_range": lambda d, z: (
        "The estimate must be between 1 minute and 7 days, like 45m or 2h30m."),
    "remaining_out_of_range": lambda d, z: (
        "The remaining time must be between 1 minute and 7 days, like 20m or 1h."),
    "already_queued": lambda d, z: (
        f"You are already in the queue with ticket #{d['ticket']} ({_clean(d['job'])}, "
        f"{_state(d['status'])}); /cancel it first, or /update_time to change its estimate."),
    "offered_other_printer": lambda d, z: (
        f"{d['offered']} was offered to you, not {d['asked']}: /claim {d['offered']}."),
    "claim_window_ended": lambda d, z: (
        f"Your claim window for {d['printer']} has ended; it goes to the next member and you "
        "stay in the queue just behind them. /status shows your place."),
    "printer_busy": lambda d, z: (
        f"{d['printer']} is {_state(d['printer_status'])}; wait for an offer, or /status to "
        "see which printer is free."),
    "not_your_turn": lambda d, z: (
        f"It is not your turn yet (you are number {d['position']}): /status shows your place "
        "and ETA."),
    "lab_closed": lambda d, z: (
        f"The lab is closed; claims open again at {_at(d['opens_at'], z)}."),
    "already_holding": lambda d, z: (
        f"Your ticket is already {_state(d['status'])} on {d['printer']}."),
    "outcome_required": lambda d, z: "Say how the print ended: finished or failed.",
    "photo_required": lambda d, z: (
        "Attach a photo of the failed print: /close printer failed photo:<image>."),
    "no_open_print": lambda d, z: f"There is no open print on {d['printer']} to close.",
    "not_your_print": lambda d, z: (
        f"Only the member who printed on {d['printer']}, or whoever claimed it now, can "
        "/close its print."),
    "end_given_twice": lambda d, z: (
        "Give finished_at (when it ended) or took (how long it took), not both."),
    "finished_at_out_of_range": lambda d, z: (
        f"The end you gave is not between the start ({_at(d['started_at'], z)}) and now: "
        "give finished_at as a time like 23:10, or took: as a duration like 58m."),
    "claim_first": lambda d, z: (
        "Claim your printer first (/claim printer), then /report started."),
    "close_previous_first": lambda d, z: (
        f"Close the previous print on {d['printer']} first: /close {d['printer']} finished "
        "(or failed, with a photo)."),
    "start_window_ended": lambda d, z: (
        f"Your start window on {d['printer']} has ended; the printer goes to the next "
        "member."),
    "notdone_not_claimed": lambda d, z: (
        "/notdone is for the member who claimed a printer whose previous print is still "
        "running."),
    "notdone_nothing_running": lambda d, z: (
        f"No previous print is open on {d['printer']}: /report started, or /cancel."),
    "no_ticket": lambda d, z: "You have no ticket in the queue; /join first.",
    "print_started": lambda d, z: (
        "Your print has started, so it cannot be cancelled; /close it when it ends."),
    "nothing_to_release": lambda d, z: (
        f"{d['printer']} has no holder and no open print: nothing to release."),
}


def refusal(err: PrintcoreError, timezone: str) -> str:
    """The reply to ``err`` for a Discord member (``timezone``: the lab's IANA zone)."""
    words = WORDS.get(err.reason)
    if words is None:
        return err.message
    try:
        return words(err.details, timezone)
    except (KeyError, TypeError, ValueError):  # details not as documented: the message
        return err.message
