"""Where a rendered email goes: an SMTP server (``smtplib``) or ``.eml`` files.

Both raise ``printcore.outbox.DeliveryError``: temporary for what may pass (connection
refused or dropped, timeouts, SMTP 4xx, a refused login), permanent for SMTP 5xx answers
about the message or its recipient (e.g. ``550 5.1.1 unknown mailbox``), with the
server's own text as the detail.

``SmtpTransport`` keeps one connection per thread and reuses it (a Dramatiq worker has
several threads); a connection the server dropped is opened again once.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
import threading
import uuid
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Protocol

import attrs

from printcore.outbox import DeliveryError

__all__ = ["FileTransport", "MailTransport", "SmtpSettings", "SmtpTransport"]


class MailTransport(Protocol):
    def send(self, message: Message) -> None:
        """Hand over one message. Raises DeliveryError."""
        ...


class FileTransport:
    """Writes each message as ``<UTC time>-job<id>-<kind>-<key>.eml`` in ``folder``,
    through a temporary name and a rename, so a reader never sees half a message.

    ``key`` comes from the Message-ID (random without one), and a message whose file is
    already there is not written again: an outbox row delivered twice (its deliverer
    killed after writing the file, before recording it sent) stays one file, as a mail
    client folds such a repeat by its Message-ID."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def send(self, message: Message) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            job = message.get("X-Printcore-Job", "0")
            kind = message.get("X-Printcore-Kind", "message")
            message_id = message.get("Message-ID")
            key = (hashlib.sha256(str(message_id).encode()).hexdigest()[:8] if message_id
                   else uuid.uuid4().hex[:8])
            if message_id and any(self.folder.glob(f"*-job{job}-{kind}-{key}.eml")):
                return  # written by an earlier attempt of the same row
            name = f"{stamp}-job{job}-{kind}-{key}.eml"
            temp = self.folder / f".{name}.tmp"
            temp.write_bytes(bytes(message))
            os.replace(temp, self.folder / name)
        except OSError as err:
            raise DeliveryError(f"Cannot write the email to {self.folder}: {err}") from err

    def messages(self) -> list[Path]:
        """The written messages, oldest first."""
        return sorted(self.folder.glob("*.eml"))


@attrs.frozen
class SmtpSettings:
    """``tls``: ``starttls`` (port 587, e.g. smtp.office365.com), ``ssl`` (implicit TLS,
    port 465) or ``none`` (a local relay or a test server). ``timeout`` in seconds."""

    host: str
    port: int = 587
    username: str | None = attrs.field(default=None, repr=False)
    password: str | None = attrs.field(default=None, repr=False)
    tls: str = "starttls"
    timeout: float = 30.0


class SmtpTransport:
    def __init__(self, settings: SmtpSettings,
                 context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.context = context or ssl.create_default_context()
        self._local = threading.local()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        client: smtplib.SMTP
        if s.tls == "ssl":
            client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self.context)
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            client.ehlo()
            if s.tls == "starttls":
                client.starttls(context=self.context)
                client.ehlo()
            if s.username:
                client.login(s.username, s.password or "")
        except BaseException:
            client.close()
            raise
        return client

    def _client(self) -> smtplib.SMTP:
        client: smtplib.SMTP | None = getattr(self._local, "client", None)
        if client is None:
            client = self._connect()
            self._local.client = client
        return client

    def close(self) -> None:
        """Close this thread's connection (QUIT)."""
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def _drop(self) -> None:
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            client.close()

    def send(self, message: Message) -> None:
        for attempt in (1, 2):
            try:
                self._client().send_message(message)
                return
            except smtplib.SMTPServerDisconnected as err:
                self._drop()
                if attempt == 2:
                    raise DeliveryError(f"The SMTP server closed the connection: {err}") from err
            except smtplib.SMTPRecipientsRefused as err:
                self._reset()
                code, text = next(iter(err.recipients.values()))
                raise _answer(code, text, "refused the recipient") from err
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as err:
                self._reset()
                raise _answer(err.smtp_code, err.smtp_error, "refused the message") from err
            except smtplib.SMTPAuthenticationError as err:
                self._drop()
                raise DeliveryError(
                    f"The SMTP server refused the login ({err.smtp_code} "
                    f"{_text(err.smtp_error)}); check SMTP_USERNAME and SMTP_PASSWORD."
                ) from err
            except smtplib.SMTPResponseException as err:
                self._drop()
                raise _answer(err.smtp_code, err.smtp_error, "answered") from err
            except (smtplib.SMTPException, OSError) as err:
                self._drop()
                s = self.settings
                raise DeliveryError(
                    f"Cannot reach the SMTP server {s.host}:{s.port}: {err}"
                ) from err

    def _reset(self) -> None:
        """After a refused message the connection is still good: RSET and keep it."""
        client = getattr(self._local, "client", None)
        if client is None:
            return
        try:
            client.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _answer(code: int, raw: bytes | str, what: str) -> DeliveryError:
    detail = f"The SMTP server {what}: {code} {_text(raw)}"
    return DeliveryError(detail, permanent=500 <= code < 600)
