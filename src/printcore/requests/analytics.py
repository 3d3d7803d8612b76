"""The lab's figures for a date range (reports page, ``GET /api/v1/analytics``), computed
from the event log and the payments, never stored.

A range is whole local days in the lab's zone (``PRINTCORE_TIMEZONE``), ``first`` to
``last`` inclusive, at most :data:`MAX_RANGE_DAYS` days. An event counts on the local day
of its ``at`` (an event at 23:30 in Chicago counts on that day although it is the next day
in UTC).

Figures (:class:`Report`):

* per day (:class:`DayFigures`): the events of each kind that day: submissions
  (``submit``), approvals (``approve``), rejections (``reject``, and by reason), failed
  prints (``fail_print``), completions (``complete``), pickups (``pick_up``), and the
  reverted completions and pickups (``revert_completion``, ``revert_pickup``) as their own
  columns (a reverted pickup still counts as a pickup on its day; its payment is voided);
* lead time per stage (:class:`StageTime`): submitted → approved → confirmed → printing
  started → completed → picked up, median and p90 in hours, over the jobs whose stage
  *ended* in the range. A stage starts at the first time the job reached its start
  milestone (the first ``start_print``, so reprints after a failure count in "printing");
  "completed" and "picked up" are the standing ones (a later revert cancels them);
* material in grams by print method and colour, and revenue in integer cents, from the
  payments recorded in the range that are not voided;
* the same counts per ISO week (``group="week"``: Monday to Sunday in the lab's zone,
  the first and last weeks clipped to the range) as :class:`Period` rows;
* the self-service queue: printer utilisation and queue waits
  (:mod:`printcore.requests.analytics_queue`).

Median: the middle value (the mean of the two middle ones for an even count); p90: the
nearest-rank 90th percentile (the ``ceil(0.9·n)``-th smallest). Hours rounded to 0.01.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import attrs

from printcore.errors import ValidationError
from printcore.events import Event
from printcore.ports import Clock
from printcore.requests.analytics_queue import (
    QUEUE_KINDS,
    PrinterUse,
    QueueWait,
    queue_waits,
    utilisation,
)
from printcore.requests.date_range import DEFAULT_DAYS, MAX_RANGE_DAYS, DateRange

__all__ = [
    "DEFAULT_DAYS", "GROUPS", "MAX_RANGE_DAYS", "QUEUE_KINDS", "STAGES", "Analytics",
    "DateRange", "DayFigures", "History", "HistoryReader", "MaterialUse", "PaymentRecord",
    "Period", "PrinterUse", "QueueWait", "Report", "StageStats", "StageTime", "Tally",
    "Throughput",
    "compute", "report_of", "tally",
]

#: How the per-period figures are grouped: by local day, or by ISO week (Monday to
#: Sunday, in the lab's zone; the first and last week clipped to the range).
GROUPS = ("day", "week")

#: The lifecycle event kinds the figures read (``submitted``: older logs' name).
KINDS: tuple[str, ...] = ("submit", "submitted", "approve", "reject", "confirm",
                          "force_confirm", "start_print", "fail_print", "complete",
                          "revert_completion", "pick_up", "revert_pickup")

#: (key, from milestone label, to milestone label), in workflow order.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("review", "submitted", "approved"),
    ("confirmation", "approved", "confirmed"),
    ("wait_to_print", "confirmed", "printing started"),
    ("printing", "printing started", "completed"),
    ("pickup", "completed", "picked up"),
)


@attrs.frozen
class PaymentRecord:
    """One payment of a job: ``grams`` weighed, ``amount_cents`` charged, ``at`` UTC."""

    job_id: int
    print_method: str
    color: str
    grams: float
    amount_cents: int
    at: datetime
    voided: bool = False


@attrs.frozen
class History:
    """What a report reads: job ``events`` (oldest first) and ``payments``; the queue's
    ticket events (``queue_events``, kinds :data:`QUEUE_KINDS`, oldest first) and the
    names of the lab's ``printers``."""

    events: tuple[Event, ...]
    payments: tuple[PaymentRecord, ...]
    queue_events: tuple[Event, ...] = ()
    printers: tuple[str, ...] = ()


class HistoryReader(Protocol):
    def history(self, start: datetime, end: datetime) -> History:
        """For ``[start, end)`` (UTC): every event of kind :data:`KINDS` with subject
        ``job`` and ``at < end`` of each job with at least one such event in the range,
        oldest first (by ``at``, then id); and every payment (voided ones flagged)
        recorded in the range. Queue: every event of kind :data:`QUEUE_KINDS` with
        subject ``ticket`` and ``at < end`` of each ticket with an event in the range or
        a print started before ``start`` and not closed by then; the printers' names in
        the lab's order. Raises StorageError when the database cannot be reached."""
        ...

    def tally(self, span: DateRange) -> Tally:
        """The history of ``span`` reduced (:class:`Tally`): ``tally(self.history(
        span.start, span.end), span)``, or the same figures reduced in the database.
        Raises StorageError."""
        ...


@attrs.frozen
class DayFigures:
    day: date
    submissions: int = 0
    approvals: int = 0
    rejections: int = 0
    failed_prints: int = 0
    completions: int = 0
    pickups: int = 0
    reverted_completions: int = 0
    reverted_pickups: int = 0


@attrs.frozen
class Period:
    """The counts of one day or one ISO week: ``label`` is ``2026-10-05`` or
    ``2026-W41``; ``first``/``last`` its local days within the range; ``figures`` the
    counts summed over them (its ``day`` is ``first``)."""

    label: str
    first: date
    last: date
    figures: DayFigures


@attrs.frozen
class StageTime:
    """Hours from ``start`` to ``end`` milestone over ``jobs`` jobs (None: no job)."""

    stage: str
    start: str
    end: str
    jobs: int
    median_hours: float | None
    p90_hours: float | None


@attrs.frozen
class MaterialUse:
    print_method: str
    color: str
    grams: float
    payments: int
    revenue_cents: int


@attrs.frozen
class Report:
    range: DateRange
    days: tuple[DayFigures, ...]
    totals: DayFigures  # ``day`` is the range's first day
    rejection_reasons: tuple[tuple[str, int], ...]  # most frequent first
    stages: tuple[StageTime, ...]
    material: tuple[MaterialUse, ...]  # by method, then colour
    revenue_cents: int
    payments: int
    voided_payments: int
    group: str = "day"
    periods: tuple[Period, ...] = ()  # per ``group``: days, or ISO weeks
    printers: tuple[PrinterUse, ...] = ()
    queue_waits: tuple[QueueWait, ...] = ()

    @property
    def throughput(self) -> Throughput:
        """Finished work per day and per week, averaged over the range's days."""
        return Throughput.of(self.totals, len(self.days))


@attrs.frozen
class Throughput:
    """The lab's throughput over ``days`` local days: ``prints`` finished (completions
    minus reverted completions: a reverted and redone completion counts once) and
    ``pickups`` (pickups minus reverted pickups), each as a total and as an average per
    day and per 7 days, rounded to 0.01."""

    days: int
    prints: int
    pickups: int
    prints_per_day: float
    prints_per_week: float
    pickups_per_day: float
    pickups_per_week: float

    @classmethod
    def of(cls, totals: DayFigures, days: int) -> Throughput:
        prints = totals.completions - totals.reverted_completions
        pickups = totals.pickups - totals.reverted_pickups
        per = max(days, 1)
        return cls(days, prints, pickups, round(prints / per, 2), round(prints * 7 / per, 2),
                   round(pickups / per, 2), round(pickups * 7 / per, 2))


_COLUMNS = {"submit": "submissions", "submitted": "submissions", "approve": "approvals",
            "reject": "rejections", "fail_print": "failed_prints",
            "complete": "completions", "pick_up": "pickups",
            "revert_completion": "reverted_completions", "revert_pickup": "reverted_pickups"}


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _milestones(events: Iterable[Event]) -> dict[int, dict[str, datetime]]:
    """Per job: the moment of each milestone (labels of :data:`STAGES`) as of the end."""
    seen: dict[int, dict[str, datetime]] = defaultdict(dict)
    first = {"submit": "submitted", "submitted": "submitted", "approve": "approved",
             "confirm": "confirmed", "force_confirm": "confirmed",
             "start_print": "printing started"}
    for e in events:
        marks = seen[e.subject_id]
        if e.kind in first:
            marks.setdefault(first[e.kind], e.at)
        elif e.kind == "complete":
            marks["completed"] = e.at
        elif e.kind == "revert_completion":
            marks.pop("completed", None)
        elif e.kind == "pick_up":
            marks["picked up"] = e.at
        elif e.kind == "revert_pickup":
            marks.pop("picked up", None)
    return seen


def _periods(days: tuple[DayFigures, ...], span: DateRange, group: str) -> tuple[Period, ...]:
    if group == "day":
        return tuple(Period(d.day.isoformat(), d.day, d.day, d) for d in days)
    by_day = {d.day: d for d in days}
    out = []
    for week in span.weeks():
        counts: Counter[str] = Counter()
        for d in days:
            if week.first <= d.day <= week.last:
                counts.update({k: v for k, v in attrs.asdict(by_day[d.day]).items()
                               if k != "day"})
        out.append(Period(week.label, week.first, week.last, DayFigures(week.first, **counts)))
    return tuple(out)


@attrs.frozen
class StageStats:
    """One stage over the jobs whose stage ended in the range: ``jobs``, ``median`` and
    nearest-rank ``p90`` in hours, unrounded (None: no job)."""

    jobs: int = 0
    median: float | None = None
    p90: float | None = None

    @classmethod
    def of(cls, hours: list[float]) -> StageStats:
        if not hours:
            return cls()
        return cls(len(hours), statistics.median(hours), _p90(hours))


@attrs.frozen
class Tally:
    """A range's history reduced to what the report shows (all within ``[start, end)``):
    ``counts`` ``{(local day, column of DayFigures): n}``; ``reasons`` ``{reason: n}``;
    ``stages`` ``{stage key: StageStats}``; ``material`` ``{(method, colour): (grams,
    payments, cents)}`` over the payments not voided, ``voided_payments``; and the queue's
    ``queue_events`` and ``printers`` as :class:`History` has them. Readers that can
    reduce in the database (PostgreSQL) make it directly; others use :func:`tally`."""

    counts: dict[tuple[date, str], int]
    reasons: dict[str, int]
    stages: dict[str, StageStats]
    material: dict[tuple[str, str], tuple[float, int, int]]
    voided_payments: int
    queue_events: tuple[Event, ...] = ()
    printers: tuple[str, ...] = ()


#: The event kinds counted per day, and their DayFigures column.
COLUMNS = _COLUMNS


def tally(history: History, span: DateRange) -> Tally:
    """Reduce ``history`` (:meth:`HistoryReader.history` of ``span``) to a :class:`Tally`;
    events and payments outside the range are ignored."""
    start, end = span.start, span.end
    counts: Counter[tuple[date, str]] = Counter()
    reasons: Counter[str] = Counter()
    for e in history.events:
        if not start <= e.at < end or e.kind not in _COLUMNS:
            continue
        counts[(span.day_of(e.at), _COLUMNS[e.kind])] += 1
        if e.kind == "reject":
            reasons.update(str(r) for r in e.details.get("reasons") or [])
    durations: dict[str, list[float]] = {key: [] for key, _, _ in STAGES}
    for marks in _milestones(history.events).values():
        for key, begin, finish in STAGES:
            if begin in marks and finish in marks and start <= marks[finish] < end:
                durations[key].append((marks[finish] - marks[begin]).total_seconds() / 3600)
    paid = [p for p in history.payments if start <= p.at < end]
    material: dict[tuple[str, str], tuple[float, int, int]] = {}
    for p in paid:
        if not p.voided:
            grams, n, cents = material.get((p.print_method, p.color), (0.0, 0, 0))
            material[(p.print_method, p.color)] = (grams + p.grams, n + 1,
                                                   cents + p.amount_cents)
    return Tally(dict(counts), dict(reasons),
                 {key: StageStats.of(hours) for key, hours in durations.items()}, material,
                 sum(1 for p in paid if p.voided), history.queue_events, history.printers)


def report_of(t: Tally, span: DateRange, now: datetime | None = None,
              group: str = "day") -> Report:
    """The :class:`Report` of a :class:`Tally`. ``now`` (UTC; default the range's end)
    ends the prints still running; ``group`` (:data:`GROUPS`) makes ``periods``."""
    start, end = span.start, span.end
    per_day: dict[date, Counter[str]] = {d: Counter() for d in span.days()}
    for (day, column), n in t.counts.items():
        if day in per_day:
            per_day[day][column] += n
    days = tuple(DayFigures(d, **c) for d, c in per_day.items())
    totals = DayFigures(span.first, **sum(per_day.values(), Counter()))
    stages = tuple(
        StageTime(key, begin, finish, t.stages.get(key, StageStats()).jobs,
                  _round(t.stages.get(key, StageStats()).median),
                  _round(t.stages.get(key, StageStats()).p90))
        for key, begin, finish in STAGES)
    material = tuple(MaterialUse(m, c, round(grams, 2), n, cents)
                     for (m, c), (grams, n, cents) in sorted(t.material.items()))
    return Report(
        range=span, days=days, totals=totals,
        rejection_reasons=tuple(sorted(t.reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        stages=stages, material=material,
        revenue_cents=sum(m.revenue_cents for m in material),
        payments=sum(m.payments for m in material), voided_payments=t.voided_payments,
        group=group, periods=_periods(days, span, group),
        printers=utilisation(t.queue_events, t.printers, start, end,
                             now if now is not None else end),
        queue_waits=queue_waits(t.queue_events, start, end))


def _round(hours: float | None) -> float | None:
    return None if hours is None else round(hours, 2)


def compute(history: History, span: DateRange, now: datetime | None = None,
            group: str = "day") -> Report:
    """The figures of ``span`` from ``history`` (:meth:`HistoryReader.history` of
    ``span.start``..``span.end``): :func:`report_of` of :func:`tally`."""
    return report_of(tally(history, span), span, now, group)


@attrs.define
class Analytics:
    """The reports service: ``reader`` gives the history, ``timezone`` is the lab's zone
    (IANA name), ``clock`` says what "today" is (for the default range)."""

    reader: HistoryReader
    clock: Clock
    timezone: str = "UTC"

    def range(self, first: str | None = None, last: str | None = None) -> DateRange:
        """Parse a range (:meth:`DateRange.parse`; missing ends: the last 30 days)."""
        today = self.clock.now().astimezone(ZoneInfo(self.timezone)).date()
        return DateRange.parse(first, last, self.timezone, today)

    def report(self, first: str | None = None, last: str | None = None,
               group: str | None = None) -> Report:
        """The figures for ``first``..``last`` (``YYYY-MM-DD``, local days), per
        ``group`` (``day``, the default, or ``week``). Raises ValidationError (fields
        ``from``/``to``/``group``) or StorageError."""
        chosen = (group or "day").strip().lower()
        if chosen not in GROUPS:
            raise ValidationError(f"Unknown grouping {(group or '')[:20]!r}: use day or week.",
                                  {"group": "Use day or week."})
        span = self.range(first, last)
        return report_of(self.reader.tally(span), span, now=self.clock.now(), group=chosen)
