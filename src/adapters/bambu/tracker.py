"""From what one Bambu printer says to the changes the queue hears: pure, no I/O.

A :class:`PrinterTracker` keeps one printer's merged fields and turns each message,
connection change and clock tick into :class:`~printcore.queue.printer_status.PrinterReport`
values (docs/printers.md, "What the watcher reports"):

=====================================  ===================================================
the printer                            reported
=====================================  ===================================================
first message after none / offline     ``online``, then what its state means below
RUNNING after IDLE/PREPARE/FINISH/     ``started`` (once per ``print_key``; also on first
FAILED, or on first contact            contact: a restarted watcher re-reports the running
                                       print, the sink is idempotent per ``print_key``)
RUNNING, remaining time or layer       ``progress`` (not for every message)
changed
RUNNING after a reported PAUSE         ``progress`` (printing again)
PAUSE for ``debounce`` or longer       ``paused`` (at the time PAUSE was first seen); a
                                       PAUSE that turns back to RUNNING sooner says nothing
FINISH / FAILED                        ``finished`` / ``failed`` at once, never debounced
                                       (FAILED during PREPARE too, with no ``started``)
IDLE straight after RUNNING/PAUSE      ``cancelled`` at once
IDLE otherwise (first contact, after   ``idle``
PREPARE, FINISH, FAILED)
connection lost for ``debounce``       ``offline`` (at the time it was lost); back sooner:
                                       nothing
no message for ``offline_after``       ``offline``
=====================================  ===================================================

``print_key`` is ``subtask_id`` (else ``task_id``) when the printer names the print (not
"0"), else ``"<gcode_file or subtask_name>@<UTC ISO time the watcher first saw the
print>"``. So that a restarted watcher finds the same key for such a print, the watcher
keeps :attr:`PrinterTracker.remembered` (``(print_key, file)`` of the open print, see
:meth:`PrinterTracker.open_print`) and gives it back at start: a print found on first
contact with the same file keeps the remembered key.

Times are UTC ``datetime`` values from the caller's clock (Bambu reports carry none).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import attrs

from adapters.bambu.report import GCODE_STATES, ParsedReport, PrintFields
from printcore.queue.printer_status import PrinterLiveState, PrinterReport, ReportKind

__all__ = ["ACTIVE", "TERMINAL", "PrinterTracker"]

#: States of a print that is on the printer (PREPARE and SLICING come before RUNNING).
ACTIVE = frozenset({"PREPARE", "SLICING", "RUNNING", "PAUSE"})
#: States a print ends in.
TERMINAL = frozenset({"FINISH", "FAILED"})

Contact = Literal["never", "online", "offline"]


@attrs.define
class PrinterTracker:
    """One printer's state as the watcher knows it. Not thread-safe: one thread calls it.

    ``debounce`` and ``offline_after`` are durations (``timedelta``); ``debounce`` may be
    zero (every PAUSE and every lost connection reported at the next tick)."""

    printer: str
    debounce: timedelta = timedelta(seconds=5)
    offline_after: timedelta = timedelta(seconds=330)
    fields: PrintFields = attrs.field(factory=PrintFields)
    contact: Contact = "never"
    connected: bool = False
    phase: str | None = None  # the last gcode_state that drives prints
    started_key: str | None = None  # the print ``started`` was reported for
    started_by_id: bool = False
    print_seen_at: datetime | None = None
    last_progress: tuple[int | None, int | None] = (None, None)
    pause_since: datetime | None = None  # PAUSE seen, ``paused`` not reported yet
    paused_reported: bool = False
    lost_at: datetime | None = None  # connection lost, ``offline`` not reported yet
    last_heard: datetime | None = None
    last_report_at: datetime | None = None
    remembered: tuple[str, str] | None = None  # (print_key, file) kept by a previous run
    first_contact_print: bool = False  # the current print was on the bed at first contact

    def __attrs_post_init__(self) -> None:
        if self.debounce < timedelta(0) or self.offline_after <= timedelta(0):
            raise ValueError("debounce must be >= 0 and offline_after > 0 seconds")

    # -- what happens -------------------------------------------------------------------

    def on_connected(self, now: datetime) -> list[PrinterReport]:
        """The MQTT session is up (CONNACK accepted): a pending ``offline`` is dropped and
        the silence timer starts again. Reports nothing itself (``online`` comes with the
        next message, which carries the state)."""
        self.connected = True
        self.lost_at = None
        if self.contact != "never":
            self.last_heard = now
        return []

    def on_disconnected(self, now: datetime) -> list[PrinterReport]:
        """The connection dropped: ``offline`` follows after ``debounce`` unless the
        connection comes back first (see :meth:`tick`)."""
        self.connected = False
        if self.contact == "online" and self.lost_at is None:
            self.lost_at = now
        return []

    def on_message(self, parsed: ParsedReport, now: datetime) -> list[PrinterReport]:
        """One message from ``device/{serial}/report`` arrived at ``now``."""
        self.last_heard = now
        self.last_report_at = now
        self.lost_at = None
        reports: list[PrinterReport] = []
        if parsed.is_print:
            self.fields = self.fields.merged(parsed.changes)
        if self.contact != "online":
            self.contact = "online"
            reports.append(self._report("online", now))
        if parsed.is_print:
            reports.extend(self._transition(now))
        return reports

    def tick(self, now: datetime) -> list[PrinterReport]:
        """Time passed: a PAUSE that lasted ``debounce`` becomes ``paused``; a connection
        lost for ``debounce``, or ``offline_after`` without a message, becomes
        ``offline``."""
        reports: list[PrinterReport] = []
        if (self.pause_since is not None and self.phase == "PAUSE"
                and now - self.pause_since >= self.debounce):
            at, self.pause_since = self.pause_since, None
            self.paused_reported = True
            reports.append(self._report("paused", at, self.started_key))
        if self.contact == "online":
            if self.lost_at is not None and now - self.lost_at >= self.debounce:
                at, self.lost_at = self.lost_at, None
                self.contact = "offline"
                reports.append(self._report("offline", at))
            elif self.last_heard is not None and now - self.last_heard >= self.offline_after:
                self.contact = "offline"
                reports.append(self._report("offline", self.last_heard + self.offline_after))
        return reports

    # -- what it looks like ---------------------------------------------------------------

    def live(self) -> PrinterLiveState | None:
        """The printer's last known state, or None before its first message."""
        if self.last_report_at is None:
            return None
        f = self.fields
        state = "OFFLINE" if self.contact == "offline" else (f.gcode_state or "UNKNOWN")
        return PrinterLiveState(
            state=state, reported_at=self.last_report_at, percent=f.percent, layer=f.layer,
            total_layers=f.total_layers, remaining_minutes=f.remaining_minutes,
            file=f.file, error_code=f.error)

    # -- the rules --------------------------------------------------------------------

    def open_print(self) -> tuple[str, str] | None:
        """``(print_key, file)`` of the started print when its key is the watcher's own
        (no ``subtask_id``/``task_id``), for the watcher to keep across a restart."""
        if self.started_key is None or self.started_by_id:
            return None
        return (self.started_key, self._what())

    def _what(self) -> str:
        return self.fields.gcode_file or self.fields.subtask_name or "print"

    def _key(self) -> str:
        named = self.fields.task_key
        if named is not None:
            return named
        what = self._what()
        if self.first_contact_print and self.remembered is not None \
                and self.remembered[1] == what:
            return self.remembered[0]
        seen = self.print_seen_at or self.last_heard
        return f"{what}@{seen.isoformat() if seen else 'unknown'}"

    def _new_print(self, now: datetime, first_contact: bool = False) -> None:
        self.first_contact_print = first_contact
        self.print_seen_at = now
        self.started_key = None
        self.started_by_id = False
        self.pause_since = None
        self.paused_reported = False

    def _end_print(self) -> None:
        self.first_contact_print = False
        self.remembered = None
        self.started_key = None
        self.started_by_id = False
        self.pause_since = None
        self.paused_reported = False
        self.print_seen_at = None

    def _progress_now(self) -> tuple[int | None, int | None]:
        return (self.fields.remaining_minutes, self.fields.layer)

    def _transition(self, now: datetime) -> list[PrinterReport]:
        state = self.fields.gcode_state
        if state not in GCODE_STATES:
            return []  # INIT, OFFLINE, UNKNOWN, never reported: no print changes
        prev, self.phase = self.phase, state
        if prev is None:
            self.first_contact_print = state in ACTIVE or state in TERMINAL
        out: list[PrinterReport] = []
        if state in ACTIVE:
            named = self.fields.task_key
            if prev not in ACTIVE or (self.started_by_id and named is not None
                                      and named != self.started_key):
                self._new_print(now, prev is None)  # a new print (or first contact)
            key = self._key()
            if state in ("RUNNING", "PAUSE") and self.started_key != key:
                self.started_key, self.started_by_id = key, self.fields.task_key is not None
                self.last_progress = self._progress_now()
                out.append(self._report("started", now, key))
            elif state == "RUNNING":
                if prev == "PAUSE" and self.pause_since is not None:
                    self.pause_since = None  # a flap: paused and printing again, unsaid
                elif prev == "PAUSE" and self.paused_reported:
                    self.paused_reported = False
                    self.last_progress = self._progress_now()
                    out.append(self._report("progress", now, key))
                elif self._progress_now() != self.last_progress:
                    self.last_progress = self._progress_now()
                    out.append(self._report("progress", now, key))
            if state == "PAUSE" and self.pause_since is None and not self.paused_reported:
                self.pause_since = now
            return out
        if state in TERMINAL:
            if prev not in TERMINAL:
                if self.started_key is None and self.print_seen_at is None:
                    self.print_seen_at = now
                key = self.started_key or self._key()
                out.append(self._report("finished" if state == "FINISH" else "failed",
                                        now, key))
            self._end_print()
            return out
        # IDLE: straight after RUNNING/PAUSE (or any state while a started print is open)
        if self.started_key is not None:
            out.append(self._report("cancelled", now, self.started_key))
        elif prev != "IDLE":
            out.append(self._report("idle", now))
        self._end_print()
        return out

    def _report(self, kind: ReportKind, at: datetime, key: str | None = None) -> PrinterReport:
        live = self.live()
        assert live is not None  # reports follow a message
        return PrinterReport(printer=self.printer, kind=kind, at=at, live=live, print_key=key)
