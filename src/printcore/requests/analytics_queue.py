"""The self-service queue's figures for a report: printer utilisation and queue waits,
computed from the tickets' events (subject ``ticket``: ``join``, ``offer``, ``start``,
``close``; each of the last three names its printer in ``details["printer"]``).

* **Utilisation** per printer: the hours its prints were running (a ticket's ``start``
  to its ``close``; a print still open counts until ``now``), clipped to the range,
  divided by the range's hours (a DST day is 23 or 25 hours). Every printer in the
  lab's list appears, at 0 when unused; a printer seen only in the events (renamed or
  removed since) appears too.
* **Queue waits**: joined → offered (the ticket's first ``offer``; a re-offer after a
  missed window does not restart it) over the tickets first offered in the range, and
  joined → started (its ``start``) over the tickets started in the range; median (mean
  of the middle two for an even count) and nearest-rank p90, in minutes rounded to 0.1.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs

from printcore.events import Event

__all__ = ["QUEUE_KINDS", "PrinterUse", "QueueWait", "queue_waits", "utilisation"]

#: The ticket event kinds the queue figures read.
QUEUE_KINDS: tuple[str, ...] = ("join", "offer", "start", "close")


@attrs.frozen
class PrinterUse:
    """One printer over a range: ``prints`` (prints running at some time in the range),
    ``hours_in_use`` (clipped to the range), ``hours_in_range`` and ``utilisation``
    (``hours_in_use / hours_in_range``, 0..1, rounded to 0.0001); hours rounded to 0.01."""

    printer: str
    prints: int
    hours_in_use: float
    hours_in_range: float
    utilisation: float


@attrs.frozen
class QueueWait:
    """Minutes from ``start`` to ``end`` milestone over ``tickets`` tickets (None: none)."""

    wait: str  # "offered" or "started"
    start: str
    end: str
    tickets: int
    median_minutes: float | None
    p90_minutes: float | None


@attrs.define
class _Ticket:
    joined: datetime | None = None
    offered: datetime | None = None
    started: datetime | None = None
    closed: datetime | None = None
    printer: str | None = None


def _tickets(events: Iterable[Event]) -> dict[int, _Ticket]:
    found: dict[int, _Ticket] = defaultdict(_Ticket)
    for e in events:
        if e.subject != "ticket":
            continue
        t = found[e.subject_id]
        if e.kind == "join" and t.joined is None:
            t.joined = e.at
        elif e.kind == "offer" and t.offered is None:
            t.offered = e.at
        elif e.kind == "start":
            t.started, t.closed = e.at, None
            t.printer = str(e.details.get("printer") or t.printer or "")
        elif e.kind == "close" and t.started is not None:
            t.closed = e.at
            t.printer = t.printer or str(e.details.get("printer") or "")
    return found


def utilisation(events: Iterable[Event], printers: Sequence[str], start: datetime,
                end: datetime, now: datetime) -> tuple[PrinterUse, ...]:
    """Per printer (the names in ``printers`` first, in their order, then any other seen
    in the events, by name), over ``[start, end)`` (UTC); see the module doc."""
    hours_in_range = (end - start).total_seconds() / 3600
    used: dict[str, float] = {name: 0.0 for name in printers}
    prints: dict[str, int] = {name: 0 for name in printers}
    for t in _tickets(events).values():
        if t.started is None or not t.printer:
            continue
        stop = t.closed if t.closed is not None else max(now, t.started)
        lo, hi = max(t.started, start), min(stop, end)
        if lo >= hi and not (start <= t.started < end):
            continue
        used[t.printer] = used.get(t.printer, 0.0) + max((hi - lo).total_seconds(), 0) / 3600
        prints[t.printer] = prints.get(t.printer, 0) + 1
    others = sorted(name for name in used if name not in printers)
    return tuple(
        PrinterUse(name, prints[name], round(used[name], 2), round(hours_in_range, 2),
                   round(used[name] / hours_in_range, 4) if hours_in_range else 0.0)
        for name in [*printers, *others])


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def queue_waits(events: Iterable[Event], start: datetime,
                end: datetime) -> tuple[QueueWait, ...]:
    """Joined → offered and joined → started over ``[start, end)``; see the module doc."""
    offered: list[float] = []
    started: list[float] = []
    for t in _tickets(events).values():
        if t.joined is None:
            continue
        if t.offered is not None and start <= t.offered < end:
            offered.append((t.offered - t.joined).total_seconds() / 60)
        if t.started is not None and start <= t.started < end:
            started.append((t.started - t.joined).total_seconds() / 60)

    def wait(key: str, label: str, values: list[float]) -> QueueWait:
        return QueueWait(key, "joined", label, len(values),
                         round(statistics.median(values), 1) if values else None,
                         round(_p90(values), 1) if values else None)

    return (wait("offered", "offered", offered), wait("started", "started", started))
