"""Payments for a date range, one row each, for the finance office (issue 13, exports).

A :class:`~printcore.requests.date_range.DateRange` (the reports' own, re-exported
here) is two calendar days in the lab's zone, both included; its UTC bounds are ``[start
of from, start of the day after to)``; :func:`parse_range` reads it with the export's
limits. :class:`PaymentReport` reads
the jobs with a payment recorded in those bounds (``JobRepository.with_payments_between``,
one query) and turns each payment, voided ones included, into a :class:`PaymentRow`.
The files themselves (xlsx, CSV) are made by ``adapters.exports``.

:meth:`PaymentReport.email` sends such a file to the finance office through the outbox:
one ``email`` row of kind ``payments_export`` (subject ``lab`` 0) carrying the file as
its attachment, and a lab event ``export_emailed`` (who, range, address, format, rows),
both in one unit of work with the read of the payments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import attrs

from printcore.errors import ValidationError
from printcore.events import Actor
from printcore.lab_events import LAB_ID, LAB_SUBJECT, lab_event
from printcore.outbox import Attachment, OutboxMessage
from printcore.ports import Clock
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


#: The outbox kind (and mail template) of an emailed export.
EXPORT_KIND = "payments_export"
_ADDRESS_CHARS = 254


def checked_address(raw: str | None) -> str:
    """A recipient address (``finance@uni.edu``): one line, no spaces, ``local@domain``
    with a dot in the domain, at most 254 characters. Raises ValidationError (field
    ``address``); adapters may check it more strictly first."""
    text = (raw or "").strip()
    local, at, domain = text.rpartition("@")
    if (not text or len(text) > _ADDRESS_CHARS or not at or not local or "." not in domain
            or domain.startswith(".") or domain.endswith(".")
            or any(c.isspace() or c in "<>,;\x00\"" for c in text)):
        raise ValidationError(f"Not an email address: {text[:60]!r}.",
                              {"address": "Enter one address, like finance@example.edu."})
    return text


@attrs.define
class PaymentReport:
    """Reads the payments of a :class:`DateRange`. ``uow``: a factory of fresh units of
    work (as ``PrintRequests.uow``); ``clock``: for :meth:`email` (when it was queued)."""

    uow: Callable[[], RequestsUnitOfWork]
    clock: Clock | None = None

    def rows(self, days: DateRange) -> list[PaymentRow]:
        start, end = days.utc_bounds()
        with self.uow() as uow:
            jobs = uow.jobs.with_payments_between(start, end)
        return payment_rows(jobs, start, end, days.timezone)

    def email(self, days: DateRange, recipient: str, actor: Actor, file_format: str,
              media_type: str, write: Callable[[Sequence[PaymentRow]], bytes]) -> OutboxMessage:
        """Queue the payments of ``days`` as a file to ``recipient``: ``write`` turns the
        rows into the file's bytes (``file_format`` ``xlsx`` or ``csv`` names it
        ``<file_stem>.<file_format>``, of ``media_type``). One unit of work: the rows are
        read, the outbox row (with the file attached) and the lab event
        ``export_emailed`` (details: ``from``, ``to`` local days, ``timezone``,
        ``address``, ``format``, ``payments``, ``bytes``, ``message_id``) are written
        together, or nothing is. Returns the queued row (delivered by the outbox).

        Raises ValidationError: ``address`` not an address, ``format`` unknown,
        ``staff_name`` not active staff, ``attachment`` too large
        (:data:`printcore.outbox.MAX_ATTACHMENT_BYTES`); nothing is queued then.
        """
        if self.clock is None:
            raise ValueError("PaymentReport.email needs a clock.")
        address = checked_address(recipient)
        if file_format not in ("xlsx", "csv"):
            raise ValidationError(f"Unknown export format {file_format[:20]!r}.",
                                  {"format": "Choose xlsx or csv."})
        start, end = days.utc_bounds()
        now = self.clock.now()
        with self.uow() as uow:
            member = uow.staff.get(actor.name) if actor.kind == "staff" else None
            if member is None or not member.active:
                raise ValidationError(
                    f"Choose your name from the staff list: {actor.name!r} is not active "
                    "staff.", {"staff_name": "Choose your name from the staff list."})
            rows = payment_rows(uow.jobs.with_payments_between(start, end), start, end,
                                days.timezone)
            filename = f"{days.file_stem}.{file_format}"
            attachment = Attachment.checked(filename, media_type, write(rows))
            standing = [r for r in rows if not r.voided]
            message = OutboxMessage(
                channel="email", kind=EXPORT_KIND, recipient=address, subject=LAB_SUBJECT,
                subject_id=LAB_ID, created_at=now, next_attempt_at=now,
                attachment=attachment,
                payload={"first": days.first.isoformat(), "last": days.last.isoformat(),
                         "timezone": days.timezone, "format": file_format,
                         "filename": filename, "payments": len(rows),
                         "voided": len(rows) - len(standing),
                         "total_cents": sum(r.amount_cents for r in standing),
                         "staff_name": actor.name})
            message_id = uow.outbox.add(message)
            uow.events.append(lab_event(
                "export_emailed", actor, now, **{
                    "from": days.first.isoformat(), "to": days.last.isoformat(),
                    "timezone": days.timezone, "address": address, "format": file_format,
                    "payments": len(rows), "bytes": attachment.size,
                    "message_id": message_id}))
            uow.commit()
        return message
