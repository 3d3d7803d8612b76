"""A real SMTP server for tests: aiosmtpd's ``Controller`` on a free port, in this process.

``SmtpServer.received`` lists what the server accepted (each an ``EmailMessage`` with
its envelope recipients), in order. ``refuse[address] = "550 5.1.1 ..."`` answers that
recipient with the given line; ``stop()`` and ``start()`` take the server down and
bring it back on the same port; ``on_data`` is called before a message is accepted and
may return an answer line to refuse it instead (used to kill a worker mid-send).
"""

from __future__ import annotations

import email
import threading
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from typing import Any

import attrs
from aiosmtpd.controller import Controller

from _live import free_port

__all__ = ["SmtpServer"]


@attrs.define
class Received:
    envelope_to: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None, "no text/plain part"
        return str(part.get_content())  # type: ignore[attr-defined]

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None, "no text/html part"
        return str(part.get_content())  # type: ignore[attr-defined]


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any,
                          address: str, rcpt_options: list[str]) -> str:
        answer = self.server.refuse.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=policy.default)
        if self.server.on_data is not None:
            answer = self.server.on_data(message)
            if answer:
                return answer
        with self.server.lock:
            self.server.received.append(
                Received(list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self.refuse: dict[str, str] = {}
        self.on_data: Callable[[EmailMessage], str | None] | None = None
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def env(self) -> dict[str, str]:
        """Settings that point printcore at this server (plain SMTP, no login)."""
        return {"PRINTCORE_MAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(self.port), "SMTP_TLS": "none",
                "SMTP_FROM": "Fab Lab <fablab@university.edu>"}

    def start(self) -> None:
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait until at least ``count`` messages arrived; returns them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.messages()
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"expected {count} messages, got {len(self.messages())}: "
                             f"{[m.message['Subject'] for m in self.messages()]}")
