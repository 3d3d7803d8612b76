"""What a printer says about itself: the printer-status port of the self-service queue
(issue 15).

A printer-status source (``adapters.bambu`` watches Bambu Lab printers over their LAN MQTT
interface) turns what a printer reports into :class:`PrinterReport` values and hands each
to a :class:`PrinterStatusSink` — in a deployment, ``QueueService.printer_reported``,
which applies the queue's rules for watched printers (docs/printers.md):

* ``started``: the printer began printing (Bambu ``gcode_state`` RUNNING after IDLE,
  PREPARE, FINISH, FAILED). Within a claim's start window it meets the window, as a
  member's "started" report would; whichever comes first counts, once.
* ``progress``: still printing; ``remaining_minutes`` moves the predicted end.
* ``paused``: printing is paused (``PAUSE``); the print stays open.
* ``finished`` / ``failed`` / ``cancelled``: the print ended (``FINISH``, ``FAILED``, or
  IDLE straight after RUNNING/PAUSE); the open print is closed with ``at`` as its end, so
  its duration is known, not a bound.
* ``idle``: the printer is idle with nothing on it (IDLE after a finished print was
  closed, or on first contact); a printer with no open print can be offered.
* ``offline`` / ``online``: the source lost or regained the printer (no report for the
  configured time, or the connection dropped and came back).

Reports describe state changes, not every message: a source sends ``progress`` at most
when the remaining time or layer changes, and never the same ``started`` twice for one
print. The sink must still be idempotent per ``(printer, kind, print_key)``: a restarted
source recovers its state from the printer's next full report and may repeat the last
change.

Pure domain: no MQTT, no TLS, no adapter imports.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

import attrs

from printcore.queue.durations import format_duration

if TYPE_CHECKING:
    from printcore.queue.entities import Printer

__all__ = [
    "LIVE_STATES",
    "REPORT_KINDS",
    "PrinterLiveState",
    "PrinterReport",
    "PrinterStatusSink",
    "ReportKind",
    "live_summary",
]

ReportKind = Literal["started", "progress", "paused", "finished", "failed", "cancelled",
                     "idle", "offline", "online"]

#: Every kind a source may report, in the order of a print's life.
REPORT_KINDS: tuple[str, ...] = ("online", "idle", "started", "progress", "paused",
                                 "finished", "failed", "cancelled", "offline")


@attrs.frozen
class PrinterLiveState:
    """The last known state of a watched printer, as shown to staff and on ``/status``.

    ``state`` is the printer's own word (Bambu ``gcode_state``: IDLE, PREPARE, RUNNING,
    PAUSE, FINISH, FAILED, or OFFLINE when the source lost it); ``percent`` 0-100;
    ``layer``/``total_layers`` from ``layer_num``/``total_layer_num``;
    ``remaining_minutes`` from ``mc_remaining_time``; ``file`` is ``subtask_name`` (or
    ``gcode_file``); ``error_code`` is ``mc_print_error_code``/``print_error`` when not 0;
    ``reported_at`` (UTC) is when the source last heard from the printer.
    """

    state: str
    reported_at: datetime
    percent: int | None = None
    layer: int | None = None
    total_layers: int | None = None
    remaining_minutes: int | None = None
    file: str | None = None
    error_code: str | None = None


@attrs.frozen
class PrinterReport:
    """One change a printer reported.

    ``printer`` is the queue's printer name (as in the printers file); ``kind`` one of
    :data:`REPORT_KINDS`; ``at`` (UTC) the time of the change by the source's clock when
    the report arrived (Bambu reports carry no timestamp of their own); ``print_key``
    names the print the change belongs to (Bambu: ``subtask_id``/``task_id``, else
    ``gcode_file`` + the time printing started) so a repeated ``started`` or ``finished``
    for the same print is recognised; ``live`` is the printer's state after the change.
    """

    printer: str
    kind: ReportKind
    at: datetime
    live: PrinterLiveState
    print_key: str | None = None


class PrinterStatusSink(Protocol):
    """Whoever applies printer reports (``QueueService.printer_reported``)."""

    def printer_reported(self, report: PrinterReport) -> object:
        """Apply one report. Must not raise for a report that changes nothing (a
        repeated change, a printer not in the queue's list is the caller's to log)."""
        ...


#: How a watched printer's own state word (Bambu ``gcode_state``) reads to people.
LIVE_STATES: dict[str, str] = {
    "IDLE": "idle", "PREPARE": "preparing", "SLICING": "preparing", "RUNNING": "printing",
    "PAUSE": "paused", "FINISH": "finished", "FAILED": "failed", "OFFLINE": "offline",
    "INIT": "starting up", "UNKNOWN": "unknown"}


def live_summary(printer: Printer) -> str:
    """What the printer last reported, in words: ``printing, 45 %, layer 120/300, 32m
    left``; ``""`` for a printer that does not report for itself."""
    state = printer.live_state
    if state is None:
        return ""
    words = [LIVE_STATES.get(state, state.lower())]
    if state in ("RUNNING", "PAUSE", "PREPARE"):
        if printer.live_percent is not None:
            words.append(f"{printer.live_percent} %")
        if printer.live_layer is not None and printer.live_total_layers:
            words.append(f"layer {printer.live_layer}/{printer.live_total_layers}")
        if printer.live_remaining_minutes is not None:
            remaining = timedelta(minutes=max(1, printer.live_remaining_minutes))
            words.append(f"{format_duration(remaining)} left")
    return ", ".join(words)
