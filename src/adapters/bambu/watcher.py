"""The watcher: one connection per printer, one thread that tells the queue.

:class:`Watcher` starts a :class:`~adapters.bambu.connection.PrinterConnection` per
watched printer (each on its own thread) and one consumer thread. Every connection puts
its events on one ``queue.Queue``; the consumer parses messages
(:mod:`adapters.bambu.report`), runs each printer's :class:`PrinterTracker`, ticks the
trackers every ``tick_seconds`` (debounce and offline timers) and calls
``sink.printer_reported(report)`` — one call at a time, in the order the changes
happened per printer, so the queue's SQL work is serialised. A sink that raises is
logged and the watcher goes on with the next report.

:meth:`Watcher.health` and :meth:`Watcher.live_states` may be called from any thread.

``state_file`` (``printcore watch``: ``$PRINTCORE_HOME/watcher-state.json``) keeps, per
printer, the key and file of an open print that the printer did not name
(``{"X1C-1": {"print_key": "/sdcard/a.3mf@2026-…", "file": "/sdcard/a.3mf"}}``), written
atomically when it changes, so that a restarted watcher reports the same ``print_key`` for
the print it finds still on the bed. A missing or unreadable file only means new keys.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import attrs
import structlog

from adapters.bambu.certs import PinError, pinned_context
from adapters.bambu.connection import Backoff, Event, PrinterConnection
from adapters.bambu.report import ReportError, parse_report
from adapters.bambu.tracker import PrinterTracker
from adapters.printers_file import WatchConfig, WatchedPrinter
from printcore.queue.printer_status import PrinterLiveState, PrinterReport, PrinterStatusSink

__all__ = ["Connection", "WatchSettings", "WatchTarget", "Watcher", "targets_for"]

_log = structlog.get_logger("printcore.bambu")


@attrs.frozen
class WatchSettings:
    """Seconds: ``offline_after`` (no message: offline), ``debounce`` (PAUSE or a lost
    connection shorter than this is not reported), ``pushall_seconds`` (full-report
    period), ``pushall_gap`` (least time between two full-report requests, also across
    reconnects), ``keepalive`` (MQTT), ``backoff_base``/``backoff_cap`` (reconnect delays),
    ``tick_seconds`` (how often the timers are checked)."""

    offline_after: float = 330.0
    debounce: float = 5.0
    pushall_seconds: float = 300.0
    pushall_gap: float = 300.0
    keepalive: int = 30
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    tick_seconds: float = 0.25

    @classmethod
    def from_config(cls, config: WatchConfig, **more: Any) -> WatchSettings:
        """The printers file's ``watch:`` seconds; ``more`` overrides any field."""
        values: dict[str, Any] = {"offline_after": config.offline_after_seconds,
                                  "debounce": config.debounce_seconds,
                                  "pushall_seconds": config.pushall_seconds}
        return cls(**{**values, **more})


@attrs.frozen
class WatchTarget:
    """A printer to watch: its settings, ``access_code`` and pinned ``trust_pem`` (None
    when not trusted yet, or for ``tls: false``); ``problem`` says why it cannot be
    connected (it is then shown in :meth:`Watcher.health` and not connected)."""

    printer: WatchedPrinter
    access_code: str | None
    trust_pem: Path | None = None
    problem: str | None = None


def targets_for(config: WatchConfig, codes: Callable[[str], str | None],
                trust_dir: Path) -> list[WatchTarget]:
    """A :class:`WatchTarget` per watched printer of ``config``: ``codes(name)`` gives the
    access code (None: missing); TLS printers need ``trust_dir/NAME.pem`` and a
    fingerprint in the printers file."""
    from adapters.bambu.certs import trust_path
    from adapters.bambu.secrets import env_name

    out: list[WatchTarget] = []
    for printer in config.watched:
        code = codes(printer.name)
        problem = None
        pem = trust_path(trust_dir, printer.name) if printer.tls else None
        if code is None:
            problem = (f"no access code: set {env_name(printer.name)} (or a line "
                       f"{printer.name}=CODE in PRINTCORE_BAMBU_SECRETS_FILE)")
        elif printer.tls and printer.fingerprint is None:
            problem = (f"not trusted yet: run `printcore printers trust {printer.name}` "
                       "to pin its certificate")
        out.append(WatchTarget(printer=printer, access_code=code, trust_pem=pem,
                               problem=problem))
    return out


class Connection(Protocol):
    def start(self) -> None: ...
    def stop(self, timeout: float = 5.0) -> None: ...


ConnectionFactory = Callable[..., Connection]


@attrs.define
class _Status:
    connected: bool = False
    last_error: str | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Watcher:
    """Watches ``targets`` and tells ``sink``. :meth:`start` returns at once;
    :meth:`stop` ends every connection and the consumer (reports already taken are
    delivered first)."""

    def __init__(self, targets: Sequence[WatchTarget], sink: PrinterStatusSink,
                 settings: WatchSettings | None = None, *,
                 now: Callable[[], datetime] = _utcnow,
                 connection_factory: ConnectionFactory = PrinterConnection,
                 state_file: Path | None = None) -> None:
        self.settings = settings or WatchSettings()
        self._targets = list(targets)
        self._sink = sink
        self._now = now
        self._factory = connection_factory
        self._events: queue.Queue[Event | None] = queue.Queue()
        self._lock = threading.Lock()
        s = self.settings
        self._trackers = {t.printer.name: PrinterTracker(
            t.printer.name, debounce=timedelta(seconds=s.debounce),
            offline_after=timedelta(seconds=s.offline_after)) for t in self._targets}
        self._status = {t.printer.name: _Status(last_error=t.problem) for t in self._targets}
        self._state_file = state_file
        self._kept = self._load_state()
        for name, tracker in self._trackers.items():
            tracker.remembered = self._kept.get(name)
        self._live: dict[str, PrinterLiveState | None] = dict.fromkeys(self._trackers)
        self._connections: list[Connection] = []
        self._consumer = threading.Thread(target=self._consume, daemon=True,
                                          name="printcore-bambu-watcher")
        self._stopping = threading.Event()
        self.delivered = 0  #: reports the sink took
        self.sink_errors = 0  #: reports whose sink call raised
        self.dropped_messages = 0  #: malformed messages

    # -- control ---------------------------------------------------------------------

    def start(self) -> Watcher:
        """Open a connection per printer that has no ``problem`` and start the consumer."""
        self._consumer.start()
        s = self.settings
        for target in self._targets:
            if target.problem is not None:
                _log.warning("printer not watched", printer=target.printer.name,
                             reason=target.problem)
                continue
            context = None
            if target.printer.tls:
                try:
                    assert target.trust_pem is not None
                    context = pinned_context(target.trust_pem, target.printer.fingerprint)
                except PinError as exc:
                    reason = str(exc).replace("NAME", target.printer.name)
                    self._set(target.printer.name, last_error=reason)
                    _log.error("printer not watched", printer=target.printer.name,
                               reason=reason)
                    continue
            connection = self._factory(
                target.printer, target.access_code or "", self._events.put, context=context,
                pushall_seconds=s.pushall_seconds, pushall_gap=s.pushall_gap,
                keepalive=s.keepalive,
                backoff=Backoff(base=s.backoff_base, cap=s.backoff_cap), now=self._now)
            connection.start()
            self._connections.append(connection)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection, deliver what is queued, end the consumer."""
        for connection in self._connections:
            connection.stop(timeout)
        self._stopping.set()
        self._events.put(None)
        if self._consumer.is_alive():
            self._consumer.join(timeout)

    def wait(self, stop: threading.Event) -> None:
        """Block until ``stop`` is set (e.g. by a signal handler), then :meth:`stop`."""
        try:
            while not stop.wait(0.5):
                pass
        finally:
            self.stop()

    # -- what it knows ---------------------------------------------------------------

    def health(self) -> dict[str, dict[str, Any]]:
        """Per watched printer: ``{"connected": bool, "last_report_at": ISO UTC text or
        None, "state": Bambu state word or None (OFFLINE when lost), "last_error": one
        sentence or None}``."""
        with self._lock:
            out: dict[str, dict[str, Any]] = {}
            for name, status in self._status.items():
                live = self._live.get(name)
                out[name] = {
                    "connected": status.connected,
                    "last_report_at": live.reported_at.isoformat() if live else None,
                    "state": live.state if live else None,
                    "last_error": status.last_error,
                }
            return out

    def live_states(self) -> dict[str, PrinterLiveState | None]:
        """``{printer name: its last known state, or None before its first message}``."""
        with self._lock:
            return dict(self._live)

    # -- the consumer ----------------------------------------------------------------

    def _set(self, name: str, **changes: Any) -> None:
        with self._lock:
            status = self._status[name]
            for key, value in changes.items():
                setattr(status, key, value)

    def _consume(self) -> None:
        """The consumer thread: never ends before :meth:`stop`, whatever one event does."""
        while True:
            try:
                self._consume_until_stopped()
                return
            except Exception:  # a bug here must not silence every printer
                _log.exception("printer watcher consumer failed; going on")

    def _consume_until_stopped(self) -> None:
        next_tick = time.monotonic()
        while True:
            try:
                event = self._events.get(timeout=self.settings.tick_seconds)
            except queue.Empty:
                event = None
                if self._stopping.is_set():
                    return
            else:
                if event is None:
                    if self._stopping.is_set():
                        return
                    continue
            if event is not None:
                reports = self._handle(event)
                self._keep_open_prints()
                tracker = self._trackers.get(event.printer)
                if tracker is not None:  # the live state moves with every message
                    with self._lock:
                        self._live[event.printer] = tracker.live()
                self._deliver(reports)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.settings.tick_seconds
                now = self._now()
                for tracker in self._trackers.values():
                    self._deliver(tracker.tick(now))

    def _load_state(self) -> dict[str, tuple[str, str]]:
        if self._state_file is None:
            return {}
        try:
            data = json.loads(self._state_file.read_text(encoding="utf-8"))
            return {name: (str(v["print_key"]), str(v["file"])) for name, v in data.items()
                    if name in self._trackers}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            _log.warning("watcher state file ignored", path=str(self._state_file),
                         error=repr(exc))
            return {}

    def _keep_open_prints(self) -> None:
        if self._state_file is None:
            return
        now = {name: kept for name, t in self._trackers.items()
               if (kept := t.open_print() or t.remembered) is not None}
        if now == self._kept:
            return
        self._kept = now
        tmp = self._state_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({n: {"print_key": k, "file": f}
                                       for n, (k, f) in now.items()}), encoding="utf-8")
            os.replace(tmp, self._state_file)
        except OSError as exc:
            _log.warning("watcher state not saved", path=str(self._state_file),
                         error=repr(exc))

    def _handle(self, event: Event) -> list[PrinterReport]:
        tracker = self._trackers.get(event.printer)
        if tracker is None:
            return []
        if event.kind == "connected":
            self._set(event.printer, connected=True, last_error=None)
            return tracker.on_connected(event.at)
        if event.kind == "disconnected":
            self._set(event.printer, connected=False)
            return tracker.on_disconnected(event.at)
        if event.kind == "error":
            self._set(event.printer, connected=False, last_error=event.detail)
            return tracker.on_disconnected(event.at)
        try:
            parsed = parse_report(event.payload)
        except ReportError as exc:
            self.dropped_messages += 1
            _log.warning("bad printer report dropped", printer=event.printer, error=str(exc),
                         payload=event.payload[:200].decode("utf-8", "replace"))
            return []
        if parsed.problems:
            _log.warning("printer report fields dropped", printer=event.printer,
                         problems=list(parsed.problems))
        return tracker.on_message(parsed, event.at)

    def _deliver(self, reports: list[PrinterReport]) -> None:
        for report in reports:
            with self._lock:
                self._live[report.printer] = report.live
            try:
                self._sink.printer_reported(report)
            except Exception:
                self.sink_errors += 1
                _log.exception("printer report not applied", printer=report.printer,
                               kind=report.kind, print_key=report.print_key)
            else:
                self.delivered += 1
