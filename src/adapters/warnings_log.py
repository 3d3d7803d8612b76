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
from typing import Any

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

    def add(self, level: str, logger: str, message: str) -> None:
        """Keep one entry that did not come through stdlib logging (structlog's)."""
        entry = LoggedWarning(datetime.now(UTC), level, logger, message)
        with self.lock or threading.Lock():
            self._records.append(entry)

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
            _capture_structlog(_installed)
        return _installed


_STRUCTLOG_LEVELS = {"warning": "WARNING", "warn": "WARNING", "error": "ERROR",
                     "exception": "ERROR", "critical": "CRITICAL", "fatal": "CRITICAL"}


def _capture_structlog(handler: RecentWarnings) -> None:
    """printcore's own loggers (delivery, reminders, the queue log) are structlog's,
    printing to standard output, not stdlib logging: a first processor copies their
    warnings and errors into ``handler`` and passes the event on unchanged."""
    import structlog

    def capture(_logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        level = _STRUCTLOG_LEVELS.get(method)
        if level is not None:
            extra = " ".join(f"{k}={v!r}" for k, v in event.items()
                             if k not in ("event", "logger", "timestamp", "level"))
            text = str(event.get("event", "")) + (f" ({extra})" if extra else "")
            handler.add(level, str(event.get("logger", "printcore")), text)
        return event

    processors = list(structlog.get_config()["processors"])
    structlog.configure(processors=[capture, *processors])
