"""Delivery inside the web process, for a lab without Redis."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import structlog

from printcore.outbox import OutboxService

__all__ = ["InlineDelivery"]

_log = structlog.get_logger("printcore.delivery")


class InlineDelivery:
    """A daemon thread that delivers due outbox rows: at once when :meth:`kick` is called
    (the unit of work's ``after_commit`` hook), and every ``poll_seconds`` otherwise
    (retries that came due, rows committed by other processes such as the CLI).

    A failure inside one round is logged and the loop goes on.
    """

    def __init__(self, service: OutboxService, poll_seconds: float = 2.0,
                 batch: int = 200) -> None:
        self.service = service
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def kick(self, _message_ids: Sequence[int] = ()) -> None:
        """Wake the loop now; never raises (called right after a commit)."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="printcore-delivery",
                                            daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> int:
        """Deliver what is due now; returns how many rows were tried."""
        report = self.service.deliver_due(self.batch)
        if report.total:
            _log.info("outbox delivered", sent=report.sent, retry=report.retry,
                      failed=report.failed, skipped=report.skipped)
        return report.total

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                tried = self.run_once()
            except Exception:
                _log.exception("outbox delivery round failed")
                tried = 0
            if tried >= self.batch:
                continue  # more may be waiting
            self._wake.wait(self.poll_seconds)
