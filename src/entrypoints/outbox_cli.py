"""``printcore worker`` and ``printcore outbox …``: delivering and inspecting messages.

    printcore worker [--threads N]        the Dramatiq worker for the outbox queue, plus the
                                          relay (needs REDIS_URL)
    printcore outbox list [--status S] [--job ID] [--limit N]
                                          messages newest first, with their delivery state
    printcore outbox retry ID [--staff NAME]
                                          send a failed (or waiting) message again now
    printcore outbox deliver              deliver what is due once, in this process (a lab
                                          without Redis whose web process is down)
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from printcore.outbox import STATUSES, OutboxMessage
from printcore.requests.job import Actor

if TYPE_CHECKING:  # annotations only: main() loads the settings
    from entrypoints.settings import Settings

__all__ = ["add_parsers", "format_message"]


def _container(settings: Settings) -> Any:
    from entrypoints.bootstrap import bootstrap

    return bootstrap(settings)


def format_message(m: OutboxMessage) -> str:
    """One line per message: id, state, channel/kind, recipient, subject, attempts, error."""
    state = m.status
    if m.status == "sent" and m.sent_at is not None:
        state = f"sent {m.sent_at:%Y-%m-%d %H:%M:%S}Z"
    elif m.status == "pending" and m.next_attempt_at is not None:
        state = f"pending (next {m.next_attempt_at:%Y-%m-%d %H:%M:%S}Z)"
    line = (f"{m.id:>6}  {state:<32} {m.channel}/{m.kind:<16} {m.recipient:<32} "
            f"{m.subject} {m.subject_id}  attempts {m.attempts}")
    if m.last_error and m.status != "sent":
        line += f"\n        {m.last_error}"
    return line


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.redis_url:
        print("printcore worker: REDIS_URL is not set. Without Redis the web process "
              "(`printcore serve`) delivers messages itself; set REDIS_URL=redis://host:6379/0 "
              "to deliver through Dramatiq workers.", file=sys.stderr)
        return 2
    from adapters.delivery.broker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    container = _container(settings)
    threads = args.threads or settings.worker_threads
    backend = (f"SMTP {settings.smtp_host}:{settings.smtp_port} ({settings.smtp_tls})"
               if settings.mail_backend == "smtp" else f".eml files in {settings.mail_dir}")
    print(f"printcore worker: Redis {settings.describe()['redis_url']}, {threads} threads, "
          f"mail to {backend}", flush=True)
    from entrypoints.reminders import loop_for

    reminders = loop_for(container)  # with Redis, the worker sends the reminders
    if reminders is not None:
        reminders.start()
    try:
        run_worker(container.outbox, settings.redis_url, threads=threads)
    finally:
        if reminders is not None:
            reminders.stop()
        container.close()
    return 0


def cmd_outbox(settings: Settings, args: argparse.Namespace) -> int:
    container = _container(settings)
    try:
        outbox = container.outbox
        if args.outbox_command == "list":
            rows = outbox.list(status=args.status, subject="job" if args.job else None,
                               subject_id=args.job, limit=args.limit)
            if not rows:
                print("no messages")
            for m in rows:
                print(format_message(m))
        elif args.outbox_command == "retry":
            who = (Actor.staff(args.staff, "command line") if args.staff
                   else Actor.system("command line"))
            message = outbox.retry(args.id, who)
            print(f"message {message.id} ({message.kind} to {message.recipient}) will be "
                  "sent again now")
            if container.broker is None:
                outbox.deliver(args.id)  # no Redis: send it from here, now
            else:
                try:
                    container.broker.enqueue(args.id)  # a worker sends it
                except Exception as err:
                    print(f"Redis is unreachable ({err}); the worker's relay sends it "
                          "once Redis is back.", file=sys.stderr)
            print(format_message(outbox.get(args.id)))
        elif args.outbox_command == "deliver":
            report = outbox.deliver_due(limit=args.limit)
            print(f"sent {report.sent}, retry later {report.retry}, failed {report.failed}, "
                  f"skipped {report.skipped}")
    finally:
        container.close()
    return 0


def add_parsers(sub: Any) -> None:
    worker = sub.add_parser("worker", help="deliver messages: the Dramatiq worker (REDIS_URL)")
    worker.add_argument("--threads", type=int, default=None,
                        help="worker threads (default PRINTCORE_WORKER_THREADS, 8)")
    worker.set_defaults(func=cmd_worker)

    outbox = sub.add_parser("outbox", help="outbound messages and their delivery")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    lst = outbox_sub.add_parser("list", help="messages, newest first")
    lst.add_argument("--status", choices=STATUSES, default=None)
    lst.add_argument("--job", type=int, default=None, help="only this job's messages")
    lst.add_argument("--limit", type=int, default=50)
    retry = outbox_sub.add_parser("retry", help="send a failed message again")
    retry.add_argument("id", type=int)
    retry.add_argument("--staff", default=None,
                       help="the staff member asking (must be active staff; recorded in the "
                            "job's history); without it the history says 'command line'")
    deliver = outbox_sub.add_parser("deliver", help="deliver due messages once, here")
    deliver.add_argument("--limit", type=int, default=500)
    outbox.set_defaults(func=cmd_outbox)
