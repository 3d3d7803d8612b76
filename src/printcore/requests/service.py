"""Print request use cases: one method per thing a student or staff member does.

Each method opens one unit of work, checks, applies the lifecycle, appends exactly one
event, adds the emails it causes to the outbox (same transaction: sent if and only if the
change commits, see :mod:`printcore.outbox`), and moves files copy → commit → delete.
Errors raised are those of :mod:`printcore.errors`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from printcore.errors import (
    ConcurrentChangeError,
    InvalidTransitionError,
    NotFoundError,
    TokenExpiredError,
    TokenUsedError,
    ValidationError,
)
from printcore.events import Event
from printcore.outbox import OutboxMessage
from printcore.ports import Clock, Notice, TokenSigner
from printcore.requests.ages import AgeThresholds, StateAge
from printcore.requests.details import checked_changes, checked_staff_notes
from printcore.requests.job import Actor, Job, JobFile, JobStatus, Submission
from printcore.requests.lifecycle import Quote, check_requote, fire
from printcore.requests.locks import DEFAULT_TTL, JobLocks
from printcore.requests.naming import job_basename, stored_file_name
from printcore.requests.ports import FileStore, RequestsUnitOfWork, StagedFile
from printcore.requests.pricing import Pricing
from printcore.requests.reminders import send_due_reminders
from printcore.requests.search import JobQuery
from printcore.requests.validation import check_submission
from printcore.slicing import SliceEstimate

__all__ = ["PrintRequests", "REJECTION_REASONS"]

#: Reasons staff can pick when rejecting; a custom reason may be added.
REJECTION_REASONS: tuple[str, ...] = (
    "The model is not a closed (watertight) solid; repair it and upload again.",
    "Walls or details are too thin to print.",
    "The model is too large for our printers; scale it or split it.",
    "The model needs supports that could not be removed.",
    "The file is missing or cannot be opened.",
    "This is not something the lab can print (policy).",
)

_SHORT_TEXT = 200


def _link_id(nonce: str) -> str:
    """A confirmation link's name in the event log: 16 hex digits of the SHA-256 of its
    nonce (the nonce itself stays secret: it is part of the link)."""
    return hashlib.sha256(nonce.encode()).hexdigest()[:16]


@attrs.define
class PrintRequests:
    """The print request service.

    ``uow``: a factory returning a fresh unit of work; ``confirmation_ttl``: how long a
    confirmation link stays valid; ``reminder_lead``: how long before a link expires the
    student is reminded (:mod:`printcore.requests.reminders`; zero: no reminders).
    """

    uow: Callable[[], RequestsUnitOfWork]
    files: FileStore
    signer: TokenSigner
    clock: Clock
    pricing: Pricing = attrs.Factory(Pricing)
    confirmation_ttl: timedelta = timedelta(days=7)
    #: How long a job's soft lock lasts without a heartbeat (:attr:`locks`).
    lock_ttl: timedelta = DEFAULT_TTL
    reminder_lead: timedelta = timedelta(hours=48)

    @property
    def locks(self) -> JobLocks:
        """The jobs' soft locks (:mod:`printcore.requests.locks`), on this service's
        units of work and clock."""
        return JobLocks(self.uow, self.clock, self.lock_ttl)

    # --- student side -----------------------------------------------------------------

    def place_in_line(self, job: Job) -> int | None:
        """How many ready-to-print jobs are ahead of ``job`` in the print line (the lab
        prints in order of confirmation: ``confirmed_at``, then id); None unless ``job``
        is ready to print. Raises StorageError when the database cannot be reached."""
        if job.status != JobStatus.READY_TO_PRINT.value or job.id is None:
            return None
        with self.uow() as uow:
            return uow.jobs.count_ready_ahead(job.confirmed_at or job.created_at, job.id)

    def send_confirmation_reminders(self, now: datetime | None = None) -> list[int]:
        """Email every pending job whose confirmation link expires within
        ``reminder_lead`` of ``now`` (UTC; default the clock) and has had no reminder
        for that link; returns the reminded jobs' ids. Idempotent and safe to run from
        several processes at once (:func:`printcore.requests.reminders.send_due_reminders`).
        """
        return send_due_reminders(self.uow, self._approval_notice, now or self.clock.now(),
                                  self.reminder_lead)

    def submit(self, submission: Submission, upload: StagedFile) -> Job:
        """Create a print request from the form and the already-checked model upload.

        Raises ValidationError (with per-field messages); on any error the staged file is
        discarded and nothing is stored.
        """
        try:
            check_submission(submission)
        except ValidationError:
            self.files.discard(upload)
            raise
        now = self.clock.now()
        job = Job(created_at=now, updated_at=now, **attrs.asdict(submission))
        try:
            with self.uow() as uow:
                job_id = uow.jobs.add(job)
                base = job_basename(job.student_name, job.print_method, job.color, job_id)
                try:
                    stored = self.files.adopt(
                        job, upload, stored_file_name(base, "original", upload.extension), "original"
                    )
                    stored = attrs.evolve(stored, uploaded_at=now)
                    job.files.append(stored)
                    self.files.write_metadata(job)
                    uow.jobs.update(job)
                    uow.events.append(
                        Event(
                            subject="job",
                            subject_id=job_id,
                            kind="submit",
                            actor=Actor.student(job.student_name),
                            at=now,
                            details={
                                "original_name": upload.original_name,
                                "stored_name": stored.stored_name,
                                "size_bytes": upload.size_bytes,
                                "sha256": upload.sha256,
                            },
                            to_status=job.status,
                        )
                    )
                    notice = Notice("submitted", job.email, job_id, self._summary(job))
                    uow.outbox.add(OutboxMessage.email(notice, now))
                    uow.commit()
                except BaseException:
                    self.files.remove_copy(job, job.status)
                    raise
        finally:
            self.files.discard(upload)
        return job

    def status_token(self, job_id: int) -> str:
        """A signed token for the student's status page (no expiry: it shows, never changes)."""
        return self.signer.dumps("status", {"job": job_id})

    def job_for_status_token(self, token: str) -> Job:
        """Raises TokenTamperedError, NotFoundError."""
        data = self.signer.loads("status", token)
        return self.get(int(data["job"]))

    def check_confirmation(self, token: str) -> Job:
        """The job a confirmation link is for, if the link can still be used.

        Raises TokenTamperedError, TokenUsedError, TokenExpiredError, NotFoundError.
        """
        data = self.signer.loads("confirm", token)
        with self.uow() as uow:
            job = uow.jobs.get(int(data["job"]))
        self._check_nonce(job, data)
        return job

    def job_for_confirmation_token(self, token: str) -> Job:
        """The job a (possibly used or expired) confirmation link names.

        Raises TokenTamperedError, NotFoundError.
        """
        data = self.signer.loads("confirm", token)
        return self.get(int(data["job"]))

    def confirm(self, token: str) -> Job:
        """The student accepts the cost through the emailed link (single use).

        Raises TokenTamperedError, TokenUsedError, TokenExpiredError, NotFoundError.
        """
        data = self.signer.loads("confirm", token)
        job_id = int(data["job"])
        return self._transition(
            job_id,
            "confirm",
            None,
            check=lambda job: self._check_nonce(job, data),
            notices=lambda job: [Notice("confirmed", job.email, job_id, self._summary(job))],
        )

    def _check_nonce(self, job: Job, data: dict[str, Any]) -> None:
        if job.status != JobStatus.PENDING.value or job.confirmation_nonce != data.get("nonce"):
            raise TokenUsedError()
        if self.clock.now().timestamp() > float(data.get("exp", 0)):
            raise TokenExpiredError()

    # --- staff side -------------------------------------------------------------------

    def add_sliced_file(
        self,
        job_id: int,
        actor: Actor,
        upload: StagedFile,
        estimate: SliceEstimate | None,
        expected_version: int | None = None,
        save_name: str | None = None,
    ) -> JobFile:
        """Attach a staff-made sliced file (and what its slicer said) to a job.

        ``upload`` was uploaded, or (``save_name`` given) staged from the slicer's save of
        that name in the job's folder (:meth:`FileStore.stage_save`): the event's
        ``source`` is then ``"slicer save"`` (else ``"upload"``), and once the change is
        committed the slicer's file is removed if it still holds the adopted bytes, so the
        folder holds what ``metadata.json`` lists. The stored name is generated
        (``<base>_sliced<n><ext>``) and never overwrites a file on disk.

        Allowed until the job is printed (uploaded, pending, ready_to_print). Raises
        NotFoundError, ValidationError, InvalidTransitionError, ConcurrentChangeError.
        """
        now = self.clock.now()
        try:
            with self.uow() as uow:
                self._require_staff(uow, actor)
                job = uow.jobs.get(job_id)
                self._check_version(job, expected_version)
                if job.status not in ("uploaded", "pending", "ready_to_print"):
                    raise InvalidTransitionError(
                        "add_sliced_file",
                        job.status,
                        f"Cannot add a sliced file while the job is {job.state.label.lower()}.",
                    )
                assert job.id is not None
                base = job_basename(job.student_name, job.print_method, job.color, job.id)
                index = len(job.sliced_files) + 1
                name = stored_file_name(base, "sliced", upload.extension, index)
                while job.file(name) is not None or self.files.exists(job, name):
                    index += 1
                    name = stored_file_name(base, "sliced", upload.extension, index)
                stored = self.files.adopt(job, upload, name, "sliced")
                stored = attrs.evolve(stored, estimate=estimate, uploaded_at=now)
                job.files.append(stored)
                job.updated_at = now
                try:
                    self.files.write_metadata(job)
                    uow.jobs.update(job)
                    uow.events.append(
                        Event(
                            "job",
                            job_id,
                            "add_sliced_file",
                            actor,
                            now,
                            details={
                                "original_name": upload.original_name,
                                "stored_name": name,
                                "estimate_seconds": estimate.seconds if estimate else None,
                                "estimate_grams": estimate.grams if estimate else None,
                                "source": "slicer save" if save_name else "upload",
                                **({"saved_as": save_name} if save_name else {}),
                            },
                        )
                    )
                    uow.commit()
                except BaseException:
                    self.files.remove_file(job, name)
                    raise
        finally:
            self.files.discard(upload)
        if save_name:
            self.files.remove_save(job, save_name, upload.sha256)
        return stored

    def approve(
        self,
        job_id: int,
        actor: Actor,
        weight_g: float,
        time_hours: float,
        authoritative_file: str,
        expected_version: int | None = None,
    ) -> Job:
        """uploaded → pending. Weight in grams, time in hours (rounded up to 0.5 h); the cost
        is computed in cents. The authoritative (sliced) file must exist on disk. Emails the
        student a signed, expiring, single-use confirmation link."""
        nonce = secrets.token_urlsafe(12)
        expires_at = self.clock.now() + self.confirmation_ttl

        def check(job: Job) -> None:
            if authoritative_file and job.file(authoritative_file) and not self.files.exists(
                job, authoritative_file
            ):
                raise ValidationError(
                    "The chosen file is missing from storage.",
                    {"authoritative_file": "That file is not on disk; upload it again."},
                )

        def notices(job: Job) -> list[Notice]:
            return [self._approval_notice(job, nonce, expires_at)]

        return self._transition(
            job_id,
            "approve",
            actor,
            expected_version=expected_version,
            check=check,
            notices=notices,
            details={
                "weight_g": weight_g,
                "time_hours_entered": time_hours,
                "authoritative_file": authoritative_file,
            },
            weight_g=weight_g,
            time_hours=time_hours,
            authoritative_file=authoritative_file,
            nonce=nonce,
            expires_at=expires_at,
        )

    def resend_confirmation(
        self, job_id: int, actor: Actor, expected_version: int | None = None
    ) -> Job:
        """Email a pending job's student a new confirmation link (e.g. the first one was
        lost or expired). The new link gets a fresh ``confirmation_ttl``; every earlier link
        stops working (its nonce no longer matches). Raises NotFoundError,
        InvalidTransitionError (the job is not pending), ConcurrentChangeError,
        ValidationError (not active staff)."""
        now = self.clock.now()
        with self.uow() as uow:
            self._require_staff(uow, actor)
            job = uow.jobs.get(job_id)
            self._check_version(job, expected_version)
            if job.status != JobStatus.PENDING.value:
                raise InvalidTransitionError(
                    "resend_confirmation",
                    job.status,
                    "Only a job waiting for the student's confirmation has a link to resend "
                    f"(this one is {job.state.label.lower()}).",
                )
            nonce = secrets.token_urlsafe(12)
            expires_at = now + self.confirmation_ttl
            job.confirmation_nonce = nonce
            job.confirmation_expires_at = expires_at
            job.updated_at = now
            uow.jobs.update(job)
            uow.events.append(Event(
                "job", job_id, "resend_confirmation", actor, now,
                details={"expires_at": expires_at.isoformat()},
            ))
            uow.outbox.add(OutboxMessage.email(self._approval_notice(job, nonce, expires_at), now))
            uow.commit()
        self.files.write_metadata(job)
        return job

    def _approval_notice(self, job: Job, nonce: str, expires_at: datetime) -> Notice:
        assert job.id is not None
        token = self.signer.dumps(
            "confirm", {"job": job.id, "nonce": nonce, "exp": expires_at.timestamp(),
                        "iat": self.clock.now().timestamp()}
        )
        return Notice(
            "approved",
            job.email,
            job.id,
            {**self._summary(job), "confirm_token": token, "expires_at": expires_at.isoformat()},
        )

    def reject(
        self,
        job_id: int,
        actor: Actor,
        reasons: Sequence[str] = (),
        custom_reason: str | None = None,
        expected_version: int | None = None,
    ) -> Job:
        """uploaded → rejected, with at least one listed or custom reason; emails them."""
        all_reasons = [r for r in reasons if r and r.strip()]
        if custom_reason and custom_reason.strip():
            all_reasons.append(custom_reason.strip()[:1000])
        return self._transition(
            job_id,
            "reject",
            actor,
            expected_version=expected_version,
            details={"reasons": all_reasons},
            notices=lambda job: [
                Notice("rejected", job.email, job_id, {**self._summary(job), "reasons": all_reasons})
            ],
            reasons=all_reasons,
        )

    def force_confirm(
        self, job_id: int, actor: Actor, reason: str, expected_version: int | None = None
    ) -> Job:
        """pending → ready_to_print without the student's link (e.g. they said yes in person)."""
        return self._transition(
            job_id, "force_confirm", actor, expected_version=expected_version,
            details={"reason": reason}, reason=reason,
        )

    def start_print(
        self, job_id: int, actor: Actor, printer: str | None = None,
        expected_version: int | None = None,
    ) -> Job:
        """ready_to_print → printing, optionally on a named printer."""
        printer = (printer or "").strip()[:_SHORT_TEXT] or None
        return self._transition(
            job_id, "start_print", actor, expected_version=expected_version,
            details={"printer": printer}, printer=printer,
        )

    def fail_print(
        self, job_id: int, actor: Actor, reason: str, expected_version: int | None = None
    ) -> Job:
        """printing → ready_to_print; counted as a failed attempt."""
        return self._transition(
            job_id, "fail_print", actor, expected_version=expected_version,
            details={"reason": reason}, reason=reason,
        )

    def complete(self, job_id: int, actor: Actor, expected_version: int | None = None) -> Job:
        """printing → completed; emails the student to pick the print up."""
        return self._transition(
            job_id, "complete", actor, expected_version=expected_version,
            notices=lambda job: [Notice("completed", job.email, job_id, self._summary(job))],
        )

    def pick_up(
        self,
        job_id: int,
        actor: Actor,
        grams: float,
        txn_no: str,
        picked_up_by: str,
        expected_version: int | None = None,
        override_reason: str | None = None,
        charge_quote: bool = False,
    ) -> Job:
        """completed → paid_picked_up, recording the payment for the weighed grams.

        The amount follows ``self.pricing.pickup_policy`` (:meth:`Pricing.pickup_charge`;
        ``charge_quote=True`` charges the confirmed quote this once). A charge above the
        confirmed quote (``cost_cents``) needs ``override_reason``: without it
        ValidationError on field ``override_reason`` (the lifecycle's ``check_pick_up``).
        The event's details: ``grams``, ``txn_no``, ``picked_up_by``, ``amount_cents``,
        ``quoted_cents``, ``weighed_cents``, ``policy``, ``override_reason`` (None unless
        above the quote); the receipt email carries the quote, the charge and the reason.
        """

        def details(job: Job) -> dict[str, Any]:
            paid = job.active_payment
            assert paid is not None
            return {"grams": grams, "txn_no": txn_no, "picked_up_by": picked_up_by,
                    "amount_cents": paid.amount_cents, "quoted_cents": paid.quoted_cents,
                    "weighed_cents": self.pricing.cost_cents(job.print_method, paid.grams),
                    "policy": "quote" if charge_quote else self.pricing.pickup_policy,
                    "override_reason": paid.override_reason}

        def receipt(job: Job) -> list[Notice]:
            paid = job.active_payment
            return [Notice("payment_receipt", job.email, job_id, {
                **self._summary(job),
                "amount_cents": paid.amount_cents if paid else None,
                "quoted_cents": paid.quoted_cents if paid else None,
                "override_reason": paid.override_reason if paid else None,
                "txn_no": txn_no,
            })]

        return self._transition(
            job_id,
            "pick_up",
            actor,
            expected_version=expected_version,
            details=details,
            notices=receipt,
            grams=grams,
            txn_no=txn_no,
            picked_up_by=picked_up_by,
            override_reason=override_reason,
            charge_quote=charge_quote,
        )

    def revert_completion(
        self, job_id: int, actor: Actor, reason: str, expected_version: int | None = None
    ) -> Job:
        """completed → printing (marked complete by mistake)."""
        return self._transition(
            job_id, "revert_completion", actor, expected_version=expected_version,
            details={"reason": reason}, reason=reason,
        )

    def revert_pickup(
        self, job_id: int, actor: Actor, reason: str, expected_version: int | None = None
    ) -> Job:
        """paid_picked_up → completed; the payment is voided, never deleted."""
        return self._transition(
            job_id, "revert_pickup", actor, expected_version=expected_version,
            details={"reason": reason}, reason=reason,
        )

    def delete(
        self, job_id: int, actor: Actor, reason: str, expected_version: int | None = None
    ) -> Job:
        """uploaded or pending → deleted: the job's row and files are removed; its events
        stay in the log, the last one ``delete`` with ``reason`` (required text, e.g. "a
        duplicate of #12"). Raises NotFoundError, InvalidTransitionError (the job is under
        way), ValidationError (no reason; not active staff), ConcurrentChangeError."""
        return self._transition(job_id, "delete", actor, expected_version=expected_version,
                                details=lambda job: {"reason": reason.strip()}, reason=reason)

    def requote(
        self,
        job_id: int,
        actor: Actor,
        weight_g: float,
        time_hours: float,
        reason: str,
        cost_cents: int | None = None,
        expected_version: int | None = None,
    ) -> Job:
        """Correct a pending job's quote before the student confirms it: ``weight_g``
        grams, ``time_hours`` hours (rounded up to 0.5 h), the cost computed in cents as
        :meth:`approve` does, unless ``cost_cents`` is given (the ``reason``, required,
        explains it). The status stays ``pending``; a new confirmation link (a fresh
        ``confirmation_ttl``) is emailed (notice ``requoted``: the new and the old figures
        and the reason) and every earlier link stops working (:meth:`replacing_requote`
        tells a student's old link why). One ``requote`` event, details: ``old`` and
        ``new`` (``weight_g``, ``time_hours``, ``cost_cents``), ``reason``,
        ``cost_source`` (``"pricing"`` or ``"staff"``), ``expires_at`` (UTC ISO).

        Raises NotFoundError, InvalidTransitionError (not pending: the message says what
        to do instead), ValidationError (not active staff; bad weight, time or cost; no
        reason; the same quote as now), ConcurrentChangeError.
        """
        now = self.clock.now()
        with self.uow() as uow:
            self._require_staff(uow, actor)
            job = uow.jobs.get(job_id)
            self._check_version(job, expected_version)
            quote = check_requote(job, weight_g, time_hours, reason, cost_cents, self.pricing)
            old = Quote.of(job)
            nonce = secrets.token_urlsafe(12)
            expires_at = now + self.confirmation_ttl
            job.weight_g, job.time_hours = quote.weight_g, quote.time_hours
            job.cost_cents = quote.cost_cents
            job.confirmation_nonce = nonce
            job.confirmation_expires_at = expires_at
            job.updated_at = now
            uow.jobs.update(job)
            details = {"old": old.as_dict(), "new": quote.as_dict(), "reason": reason.strip(),
                       "cost_source": "pricing" if cost_cents is None else "staff",
                       "expires_at": expires_at.isoformat(), "link": _link_id(nonce)}
            uow.events.append(Event("job", job_id, "requote", actor, now, details=details))
            notice = self._approval_notice(job, nonce, expires_at)
            notice = attrs.evolve(notice, kind="requoted", context={
                **notice.context, "reason": reason.strip(),
                "old_weight_g": old.weight_g, "old_time_hours": old.time_hours,
                "old_cost_cents": old.cost_cents})
            uow.outbox.add(OutboxMessage.email(notice, now))
            uow.commit()
        self.files.write_metadata(job)
        return job

    def replacing_requote(self, token: str) -> Event | None:
        """The ``requote`` event that made the (well-signed) confirmation link ``token``
        stale: the newest one made at or after the link was sent, other than the one that
        sent it. None when the link is the job's live one, was used, or was replaced only
        by a resent link. Raises TokenTamperedError, NotFoundError."""
        data = self.signer.loads("confirm", token)
        job_id = int(data["job"])
        issued = data.get("iat")
        if not isinstance(issued, (int, float)):  # links from before ``iat``: expiry - ttl
            issued = float(data.get("exp", 0)) - self.confirmation_ttl.total_seconds()
        with self.uow() as uow:
            job = uow.jobs.get(job_id)
            events = uow.events.for_subject("job", job_id)
        nonce = data.get("nonce")
        if not isinstance(nonce, str) or nonce == job.confirmation_nonce:
            return None
        later = [e for e in events if e.kind == "requote" and e.at.timestamp() >= issued
                 and e.details.get("link") != _link_id(nonce)]
        return later[-1] if later else None

    def mark_reviewed(
        self, job_id: int, actor: Actor, expected_version: int | None = None
    ) -> Job:
        """Record that ``actor`` (an active staff member) has looked at the job: it stops
        showing as NEW. Not a state change (the lifecycle is not involved): allowed in
        every state, it sets ``reviewed_at`` (now, UTC) and ``reviewed_by``, bumps the
        version and appends one ``review`` event.

        Raises NotFoundError (no such job, or it was deleted), ValidationError (not an
        active staff member), ConcurrentChangeError (``expected_version`` is not the
        job's), InvalidTransitionError (already reviewed: the message says by whom and
        when).
        """
        return self._set_reviewed(job_id, actor, expected_version, reviewed=True)

    def unmark_reviewed(
        self, job_id: int, actor: Actor, expected_version: int | None = None
    ) -> Job:
        """Undo :meth:`mark_reviewed`: the job shows as NEW again. Appends one
        ``unreview`` event (details: ``was_reviewed_by``) and bumps the version.

        Raises NotFoundError, ValidationError, ConcurrentChangeError as
        :meth:`mark_reviewed`, and InvalidTransitionError when the job is not reviewed.
        """
        return self._set_reviewed(job_id, actor, expected_version, reviewed=False)

    def _set_reviewed(
        self, job_id: int, actor: Actor, expected_version: int | None, *, reviewed: bool
    ) -> Job:
        kind = "review" if reviewed else "unreview"
        now = self.clock.now()
        with self.uow() as uow:
            self._require_staff(uow, actor)
            job = uow.jobs.get(job_id)
            self._check_version(job, expected_version)
            if job.status == JobStatus.DELETED.value:  # pragma: no cover - rows are removed
                raise NotFoundError(f"There is no job {job_id}.")
            if reviewed and job.reviewed_at is not None:
                raise InvalidTransitionError(
                    kind, job.status,
                    f"Job {job_id} was already marked reviewed by {job.reviewed_by} at "
                    f"{job.reviewed_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC.",
                )
            if not reviewed and job.reviewed_at is None:
                raise InvalidTransitionError(
                    kind, job.status, f"Job {job_id} is not marked reviewed; nothing to undo."
                )
            details: dict[str, Any] = {} if reviewed else {"was_reviewed_by": job.reviewed_by}
            job.reviewed_at = now if reviewed else None
            job.reviewed_by = actor.name if reviewed else None
            job.updated_at = now
            uow.jobs.update(job)
            uow.events.append(Event("job", job_id, kind, actor, now, details=details))
            uow.commit()
        self.files.write_metadata(job)
        return job

    def set_staff_notes(
        self, job_id: int, actor: Actor, notes: str, expected_version: int | None = None
    ) -> Job:
        """Replace the job's staff notes with ``notes`` (multi-line text, at most 2000
        characters; "" clears them): sets ``staff_notes_by`` and ``staff_notes_at`` (now,
        UTC), bumps the version and appends one ``notes`` event (details: ``old``,
        ``new``). Not a state change: allowed in every state.

        Raises NotFoundError (no such job, or it was deleted), ValidationError (not an
        active staff member; notes too long, not text, with a control character, or
        unchanged: :func:`printcore.requests.details.checked_staff_notes`),
        ConcurrentChangeError (``expected_version`` is not the job's).
        """
        def change(job: Job) -> dict[str, Any]:
            text = checked_staff_notes(job, notes)
            old, job.staff_notes = job.staff_notes, text
            job.staff_notes_by, job.staff_notes_at = actor.name, job.updated_at
            return {"old": old, "new": text}

        return self._correct(job_id, actor, expected_version, "notes", change)

    def edit_details(
        self, job_id: int, actor: Actor, changes: Mapping[str, str],
        expected_version: int | None = None,
    ) -> Job:
        """Correct the request's details (a typo'd email, the wrong colour…): ``changes``
        maps field names of :data:`printcore.requests.details.EDITABLE_FIELDS` to their new
        text, checked as on the submission form; fields given unchanged are left out. Bumps
        the version and appends one ``edit`` event (details: ``{"changes": {field: {"old",
        "new"}}}``). Allowed in every state. The stored file names keep the old name;
        a corrected name or colour moves the job's folder (copy → commit → delete).

        Raises NotFoundError, ValidationError (not an active staff member, an unknown
        field, a bad value, nothing changed), ConcurrentChangeError.
        """
        def change(job: Job) -> dict[str, Any]:
            changed = checked_changes(job, changes)
            for name, (_, value) in changed.items():
                setattr(job, name, value)
            return {"changes": {name: {"old": old, "new": value}
                                for name, (old, value) in changed.items()}}

        return self._correct(job_id, actor, expected_version, "edit", change)

    def _correct(
        self, job_id: int, actor: Actor, expected_version: int | None, kind: str,
        change: Callable[[Job], dict[str, Any]],
    ) -> Job:
        """One unit of work for a change outside the lifecycle: staff check, version
        check, ``change`` (mutates the job, returns the event's details), one event."""
        now = self.clock.now()
        with self.uow() as uow:
            self._require_staff(uow, actor)
            job = uow.jobs.get(job_id)
            self._check_version(job, expected_version)
            if job.status == JobStatus.DELETED.value:  # pragma: no cover - rows are removed
                raise NotFoundError(f"There is no job {job_id}.")
            before = attrs.evolve(job)
            job.updated_at = now
            details = change(job)
            # The folder's name holds the student name and colour: a correction of either
            # moves the files, copy → commit → delete as a state change does.
            moved = job_basename(before.student_name, before.print_method, before.color,
                                 job_id) != job_basename(job.student_name, job.print_method,
                                                         job.color, job_id)
            try:
                if moved:
                    self.files.rename_copy(before, job)
                uow.jobs.update(job)
                uow.events.append(Event("job", job_id, kind, actor, now, details=details))
                uow.commit()
            except BaseException:
                if moved:
                    self.files.remove_copy(job, job.status)
                raise
        if moved:
            self.files.remove_copy(before, before.status)
        else:
            self.files.write_metadata(job)
        return job

    def record_event(
        self, job_id: int, actor: Actor, kind: str, details: dict[str, Any]
    ) -> Event:
        """Append a non-transition event (e.g. ``opened_in_slicer``) to a job's history."""
        with self.uow() as uow:
            uow.jobs.get(job_id)
            event = uow.events.append(
                Event("job", job_id, kind, actor, self.clock.now(), details=details)
            )
            uow.commit()
        return event

    # --- queries ----------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        with self.uow() as uow:
            return uow.jobs.get(job_id)

    def history(self, job_id: int) -> list[Event]:
        with self.uow() as uow:
            return uow.events.for_subject("job", job_id)

    def list_jobs(self, status: str | None = None, limit: int = 100, offset: int = 0) -> list[Job]:
        if status is not None and status not in {s.value for s in JobStatus}:
            raise ValidationError(
                f"Unknown status {status!r}.",
                {"status": "Use one of: " + ", ".join(s.value for s in JobStatus)},
            )
        with self.uow() as uow:
            return uow.jobs.list(status=status, limit=limit, offset=offset)

    def search_jobs(self, query: JobQuery) -> tuple[list[Job], int]:
        """The page of jobs ``query`` finds, across all states unless it names one, and
        how many it finds in all (:mod:`printcore.requests.search`)."""
        with self.uow() as uow:
            return uow.jobs.search(query)

    def counts(self) -> dict[str, int]:
        with self.uow() as uow:
            return uow.jobs.count_by_status()

    def tab_counts(self) -> dict[str, tuple[int, int]]:
        """``{status: (jobs, of which not reviewed: NEW)}`` for the dashboard's tabs."""
        with self.uow() as uow:
            return uow.jobs.count_by_status_and_review()

    def state_ages(self, jobs: Sequence[Job], thresholds: AgeThresholds) -> dict[int, StateAge]:
        """``{job id: StateAge}``: how long each job has been in its current status (since
        the newest event that moved it there, else its ``created_at``), as of now (UTC),
        with its level under ``thresholds``. One query for all of ``jobs``."""
        ids = [j.id for j in jobs if j.id is not None]
        with self.uow() as uow:
            entered = uow.jobs.entered_status_at(ids)
        now = self.clock.now()
        return {j.id: StateAge.of(j.status, entered.get(j.id, j.created_at), now, thresholds)
                for j in jobs if j.id is not None}

    # --- internals --------------------------------------------------------------------

    def _summary(self, job: Job) -> dict[str, Any]:
        return {
            "job_id": job.id,
            "student_name": job.student_name,
            "print_method": job.print_method,
            "color": job.color,
            "status": job.status,
            "weight_g": job.weight_g,
            "time_hours": job.time_hours,
            "cost_cents": job.cost_cents,
            "status_token": self.status_token(job.id) if job.id is not None else None,
        }

    @staticmethod
    def _check_version(job: Job, expected_version: int | None) -> None:
        if expected_version is not None and job.version != expected_version:
            assert job.id is not None
            raise ConcurrentChangeError(job.id)

    @staticmethod
    def _require_staff(uow: RequestsUnitOfWork, actor: Actor | None) -> None:
        """``None`` is the student acting through their own link; anyone else must be an
        active staff member (a student, member or system actor is refused too)."""
        if actor is None:
            return
        member = uow.staff.get(actor.name) if actor.kind == "staff" else None
        if member is None or not member.active:
            raise ValidationError(
                f"{actor.name!r} is not on the active staff list.",
                {"staff_name": "Choose your name from the staff list."},
            )

    def _transition(
        self,
        job_id: int,
        event: str,
        actor: Actor | None,
        *,
        expected_version: int | None = None,
        check: Callable[[Job], None] | None = None,
        notices: Callable[[Job], list[Notice]] | None = None,
        details: dict[str, Any] | Callable[[Job], dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Job:
        now = self.clock.now()
        # Set once our copy into the new status folder has begun: a failure after that (the
        # copy itself, a full disk, the commit) removes it — after this unit of work has
        # ended, so _undo_copy's own read never waits on this one's lock (SQLite).
        copying: tuple[Job, str] | None = None
        try:
            with self.uow() as uow:
                self._require_staff(uow, actor)
                job = uow.jobs.get(job_id)
                self._check_version(job, expected_version)
                if check is not None:
                    check(job)
                if actor is None:
                    actor = Actor.student(job.student_name)
                old = job.status
                fire(job, event, now=now, pricing=self.pricing, staff_name=actor.name,
                     **kwargs)
                new = job.status
                if event in ("confirm", "force_confirm"):
                    job.confirmed_at = now  # the print line's order (place_in_line)
                job.updated_at = now
                deleting = new == JobStatus.DELETED.value
                if deleting:
                    uow.jobs.remove(job)
                else:
                    copying = (job, new)
                    self.files.copy_job(job, old, new)
                    uow.jobs.update(job)
                uow.events.append(
                    Event(
                        "job",
                        job_id,
                        event,
                        actor,
                        now,
                        details=details(job) if callable(details)
                        else dict(details or {}),
                        from_status=old,
                        to_status=new,
                    )
                )
                for notice in notices(job) if notices is not None else ():
                    uow.outbox.add(OutboxMessage.email(notice, now))
                uow.commit()
        except BaseException:
            if copying is not None:
                self._undo_copy(*copying)
            raise
        self.files.remove_copy(job, old)
        return job

    def _undo_copy(self, job: Job, status: str) -> None:
        """After a failed commit: drop our copy, unless the winner of a race owns that folder."""
        assert job.id is not None
        try:
            with self.uow() as uow:
                current: Job | None = uow.jobs.get(job.id)
        except NotFoundError:
            current = None
        if current is not None and current.status == status:
            self.files.write_metadata(current)
        else:
            self.files.remove_copy(job, status)

