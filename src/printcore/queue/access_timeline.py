"""Open stretches of weekly access hours laid out on real (UTC) time, for ``AccessHours``.

Instants are integers: microseconds since 1970-01-01 UTC. ``Timeline`` turns the weekly
windows (minutes from Monday 00:00, local wall clock) into UTC stretches a few weeks at
a time, with the clock-change rules that ``printcore.queue.access_hours`` documents, and keeps
them in one sorted list, so every lookup is a bisection.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["EPOCH", "ONE_US", "US", "Span", "Timeline", "Windows", "from_us", "to_us"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
ONE_US = timedelta(microseconds=1)
US = 1_000_000  # microseconds per second
WEEK_US = 7 * 86_400 * US
_MAX_CACHED_WEEKS = 160  # keep at most about three years of stretches in memory
_NEAR_WEEKS = 26  # a lookup this close to the cached weeks widens them instead of moving them

#: ``[start, end)`` minutes from Monday 00:00 local wall-clock time, sorted and merged.
Windows = tuple[tuple[int, int], ...]


class Span:
    """Open stretches of weeks ``first_week`` to ``end_week`` (exclusive) as a flat sorted
    list ``bounds`` = [open, close, open, close, …] in UTC microseconds, merged, covering
    real time ``lo`` to ``hi``; ``opened[k]`` is the open time from ``lo`` to ``bounds[k]``.
    A close equal to ``hi`` may be false: the stretch may go on into the next week."""

    __slots__ = ("bounds", "end_week", "first_week", "hi", "lo", "opened")

    def __init__(self, first_week: int, end_week: int, lo: int, hi: int, bounds: list[int]):
        self.first_week = first_week
        self.end_week = end_week
        self.lo = lo
        self.hi = hi
        self.bounds = bounds
        opened: list[int] = []
        total = 0
        for k in range(0, len(bounds), 2):
            opened.append(total)
            total += bounds[k + 1] - bounds[k]
            opened.append(total)
        self.opened = opened

    def opened_until(self, t: int) -> int:
        """Open microseconds from ``lo`` to ``t`` (``lo`` <= ``t`` <= ``hi``)."""
        i = bisect_right(self.bounds, t)
        if i & 1:
            return self.opened[i - 1] + t - self.bounds[i - 1]
        return self.opened[i - 1] if i else 0


class Timeline:
    """The cache behind one AccessHours. ``span`` is replaced whole, never changed, so a
    reader holding one is never disturbed by another thread widening it."""

    __slots__ = ("span", "windows", "zone")

    def __init__(self, zone: ZoneInfo, windows: Windows) -> None:
        self.zone = zone
        self.windows = windows
        self.span: Span | None = None

    # Instants below are microseconds since 1970-01-01 UTC; see AccessHours for meanings.

    def is_open(self, t: int) -> bool:
        span = self.span
        if span is None or not span.lo <= t < span.hi:
            span = self.cover(t, t)
        return bisect_right(span.bounds, t) & 1 == 1

    def next_opening(self, t: int) -> int:
        """``t`` when open, else the next opening."""
        span = self.span
        if span is None or not span.lo <= t < span.hi:
            span = self.cover(t, t)
        while True:
            bounds = span.bounds
            i = bisect_right(bounds, t)
            if i & 1:
                return t
            if i < len(bounds):
                return bounds[i]
            span = self.further(span, t)

    def next_closing(self, t: int) -> int:
        """The end of the stretch holding ``t``, or of the next one."""
        span = self.cover(t, t)
        while True:
            bounds = span.bounds
            i = bisect_right(bounds, t)
            j = i if i & 1 else i + 1
            # a stretch ending exactly where the span ends may go on past it
            if j < len(bounds) and bounds[j] < span.hi:
                return bounds[j]
            span = self.further(span, t)

    def open_between(self, s: int, e: int) -> int:
        """Open microseconds from ``s`` to ``e`` >= ``s``."""
        span = self.cover(s, e)
        return span.opened_until(e) - span.opened_until(s)

    def add_open(self, s: int, d: int) -> int:
        """The first instant by which ``d`` > 0 open microseconds have passed since ``s``."""
        span = self.span
        if span is None or not span.lo <= s < span.hi:
            span = self.cover(s, s)
        while True:
            bounds, opened = span.bounds, span.opened
            i = bisect_right(bounds, s)  # span.opened_until(s), inlined: this is the hot path
            if i & 1:
                target = opened[i - 1] + s - bounds[i - 1] + d
            else:
                target = (opened[i - 1] if i else 0) + d
            k = bisect_left(opened, target)
            if k < len(opened):
                return bounds[k] - (opened[k] - target)
            span = self.further(span, s, d)

    def schedule(self, t: int, d: int) -> tuple[int, int]:
        """``(next_opening(t), add_open(next_opening(t), d))`` with one lookup; ``d`` >= 0."""
        span = self.span
        if span is None or not span.lo <= t < span.hi:
            span = self.cover(t, t)
        while True:
            bounds, opened = span.bounds, span.opened
            i = bisect_right(bounds, t)
            if i & 1:
                start, target = t, opened[i - 1] + t - bounds[i - 1] + d
            elif i < len(bounds):
                start, target = bounds[i], opened[i] + d
            else:
                span = self.further(span, t, d)
                continue
            if d == 0:
                return start, start
            k = bisect_left(opened, target)
            if k < len(opened):
                return start, bounds[k] - (opened[k] - target)
            span = self.further(span, t, d)

    def cover(self, t_lo: int, t_hi: int) -> Span:
        """A span with ``lo`` <= ``t_lo`` and ``t_hi`` < ``hi``, cached when not too long."""
        span = self.span
        if span is not None and span.lo <= t_lo and t_hi < span.hi:
            return span
        first, end = self._week_of(t_lo) - 1, self._week_of(t_hi) + 2
        if (
            span is not None
            and first <= span.end_week + _NEAR_WEEKS
            and end >= span.first_week - _NEAR_WEEKS
            and max(end, span.end_week) - min(first, span.first_week) <= _MAX_CACHED_WEEKS
        ):
            span = self._grow(span, min(first, span.first_week), max(end, span.end_week))
        else:
            span = self._grow(None, first, end)
        while span.lo > t_lo:  # only where clocks change at midnight
            span = self._grow(span, span.first_week - 1, span.end_week)
        while span.hi <= t_hi:
            span = self._grow(span, span.first_week, span.end_week + 1)
        if span.end_week - span.first_week <= _MAX_CACHED_WEEKS:
            self.span = span
        return span

    def further(self, span: Span, t: int, open_us: int = 0) -> Span:
        """A span from ``t`` reaching well past ``span``: past its end by its own length
        or four weeks, and by ``open_us`` of real time more."""
        reach = max(span.hi - span.lo, 4 * WEEK_US) + open_us
        return self.cover(t, span.hi + reach)

    def _grow(self, old: Span | None, first: int, end: int) -> Span:
        if old is None:
            bounds = self._bounds(first, end)
        else:
            before = self._bounds(first, old.first_week)
            after = self._bounds(old.end_week, end)
            bounds = _joined(_joined(before, old.bounds), after)
        instant = self._instant
        return Span(first, end, instant(_monday(first)), instant(_monday(end)), bounds)

    def _bounds(self, first: int, end: int) -> list[int]:
        bounds: list[int] = []
        steps = [
            (timedelta(minutes=start), timedelta(minutes=stop)) for start, stop in self.windows
        ]
        for week in range(first, end):
            monday = _monday(week)
            for start, stop in steps:
                opens = self._instant(monday + start)
                closes = self._instant(monday + stop)
                if opens >= closes:  # the whole window fell in a skipped hour
                    continue
                if bounds and opens <= bounds[-1]:
                    bounds[-1] = max(bounds[-1], closes)
                else:
                    bounds += (opens, closes)
        return bounds

    def _week_of(self, t: int) -> int:
        """Number of the local week holding instant ``t`` (week 0 starts 0001-01-01)."""
        return (from_us(t).astimezone(self.zone).toordinal() - 1) // 7

    def _instant(self, wall: datetime) -> int:
        """``_local_us(wall)``, quickly for the usual wall time that the clock shows once."""
        offset = self.zone.utcoffset(wall)
        if offset is not None and offset == self.zone.utcoffset(wall.replace(fold=1)):
            return (wall - _NAIVE_EPOCH - offset) // ONE_US
        return self._local_us(wall)

    def _local_us(self, wall: datetime) -> int:
        """The instant the lab's clock shows naive ``wall``: its first showing, or, for a
        time the clock skips, the moment the clock jumps past it."""
        t = to_us(wall.replace(tzinfo=self.zone))
        if self._wall(t) == wall:
            return t
        before = to_us(wall.replace(tzinfo=self.zone, fold=1))  # earlier than the jump
        after = t
        while after - before > 1:
            middle = (before + after) // 2
            if self._wall(middle) >= wall:
                after = middle
            else:
                before = middle
        return after

    def _wall(self, t: int) -> datetime:
        return from_us(t).astimezone(self.zone).replace(tzinfo=None)


def _joined(a: list[int], b: list[int]) -> list[int]:
    """Two consecutive bounds lists as one, merging a stretch that runs across the seam."""
    if a and b and b[0] <= a[-1]:
        return [*a[:-1], max(a[-1], b[1]), *b[2:]]
    return a + b


def _monday(week: int) -> datetime:
    return datetime.combine(date.fromordinal(week * 7 + 1), time())


def to_us(at: datetime) -> int:
    """Microseconds since 1970-01-01 UTC; ValueError for a naive datetime."""
    try:
        return (at - EPOCH) // ONE_US
    except TypeError:
        raise ValueError(f"expected a timezone-aware datetime (UTC), got {at!r}") from None


def from_us(t: int) -> datetime:
    return EPOCH + ONE_US * t
