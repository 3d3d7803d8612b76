"""The text of the bot's replies and notices: printcore results in Discord markup.

Times use Discord timestamp markup (``<t:UNIX:t>`` short time, ``<t:UNIX:R>`` relative),
which every member's client renders in their own time zone; printcore's datetimes are
UTC (a naive one is read as UTC). Durations are shown like ``1h 30m``
(:func:`printcore.queue.durations.format_duration`). Text members typed (job names, display
names) is escaped so it cannot format the message or mention anyone. Every function
returns at most :data:`MAX_MESSAGE` characters, Discord's limit for message content.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from discord.utils import escape_markdown, escape_mentions, format_dt

from printcore.queue.durations import format_duration
from printcore.queue.entities import Printer, Ticket
from printcore.queue.ports import QueueNotice
from printcore.queue.printer_status import live_summary
from printcore.queue.service import Placement, Prediction, StatusPage
from printcore.slicing import SliceEstimate

__all__ = [
    "MAX_MESSAGE",
    "UNEXPECTED",
    "cancelled",
    "claimed",
    "closed",
    "history",
    "joined",
    "myjobs",
    "notdone",
    "notice_body",
    "prediction",
    "started",
    "status",
    "status_page",
    "time_updated",
    "when",
]

#: Discord's limit on a message's content, in characters.
MAX_MESSAGE = 2000

#: The reply to an error that is not a printcore error (a bug, the database down, ...).
UNEXPECTED = (
    "Something went wrong on our side and staff have been told. "
    "Check /myjobs to see whether your command went through before trying again."
)

#: Most lines in a list reply (/status queue, /myjobs, /history).
MAX_LINES = 15


def clean(text: str) -> str:
    """User-typed ``text`` made inert: no markdown, no mentions."""
    return escape_mentions(escape_markdown(text))


def when(moment: datetime) -> str:
    """``<t:…:t> (<t:…:R>)``: the time, then how far away it is, in the reader's zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{format_dt(moment, 't')} ({format_dt(moment, 'R')})"


def minutes(value: int | float) -> str:
    return format_duration(timedelta(minutes=value))


def _job(ticket: Ticket) -> str:
    return f"#{ticket.id} *{clean(ticket.job_name)}*"


def _fit(lines: Sequence[str], more: int = 0) -> str:
    """Join ``lines``, dropping the last ones (and saying so) to stay within MAX_MESSAGE."""
    kept = list(lines)
    dropped = more
    while True:
        tail = [f"…and {dropped} more."] if dropped else []
        text = "\n".join([*kept, *tail])
        if len(text) <= MAX_MESSAGE or not kept:
            return text[:MAX_MESSAGE]
        kept.pop()
        dropped += 1


# --- member commands --------------------------------------------------------------------


def joined(placement: Placement, printer: Printer | None = None,
           estimate: SliceEstimate | None = None, typed: bool = False) -> str:
    """Reply to /join. ``printer``: the printer offered at once, if any; ``estimate``: the
    slicer's figures when a sliced file was attached (``typed``: est_time overrode it)."""
    ticket = placement.ticket
    lines = [f"You joined the queue with {_job(ticket)}, estimated {minutes(ticket.est_minutes)}."]
    if estimate is not None and estimate.seconds is not None:
        slicer = f" ({clean(estimate.slicer)})" if estimate.slicer else ""
        said = format_duration(timedelta(seconds=estimate.seconds))
        if typed:
            lines.append(f"The slicer{slicer} said {said}; your est_time is used instead.")
        else:
            lines.append(f"Estimate read from your sliced file{slicer}: {said}.")
    lines.append(_place(placement, printer))
    return _fit(lines)


def _place(placement: Placement, printer: Printer | None = None) -> str:
    ticket = placement.ticket
    if ticket.status == "offered" and ticket.printer:
        deadline = (f" before {when(printer.claim_deadline)}"
                    if printer is not None and printer.claim_deadline else " now")
        return f"**{ticket.printer}** is yours: `/claim {ticket.printer}`{deadline}."
    if ticket.status == "claimed" and ticket.printer:
        return f"You hold **{ticket.printer}**; `/report started` once your print runs."
    if ticket.status == "printing" and ticket.printer:
        return f"Your print is running on **{ticket.printer}**."
    eta = (f"predicted start {when(placement.eta)}" if placement.eta
           else "no printer is in service, so there is no start time yet")
    return f"You are #{placement.position} in the queue; {eta}. You will be pinged."


def claimed(ticket: Ticket, printer: Printer | None) -> str:
    """Reply to /claim; ``printer`` as it is now (for the start deadline, open print)."""
    name = ticket.printer or (printer.name if printer else "the printer")
    lines = [f"**{name}** is yours for {_job(ticket)}."]
    if printer is not None and printer.has_open_print:
        lines.append(
            f"The previous print is still on it: `/close {name} finished` (or `failed` with "
            f"a photo) once it is off the bed, or `/notdone` if it is still running.")
    deadline = (f" before {when(printer.start_deadline)}"
                if printer is not None and printer.start_deadline else "")
    lines.append(f"Start your print and `/report started`{deadline}.")
    return _fit(lines)


def took(ticket: Ticket, word: str = "after") -> str:
    """`` after 58m`` when the duration is known, `` after at most 11h 13m (end not
    given)`` for an upper bound, else empty."""
    if ticket.actual_minutes:
        return f" {word} {minutes(ticket.actual_minutes)}"
    if ticket.bound_minutes:
        return f" {word} at most {minutes(ticket.bound_minutes)} (end not given)"
    return ""


def closed(ticket: Ticket, printer_name: str) -> str:
    lines = [f"Closed {_job(ticket)} on **{printer_name}** as {ticket.outcome}"
             f"{took(ticket)}. Thank you!"]
    if not ticket.duration_known and ticket.bound_minutes:
        lines.append("If you know when it ended, `/close` takes `finished_at:` (e.g. 23:10) "
                     "or `took:` (e.g. 58m) next time: predictions learn only from known "
                     "times.")
    return _fit(lines)


def started(ticket: Ticket) -> str:
    end = ""
    if ticket.started_at is not None:
        end = f"; predicted end {when(ticket.started_at + timedelta(minutes=ticket.est_minutes))}"
    return _fit([f"Printing {_job(ticket)} on **{ticket.printer}**{end}. When it is done: "
                 f"`/close {ticket.printer} finished` (or `failed` with a photo)."])


def notdone(placement: Placement | None) -> str:
    lines = ["Noted: the previous print is still running. The printer is released and you "
             "keep your place at the head of the queue; you will be pinged with the next offer."]
    if placement is not None and placement.eta is not None:
        lines.append(f"Predicted start: {when(placement.eta)}.")
    return _fit(lines)


def cancelled(ticket: Ticket) -> str:
    return _fit([f"Cancelled {_job(ticket)}. `/join` again whenever you are ready."])


def time_updated(placement: Placement) -> str:
    ticket = placement.ticket
    return _fit([f"{_job(ticket)} is now estimated at {minutes(ticket.est_minutes)}.",
                 _place(placement)])


# --- queries ----------------------------------------------------------------------------


def _printer_line(printer: Printer, holders: dict[int, Ticket]) -> str:
    label = f" ({clean(printer.label)})" if printer.label else ""
    holder = holders.get(printer.holder_ticket or -1)
    who = clean(holder.member_name) if holder else "a member"
    if printer.status == "offered":
        until = f" until {when(printer.claim_deadline)}" if printer.claim_deadline else ""
        state = f"offered to {who}{until}"
    elif printer.status == "claimed":
        by = f", start by {when(printer.start_deadline)}" if printer.start_deadline else ""
        state = f"claimed by {who}{by}"
    elif printer.status == "printing":
        state = "printing"
    else:
        state = printer.status.replace("_", " ")
    if printer.has_open_print and printer.predicted_end is not None:
        state += f"; print predicted to end {when(printer.predicted_end)}"
    elif printer.has_open_print:
        state += "; previous print not closed yet"
    if printer.unclaimed_since is not None and printer.status == "idle":
        state = (f"busy with a print nobody claimed (since {when(printer.unclaimed_since)}); "
                 "not offered until it ends")
    elif printer.unclaimed_since is not None:
        state += f"; running a print nobody claimed (since {when(printer.unclaimed_since)})"
    if printer.live_state is not None:
        state += f" — the printer says: {live_words(printer)}"
    return f"**{printer.name}**{label}: {state}"


def live_words(printer: Printer) -> str:
    """What the printer last reported, in words (``printcore.queue.printer_status``)."""
    return live_summary(printer)


def status_page(page: StatusPage) -> str:
    """Reply to /status from :meth:`QueueService.status_page` (the first queued only)."""
    return status(page.printers, page.placements, waiting=page.waiting)


def status(printers: Sequence[Printer], placements: Sequence[Placement],
           waiting: int | None = None) -> str:
    """Reply to /status: each printer's state, then the queue in order with ETAs.
    ``waiting``: how many are queued in all, when ``placements`` hold only the first."""
    holders = {p.ticket.id: p.ticket for p in placements if p.ticket.id is not None}
    lines = ["__Printers__"]
    lines += [_printer_line(p, holders) for p in printers] or ["No printers are configured."]
    queued = sorted((p for p in placements if p.ticket.status == "queued"),
                    key=lambda p: p.position)
    total = len(queued) if waiting is None else waiting
    lines.append(f"__Queue__ ({total} waiting)")
    if not queued:
        lines.append("Nobody is waiting: `/join` to be offered the next free printer.")
    shown = queued[:MAX_LINES]
    for p in shown:
        eta = f", ETA {when(p.eta)}" if p.eta else ""
        lines.append(f"{p.position}. {clean(p.ticket.member_name)}: *{clean(p.ticket.job_name)}* "
                     f"({minutes(p.ticket.est_minutes)}){eta}")
    return _fit(lines, more=total - len(shown))


def _ticket_line(ticket: Ticket) -> str:
    where = f" on {ticket.printer}" if ticket.printer else ""
    line = f"{_job(ticket)}: {ticket.status}{where}, estimated {minutes(ticket.est_minutes)}"
    if ticket.outcome:
        line += f"; {ticket.outcome}"
    return line + took(ticket)


def myjobs(tickets: Sequence[Ticket]) -> str:
    """Reply to /myjobs: the member's tickets, newest first."""
    if not tickets:
        return "You have no tickets yet: `/join job est_time` to queue a print."
    shown = tickets[:MAX_LINES]
    return _fit(["__Your tickets__", *(_ticket_line(t) for t in shown)],
                more=len(tickets) - len(shown))


def history(tickets: Sequence[Ticket]) -> str:
    """Reply to /history: recent closed prints, newest first."""
    if not tickets:
        return "No print has been closed yet."
    lines = ["__Recent prints__"]
    for t in tickets[:MAX_LINES]:
        closed_at = f", {format_dt(_aware(t.closed_at), 'R')}" if t.closed_at else ""
        lines.append(f"{_job(t)} by {clean(t.member_name)} on {t.printer or '?'}: "
                     f"{t.outcome or t.status}{took(t, 'in')} (estimated "
                     f"{minutes(t.est_minutes)}){closed_at}")
    return _fit(lines, more=max(0, len(tickets) - MAX_LINES))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def prediction(result: Prediction, est: timedelta | None) -> str:
    """Reply to /predict: the suggestion for ``est`` and what it is based on."""
    lines = []
    if result.member_ratio is not None:
        basis = (f"your {result.member_prints} finished print"
                 f"{'s' if result.member_prints != 1 else ''} "
                 f"({_kinds(result.member_known, result.member_bounds)}): they took "
                 f"{result.member_ratio:.2f}× your estimates (median)")
    else:
        basis = "none of your prints so far, so your estimate is used as it is"
    if est is not None and result.minutes is not None:
        lines.append(f"For an estimate of {format_duration(est)}, plan on "
                     f"**{minutes(result.minutes)}**; based on {basis}.")
    elif result.member_ratio is not None:
        lines.append(f"Based on {basis}. Add `est_time` for a suggestion.")
    else:
        lines.append("You have no finished prints yet; your own estimate is the best guess.")
    if result.printer_medians:
        medians = ", ".join(f"{name} {minutes(value)}"
                            for name, value in sorted(result.printer_medians.items()))
        lines.append(f"Median print per printer: {medians} "
                     f"(from {result.printer_prints} finished prints: "
                     f"{_kinds(result.printer_known, result.printer_bounds)}).")
    if result.skipped_bounds:
        lines.append(f"Left out: {result.skipped_bounds} print"
                     f"{'s' if result.skipped_bounds != 1 else ''} closed long after "
                     "{0} estimate with no end given (more than 3× it).".format(
                         "its" if result.skipped_bounds == 1 else "their"))
    return _fit(lines)


def _kinds(known: int, bounds: int) -> str:
    """``2 with a known time, 1 with an upper bound``."""
    return (f"{known} with a known time, {bounds} with only an upper bound (closed with "
            "no end given)")


# --- notices ----------------------------------------------------------------------------


def notice_body(notice: QueueNotice) -> str:
    """What a notice says, without the greeting (the caller adds a mention or nothing)."""
    printer = f"**{notice.printer}**" if notice.printer else "your printer"
    if notice.kind == "offered":
        deadline = f" before {when(notice.deadline)}" if notice.deadline else " now"
        return f"{printer} is yours: `/claim {notice.printer}`{deadline}."
    if notice.kind == "missed":
        return (f"you missed your window on {printer} (ticket #{notice.ticket_id}); you are "
                "back in the queue just behind the next member. A second miss in a row "
                "expires the ticket.")
    if notice.kind == "expired":
        return (f"your ticket #{notice.ticket_id} expired after a second missed window on "
                f"{printer}. `/join` again when you are ready to print.")
    if notice.kind == "claimed":
        return f"you claimed {printer}; `/report started` once your print runs."
    if notice.kind == "print_started":
        end = f"; predicted end {when(notice.deadline)}" if notice.deadline else ""
        return f"{printer} reports your print (ticket #{notice.ticket_id}) started{end}."
    if notice.kind == "print_finished":
        return (f"{printer} reports your print (ticket #{notice.ticket_id}) finished: take it "
                "off the bed. Thank you!")
    if notice.kind == "print_failed":
        return (f"{printer} reports your print (ticket #{notice.ticket_id}) failed. Please add "
                f"a photo of it: `/close {notice.printer} failed photo:` with the picture.")
    if notice.kind == "print_cancelled":
        return (f"{printer} reports your print (ticket #{notice.ticket_id}) was cancelled. "
                "`/join` again when you want to print it; if you did not cancel it, tell "
                "staff.")
    return f"ticket #{notice.ticket_id}: {notice.kind.replace('_', ' ')}."
