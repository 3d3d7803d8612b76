"""The outbox's ``email`` channel: render a row with :class:`MailRenderer` and hand it to
a transport (SMTP or files).

The Message-ID is derived from the row (``<printcore.outbox.<id>.<created epoch>@<domain
of From>>``), so every retry of one row carries the same id and a mail client folds a
repeat. A template that fails to render is a permanent failure: the row is marked failed
with the error, visible to staff, never sent half-made.
"""

from __future__ import annotations

from email.message import Message

from adapters.mail.render import MailRenderer, RenderError
from adapters.mail.transports import MailTransport
from printcore.outbox import DeliveryError, OutboxMessage

__all__ = ["EmailSender", "message_id_for"]


def message_id_for(message: OutboxMessage, domain: str) -> str:
    """The stable Message-ID of an outbox row."""
    return f"<printcore.outbox.{message.id}.{int(message.created_at.timestamp())}@{domain}>"


class EmailSender:
    """``printcore.outbox.MessageSender`` for email."""

    def __init__(self, renderer: MailRenderer, transport: MailTransport) -> None:
        self.renderer = renderer
        self.transport = transport

    def render(self, message: OutboxMessage) -> Message:
        """Raises DeliveryError (permanent) when the template fails."""
        try:
            return self.renderer.render(
                message.notice(), message_id=message_id_for(message, self.renderer.domain),
                attachment=message.attachment,
            )
        except RenderError as err:
            raise DeliveryError(str(err), permanent=True) from err

    def send(self, message: OutboxMessage) -> None:
        self.transport.send(self.render(message))
