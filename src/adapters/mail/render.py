"""Render a printcore ``Notice`` into an RFC 5322 message (plain text + HTML) with Jinja2.

Templates live in ``adapters/mail/templates``: ``<kind>.subject.txt``, ``<kind>.txt`` and
``<kind>.html`` (the HTML ones extend ``_layout.html``; the text ones include
``_footer.txt``). Links are built from the public base URL; times are shown in the lab's
time zone; money is integer cents shown as dollars. Header values (names, subjects) have
CR, LF and NUL replaced by spaces, so nothing a student types can add a header.
"""

from __future__ import annotations

import re
from datetime import datetime
from email import encoders
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from printcore.outbox import Attachment
from printcore.ports import Notice
from printcore.requests.pricing import format_cents
from printcore.text import displayable

__all__ = ["MailRenderer", "RenderError"]

_HEADER_UNSAFE = re.compile(r"[\r\n\x00]+")


def _displayable(value: Any) -> Any:
    """Every ``{{ … }}`` output: a stored text with a lone surrogate (from before printcore
    refused them) is written with U+FFFD instead of failing the email."""
    if isinstance(value, Markup):
        return Markup(displayable(value))
    return displayable(value) if isinstance(value, str) else value


class RenderError(Exception):
    """A template failed to render; the message is not sent silently half-made."""


def _safe_header(text: str) -> str:
    return _HEADER_UNSAFE.sub(" ", text).strip()


def _header(text: str) -> str | Header:
    """One header line: CR/LF/NUL replaced; RFC 2047 encoded when not ASCII."""
    text = _safe_header(text)
    return text if text.isascii() else Header(text, "utf-8")


def _address(text: str) -> str:
    """``Name <addr>`` with a non-ASCII name encoded (RFC 2047)."""
    name, addr = parseaddr(_safe_header(text))
    return formataddr((name, addr), charset="utf-8") if addr else _safe_header(text)


_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def _part(body: str, subtype: str) -> MIMEText:
    """7bit when the body is ASCII, else UTF-8 quoted-printable (readable in a file)."""
    if body.isascii():
        return MIMEText(body, subtype, "us-ascii")
    return MIMEText(body, subtype, _UTF8_QP)  # type: ignore[arg-type]


def _file(attachment: Attachment) -> MIMEBase:
    """The attachment part (base64), named by its (already checked) file name."""
    kind, *extra = (p.strip() for p in attachment.media_type.split(";"))
    main, _, sub = kind.partition("/")
    params = dict(p.partition("=")[::2] for p in extra if "=" in p)
    part: MIMEBase
    if main == "application":
        part = MIMEApplication(attachment.data, sub, **params)
    else:
        part = MIMEBase(main, sub, **params)
        part.set_payload(attachment.data)
        encoders.encode_base64(part)
    part.add_header("Content-Disposition", "attachment",
                    filename=_safe_header(attachment.filename))
    return part


class MailRenderer:
    """``lab_address``, ``pickup_hours`` (free text, e.g. "Mon-Fri 10:00-16:00") and
    ``reply_to`` (an address, or None for none) come from settings."""

    def __init__(self, base_url: str, lab_name: str, mail_from: str, timezone: str,
                 lab_address: str = "", pickup_hours: str = "",
                 reply_to: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.lab_name = lab_name
        self.mail_from = mail_from
        self.lab_address = lab_address
        self.pickup_hours = pickup_hours
        self.reply_to = reply_to
        self.zone = ZoneInfo(timezone)
        self.env = Environment(
            loader=PackageLoader("adapters.mail", "templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            finalize=_displayable,
        )
        self.env.filters["money"] = lambda c: "unknown" if c is None else format_cents(int(c))
        self.env.filters["local"] = self._local

    @property
    def domain(self) -> str:
        """The domain of the From address (for Message-IDs)."""
        return self.mail_from.rpartition("@")[2].strip(" >") or "printcore.local"

    def _local(self, iso: str | None) -> str:
        if not iso:
            return ""
        moment = datetime.fromisoformat(iso).astimezone(self.zone)
        return moment.strftime("%a %d %b %Y, %I:%M %p %Z")

    def context(self, notice: Notice) -> dict[str, Any]:
        ctx = dict(notice.context)
        ctx.update(lab_name=self.lab_name, base_url=self.base_url, job_id=notice.job_id,
                   lab_address=self.lab_address, pickup_hours=self.pickup_hours)
        if ctx.get("confirm_token"):
            ctx["confirm_url"] = f"{self.base_url}/confirm/{ctx['confirm_token']}"
        ctx["status_url"] = (f"{self.base_url}/status/{ctx['status_token']}"
                             if ctx.get("status_token") else self.base_url)
        return ctx

    def render(self, notice: Notice, message_id: str | None = None,
               attachment: Attachment | None = None) -> Message:
        """The message for ``notice`` (multipart/alternative: text, then HTML; with an
        ``attachment``, multipart/mixed of that and the file, base64, ``Content-
        Disposition: attachment`` with its file name); ``message_id`` (``<...@...>``)
        keeps it stable across retries. Raises RenderError when a template is missing or
        fails.

        Built with the ``email.mime`` classes (the compat32 API): three times faster than
        ``EmailMessage`` with the default policy, which was a third of a worker's time.
        """
        ctx = self.context(notice)
        try:
            subject = self.env.get_template(f"{notice.kind}.subject.txt").render(ctx)
            text = self.env.get_template(f"{notice.kind}.txt").render(ctx)
            html = self.env.get_template(f"{notice.kind}.html").render(ctx)
        except Exception as err:  # jinja2's TemplateNotFound, UndefinedError, ...
            raise RenderError(f"Cannot render the {notice.kind!r} email: {err}") from err
        message = MIMEMultipart("alternative" if attachment is None else "mixed")
        body = message if attachment is None else MIMEMultipart("alternative")
        body.attach(_part(text, "plain"))
        body.attach(_part(html, "html"))
        if attachment is not None:
            message.attach(body)
            message.attach(_file(attachment))
        message["Subject"] = _header(displayable(f"[{self.lab_name}] {subject}"))
        message["From"] = _address(self.mail_from)
        message["To"] = _address(displayable(notice.to))
        if self.reply_to:
            message["Reply-To"] = _address(self.reply_to)
        message["Date"] = format_datetime(datetime.now(self.zone))
        message["Message-ID"] = _safe_header(message_id or make_msgid(domain=self.domain))
        message["X-Printcore-Job"] = str(notice.job_id)
        message["X-Printcore-Kind"] = _safe_header(notice.kind)
        return message
