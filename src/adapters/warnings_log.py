"""The last warnings this process logged, for the admin page's diagnostics.

:class:`RecentWarnings` is a ``logging.Handler`` keeping the latest ``capacity`` records
of level WARNING and up in a ring buffer (thread-safe: the handler's own lock guards it).
:func:`install` puts one on the root logger, once per process however often it is
called, and returns it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import UTC, datetime

import attrs

__all__ = ["LoggedWarning", "RecentWarnings", "install"]

CAPACITY = 50


@attrs.frozen
class LoggedWarning:
    """One logged record: ``at`` (UTC), ``level`` (``WARNING``, ``ERROR``, ``CRITICAL``),
    ``logger`` (its name) and ``message`` (formatted, with the exception's last line when
    one was logged)."""

    at: datetime
    level: str
    logger: str
    message: str


class RecentWarnings(logging.Handler):
    """Keeps the last ``capacity`` WARNING-and-up records; :meth:`latest` reads them."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        super().__init__(level=logging.WARNING)
        self._records: deque[LoggedWarning] = deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                message = f"{message} ({type(error).__name__}: {error})"
            entry = LoggedWarning(datetime.fromtimestamp(record.created, UTC),
                                  record.levelname, record.name, message)
        except Exception:  # a record that cannot be formatted must not break logging
            self.handleError(record)
            return
        self._records.append(entry)  # emit() runs under the handler's lock (Handler.handle)

    def latest(self) -> list[LoggedWarning]:
        """The kept records, newest first."""
        with self.lock or threading.Lock():
            return list(reversed(self._records))

    def clear(self) -> None:
        with self.lock or threading.Lock():
            self._records.clear()


_installed: RecentWarnings | None = None
_install_lock = threading.Lock()


def install(capacity: int = CAPACITY) -> RecentWarnings:
    """The process's handler on the root logger, added on the first call only. The root
    logger's own level is left alone, so a record needs to pass it (default WARNING)."""
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = RecentWarnings(capacity)
            logging.getLogger().addHandler(_installed)
        return _installed
