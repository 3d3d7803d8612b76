"""The outbox: every outbound message is a row written in the same transaction as the
state change that causes it, and delivered afterwards, once.

A rolled-back change leaves no row, so nothing is sent; a committed change leaves a
``pending`` row that some process delivers eventually (the Dramatiq worker on Redis, or
the web process itself on the embedded default). Delivery of one row
(:meth:`OutboxService.deliver`) is idempotent:

1. *lease* the row (one short transaction): only a ``pending`` row that is due and not
   leased by another deliverer is taken; ``attempts`` goes up by one;
2. hand it to the channel's :class:`MessageSender` (outside any transaction);
3. record the outcome: ``sent``; or, for a temporary failure (connection refused, SMTP
   4xx), still ``pending`` with ``next_attempt_at`` pushed back exponentially; or, for a
   permanent one (SMTP 5xx such as an unknown mailbox, a template that fails to render),
   ``failed`` with the server's answer, shown to staff until someone retries it, and a
   ``message_failed`` event on the row's subject (actor: system ``outbox``; details:
   ``message_id``, ``channel``, ``kind``, ``error``), so open staff pages learn it live.

A row already ``sent`` or ``failed`` is skipped, so a message handed to two deliverers
(a relay re-sending after a crash) goes out once. The only window for a duplicate is a
crash between the server's acceptance and the commit of ``sent``; the Message-ID of an
email is stable per row (see ``adapters.mail``), so mail clients fold such a repeat.

Channels: ``email`` (payload: a :class:`printcore.ports.Notice`'s context) and
``discord`` (payload: a :class:`printcore.queue.ports.QueueNotice`). Times are UTC.

An email row may carry one :class:`Attachment` (the payments export for the finance
office): its bytes are stored with the row (not in the JSON payload), so a retry sends the
very same file; at most :data:`MAX_ATTACHMENT_BYTES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Protocol

import attrs

from printcore.errors import NotFoundError, ValidationError
from printcore.events import Actor, Event
from printcore.lab_events import lab_event
from printcore.ports import Clock, EventLog, Notice, StaffRepository

__all__ = [
    "CHANNELS",
    "MAX_ATTACHMENT_BYTES",
    "Attachment",
    "DeliveryError",
    "MessageSender",
    "OutboxMessage",
    "OutboxRepository",
    "OutboxService",
    "OutboxUnitOfWork",
    "RetryPolicy",
    "STATUSES",
]

CHANNELS = ("email", "discord")
STATUSES = ("pending", "sent", "failed")

#: Longest server answer kept on a row (characters).
_ERROR_CHARS = 2000
#: The largest attachment a row may carry, in bytes. Mail servers commonly refuse
#: messages over 10 to 25 MB, and base64 makes the file a third larger on the wire.
MAX_ATTACHMENT_BYTES = 10_000_000
_UNSAFE_NAME = frozenset('/\\\r\n\x00"')


@attrs.frozen
class Attachment:
    """A file sent with an email: ``filename`` (no folders, e.g.
    ``payments-2026-11-01-to-2026-11-30.xlsx``), ``media_type`` (``type/subtype``, with
    optional parameters) and
    its ``data``. Build it with :meth:`checked`."""

    filename: str
    media_type: str
    data: bytes = attrs.field(repr=False)

    @classmethod
    def checked(cls, filename: str, media_type: str, data: bytes) -> Attachment:
        """Raises ValidationError (field ``attachment``) for an empty file, one over
        :data:`MAX_ATTACHMENT_BYTES`, a file name with a folder, quote or line break, or
        a media type not ``type/subtype`` (parameters such as ``; charset=utf-8``
        allowed)."""
        if not data:
            raise ValidationError("The attachment is empty.", {"attachment": "Empty file."})
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise ValidationError(
                f"The attachment is {len(data):,} bytes; an email carries at most "
                f"{MAX_ATTACHMENT_BYTES:,}. Choose a shorter range, or download the file.",
                {"attachment": f"At most {MAX_ATTACHMENT_BYTES:,} bytes."})
        if not filename or len(filename) > 200 or any(c in _UNSAFE_NAME for c in filename):
            raise ValidationError(f"Not a file name for an attachment: {filename[:60]!r}.",
                                  {"attachment": "A plain file name, without folders."})
        kind, _, sub = media_type.split(";", 1)[0].strip().partition("/")
        if (not kind or not sub or any(c.isspace() for c in kind + sub)
                or any(c in "\r\n\x00" for c in media_type)):
            raise ValidationError(f"Not a media type: {media_type[:60]!r}.",
                                  {"attachment": "A media type such as text/csv."})
        return cls(filename, media_type, bytes(data))

    @property
    def size(self) -> int:
        """Bytes."""
        return len(self.data)


@attrs.define
class OutboxMessage:
    """One outbound message and its delivery state.

    ``channel``: ``email`` or ``discord``; ``kind``: the message type (``approved``,
    ``offered``...); ``recipient``: an email address or a member id; ``subject`` and
    ``subject_id``: what it is about (``job`` 42, ``ticket`` 7); ``payload``:
    JSON-compatible values for the template. ``status``: ``pending``, ``sent`` or
    ``failed``; ``attempts``: delivery tries so far; ``next_attempt_at``: not before (UTC);
    ``lease_until``: a deliverer holds it until then (UTC); ``relayed_at``: last handed to
    the message broker (UTC); ``last_error``: the last failure, as the server said it;
    ``attachment``: a file sent with an email, or None.
    """

    channel: str
    kind: str
    recipient: str
    subject: str
    subject_id: int
    created_at: datetime
    payload: dict[str, Any] = attrs.Factory(dict)
    id: int | None = None
    status: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    relayed_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = None
    attachment: Attachment | None = None

    @classmethod
    def email(cls, notice: Notice, now: datetime) -> OutboxMessage:
        """The outbox row for a print request email."""
        return cls(
            channel="email", kind=notice.kind, recipient=notice.to, subject="job",
            subject_id=notice.job_id, created_at=now, payload=dict(notice.context),
            next_attempt_at=now,
        )

    def notice(self) -> Notice:
        """The email notice this row carries (``channel == "email"``)."""
        return Notice(self.kind, self.recipient, self.subject_id, dict(self.payload))


class OutboxRepository(Protocol):
    """The ``outbox`` table. Every method works inside the caller's transaction."""

    def add(self, message: OutboxMessage) -> int:
        """Store a new ``pending`` row; set and return its id."""
        ...

    def add_many(self, messages: Sequence[OutboxMessage]) -> list[int]:
        """``add`` of each, in order (in one statement where the store can); their ids."""
        ...

    def get(self, message_id: int) -> OutboxMessage:
        """Raises NotFoundError."""
        ...

    def lease(self, message_id: int, now: datetime, until: datetime) -> OutboxMessage | None:
        """Take a pending row that is due (``next_attempt_at <= now``) and not leased by
        someone else (``lease_until`` empty or ``<= now``): set ``lease_until``, add one to
        ``attempts``, return it. Anything else (sent, failed, not due, held, missing):
        None. Two callers never both get the row."""
        ...

    def finish(self, message: OutboxMessage) -> None:
        """Store the outcome fields (status, next_attempt_at, lease_until, sent_at,
        last_error, attempts) of a row this caller leased."""
        ...

    def due(self, now: datetime, limit: int, channels: Sequence[str],
            relayed_before: datetime | None = None) -> list[int]:
        """Ids of pending rows due at ``now`` and not leased, oldest first; with
        ``relayed_before``, only rows never relayed or relayed before then."""
        ...

    def mark_relayed(self, message_ids: Sequence[int], at: datetime | None) -> None:
        """Set (or, with None, clear) ``relayed_at`` on these rows."""
        ...

    def list(self, status: str | None = None, subject: str | None = None,
             subject_id: int | None = None, limit: int = 100) -> list[OutboxMessage]:
        """Rows newest first, filtered. An adapter may leave out attachments' bytes here
        (``attachment`` then None); :meth:`get` and :meth:`lease` always carry them."""
        ...

    def failed_subjects(self, subject: str) -> dict[int, int]:
        """``{subject_id: number of failed rows}`` for one subject kind (``job``)."""
        ...


class OutboxUnitOfWork(Protocol):
    """The part of a unit of work the outbox service uses."""

    outbox: OutboxRepository
    events: EventLog
    staff: StaffRepository

    def __enter__(self) -> OutboxUnitOfWork: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


class DeliveryError(Exception):
    """A sender could not deliver. ``permanent``: retrying will not help (SMTP 5xx, a
    template that does not render); otherwise it is tried again later. ``detail``: what
    the server (or renderer) said, shown to staff."""

    def __init__(self, detail: str, permanent: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent


class MessageSender(Protocol):
    def send(self, message: OutboxMessage) -> None:
        """Deliver one message. Raises DeliveryError; any other exception counts as a
        temporary failure."""
        ...


@attrs.frozen
class RetryPolicy:
    """Exponential backoff for temporary failures.

    The n-th failed attempt (n ≥ 1) waits ``base × 2^(n-1)``, at most ``cap``; after
    ``max_attempts`` tries the row is marked failed. ``lease``: how long a deliverer holds
    a row (longer than the slowest send; a crashed deliverer's row is free again after
    it). ``relay_grace``: how long a row handed to the broker waits before the relay hands
    it over again.
    """

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 12
    lease: timedelta = timedelta(minutes=2)
    relay_grace: timedelta = timedelta(minutes=2)

    def backoff(self, attempts: int) -> timedelta:
        """Wait after the ``attempts``-th failure (1-based)."""
        exponent = max(attempts - 1, 0)
        if exponent > 40:
            return self.cap
        return min(self.base * math.pow(2, exponent), self.cap)


@attrs.frozen
class DeliveryReport:
    """What :meth:`OutboxService.deliver_due` did: counts per outcome."""

    sent: int = 0
    retry: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.retry + self.failed + self.skipped


@attrs.define
class OutboxService:
    """Delivers, lists and retries outbox rows.

    ``uow``: a factory for a unit of work with ``outbox`` and ``events``; ``senders``:
    one :class:`MessageSender` per channel this process delivers (a channel missing here
    is left for another process, e.g. ``discord`` for the bot).
    """

    uow: Callable[[], OutboxUnitOfWork]
    clock: Clock
    senders: Mapping[str, MessageSender]
    policy: RetryPolicy = attrs.Factory(RetryPolicy)

    def deliver(self, message_id: int) -> str:
        """Deliver one row if it is still due; returns ``sent``, ``retry`` (temporary
        failure, tried again later), ``failed`` (permanent) or ``skipped`` (already sent or
        failed, not due, held by another deliverer, gone, or of a channel this process
        does not deliver)."""
        now = self.clock.now()
        with self.uow() as uow:
            try:
                peek = uow.outbox.get(message_id)
            except NotFoundError:
                return "skipped"
            sender = self.senders.get(peek.channel)
            if sender is None:
                return "skipped"
            message = uow.outbox.lease(message_id, now, now + self.policy.lease)
            if message is None:
                return "skipped"
            uow.commit()
        try:
            sender.send(message)
        except Exception as err:
            return self._record_failure(message, err)
        message.status = "sent"
        message.sent_at = self.clock.now()
        message.lease_until = None
        message.last_error = None
        with self.uow() as uow:
            uow.outbox.finish(message)
            uow.commit()
        return "sent"

    def _record_failure(self, message: OutboxMessage, err: Exception) -> str:
        now = self.clock.now()
        if isinstance(err, DeliveryError):
            detail, permanent = err.detail, err.permanent
        else:
            detail, permanent = f"{type(err).__name__}: {err}", False
        message.lease_until = None
        message.last_error = detail[:_ERROR_CHARS]
        if permanent or message.attempts >= self.policy.max_attempts:
            if not permanent:
                message.last_error = (
                    f"Gave up after {message.attempts} attempts; last: {detail}"[:_ERROR_CHARS]
                )
            message.status = "failed"
            outcome = "failed"
        else:
            message.next_attempt_at = now + self.policy.backoff(message.attempts)
            message.relayed_at = None  # the relay hands it over again once due
            outcome = "retry"
        with self.uow() as uow:
            uow.outbox.finish(message)
            if outcome == "failed":  # staff see it live: the event log feeds their pages
                uow.events.append(Event(
                    message.subject, message.subject_id, "message_failed",
                    Actor.system("outbox"), now,
                    details={"message_id": message.id, "channel": message.channel,
                             "kind": message.kind, "error": message.last_error},
                ))
            uow.commit()
        return outcome

    def due(self, limit: int = 100, channels: Sequence[str] | None = None,
            relay: bool = False) -> list[int]:
        """Ids of rows to deliver now (for this process's channels). With ``relay``, rows
        handed to the broker within ``policy.relay_grace`` are left alone."""
        now = self.clock.now()
        wanted = list(channels if channels is not None else self.senders)
        before = now - self.policy.relay_grace if relay else None
        with self.uow() as uow:
            return uow.outbox.due(now, limit, wanted, relayed_before=before)

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        """Deliver every due row of this process's channels (at most ``limit``)."""
        counts = {"sent": 0, "retry": 0, "failed": 0, "skipped": 0}
        for message_id in self.due(limit):
            counts[self.deliver(message_id)] += 1
        return DeliveryReport(**counts)

    def list(self, status: str | None = None, subject: str | None = None,
             subject_id: int | None = None, limit: int = 100) -> list[OutboxMessage]:
        """Rows newest first. Raises ValidationError for an unknown status."""
        if status is not None and status not in STATUSES:
            raise ValidationError(f"Unknown message status {status!r}.",
                                  {"status": "Use one of: " + ", ".join(STATUSES)})
        with self.uow() as uow:
            return uow.outbox.list(status, subject, subject_id, limit)

    def get(self, message_id: int) -> OutboxMessage:
        """Raises NotFoundError."""
        with self.uow() as uow:
            return uow.outbox.get(message_id)

    def failed_jobs(self) -> dict[int, int]:
        """``{job id: failed messages}`` for the staff dashboard."""
        with self.uow() as uow:
            return uow.outbox.failed_subjects("job")

    def retry(self, message_id: int, actor: Actor, recipient: str | None = None) -> OutboxMessage:
        """Send a failed (or waiting) row again now: back to ``pending``, due at once, its
        attempts counted afresh. Logs a ``message_retried`` event on the subject.
        ``actor``: an active staff member, or a system actor (the command line).
        ``recipient``: where an email goes now, when it differs from the row's (a typo'd
        address corrected on the job since: ``PrintRequests.edit_details``); the event
        records both addresses.

        Raises NotFoundError; ValidationError for a row already sent or an actor who is
        not active staff.
        """
        now = self.clock.now()
        with self.uow() as uow:
            self._check_actor(uow, actor)
            message = uow.outbox.get(message_id)
            if message.status == "sent":
                raise ValidationError(
                    f"Message {message_id} was already delivered; nothing to retry.",
                    {"message": "Already sent."})
            self._requeue(uow, message, actor, recipient, now)
            uow.commit()
        return message

    def retry_failed(self, actor: Actor,
                     recipient_for: Callable[[OutboxMessage], str | None] | None = None,
                     limit: int = 10_000) -> list[int]:
        """Send every failed row again now (as :meth:`retry`; ``recipient_for(message)``
        gives each one's corrected address, or None), in one unit of work with one lab
        event ``outbox_retried`` (count and ids) after the per-message events. Returns the
        ids, oldest first; none failed: nothing is written. Raises ValidationError for an
        actor who is not active staff (nothing retried)."""
        now = self.clock.now()
        with self.uow() as uow:
            self._check_actor(uow, actor)
            listed = uow.outbox.list("failed", None, None, limit)  # may lack attachments
            failed = [uow.outbox.get(m.id or 0) for m in sorted(listed, key=lambda m: m.id or 0)]
            for message in failed:
                recipient = recipient_for(message) if recipient_for is not None else None
                self._requeue(uow, message, actor, recipient, now)
            ids = [m.id or 0 for m in failed]
            if ids:
                uow.events.append(lab_event("outbox_retried", actor, now,
                                            count=len(ids), message_ids=ids))
                uow.commit()
        return ids

    @staticmethod
    def _check_actor(uow: OutboxUnitOfWork, actor: Actor) -> None:
        if actor.kind != "system":
            member = uow.staff.get(actor.name) if actor.kind == "staff" else None
            if member is None or not member.active:
                raise ValidationError(
                    f"Choose your name from the staff list: {actor.name!r} is not active "
                    "staff.", {"staff_name": "Choose your name from the staff list."})

    @staticmethod
    def _requeue(uow: OutboxUnitOfWork, message: OutboxMessage, actor: Actor,
                 recipient: str | None, now: datetime) -> None:
        """Back to pending, due ``now``, with a ``message_retried`` event on its subject."""
        previous = message.last_error
        readdressed: dict[str, Any] = {}
        if (recipient is not None and message.channel == "email"
                and recipient != message.recipient):
            readdressed = {"previous_recipient": message.recipient, "recipient": recipient}
            message.recipient = recipient
        message.status = "pending"
        message.attempts = 0
        message.next_attempt_at = now
        message.lease_until = None
        message.relayed_at = None
        uow.outbox.finish(message)
        uow.events.append(Event(
            message.subject, message.subject_id, "message_retried", actor, now,
            details={"message_id": message.id, "kind": message.kind,
                     "previous_error": previous, **readdressed},
        ))
