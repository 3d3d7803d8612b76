"""The ``outbox`` table (``printcore.outbox.OutboxRepository``) over SQLAlchemy Core.

``lease`` is one conditional UPDATE (``... WHERE id = ? AND status = 'pending' AND
next_attempt_at <= now AND (lease_until IS NULL OR lease_until <= now)``): of two
deliverers racing for a row, the database lets exactly one match it. Rows added in a unit
of work are remembered so the unit of work can hand their ids to its ``after_commit``
hook (the relay's fast path) once the transaction is committed.

An attachment (``printcore.outbox.Attachment``) is stored in the row's ``attachment_name``
/ ``attachment_type`` / ``attachment`` (bytes) columns; ``list`` leaves the bytes out (a
page of rows stays small), ``get`` and ``lease`` read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update

from adapters.sql.base import HasConnection
from adapters.sql.tables import outbox
from printcore.errors import NotFoundError
from printcore.outbox import Attachment, OutboxMessage

__all__ = ["SqlOutboxRepository"]

_FIELDS = (
    "channel", "kind", "recipient", "subject", "subject_id", "payload", "status",
    "attempts", "created_at", "next_attempt_at", "lease_until", "relayed_at", "sent_at",
    "last_error",
)
#: What delivery (and a retry) may change on a row; ``recipient`` only through a retry
#: after the job's address was corrected.
_OUTCOME = ("status", "attempts", "next_attempt_at", "lease_until", "relayed_at", "sent_at",
            "last_error", "recipient")


def _to_message(row: Mapping[str, Any]) -> OutboxMessage:
    message = OutboxMessage(id=row["id"], **{name: row[name] for name in _FIELDS})
    data = row.get("attachment")
    if data is not None and row.get("attachment_name"):
        message.attachment = Attachment(row["attachment_name"],
                                        row["attachment_type"] or "application/octet-stream",
                                        bytes(data))
    return message


#: Every column but the attachment's bytes (for lists).
_LISTED = [c for c in outbox.c if c.name != "attachment"]


class SqlOutboxRepository:
    def __init__(self, uow: HasConnection) -> None:
        self._uow = uow
        #: Ids added in the current transaction (cleared by the unit of work).
        self.added: list[int] = []

    @property
    def _conn(self) -> Any:
        return self._uow.connection

    @staticmethod
    def _values(message: OutboxMessage) -> dict[str, Any]:
        values = {name: getattr(message, name) for name in _FIELDS}
        values["payload"] = dict(message.payload)
        values["next_attempt_at"] = message.next_attempt_at or message.created_at
        attachment = message.attachment
        values.update(attachment_name=attachment.filename if attachment else None,
                      attachment_type=attachment.media_type if attachment else None,
                      attachment=attachment.data if attachment else None)
        return values

    def add(self, message: OutboxMessage) -> int:
        """Insert a pending row (due at once unless ``next_attempt_at`` says otherwise)."""
        values = self._values(message)
        result = self._conn.execute(insert(outbox).values(**values))
        key = result.inserted_primary_key
        message.id = int(key[0])
        message.next_attempt_at = values["next_attempt_at"]
        self.added.append(message.id)
        return message.id

    def add_many(self, messages: Sequence[OutboxMessage]) -> list[int]:
        """``add`` of each in one statement (insertmanyvalues, ids returned in order)."""
        if not messages:
            return []
        rows = [self._values(m) for m in messages]
        statement = insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True)
        ids = [int(i) for i in self._conn.execute(statement, rows).scalars()]
        for message, row, message_id in zip(messages, rows, ids, strict=True):
            message.id, message.next_attempt_at = message_id, row["next_attempt_at"]
        self.added.extend(ids)
        return ids

    def get(self, message_id: int) -> OutboxMessage:
        """Raises NotFoundError."""
        row = self._conn.execute(
            select(outbox).where(outbox.c.id == message_id)
        ).mappings().first()
        if row is None:
            raise NotFoundError(f"There is no message {message_id}.")
        return _to_message(row)

    def lease(self, message_id: int, now: datetime, until: datetime) -> OutboxMessage | None:
        """Take a due, unheld pending row for this caller (see the module doc)."""
        result = self._conn.execute(
            update(outbox)
            .where(
                outbox.c.id == message_id,
                outbox.c.status == "pending",
                outbox.c.next_attempt_at <= now,
                or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now),
            )
            .values(lease_until=until, attempts=outbox.c.attempts + 1)
            .returning(*outbox.c)
        )
        row = result.mappings().first()
        return None if row is None else _to_message(row)

    def finish(self, message: OutboxMessage) -> None:
        """Store the delivery outcome fields of a row."""
        if message.id is None:
            raise ValueError("This message has no id; add it first.")
        self._conn.execute(
            update(outbox)
            .where(outbox.c.id == message.id)
            .values(**{name: getattr(message, name) for name in _OUTCOME})
        )

    def due(self, now: datetime, limit: int, channels: Sequence[str],
            relayed_before: datetime | None = None) -> list[int]:
        """Pending, due, unheld rows of ``channels``, oldest first."""
        query = (
            select(outbox.c.id)
            .where(
                outbox.c.status == "pending",
                outbox.c.next_attempt_at <= now,
                outbox.c.channel.in_(list(channels)),
                or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now),
            )
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
        )
        if relayed_before is not None:
            query = query.where(
                or_(outbox.c.relayed_at.is_(None), outbox.c.relayed_at <= relayed_before)
            )
        return [int(i) for i in self._conn.execute(query).scalars()]

    def mark_relayed(self, message_ids: Sequence[int], at: datetime | None) -> None:
        if message_ids:
            self._conn.execute(
                update(outbox).where(outbox.c.id.in_(list(message_ids))).values(relayed_at=at)
            )

    def list(self, status: str | None = None, subject: str | None = None,
             subject_id: int | None = None, limit: int = 100) -> list[OutboxMessage]:
        """Rows newest first, without their attachments' bytes (``attachment`` None)."""
        query = select(*_LISTED).order_by(outbox.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(outbox.c.status == status)
        if subject is not None:
            query = query.where(outbox.c.subject == subject)
        if subject_id is not None:
            query = query.where(outbox.c.subject_id == subject_id)
        return [_to_message(row) for row in self._conn.execute(query).mappings()]

    def failed_subjects(self, subject: str) -> dict[int, int]:
        query = (
            select(outbox.c.subject_id, func.count())
            .where(outbox.c.status == "failed", outbox.c.subject == subject)
            .group_by(outbox.c.subject_id)
        )
        return {int(i): int(n) for i, n in self._conn.execute(query)}
