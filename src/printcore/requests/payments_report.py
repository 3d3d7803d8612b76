"""Payments for a date range, one row each, for the finance office (issue 13, exports).

A :class:`~printcore.requests.date_range.DateRange` (the reports' own, re-exported
here) is two calendar days in the lab's zone, both included; its UTC bounds are ``[start
of from, start of the day after to)``; :func:`parse_range` reads it with the export's
limits. :class:`PaymentReport` reads
the jobs with a payment recorded in those bounds (``JobRepository.with_payments_between``,
one query) and turns each payment, voided ones included, into a :class:`PaymentRow`.
The files themselves (xlsx, CSV) are made by ``adapters.exports``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

import attrs

from printcore.requests.date_range import DateRange
from printcore.requests.job import Job
from printcore.requests.ports import RequestsUnitOfWork

__all__ = ["MAX_RANGE_DAYS", "MIN_YEAR", "DateRange", "PaymentReport", "PaymentRow",
           "parse_range", "payment_rows"]

#: The longest range accepted, in days (about ten years).
MAX_RANGE_DAYS = 3653
#: No payment can predate printcore; earlier years are typing mistakes.
MIN_YEAR = 2000


def parse_range(first: str | None, last: str | None, timezone: str) -> DateRange:
    """The export's range from the texts ``from`` and ``to`` (``YYYY-MM-DD``, both
    required): :meth:`DateRange.parse` with years 2000 to 9998 and at most
    :data:`MAX_RANGE_DAYS` days. Raises ValidationError (fields ``from``/``to``)."""
    return DateRange.parse(first, last, timezone, max_days=MAX_RANGE_DAYS, min_year=MIN_YEAR)


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
