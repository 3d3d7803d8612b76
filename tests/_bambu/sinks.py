"""A sink that records every report, for the watcher's tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from printcore.queue.printer_status import PrinterReport


class RecordingSink:
    """Keeps every report (``reports``) with the monotonic time it arrived (``times``);
    ``fail_first`` raises on that many first calls (to prove the watcher goes on)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.reports: list[PrinterReport] = []
        self.times: list[float] = []
        self.threads: set[str] = set()
        self._fail = fail_first
        self._cond = threading.Condition()

    def printer_reported(self, report: PrinterReport) -> None:
        with self._cond:
            self.threads.add(threading.current_thread().name)
            if self._fail > 0:
                self._fail -= 1
                raise RuntimeError("sink failed on purpose")
            self.reports.append(report)
            self.times.append(time.monotonic())
            self._cond.notify_all()

    def kinds(self, printer: str | None = None) -> list[str]:
        with self._cond:
            return [r.kind for r in self.reports if printer is None or r.printer == printer]

    def wait_for(self, test: Callable[[list[PrinterReport]], bool], timeout: float = 10.0,
                 what: str = "") -> list[PrinterReport]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not test(self.reports):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what or test}: got "
                                         f"{[(r.printer, r.kind, r.print_key) for r in self.reports]}")
                self._cond.wait(left)
            return list(self.reports)

    def wait_kinds(self, printer: str, kinds: list[str], timeout: float = 10.0) -> list[str]:
        """Wait until ``printer``'s kinds end with ``kinds``... or contain them in order
        as a suffix; returns all its kinds."""
        self.wait_for(lambda rs: [r.kind for r in rs if r.printer == printer][-len(kinds):]
                      == kinds, timeout, what=f"{printer} {kinds}")
        return self.kinds(printer)
