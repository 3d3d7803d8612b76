"""Payments for a date range, one row each, for the finance office (issue 13, exports).

A :class:`DateRange` is two calendar days in the lab's zone, both included; its UTC
bounds are ``[start of from, start of the day after to)``. :class:`PaymentReport` reads
the jobs with a payment recorded in those bounds (``JobRepository.with_payments_between``,
one query) and turns each payment, voided ones included, into a :class:`PaymentRow`.
The files themselves (xlsx, CSV) are made by ``adapters.exports``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs

from printcore.errors import ValidationError
from printcore.requests.job import Job
from printcore.requests.ports import RequestsUnitOfWork

__all__ = ["MAX_RANGE_DAYS", "MIN_YEAR", "DateRange", "PaymentReport", "PaymentRow",
           "payment_rows"]

#: The longest range accepted, in days (about ten years).
MAX_RANGE_DAYS = 3653
#: No payment can predate printcore; earlier years are typing mistakes.
MIN_YEAR = 2000
_FORM = "a date as YYYY-MM-DD (e.g. 2026-11-01)"


@attrs.frozen
class DateRange:
    """Calendar days ``first``..``last`` (both included) in the lab's zone ``timezone``
    (an IANA name such as ``America/Chicago``)."""

    first: date
    last: date
    timezone: str

    @classmethod
    def parse(cls, first: str | None, last: str | None, timezone: str) -> DateRange:
        """From the texts ``from`` and ``to`` (``YYYY-MM-DD``). Raises ValidationError
        with per-field messages (fields ``from`` and ``to``) for a missing or unparseable
        date, a year before 2000 or after 9998, ``to`` before ``from``, or a range longer
        than :data:`MAX_RANGE_DAYS` days."""
        day_from, day_to = _day(first, "from"), _day(last, "to")
        if day_to < day_from:
            raise ValidationError(
                f"The range is reversed: 'to' ({day_to}) is before 'from' ({day_from}).",
                {"to": f"Must be on or after 'from' ({day_from}); {_FORM}."})
        if (day_to - day_from).days + 1 > MAX_RANGE_DAYS:
            raise ValidationError(
                f"The range is longer than {MAX_RANGE_DAYS} days (about ten years).",
                {"to": f"At most {MAX_RANGE_DAYS} days after 'from'; export in parts."})
        return cls(day_from, day_to, timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """``(start, end)`` in UTC: midnight starting ``first`` and midnight after
        ``last`` in the lab's zone (end excluded)."""
        zone = self.zone
        start = datetime.combine(self.first, time(0), zone).astimezone(UTC)
        end = datetime.combine(self.last + timedelta(days=1), time(0), zone).astimezone(UTC)
        return start, end

    @property
    def file_stem(self) -> str:
        """``payments-2026-11-01-to-2026-11-30``."""
        return f"payments-{self.first.isoformat()}-to-{self.last.isoformat()}"


def _day(raw: str | None, field: str) -> date:
    text = (raw or "").strip()
    if not text:
        raise ValidationError(f"'{field}' is required: {_FORM}.", {field: f"Required: {_FORM}."})
    try:
        if len(text) != 10:
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"'{field}' is not {_FORM}: {text[:40]!r}.",
                              {field: f"Not a date; enter {_FORM}."}) from None
    if not MIN_YEAR <= day.year <= 9998:
        raise ValidationError(f"'{field}' is out of range: the year must be {MIN_YEAR} to 9998.",
                              {field: f"The year must be {MIN_YEAR} to 9998; {_FORM}."})
    return day


@attrs.frozen
class PaymentRow:
    """One payment as the finance office reads it. Money in integer cents, grams as
    weighed, ``recorded_at``/``voided_at`` in the lab's zone (aware datetimes);
    ``quoted_cents``/``override_reason``/``voided_at``/``void_reason`` None when unset."""

    job_id: int
    student: str
    email: str
    discipline: str
    class_number: str
    method: str
    color: str
    grams: float
    amount_cents: int
    quoted_cents: int | None
    override_reason: str | None
    txn_no: str
    picked_up_by: str
    staff: str
    recorded_at: datetime
    voided_at: datetime | None
    void_reason: str | None

    @property
    def voided(self) -> bool:
        return self.voided_at is not None


def payment_rows(jobs: Iterable[Job], start: datetime, end: datetime,
                 timezone: str) -> list[PaymentRow]:
    """Every payment of ``jobs`` recorded in ``[start, end)`` (UTC), voided ones
    included, ordered by when it was recorded, then job id; times shown in ``timezone``."""
    zone = ZoneInfo(timezone)
    rows: list[PaymentRow] = []
    for job in jobs:
        assert job.id is not None
        for p in job.payments:
            if not start <= p.recorded_at < end:
                continue
            rows.append(PaymentRow(
                job_id=job.id, student=job.student_name, email=job.email,
                discipline=job.discipline, class_number=job.class_number,
                method=job.print_method, color=job.color, grams=p.grams,
                amount_cents=p.amount_cents, quoted_cents=p.quoted_cents,
                override_reason=p.override_reason, txn_no=p.txn_no,
                picked_up_by=p.picked_up_by, staff=p.recorded_by,
                recorded_at=p.recorded_at.astimezone(zone),
                voided_at=p.voided_at.astimezone(zone) if p.voided_at else None,
                void_reason=p.void_reason))
    rows.sort(key=lambda r: (r.recorded_at, r.job_id))
    return rows


@attrs.define
class PaymentReport:
    """Reads the payments of a :class:`DateRange`. ``uow``: a factory of fresh units of
    work (as ``PrintRequests.uow``)."""

    uow: Callable[[], RequestsUnitOfWork]

    def rows(self, days: DateRange) -> list[PaymentRow]:
        start, end = days.utc_bounds()
        with self.uow() as uow:
            jobs = uow.jobs.with_payments_between(start, end)
        return payment_rows(jobs, start, end, days.timezone)
