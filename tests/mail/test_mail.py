"""Email rendering and SMTP delivery against a real SMTP server (aiosmtpd, in process).

Covers every message type (recipient, subject, both bodies, links, lab details, local
times), the stable Message-ID, header injection through names, a template that fails,
and the SMTP answers: 550 (permanent, with the server's text), 451 (temporary),
connection refused (temporary), a dropped connection (reopened), STARTTLS with login
(the Office 365 way), and a refused login.

Bad inputs tried: CR/LF/NUL in the student name, a template that is missing, an
unknown mailbox (550), a greylisting answer (451), a server that is down, a wrong password.
"""

from __future__ import annotations

import re
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from _smtp import SmtpServer
from adapters.mail import (
    EmailSender,
    FileTransport,
    MailRenderer,
    SmtpSettings,
    SmtpTransport,
    message_id_for,
)
from printcore.outbox import DeliveryError, OutboxMessage
from printcore.ports import Notice

NOW = datetime(2026, 11, 2, 21, 30, tzinfo=UTC)  # 3:30 PM in Chicago
BASE = {"job_id": 12, "student_name": "Jane Doe", "print_method": "filament",
        "color": "Red", "status": "pending", "weight_g": 10.48, "time_hours": 1.0,
        "cost_cents": 300, "status_token": "STATUS-TOKEN"}
CONTEXTS: dict[str, dict[str, Any]] = {
    "submitted": {},
    "approved": {"confirm_token": "CONFIRM-TOKEN", "expires_at": "2026-11-09T21:30:00+00:00"},
    "rejected": {"reasons": ["Walls or details are too thin to print.", "Too big."]},
    "confirmed": {},
    "completed": {},
    "payment_receipt": {"amount_cents": 350, "txn_no": "TX-881"},
}
SUBJECTS = {
    "submitted": "We received your print request #12",
    "approved": "Please confirm print request #12: $3.00",
    "rejected": "Print request #12 could not be accepted",
    "confirmed": "Print request #12 confirmed",
    "completed": "Print request #12 is ready for pickup",
    "payment_receipt": "Receipt for print #12",
}


def renderer() -> MailRenderer:
    return MailRenderer("https://print.example.edu/", "Fab Lab", "Fab Lab <fablab@university.edu>",
                        "America/Chicago", lab_address="Engineering Hall 104",
                        pickup_hours="Mon-Fri 10:00-16:00", reply_to="help@university.edu")


def row(kind: str, context: dict[str, Any] | None = None, message_id: int = 5) -> OutboxMessage:
    message = OutboxMessage.email(
        Notice(kind, "jane.doe@university.edu", 12, {**BASE, **(CONTEXTS.get(kind, {}) if context is None else context)}),
        NOW)
    message.id = message_id
    return message


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def plain(server: SmtpServer) -> SmtpTransport:
    return SmtpTransport(SmtpSettings("127.0.0.1", server.port, tls="none", timeout=5))


@pytest.mark.parametrize("kind", sorted(CONTEXTS))
def test_every_message_type_arrives_complete(smtp: SmtpServer, kind: str) -> None:
    sender = EmailSender(renderer(), plain(smtp))
    sender.send(row(kind))
    [got] = smtp.wait_for(1)
    m = got.message
    assert got.envelope_to == ["jane.doe@university.edu"]
    assert m["To"] == "jane.doe@university.edu"
    assert m["From"] == "Fab Lab <fablab@university.edu>"
    assert m["Reply-To"] == "help@university.edu"
    assert m["Subject"] == f"[Fab Lab] {SUBJECTS[kind]}"
    assert m["Message-ID"] == "<printcore.outbox.5.1793655000@university.edu>"
    for body in (got.text, got.html):
        assert "Jane Doe" in body and "#12" in body
        assert "Engineering Hall 104" in body and "Mon-Fri 10:00-16:00" in body
        assert "https://print.example.edu/status/STATUS-TOKEN" in body
    assert "<html" in got.html and "<html" not in got.text
    if kind == "approved":
        for body in (got.text, got.html):
            assert "https://print.example.edu/confirm/CONFIRM-TOKEN" in body
            assert "$3.00" in body and "10.48 g" in body
            assert "Mon 09 Nov 2026, 03:30 PM CST" in body  # the lab's zone
    if kind == "rejected":
        assert "Walls or details are too thin to print." in got.text
        assert "<li>Too big.</li>" in got.html
    if kind == "completed":
        assert "$3.00" in got.text and "where                 Engineering Hall 104" in got.text
    if kind == "payment_receipt":
        assert "$3.50" in got.text and "TX-881" in got.html


def test_the_message_id_is_stable_per_row() -> None:
    sender = EmailSender(renderer(), FileTransport(Path("/nonexistent")))
    first, again, other = sender.render(row("approved")), sender.render(row("approved")), \
        sender.render(row("approved", message_id=6))
    assert first["Message-ID"] == again["Message-ID"] != other["Message-ID"]
    assert first["Message-ID"] == message_id_for(row("approved"), "university.edu")


def test_names_cannot_inject_headers(smtp: SmtpServer) -> None:
    evil = "Jane\r\nBcc: everyone@university.edu\r\nSubject: free prints\x00"
    sender = EmailSender(renderer(), plain(smtp))
    sender.send(row("submitted", {"student_name": evil}))
    [got] = smtp.wait_for(1)
    assert got.envelope_to == ["jane.doe@university.edu"]
    assert got.message.get_all("Bcc") is None
    assert got.message.get_all("Subject") == ["[Fab Lab] We received your print request #12"]


def test_a_template_that_fails_is_a_permanent_failure_not_a_silent_one(tmp_path: Path) -> None:
    sender = EmailSender(renderer(), FileTransport(tmp_path))
    with pytest.raises(DeliveryError) as err:
        sender.send(row("approved", {"expires_at": "2026-11-09T21:30:00+00:00"}))  # no token
    assert err.value.permanent and "Cannot render the 'approved' email" in err.value.detail
    with pytest.raises(DeliveryError) as missing:
        sender.send(row("no_such_kind", {}))
    assert missing.value.permanent and "no_such_kind" in missing.value.detail
    assert list(tmp_path.iterdir()) == []  # nothing half-made was written


def test_the_file_backend_writes_whole_eml_files(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path / "mail")
    EmailSender(renderer(), transport).send(row("completed"))
    [path] = transport.messages()
    assert re.fullmatch(r"\d{8}T\d{12}Z-job12-completed-[0-9a-f]{8}\.eml", path.name)
    assert b"Subject: [Fab Lab] Print request #12 is ready for pickup" in path.read_bytes()
    assert not list((tmp_path / "mail").glob(".*.tmp"))


def test_smtp_answers_decide_temporary_or_permanent(smtp: SmtpServer) -> None:
    transport = plain(smtp)
    sender = EmailSender(renderer(), transport)
    smtp.refuse["jane.doe@university.edu"] = "550 5.1.1 <jane.doe@university.edu>: User unknown"
    with pytest.raises(DeliveryError) as unknown:
        sender.send(row("submitted"))
    assert unknown.value.permanent
    assert unknown.value.detail == ("The SMTP server refused the recipient: 550 5.1.1 "
                                    "<jane.doe@university.edu>: User unknown")
    smtp.refuse["jane.doe@university.edu"] = "451 4.7.1 Greylisted, try again later"
    with pytest.raises(DeliveryError) as grey:
        sender.send(row("submitted"))
    assert not grey.value.permanent and "451 4.7.1 Greylisted" in grey.value.detail
    del smtp.refuse["jane.doe@university.edu"]
    sender.send(row("submitted"))  # the same connection still works after RSET
    assert len(smtp.wait_for(1)) == 1


def test_smtp_down_is_temporary_and_a_dropped_connection_is_reopened(smtp: SmtpServer) -> None:
    transport = plain(smtp)
    sender = EmailSender(renderer(), transport)
    sender.send(row("submitted"))
    smtp.stop()
    with pytest.raises(DeliveryError) as down:
        sender.send(row("confirmed"))
    assert not down.value.permanent and "Cannot reach the SMTP server" in down.value.detail
    smtp.start()
    sender.send(row("confirmed"))
    assert [g.message["X-Printcore-Kind"] for g in smtp.wait_for(2)] == ["submitted", "confirmed"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class _Accepting:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.content)
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and \
        (auth_data.login, auth_data.password) == (b"fablab@university.edu", b"s3cret")
    return AuthResult(success=ok, handled=False)


def test_starttls_and_login_like_office_365(certificate: tuple[Path, Path]) -> None:
    """STARTTLS on a submission port, then AUTH LOGIN: what smtp.office365.com:587 wants.
    The server refuses AUTH before TLS, so the transport must upgrade first."""
    from _live import free_port

    cert, key = certificate
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    handler = _Accepting()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=server_ctx,
                            require_starttls=True, authenticator=_authenticator,
                            auth_require_tls=True)
    controller.start()
    try:
        client_ctx = ssl.create_default_context(cafile=str(cert))
        good = SmtpTransport(SmtpSettings("127.0.0.1", port, "fablab@university.edu", "s3cret",
                                          tls="starttls", timeout=5), context=client_ctx)
        EmailSender(renderer(), good).send(row("submitted"))
        assert len(handler.received) == 1
        bad = SmtpTransport(SmtpSettings("127.0.0.1", port, "fablab@university.edu", "wrong",
                                         tls="starttls", timeout=5), context=client_ctx)
        with pytest.raises(DeliveryError) as refused:
            EmailSender(renderer(), bad).send(row("submitted"))
        assert not refused.value.permanent  # fix the password, and the retries get through
        assert "refused the login (535" in refused.value.detail
        assert "SMTP_USERNAME" in refused.value.detail
        assert len(handler.received) == 1
    finally:
        controller.stop()


def test_non_ascii_names_arrive_intact(smtp: SmtpServer) -> None:
    lab = MailRenderer("https://print.example.edu", "Taller de Fabricación", "Taller Fabricación "
                       "<fablab@university.edu>", "America/Chicago")
    EmailSender(lab, plain(smtp)).send(row("submitted", {"student_name": "Zoë Ødegård 李"}))
    [got] = smtp.wait_for(1)
    assert got.message["Subject"] == "[Taller de Fabricación] We received your print request #12"
    assert str(got.message["From"]) == "Taller Fabricación <fablab@university.edu>"
    assert "Zoë Ødegård 李" in got.text and "Zoë Ødegård 李" in got.html
    assert got.message.get_body(("plain",))["Content-Transfer-Encoding"] == "quoted-printable"
