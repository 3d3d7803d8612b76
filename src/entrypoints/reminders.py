"""Who sends the reminders before a confirmation link expires, and ``printcore reminders``.

    printcore reminders send       send the reminders due now, once (for cron), and say
                                   which jobs were reminded

Without Redis the web process (``printcore serve``) runs a :class:`ReminderLoop`; with
Redis, ``printcore worker`` runs it (beside the outbox relay). Several processes running
it at once send each reminder once (``PrintRequests.send_confirmation_reminders`` is
idempotent), so a cron job next to either is harmless.
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: main() loads the settings
    from entrypoints.settings import Settings

__all__ = ["ReminderLoop", "add_parsers"]


def _log() -> Any:
    """The ``printcore.reminders`` logger (structlog, imported when first logging)."""
    import structlog

    return structlog.get_logger("printcore.reminders")


class ReminderLoop:
    """A daemon thread calling ``send()`` (``PrintRequests.send_confirmation_reminders``)
    at start and then every ``every_seconds``. A failed round (database down) is logged
    and tried again at the next round; the loop never dies of it."""

    def __init__(self, send: Callable[[], list[int]], every_seconds: float = 300.0) -> None:
        self.send = send
        self.every_seconds = every_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> list[int]:
        """One round; returns the ids of the jobs reminded. Raises what ``send`` raised."""
        reminded = self.send()
        if reminded:
            _log().info("confirmation reminders sent", jobs=reminded)
        return reminded

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="printcore-reminders",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                _log().exception("confirmation reminder round failed; trying again later")
            self._stop.wait(self.every_seconds)


def loop_for(container: Any) -> ReminderLoop | None:
    """The loop for a bootstrapped container, or None when reminders are off
    (``PRINTCORE_CONFIRMATION_REMINDER_HOURS=0``)."""
    settings: Settings = container.settings
    if settings.confirmation_reminder_hours <= 0:
        return None
    return ReminderLoop(container.requests.send_confirmation_reminders,
                        float(settings.reminder_check_seconds))


def cmd_reminders(settings: Settings, args: argparse.Namespace) -> int:
    if settings.confirmation_reminder_hours <= 0:
        print("Reminders are off (PRINTCORE_CONFIRMATION_REMINDER_HOURS=0); nothing sent.")
        return 0
    from entrypoints.bootstrap import bootstrap

    container = bootstrap(settings)
    try:
        reminded = container.requests.send_confirmation_reminders()
        if container.inline is not None:
            container.outbox.deliver_due()  # no Redis and maybe no web process: send now
    finally:
        container.close()
    hours = settings.confirmation_reminder_hours
    if not reminded:
        print(f"No reminders due (links expiring within {hours} hours were all reminded "
              "already, or there are none).")
    else:
        jobs = ", ".join(f"#{job_id}" for job_id in reminded)
        print(f"Sent {len(reminded)} reminder{'s' if len(reminded) != 1 else ''} "
              f"(links expiring within {hours} hours): {jobs}")
    return 0


def add_parsers(sub: Any) -> None:
    reminders = sub.add_parser(
        "reminders", help="emails reminding students that a confirmation link expires soon")
    reminders_sub = reminders.add_subparsers(dest="reminders_command", required=True)
    reminders_sub.add_parser(
        "send", help="send the reminders due now, once (the web process or the worker "
                     "also does this every PRINTCORE_REMINDER_CHECK_SECONDS)")
    reminders.set_defaults(func=cmd_reminders)
