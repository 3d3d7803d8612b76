"""Queue notices without Discord: the outbox's ``discord`` channel delivered to the log.

For processes of a lab with no Discord bot (no ``DISCORD_TOKEN``: the web app, the
``printcore queue`` CLI, a cron ``printcore sweep``): :class:`LogSender` logs each notice
with structlog and keeps the last ones in memory, so the row is marked sent and a bot set
up later does not replay old offers. With a bot, leave the ``discord`` channel to it
(``adapters.discord``)."""

from __future__ import annotations

from collections import deque

import structlog

from printcore.errors import ValidationError
from printcore.outbox import DeliveryError, OutboxMessage
from printcore.queue.ports import QueueNotice, queue_notice_of

__all__ = ["LogSender"]


class LogSender:
    """``printcore.outbox.MessageSender`` for the ``discord`` channel that logs.

    ``recent``: the last ``keep`` notices delivered, oldest first. Raises a permanent
    DeliveryError only for a row that does not hold a queue notice.
    """

    def __init__(self, keep: int = 100) -> None:
        self.recent: deque[QueueNotice] = deque(maxlen=keep)
        self._log = structlog.get_logger("printcore.queue")

    def send(self, message: OutboxMessage) -> None:
        try:
            notice = queue_notice_of(message)
        except ValidationError as err:
            raise DeliveryError(str(err), permanent=True) from err
        self.recent.append(notice)
        self._log.info(
            "queue notice", kind=notice.kind, member=notice.member,
            member_name=notice.member_name, ticket=notice.ticket_id,
            printer=notice.printer, message=message.id,
            deadline=notice.deadline.isoformat() if notice.deadline else None,
        )
