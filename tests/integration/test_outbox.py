"""The outbox service on every backend (memory, SQLite, PostgreSQL): delivery, backoff,
permanent failures, retry, leases, the relay's view, and racing deliverers.

Bad inputs tried: an unknown message id, retrying a sent message, an unknown status
filter, a sender raising a non-DeliveryError exception, a channel nobody delivers here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from adapters.sql import SqlUnitOfWork
from printcore.errors import NotFoundError, ValidationError
from printcore.memory import FixedClock
from printcore.outbox import (
    MAX_ATTACHMENT_BYTES,
    Attachment,
    DeliveryError,
    OutboxMessage,
    OutboxService,
    RetryPolicy,
)
from printcore.ports import Notice, StaffMember
from printcore.requests.job import Actor

T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ANA = Actor.staff("Ana Lee", "Front desk")


class Recorder:
    """A sender that records messages, or fails as told (a list of outcomes to play)."""

    def __init__(self, script: list[Exception | None] | None = None) -> None:
        self.sent: list[OutboxMessage] = []
        self.script = list(script or [])
        self.lock = threading.Lock()

    def send(self, message: OutboxMessage) -> None:
        with self.lock:
            outcome = self.script.pop(0) if self.script else None
            if outcome is not None:
                raise outcome
            self.sent.append(message)


def add(uow_factory: Callable[[], Any], kind: str = "approved", job_id: int = 7,
        at: datetime = T0, channel: str = "email") -> int:
    with uow_factory() as uow:
        if channel == "email":
            message = OutboxMessage.email(
                Notice(kind, "jane.doe@university.edu", job_id, {"cost_cents": 300}), at)
        else:
            message = OutboxMessage(channel=channel, kind=kind, recipient="123",
                                    subject="ticket", subject_id=job_id, created_at=at)
        message_id = uow.outbox.add(message)
        uow.commit()
    return int(message_id)


def add_staff(uow_factory: Callable[[], Any], name: str = "Ana Lee", active: bool = True) -> None:
    with uow_factory() as uow:
        uow.staff.add(StaffMember(name, active, T0))
        uow.commit()


def service(uow_factory: Callable[[], Any], sender: Recorder, clock: FixedClock,
            **policy: Any) -> OutboxService:
    return OutboxService(uow=uow_factory, clock=clock, senders={"email": sender},
                         policy=RetryPolicy(**policy))


def test_a_committed_row_is_delivered_once(uow_factory: Callable[[], Any]) -> None:
    clock, sender = FixedClock(T0), Recorder()
    svc = service(uow_factory, sender, clock)
    message_id = add(uow_factory)
    assert svc.due() == [message_id]
    assert svc.deliver(message_id) == "sent"
    assert svc.deliver(message_id) == "skipped"  # a second hand-over sends nothing
    assert [m.id for m in sender.sent] == [message_id]
    row = svc.get(message_id)
    assert (row.status, row.attempts, row.sent_at, row.last_error) == ("sent", 1, T0, None)
    assert row.payload == {"cost_cents": 300} and row.recipient == "jane.doe@university.edu"
    assert svc.due() == []


def test_a_rolled_back_row_never_exists(uow_factory: Callable[[], Any]) -> None:
    with uow_factory() as uow:
        uow.outbox.add(OutboxMessage.email(Notice("approved", "a@b.edu", 1, {}), T0))
        # leaving without commit rolls back
    svc = service(uow_factory, Recorder(), FixedClock(T0))
    assert svc.due() == [] and svc.list() == []


def test_temporary_failures_back_off_exponentially_then_succeed(
    uow_factory: Callable[[], Any],
) -> None:
    clock = FixedClock(T0)
    down = DeliveryError("Cannot reach the SMTP server: [Errno 111] Connection refused")
    sender = Recorder([down, ConnectionResetError("reset by peer"), None])
    svc = service(uow_factory, sender, clock, base=timedelta(seconds=30))
    message_id = add(uow_factory)
    assert svc.deliver(message_id) == "retry"
    row = svc.get(message_id)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, T0 + timedelta(seconds=30))
    assert "Connection refused" in (row.last_error or "")
    assert svc.deliver(message_id) == "skipped" and svc.due() == []  # not due yet
    clock.advance(seconds=30)
    assert svc.deliver(message_id) == "retry"  # a non-DeliveryError counts as temporary
    row = svc.get(message_id)
    assert row.next_attempt_at == clock.now() + timedelta(seconds=60)
    assert row.last_error == "ConnectionResetError: reset by peer"
    clock.advance(seconds=60)
    assert svc.due() == [message_id]
    assert svc.deliver(message_id) == "sent"
    assert svc.get(message_id).attempts == 3 and len(sender.sent) == 1


def test_a_permanent_failure_is_kept_for_staff_and_can_be_retried(
    uow_factory: Callable[[], Any],
) -> None:
    clock = FixedClock(T0)
    answer = "The SMTP server refused the recipient: 550 5.1.1 User unknown"
    sender = Recorder([DeliveryError(answer, permanent=True)])
    svc = service(uow_factory, sender, clock)
    message_id = add(uow_factory, job_id=42)
    add_staff(uow_factory)
    assert svc.deliver(message_id) == "failed"
    row = svc.get(message_id)
    assert (row.status, row.last_error) == ("failed", answer)
    assert svc.failed_jobs() == {42: 1}
    assert svc.due() == [] and svc.deliver(message_id) == "skipped"
    assert [m.id for m in svc.list(status="failed")] == [message_id]
    clock.advance(minutes=5)
    again = svc.retry(message_id, ANA)
    assert (again.status, again.attempts, again.next_attempt_at) == ("pending", 0, clock.now())
    assert svc.deliver(message_id) == "sent"
    assert svc.failed_jobs() == {}
    with uow_factory() as uow:
        events = uow.events.for_subject("job", 42)
    assert [(e.kind, e.actor.name, e.details.get("error") or e.details["previous_error"])
            for e in events] == [("message_failed", "outbox", answer),
                                 ("message_retried", "Ana Lee", answer)]


def test_temporary_failures_give_up_after_max_attempts(uow_factory: Callable[[], Any]) -> None:
    clock = FixedClock(T0)
    sender = Recorder([DeliveryError("421 try later")] * 3)
    svc = service(uow_factory, sender, clock, max_attempts=3, base=timedelta(seconds=1))
    message_id = add(uow_factory)
    outcomes = []
    for _ in range(3):
        outcomes.append(svc.deliver(message_id))
        clock.advance(minutes=1)
    assert outcomes == ["retry", "retry", "failed"]
    row = svc.get(message_id)
    assert row.status == "failed" and row.last_error == (
        "Gave up after 3 attempts; last: 421 try later")


def test_retry_refuses_sent_and_unknown_messages(uow_factory: Callable[[], Any]) -> None:
    svc = service(uow_factory, Recorder(), FixedClock(T0))
    message_id = add(uow_factory)
    add_staff(uow_factory)
    svc.deliver(message_id)
    with pytest.raises(ValidationError, match="already delivered"):
        svc.retry(message_id, ANA)
    with pytest.raises(NotFoundError):
        svc.retry(999, ANA)
    with pytest.raises(ValidationError, match="Unknown message status"):
        svc.list(status="lost")
    assert svc.deliver(999) == "skipped"


def test_only_active_staff_or_the_command_line_retry(uow_factory: Callable[[], Any]) -> None:
    sender = Recorder([DeliveryError("550 unknown mailbox", permanent=True)] * 3)
    svc = service(uow_factory, sender, FixedClock(T0))
    message_id = add(uow_factory, job_id=9)
    add_staff(uow_factory, "Former Staff", active=False)
    svc.deliver(message_id)
    for who in (Actor.staff("Nobody"), Actor.staff("Former Staff"), Actor.student("Jane Doe"),
                Actor.staff("")):
        with pytest.raises(ValidationError, match="Choose your name from the staff list"):
            svc.retry(message_id, who)
    assert svc.get(message_id).status == "failed"
    with uow_factory() as uow:
        assert [e.kind for e in uow.events.for_subject("job", 9)] == ["message_failed"]
    again = svc.retry(message_id, Actor.system("command line"))
    assert again.status == "pending"


def test_retry_failed_sends_every_failed_row_again_in_one_unit_of_work(
    uow_factory: Callable[[], Any],
) -> None:
    """The admin's "send all failed again": every failed row (not the sent or pending
    ones) back to pending with its own message_retried event, one corrected address
    applied, and one outbox_retried lab event with the ids. Bad inputs tried: an actor
    who is not active staff (nothing retried, no event), nothing failed (nothing
    written)."""
    from printcore.lab_events import LAB_ID, LAB_SUBJECT

    sender = Recorder([DeliveryError("550 unknown mailbox", permanent=True)] * 2)
    svc = service(uow_factory, sender, FixedClock(T0))
    first, second, fine = (add(uow_factory, job_id=n) for n in (11, 12, 13))
    add_staff(uow_factory)
    add_staff(uow_factory, "Former Staff", active=False)
    for message_id in (first, second, fine):
        svc.deliver(message_id)
    assert [svc.get(i).status for i in (first, second, fine)] == ["failed", "failed", "sent"]
    with pytest.raises(ValidationError, match="Choose your name"):
        svc.retry_failed(Actor.staff("Former Staff"))
    assert [svc.get(i).status for i in (first, second)] == ["failed", "failed"]
    corrected = {second: "jane.d@university.edu"}
    assert svc.retry_failed(ANA, recipient_for=lambda m: corrected.get(m.id or 0)) == [
        first, second]
    rows = [svc.get(i) for i in (first, second, fine)]
    assert [r.status for r in rows] == ["pending", "pending", "sent"]
    assert rows[1].recipient == "jane.d@university.edu"
    with uow_factory() as uow:
        lab = uow.events.for_subject(LAB_SUBJECT, LAB_ID)
        retried = [e for n in (11, 12) for e in uow.events.for_subject("job", n)
                   if e.kind == "message_retried"]
    assert [(e.kind, e.actor.name, e.details["message_ids"]) for e in lab] == [
        ("outbox_retried", "Ana Lee", [first, second])]
    assert len(retried) == 2 and retried[1].details["recipient"] == "jane.d@university.edu"
    assert svc.retry_failed(ANA) == []  # nothing failed now: nothing written
    with uow_factory() as uow:
        assert len(uow.events.for_subject(LAB_SUBJECT, LAB_ID)) == 1


def test_a_leased_row_is_left_alone_until_the_lease_ends(
    uow_factory: Callable[[], Any],
) -> None:
    """A deliverer that died holding a row (after its lease, before sending) blocks the
    row only until the lease ends; then another deliverer takes it."""
    clock = FixedClock(T0)
    svc = service(uow_factory, Recorder(), clock, lease=timedelta(seconds=60))
    message_id = add(uow_factory)
    with uow_factory() as uow:  # the dead deliverer's lease
        assert uow.outbox.lease(message_id, T0, T0 + timedelta(seconds=60)) is not None
        uow.commit()
    assert svc.deliver(message_id) == "skipped" and svc.due() == []
    clock.advance(seconds=61)
    assert svc.due() == [message_id]
    assert svc.deliver(message_id) == "sent"
    assert svc.get(message_id).attempts == 2


def test_channels_are_delivered_only_where_a_sender_exists(
    uow_factory: Callable[[], Any],
) -> None:
    sender = Recorder()
    svc = service(uow_factory, sender, FixedClock(T0))
    discord_id = add(uow_factory, kind="offered", channel="discord")
    email_id = add(uow_factory)
    assert svc.due() == [email_id]
    assert svc.deliver(discord_id) == "skipped"
    assert svc.get(discord_id).attempts == 0  # untouched, left for the bot
    report = svc.deliver_due()
    assert (report.sent, report.total) == (1, 1)


def test_the_relay_view_skips_rows_handed_over_recently(
    uow_factory: Callable[[], Any],
) -> None:
    clock = FixedClock(T0)
    svc = service(uow_factory, Recorder(), clock, relay_grace=timedelta(seconds=30))
    first, second = add(uow_factory), add(uow_factory)
    with uow_factory() as uow:
        uow.outbox.mark_relayed([first], T0)
        uow.commit()
    assert svc.due(relay=True) == [second]
    assert svc.due() == [first, second]  # delivering in-process ignores the relay mark
    clock.advance(seconds=31)
    assert svc.due(relay=True) == [first, second]


def test_ordering_and_listing_by_job(uow_factory: Callable[[], Any]) -> None:
    svc = service(uow_factory, Recorder(), FixedClock(T0 + timedelta(hours=1)))
    a = add(uow_factory, "submitted", job_id=1, at=T0)
    b = add(uow_factory, "approved", job_id=1, at=T0 + timedelta(minutes=5))
    c = add(uow_factory, "submitted", job_id=2, at=T0 + timedelta(minutes=1))
    assert svc.due() == [a, c, b]  # oldest due first
    assert [m.id for m in svc.list(subject="job", subject_id=1)] == [b, a]  # newest first
    assert [m.id for m in svc.list(limit=1)] == [c]


def test_racing_deliverers_send_each_row_once(sql_engine: Engine) -> None:
    """Eight threads deliver the same 40 rows at once (each thread its own connection):
    the conditional UPDATE lease lets exactly one thread send each row."""
    def uow() -> SqlUnitOfWork:
        return SqlUnitOfWork(sql_engine)

    ids = [add(uow, job_id=i) for i in range(40)]
    sender = Recorder()
    svc = OutboxService(uow=uow, clock=FixedClock(T0), senders={"email": sender})
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            for message_id in ids:
                svc.deliver(message_id)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sorted(m.id for m in sender.sent) == ids
    assert {svc.get(i).status for i in ids} == {"sent"}


# --- attachments (the payments export emailed to finance) --------------------------------

def test_an_attachment_is_stored_with_its_row_and_delivered_retried_unchanged(
        uow_factory: Callable[[], Any]) -> None:
    """A 1 MB file with every byte value: ``get`` and the leased row handed to the sender
    carry the same bytes, name and type; a list of rows leaves the bytes out; a temporary
    failure and the retry send the very same file."""
    data = bytes(range(256)) * 4096
    with uow_factory() as uow:
        message = OutboxMessage(channel="email", kind="payments_export",
                                recipient="finance@university.edu", subject="lab",
                                subject_id=0, created_at=T0, payload={"payments": 3},
                                attachment=Attachment.checked("payments.xlsx", XLSX, data))
        message_id = uow.outbox.add(message)
        uow.commit()
    with uow_factory() as uow:
        stored = uow.outbox.get(message_id)
        listed = uow.outbox.list(subject="lab")
    assert stored.attachment == Attachment("payments.xlsx", XLSX, data)
    assert [m.id for m in listed] == [message_id]
    assert listed[0].attachment is None or listed[0].attachment.data == data
    sender = Recorder([DeliveryError("421 try later")])
    clock = FixedClock(T0)
    svc = service(uow_factory, sender, clock)
    assert svc.deliver(message_id) == "retry"
    clock.advance(minutes=5)
    assert svc.deliver(message_id) == "sent"
    [sent] = sender.sent
    assert sent.attachment is not None and sent.attachment.data == data
    assert sent.attachment.filename == "payments.xlsx" and sent.attachment.media_type == XLSX
    with uow_factory() as uow:
        assert uow.outbox.get(message_id).attachment == stored.attachment  # kept after sending


def test_a_row_without_attachment_reads_back_without_one(uow_factory: Callable[[], Any]) -> None:
    message_id = add(uow_factory)
    with uow_factory() as uow:
        assert uow.outbox.get(message_id).attachment is None


@pytest.mark.parametrize(("name", "media", "size", "field_text"), [
    ("payments.xlsx", XLSX, 0, "Empty"),
    ("payments.xlsx", XLSX, MAX_ATTACHMENT_BYTES + 1, "At most"),
    ("../payments.xlsx", XLSX, 10, "without folders"),
    ("C:\\payments.xlsx", XLSX, 10, "without folders"),
    ('pay"ments.xlsx', XLSX, 10, "without folders"),
    ("payments.xlsx\r\nBcc: x@y.z", XLSX, 10, "without folders"),
    ("", XLSX, 10, "without folders"),
    ("payments.csv", "text", 10, "media type"),
    ("payments.csv", "text/csv\r\nX-Evil: 1", 10, "media type"),
])
def test_bad_attachments_are_refused(name: str, media: str, size: int, field_text: str) -> None:
    """Bad inputs tried: an empty file, one byte over the limit, folder names (``..``,
    ``C:\\``), a quote and a header injection in the name, an empty name, a media type
    without a subtype or with a line break."""
    with pytest.raises(ValidationError) as caught:
        Attachment.checked(name, media, b"x" * size)
    assert field_text in caught.value.fields["attachment"]


def test_the_largest_attachment_allowed_is_accepted() -> None:
    assert Attachment.checked("a.csv", "text/csv; charset=utf-8",
                              b"x" * MAX_ATTACHMENT_BYTES).size == MAX_ATTACHMENT_BYTES
