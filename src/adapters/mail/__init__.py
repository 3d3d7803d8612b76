"""Outbound email: rendering outbox rows into messages and delivering them by SMTP or
as ``.eml`` files."""

from adapters.mail.render import MailRenderer, RenderError
from adapters.mail.sender import EmailSender, message_id_for
from adapters.mail.transports import FileTransport, MailTransport, SmtpSettings, SmtpTransport

__all__ = [
    "EmailSender", "FileTransport", "MailRenderer", "MailTransport", "RenderError",
    "SmtpSettings", "SmtpTransport", "message_id_for",
]
