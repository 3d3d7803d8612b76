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
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from printcore.ports import Notice
from printcore.pricing import format_cents

__all__ = ["MailRenderer", "RenderError"]

_HEADER_UNSAFE = re.compile(r"[\r\n\x00]+")


class RenderError(Exception):
    """A template failed to render; the message is not sent silently half-made."""


def _safe_header(text: str) -> str:
    return _HEADER_UNSAFE.sub(" ", text).strip()


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

    def render(self, notice: Notice, message_id: str | None = None) -> EmailMessage:
        """The message for ``notice``; ``message_id`` (``<...@...>``) keeps it stable
        across retries. Raises RenderError when a template is missing or fails."""
        ctx = self.context(notice)
        try:
            subject = self.env.get_template(f"{notice.kind}.subject.txt").render(ctx)
            text = self.env.get_template(f"{notice.kind}.txt").render(ctx)
            html = self.env.get_template(f"{notice.kind}.html").render(ctx)
        except Exception as err:  # jinja2's TemplateNotFound, UndefinedError, ...
            raise RenderError(f"Cannot render the {notice.kind!r} email: {err}") from err
        message = EmailMessage()
        message["Subject"] = _safe_header(f"[{self.lab_name}] {subject}")
        message["From"] = _safe_header(self.mail_from)
        message["To"] = _safe_header(notice.to)
        if self.reply_to:
            message["Reply-To"] = _safe_header(self.reply_to)
        message["Date"] = format_datetime(datetime.now(self.zone))
        message["Message-ID"] = message_id or make_msgid(domain=self.domain)
        message["X-Printcore-Job"] = str(notice.job_id)
        message["X-Printcore-Kind"] = notice.kind
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message
