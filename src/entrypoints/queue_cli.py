"""``printcore queue …`` and ``printcore sweep``: the self-service queue from a terminal.

The same services as the Discord bot, for a lab without Discord, for staff, and for
trying the story by hand on the embedded default::

    printcore queue join MEMBER JOB EST [--name NAME] [--sliced FILE]
    printcore queue claim MEMBER PRINTER
    printcore queue close MEMBER PRINTER finished|failed [--photo URL]
    printcore queue start MEMBER                 (the /report started of Discord)
    printcore queue notdone MEMBER [REMAINING]
    printcore queue cancel MEMBER
    printcore queue update-time MEMBER EST
    printcore queue status | history | mine MEMBER | predict MEMBER [EST]
    printcore queue sweep [--at TIME]
    printcore queue remove TICKET --staff NAME   (staff)
    printcore queue release PRINTER --staff NAME
    printcore queue out-of-service PRINTER --staff NAME | back-in-service PRINTER --staff NAME
    printcore sweep [--once]                     (cron, or a loop every PRINTCORE_SWEEP_SECONDS)

``MEMBER`` is the member's id (on Discord their user id; here any name). Durations
accept ``90m``, ``1h30m``, ``2:15``, ``150`` (minutes), ``1.5h``. Times are shown in the
lab's zone. What members are told (offers, missed windows, expiries) is printed after
each command, read back from the outbox rows the command committed. Without a Discord bot
(no ``DISCORD_TOKEN``) those rows are delivered here, to the log (``adapters.queue_log``);
with one, the bot delivers them. Exit codes: 0 done, 1 refused (the message says why), 2
setup.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from printcore.errors import ConcurrentChangeError, StorageError, ValidationError
from printcore.outbox import MessageSender, OutboxMessage, OutboxService
from printcore.queue.durations import format_duration, parse_duration
from printcore.queue.end_times import parse_end_time
from printcore.queue.entities import Ticket
from printcore.queue.ports import QueueNotice, queue_notice_of
from printcore.queue.printer_status import live_summary
from printcore.queue.service import Placement, QueueService
from printcore.requests.job import Actor

if TYPE_CHECKING:  # annotations only: main() loads the settings
    from entrypoints.settings import Settings

__all__ = ["add_parsers"]


def _when(at: datetime | None, settings: Settings) -> str:
    if at is None:
        return "unknown"
    return at.astimezone(ZoneInfo(settings.timezone)).strftime("%a %d %b %H:%M %Z")


def _ticket_line(ticket: Ticket, settings: Settings) -> str:
    where = f" on {ticket.printer}" if ticket.printer else ""
    extra = ""
    if ticket.outcome:
        extra = f", {ticket.outcome}"
        if ticket.actual_minutes:
            extra += f" after {format_duration(timedelta(minutes=ticket.actual_minutes))}"
        elif ticket.bound_minutes:
            extra += (f" after at most "
                      f"{format_duration(timedelta(minutes=ticket.bound_minutes))} "
                      "(end not given)")
    return (f"#{ticket.id} {ticket.member_name} ({ticket.member}): {ticket.job_name!r}, "
            f"est. {format_duration(timedelta(minutes=ticket.est_minutes))}, "
            f"{ticket.status}{where}{extra}")


def _placement_line(placement: Placement, settings: Settings) -> str:
    ticket = placement.ticket
    if ticket.status == "printing":
        return f"{_ticket_line(ticket, settings)}; started {_when(ticket.started_at, settings)}"
    where = f"position {placement.position}" if placement.position else ticket.status
    return f"{_ticket_line(ticket, settings)}; {where}, ETA {_when(placement.eta, settings)}"


def _estimate_from_sliced(path: Path) -> timedelta:
    from adapters.meshes.sliced import read_slice_estimate, sliced_extension

    extension = sliced_extension(path.name)
    if extension not in (".gcode", ".gcode.3mf"):
        raise ValidationError(f"{path.name} is not a sliced file (.gcode.3mf or .gcode).",
                              {"sliced_file": "A .gcode.3mf or .gcode file."})
    try:
        estimate = read_slice_estimate(path, extension)
    except FileNotFoundError:
        raise ValidationError(f"There is no file {path}.", {"sliced_file": "Not found."}) from None
    if estimate.seconds is None:
        raise ValidationError(f"{path.name} holds no print-time estimate; give EST instead.",
                              {"sliced_file": "No estimate in the file."})
    return timedelta(minutes=max(1, round(estimate.seconds / 60)))


def _outbox(queue: QueueService, settings: Settings) -> OutboxService:
    """The queue's outbox rows; delivering the ``discord`` channel to the log when no
    Discord bot is configured (else it is the bot's)."""
    from adapters.queue_log import LogSender

    senders: dict[str, MessageSender] = {}
    if not settings.discord_token:
        senders["discord"] = LogSender()
    return OutboxService(uow=queue.uow, clock=queue.clock, senders=senders)


def _newest_notice(outbox: OutboxService) -> int:
    newest = outbox.list(subject="ticket", limit=1)
    return (newest[0].id or 0) if newest else 0


def _notices_after(outbox: OutboxService, after: int) -> list[OutboxMessage]:
    """Queue notices committed after row ``after``, oldest first."""
    rows = outbox.list(subject="ticket", limit=1000)
    return [m for m in reversed(rows) if (m.id or 0) > after and m.channel == "discord"]


def _print_notices(notices: list[QueueNotice], settings: Settings,
                   positions: dict[int, int] | None = None) -> None:
    """``positions``: ticket id → place among the queued now (what a missed window left)."""
    for notice in notices:
        if notice.kind == "offered":
            print(f"  → {notice.member_name} ({notice.member}): {notice.printer} is yours; "
                  f"claim it by {_when(notice.deadline, settings)}")
        elif notice.kind == "missed":
            place = (positions or {}).get(notice.ticket_id)
            where = (f"; back in the queue at position {place}" if place else
                     "; back in the queue")
            print(f"  → {notice.member_name} ({notice.member}): missed the window on "
                  f"{notice.printer}{where}")
        elif notice.kind == "expired":
            print(f"  → {notice.member_name} ({notice.member}): ticket #{notice.ticket_id} "
                  "expired (second missed window in a row)")
        elif notice.kind.startswith("print_"):
            what = notice.kind.removeprefix("print_")
            extra = (f"; add a photo: printcore queue close {notice.member} {notice.printer} "
                     "failed --photo URL" if what == "failed" else "")
            print(f"  → {notice.member_name} ({notice.member}): {notice.printer} reports the "
                  f"print {what}{extra}")
        else:
            print(f"  → {notice.member_name} ({notice.member}): {notice.kind}")


def cmd_queue(settings: Settings, args: argparse.Namespace) -> int:
    import structlog

    from entrypoints.bootstrap import bootstrap

    # The notices are printed below in the lab's words; keep the log lines for warnings.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    container = bootstrap(settings)
    queue: QueueService = container.queue
    outbox = _outbox(queue, settings)
    try:
        if getattr(args, "staff", None) is not None:
            active = [m.name for m in container.staff.list()]
            if args.staff not in active:
                raise ValidationError(
                    f"{args.staff!r} is not an active staff member; staff: "
                    f"{', '.join(active) or 'none yet (printcore staff add NAME)'}.",
                    {"staff": "Unknown staff member."})
        before = _newest_notice(outbox)
        _run(queue, settings, args)
        committed = _notices_after(outbox, before)
        notices = [queue_notice_of(m) for m in committed]
        positions = ({p.ticket.id or 0: p.position for p in queue.status()[1]}
                     if any(n.kind == "missed" for n in notices) else {})
        _print_notices(notices, settings, positions)
        for message in committed:
            outbox.deliver(message.id or 0)  # skipped when the bot delivers them
    finally:
        container.close()
    return 0


def _staff(args: argparse.Namespace) -> Actor:
    return Actor.staff(args.staff, "printcore queue")


def _printer_name(queue: QueueService, given: str) -> str:
    """The configured spelling of a printer named in any case (``x1c-1`` → ``X1C-1``);
    an unknown name is passed on for the service to refuse with the known names."""
    names = [p.name for p in queue.printers()]
    exact = [n for n in names if n == given]
    folded = [n for n in names if n.casefold() == given.casefold()]
    return exact[0] if exact else folded[0] if len(folded) == 1 else given


def _run(queue: QueueService, settings: Settings, args: argparse.Namespace) -> None:
    action = args.queue_command
    if getattr(args, "printer", None) is not None:
        args.printer = _printer_name(queue, args.printer)
    if action == "join":
        if args.sliced is not None:
            est = _estimate_from_sliced(Path(args.sliced))
        elif args.est is not None:
            est = parse_duration(args.est)
        else:
            raise ValidationError("Give the estimate (EST, e.g. 1h30m) or --sliced FILE.")
        placement = queue.join(args.member, args.name or args.member, args.job, est)
        print(f"joined: {_placement_line(placement, settings)}")
    elif action == "claim":
        ticket = queue.claim(args.member, args.printer)
        printer = next(p for p in queue.printers() if p.name == args.printer)
        print(f"claimed {args.printer}: start by {_when(printer.start_deadline, settings)} "
              f"(close the previous print first if there is one)")
        del ticket
    elif action == "close":
        ended = (parse_end_time(args.finished_at, queue.clock.now(), settings.timezone,
                                "finished_at") if args.finished_at else None)
        took = parse_duration(args.took, "took") if args.took else None
        ticket = queue.close(args.member, args.printer, args.outcome, args.photo,
                             finished_at=ended, took=took)
        print(f"closed: {_ticket_line(ticket, settings)}")
    elif action == "start":
        ticket = queue.report_started(args.member)
        printer = next(p for p in queue.printers() if p.name == ticket.printer)
        print(f"started on {ticket.printer}: predicted end "
              f"{_when(printer.predicted_end, settings)}")
    elif action == "notdone":
        remaining = parse_duration(args.remaining, "remaining") if args.remaining else None
        ticket = queue.notdone(args.member, remaining)
        print(f"released; {ticket.member_name} keeps the head of the queue")
    elif action == "cancel":
        ticket = queue.cancel(args.member)
        print(f"cancelled: {_ticket_line(ticket, settings)}")
    elif action == "update-time":
        placement = queue.update_time(args.member, parse_duration(args.est))
        print(f"updated: {_placement_line(placement, settings)}")
    elif action == "status":
        printers, placements = queue.status()
        print("printers:")
        names = {pl.ticket.member: pl.ticket.member_name for pl in placements}
        for p in printers:
            detail = ""
            if p.holder:
                who = names.get(p.holder, p.holder)
                if p.status == "offered":
                    detail = f" to {who}, claim by {_when(p.claim_deadline, settings)}"
                elif p.status == "claimed":
                    detail = f" by {who}, start by {_when(p.start_deadline, settings)}"
                else:
                    detail = f" (holder {who})"
            if p.print_member:
                detail += (f" (print of {names.get(p.print_member, p.print_member)}, "
                           f"predicted end {_when(p.predicted_end, settings)})")
            if p.unclaimed_since is not None:
                detail += (f"; running a print nobody claimed since "
                           f"{_when(p.unclaimed_since, settings)} (not offered until it ends)")
            if p.live_state is not None:
                detail += f" — the printer says: {live_summary(p)}"
            print(f"  {p.name:12} {p.status.replace('_', ' ')}{detail}")
        print("queue:" if placements else "queue: empty")
        for placement in placements:
            print(f"  {_placement_line(placement, settings)}")
    elif action == "mine":
        tickets = queue.myjobs(args.member)
        if not tickets:
            print(f"{args.member} has no tickets yet (printcore queue join {args.member} "
                  "JOB EST)")
        for ticket in tickets:
            print(_ticket_line(ticket, settings))
    elif action == "history":
        closed = queue.history(args.limit)
        if not closed:
            print("no closed prints yet")
        for ticket in closed:
            print(_ticket_line(ticket, settings))
    elif action == "predict":
        est = parse_duration(args.est) if args.est else None
        guess = queue.predict(args.member, est)
        if guess.minutes is not None:
            print(f"suggested: {format_duration(timedelta(minutes=guess.minutes))}")
        print(f"based on {guess.member_prints} of {args.member}'s prints "
              f"({guess.member_known} with a known time, {guess.member_bounds} with only an "
              "upper bound)"
              + (f": {args.member} takes {guess.member_ratio:.2f}× the estimate"
                 if guess.member_ratio is not None else "")
              + f"; {guess.printer_prints} prints overall ({guess.printer_known} known, "
              f"{guess.printer_bounds} upper bounds)")
        if guess.skipped_bounds:
            print(f"left out: {guess.skipped_bounds} closed more than 3× their estimate "
                  "after the start with no end given")
        for name, median in sorted(guess.printer_medians.items()):
            print(f"  {name}: median {format_duration(timedelta(minutes=median))}")
    elif action == "sweep":
        at = _parse_at(args.at) if args.at else None
        report = queue.sweep(at)
        print(f"sweep: {report.offered} offered, {report.missed} missed, "
              f"{report.expired} expired")
    elif action == "remove":
        ticket = queue.remove_ticket(args.ticket, _staff(args))
        print(f"removed: {_ticket_line(ticket, settings)}")
    elif action == "release":
        printer = queue.release_printer(args.printer, _staff(args))
        print(f"released {printer.name}: now {_printer_now(queue, printer.name, settings)}")
    elif action in ("out-of-service", "back-in-service"):
        printer = queue.set_in_service(args.printer, action == "back-in-service", _staff(args))
        print(f"{printer.name}: {_printer_now(queue, printer.name, settings)}")


def _printer_now(queue: QueueService, name: str, settings: Settings) -> str:
    """The printer as it is after the command (which may have offered it at once)."""
    printers, placements = queue.status()
    printer = next(p for p in printers if p.name == name)
    if printer.status == "offered" and printer.holder:
        who = next((pl.ticket.member_name for pl in placements
                    if pl.ticket.member == printer.holder), printer.holder)
        return f"offered to {who}, claim by {_when(printer.claim_deadline, settings)}"
    return printer.status.replace("_", " ")


def _parse_at(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"--at {text!r} is not an ISO time such as 2026-11-23T15:30Z.",
                              {"at": "ISO 8601 time"}) from None
    if at.tzinfo is None:
        raise ValidationError("--at needs a zone (e.g. 2026-11-23T15:30Z or +00:00).",
                              {"at": "Add a zone."})
    now = datetime.now(UTC)
    if not now - timedelta(minutes=1) <= at <= now + timedelta(days=7):
        raise ValidationError("--at must be between now and 7 days ahead.",
                              {"at": "Between now and 7 days ahead."})
    return at.astimezone(UTC)


def cmd_sweep(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.heartbeat import DatabaseHeartbeats, SweepTimings
    from entrypoints.bootstrap import bootstrap

    container = bootstrap(settings)
    outbox = _outbox(container.queue, settings)
    # Each sweep's duration goes to /metrics through a "sweeper" heartbeat in the database,
    # continuing the figures of earlier runs (a cron --once adds to them).
    beats = DatabaseHeartbeats(container.engine)
    previous = beats.last("sweeper")
    timings = SweepTimings.from_snapshot(previous.data.get("sweep") if previous else None)
    from sqlalchemy.exc import SQLAlchemyError

    conflicts = 0
    try:
        while True:
            started = time.perf_counter()
            try:
                try:
                    report = container.queue.sweep()
                finally:
                    timings.observe(time.perf_counter() - started)
                conflicts = 0
                beats.beat("sweeper", {"sweep": timings.snapshot()})
                print(f"sweep: {report.offered} offered, {report.missed} missed, "
                      f"{report.expired} expired", flush=True)
                if outbox.senders:  # no Discord bot: the notices go to the log
                    outbox.deliver_due()
            except ConcurrentChangeError:
                # Another change to a printer or ticket (a claim, a printer's report, a
                # second sweeper) committed between this sweep's read and its write: it
                # changed nothing, so sweep again at once on the new rows (issue 16: the
                # loop exited here and no deadline fired until it was restarted).
                conflicts += 1
                if args.once and conflicts > 3:
                    raise
                print("sweep: the rows were changed by another process meanwhile; "
                      "sweeping again", file=sys.stderr, flush=True)
                time.sleep(0.05 * min(conflicts, 20))
                continue
            except (StorageError, SQLAlchemyError) as err:
                if args.once:
                    raise
                # The database restarted or is away: nothing was changed (each sweep is one
                # transaction); deadlines are on the rows, so the next sweep fires them.
                print(f"sweep: the database is not usable now ({str(err).splitlines()[0]}); "
                      f"trying again in {settings.sweep_seconds} s", file=sys.stderr,
                      flush=True)
                time.sleep(settings.sweep_seconds)
                continue
            if args.once:
                return 0
            time.sleep(settings.sweep_seconds)
    except KeyboardInterrupt:
        return 0
    finally:
        container.close()


def _durations_may_look_negative(parser: argparse.ArgumentParser) -> None:
    """``-5m`` or ``-1h30m`` is a (refused) duration, not an unknown option: argparse
    takes a value for a positional only when it looks like a negative number, and its
    test for that (``_negative_number_matcher``, CPython 3.11–3.13) knows only digits.
    These parsers have no option that starts with a digit, so widening it is safe; the
    duration check then answers with the accepted forms."""
    import re

    parser._negative_number_matcher = re.compile(r"^-\d")  # type: ignore[attr-defined]


def add_parsers(sub: Any) -> None:
    """Add ``queue`` and ``sweep`` to the ``printcore`` parser's subcommands."""
    queue = sub.add_parser("queue", help="the self-service printer queue")
    q = queue.add_subparsers(dest="queue_command", required=True)
    join = q.add_parser("join", help="join the queue")
    join.add_argument("member")
    join.add_argument("job")
    join.add_argument("est", nargs="?", help="estimated print time, e.g. 1h30m")
    _durations_may_look_negative(join)
    join.add_argument("--name", help="the member's display name (default: MEMBER)")
    join.add_argument("--sliced", help="read the estimate from a .gcode.3mf or .gcode file")
    claim = q.add_parser("claim", help="claim the printer offered to you")
    claim.add_argument("member")
    claim.add_argument("printer")
    close = q.add_parser("close", help="close the previous print on a printer")
    close.add_argument("member")
    close.add_argument("printer")
    close.add_argument("outcome", choices=["finished", "failed"])
    close.add_argument("--photo", help="a link to a photo (required when failed)")
    close.add_argument("--finished-at", help="when the print ended, lab time (e.g. 23:10, "
                       "'yesterday 23:10'); without it or --took the duration is kept as an "
                       "upper bound")
    close.add_argument("--took", help="how long the print took (e.g. 58m)")
    q.add_parser("start", help="report your print started").add_argument("member")
    notdone = q.add_parser("notdone", help="the previous print is still running")
    notdone.add_argument("member")
    notdone.add_argument("remaining", nargs="?", help="time it still needs, e.g. 20m")
    _durations_may_look_negative(notdone)
    q.add_parser("cancel", help="leave the queue").add_argument("member")
    update = q.add_parser("update-time", help="change your estimate")
    update.add_argument("member")
    update.add_argument("est")
    _durations_may_look_negative(update)
    q.add_parser("status", help="printers and the queue with ETAs")
    q.add_parser("mine", help="a member's tickets").add_argument("member")
    history = q.add_parser("history", help="recent closed prints")
    history.add_argument("--limit", type=int, default=20)
    predict = q.add_parser("predict", help="suggest a print time from history")
    predict.add_argument("member")
    predict.add_argument("est", nargs="?")
    _durations_may_look_negative(predict)
    sweep = q.add_parser("sweep", help="fire due offers and deadlines once")
    sweep.add_argument("--at", help="sweep as if it were this (future) time, for trying "
                       "the story by hand, e.g. 2026-11-23T15:30Z")
    remove = q.add_parser("remove", help="staff: remove a ticket")
    remove.add_argument("ticket", type=int)
    remove.add_argument("--staff", required=True)
    for name, text in (("release", "staff: free a printer (holder back to the queue "
                        "head, or close a forgotten print)"),
                       ("out-of-service", "staff: take a printer out of service"),
                       ("back-in-service", "staff: put a printer back in service")):
        staff_cmd = q.add_parser(name, help=text)
        staff_cmd.add_argument("printer")
        staff_cmd.add_argument("--staff", required=True)
    queue.set_defaults(func=cmd_queue)

    sweep_cmd = sub.add_parser("sweep", help="fire due queue offers and deadlines")
    sweep_cmd.add_argument("--once", action="store_true",
                           help="one sweep and exit (cron); default: every "
                           "PRINTCORE_SWEEP_SECONDS until stopped")
    sweep_cmd.set_defaults(func=cmd_sweep)
