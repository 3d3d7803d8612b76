"""The print request (``Job``) entity and its value objects."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from printcore.events import Actor
from printcore.slicing import SliceEstimate

__all__ = [
    "Actor",
    "Job",
    "JobFile",
    "JobStatus",
    "Payment",
    "PrintMethod",
    "Submission",
]


class JobStatus(str, enum.Enum):
    """States of a print request. ``deleted`` exists only as the target of ``delete``."""

    UPLOADED = "uploaded"
    PENDING = "pending"
    REJECTED = "rejected"
    READY_TO_PRINT = "ready_to_print"
    PRINTING = "printing"
    COMPLETED = "completed"
    PAID_PICKED_UP = "paid_picked_up"
    DELETED = "deleted"

    @property
    def label(self) -> str:
        return {
            "uploaded": "Uploaded",
            "pending": "Pending confirmation",
            "rejected": "Rejected",
            "ready_to_print": "Ready to print",
            "printing": "Printing",
            "completed": "Completed",
            "paid_picked_up": "Paid & picked up",
            "deleted": "Deleted",
        }[self.value]

    @property
    def folder(self) -> str:
        """Storage folder of this state, e.g. ``ReadyToPrint`` (DESIGN.md, Files)."""
        return {
            "uploaded": "Uploaded",
            "pending": "Pending",
            "rejected": "Rejected",
            "ready_to_print": "ReadyToPrint",
            "printing": "Printing",
            "completed": "Completed",
            "paid_picked_up": "PaidPickedUp",
            "deleted": "Deleted",
        }[self.value]


#: The states a dashboard shows, in workflow order.
ACTIVE_STATUSES: tuple[JobStatus, ...] = (
    JobStatus.UPLOADED,
    JobStatus.PENDING,
    JobStatus.READY_TO_PRINT,
    JobStatus.PRINTING,
    JobStatus.COMPLETED,
    JobStatus.PAID_PICKED_UP,
    JobStatus.REJECTED,
)


class PrintMethod(str, enum.Enum):
    FILAMENT = "filament"
    RESIN = "resin"


@attrs.frozen
class JobFile:
    """A file kept for a job.

    ``stored_name`` is the generated name on disk (never the user's); ``original_name``
    what the uploader called it (recorded, never used as a path); ``role`` is
    ``original`` (the student's model) or ``sliced`` (a staff-made sliced file);
    ``size_bytes`` in bytes; ``sha256`` hex digest.
    """

    stored_name: str
    original_name: str
    role: str
    size_bytes: int
    sha256: str
    uploaded_at: datetime
    estimate: SliceEstimate | None = None


@attrs.frozen
class Payment:
    """Money taken at pickup. ``amount_cents`` in integer cents, ``grams`` as weighed.

    A reverted pickup voids the payment (``voided_at``/``void_reason``); it is never deleted.
    ``quoted_cents``: the cost the student had confirmed; ``override_reason``: why staff
    charged more than that (set only then). Both None on payments recorded before they
    existed.
    """

    grams: float
    amount_cents: int
    txn_no: str
    picked_up_by: str
    recorded_by: str
    recorded_at: datetime
    voided_at: datetime | None = None
    void_reason: str | None = None
    quoted_cents: int | None = None
    override_reason: str | None = None


@attrs.frozen
class Submission:
    """What a student types on the upload form (already trimmed by the adapter)."""

    student_name: str
    email: str
    discipline: str
    class_number: str
    print_method: str
    color: str
    preferred_printer: str = ""
    notes: str = ""


@attrs.define
class Job:
    """A print request.

    Weights are grams, times hours (``time_hours`` as approved, rounded up to 0.5 h),
    money integer cents, datetimes timezone-aware UTC. ``version`` is the optimistic
    concurrency counter, bumped by every stored change. ``reviewed_at``/``reviewed_by``:
    when and by which staff member the job was marked reviewed (both None: nobody has
    looked at it yet, and the staff pages show it as NEW); not part of the lifecycle.
    ``staff_notes``: the staff's own notes on the job (multi-line, ≤ 2000 characters, ""
    when none), last changed by ``staff_notes_by`` at ``staff_notes_at``.
    ``confirmed_at``: when the student (or staff) confirmed (UTC); the lab prints
    ready jobs in this order, so it gives a job's place in the print line; kept through
    a failed print. ``reminder_sent_at``/``reminder_nonce``: when the last reminder that
    the confirmation link expires soon went out, and for which link.
    """

    student_name: str
    email: str
    discipline: str
    class_number: str
    print_method: str
    color: str
    created_at: datetime
    preferred_printer: str = ""
    notes: str = ""
    id: int | None = None
    status: str = JobStatus.UPLOADED.value
    version: int = 0
    updated_at: datetime | None = None
    files: list[JobFile] = attrs.Factory(list)
    authoritative_file: str | None = None
    weight_g: float | None = None
    time_hours: float | None = None
    cost_cents: int | None = None
    rejection_reasons: list[str] = attrs.Factory(list)
    confirmation_nonce: str | None = None
    confirmation_expires_at: datetime | None = None
    printer: str | None = None
    failed_attempts: int = 0
    payments: list[Payment] = attrs.Factory(list)
    reviewed_at: datetime | None = None
    reviewed_by: str | None = None
    # Staff notes (never shown to the student): the text, who wrote it last, when (UTC).
    staff_notes: str = ""
    staff_notes_by: str | None = None
    staff_notes_at: datetime | None = None
    # The print line and confirmation reminders (issue 12, migration 0009).
    confirmed_at: datetime | None = None
    reminder_sent_at: datetime | None = None
    reminder_nonce: str | None = None

    @property
    def reminded(self) -> bool:
        """Whether the current confirmation link already had its reminder email
        (``reminder_nonce`` is the nonce of the link the last reminder was about; a resend
        makes a new link, which may be reminded of again)."""
        nonce = self.confirmation_nonce
        return nonce is not None and self.reminder_nonce == nonce

    @property
    def amount_due_cents(self) -> int | None:
        """Cents the student owes or paid: None before approval (and when rejected); the
        confirmed quote (``cost_cents``) from approval until pickup, since the print is
        weighed only at pickup; after pickup what was charged."""
        if self.status in ("uploaded", "rejected", "deleted") or self.cost_cents is None:
            return None
        if self.status == "paid_picked_up" and (paid := self.active_payment) is not None:
            return paid.amount_cents
        return self.cost_cents

    @property
    def reviewed(self) -> bool:
        """Whether a staff member has marked the job reviewed (not reviewed: NEW)."""
        return self.reviewed_at is not None

    @property
    def state(self) -> JobStatus:
        return JobStatus(self.status)

    @property
    def original(self) -> JobFile | None:
        return next((f for f in self.files if f.role == "original"), None)

    @property
    def sliced_files(self) -> list[JobFile]:
        return [f for f in self.files if f.role == "sliced"]

    def file(self, stored_name: str) -> JobFile | None:
        return next((f for f in self.files if f.stored_name == stored_name), None)

    @property
    def active_payment(self) -> Payment | None:
        return next((p for p in reversed(self.payments) if p.voided_at is None), None)

    @property
    def latest_estimate(self) -> SliceEstimate | None:
        for f in reversed(self.sliced_files):
            if f.estimate is not None and f.estimate.known:
                return f.estimate
        return None
