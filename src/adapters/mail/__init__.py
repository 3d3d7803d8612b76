"""Outbound email: rendering printcore notices into messages, and delivering them."""

from adapters.mail.files import FileMailer
from adapters.mail.render import MailRenderer

__all__ = ["FileMailer", "MailRenderer"]
