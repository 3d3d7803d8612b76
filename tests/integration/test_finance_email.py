"""The payments export emailed to the finance office (issue 13, exports) on SQLite and
PostgreSQL: the "Email to finance" form on /staff/reports queues one outbox row with the
xlsx (or CSV) attached and a lab event ``export_emailed``; the web process's own delivery
sends it to a real SMTP server (aiosmtpd, tests/_smtp.py), and the attachment that
arrives opens in openpyxl with the same cells as the download
(``test_payment_exports.check_xlsx``).

Bad inputs tried (each answers the page with the message, 422 unless said, and queues
nothing: no outbox row, no event): the staff password missing and wrong; an address
``finance@``, two addresses, a header injection ``a@b.edu\\nBcc: x@y.z`` (refused by the
one-line form check before the route); a reversed
range and ``2026-13-01``; the format ``pdf``; a name that is not active staff; no CSRF
token (403); no login (redirect to the login page).
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import openpyxl
import pytest
from sqlalchemy import Engine, func, select
from test_payment_exports import ZONE, Seeded, check_xlsx, seed

from _smtp import Received, SmtpServer
from adapters.sql import SqlUnitOfWork
from adapters.sql.tables import outbox
from printcore.lab_events import LAB_ID, LAB_SUBJECT

PASSWORD = "finance-test-password"
FINANCE = "finance@university.edu"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_engine(request: pytest.FixtureRequest) -> Engine:
    engine: Engine = request.getfixturevalue(
        "pg_engine" if request.param == "postgresql" else "sqlite_engine")
    return engine


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@attrs.define
class Lab:
    client: Any
    container: Any
    seeded: Seeded
    engine: Engine

    def csrf(self) -> str:
        page = self.client.get("/staff/reports")
        assert page.status_code == 200, page.text
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found is not None
        return found.group(1)

    def rows(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())

    def lab_events(self) -> list[Any]:
        with SqlUnitOfWork(self.engine) as uow:
            return [e for e in uow.events.for_subject(LAB_SUBJECT, LAB_ID)
                    if e.kind == "export_emailed"]

    def send(self, **changes: str | None) -> Any:
        form: dict[str, str] = {"csrf_token": self.csrf(), "staff_name": "Ana Lee",
                                "export_from": "2026-11-02", "export_to": "2026-11-03",
                                "format": "xlsx", "address": FINANCE,
                                "confirm_password": PASSWORD}
        for key, value in changes.items():
            if value is None:
                form.pop(key, None)
            else:
                form[key] = value
        return self.client.post("/staff/reports/email", data=form, follow_redirects=False)


@pytest.fixture
def lab(db_engine: Engine, smtp: SmtpServer, tmp_path: Path) -> Iterator[Lab]:
    from starlette.testclient import TestClient

    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from entrypoints.web import app_from_container

    seeded = seed(lambda: SqlUnitOfWork(db_engine))
    env = {"PRINTCORE_HOME": str(tmp_path / "home"), "PRINTCORE_TIMEZONE": ZONE,
           "PRINTCORE_SECRET_KEY": "finance-test-secret", "PRINTCORE_STAFF_PASSWORD": PASSWORD,
           "PRINTCORE_FINANCE_EMAIL": FINANCE, **smtp.env}
    container = bootstrap(load_settings(env, env_file=None), engine=db_engine)
    app = app_from_container(container, isolated_inspection=True)
    client = TestClient(app, base_url="http://127.0.0.1")
    try:
        r = client.post("/api/v1/auth/login", json={"password": PASSWORD,
                                                    "workstation": "Office"})
        assert r.status_code == 200, r.text  # the session cookie the pages read
        yield Lab(client, container, seeded, db_engine)
    finally:
        client.close()
        app.state.ctx.inspector.close()
        container.close()


def arrived(smtp: SmtpServer, address: str, timeout: float = 30.0) -> list[Received]:
    """The messages to ``address`` once one arrived (the seeded students' emails are
    delivered too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [m for m in smtp.messages() if address in m.envelope_to]
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"nothing arrived for {address}")


def test_the_export_arrives_as_an_xlsx_attachment_and_is_recorded(
        lab: Lab, smtp: SmtpServer) -> None:
    before = lab.rows()
    r = lab.send()
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/staff/reports?from=2026-11-02&to=2026-11-03"
    assert "queued to finance@university.edu" in lab.client.get(r.headers["location"]).text
    assert lab.rows() == before + 1
    lab.container.start_delivery()  # what the web process does at start (no Redis)
    [got] = arrived(smtp, FINANCE)
    assert got.envelope_to == [FINANCE]
    message = got.message
    assert message.get_content_type() == "multipart/mixed"
    assert "Payments 2026-11-02 to 2026-11-03 (XLSX)" in message["Subject"]
    assert "payments recorded" in got.text and "3" in got.text and "Ana Lee" in got.text
    [part] = list(message.iter_attachments())
    assert part.get_filename() == "payments-2026-11-02-to-2026-11-03.xlsx"
    assert part.get_content_type() == ("application/vnd.openxmlformats-officedocument."
                                       "spreadsheetml.sheet")
    body = part.get_payload(decode=True)
    assert isinstance(body, bytes)
    check_xlsx(body, lab.seeded)  # cell by cell, as the download
    openpyxl.load_workbook(io.BytesIO(body))  # and it opens
    [event] = lab.lab_events()
    assert event.actor.name == "Ana Lee" and event.actor.kind == "staff"
    assert event.actor.workstation == "Office"
    assert event.details["from"] == "2026-11-02" and event.details["to"] == "2026-11-03"
    assert event.details["address"] == FINANCE and event.details["format"] == "xlsx"
    assert event.details["payments"] == 3 and event.details["bytes"] == len(body)
    deadline = time.monotonic() + 30  # the server accepts before "sent" is committed
    while True:
        with SqlUnitOfWork(lab.engine) as uow:
            row = uow.outbox.get(event.details["message_id"])
        if row.status == "sent" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert row.status == "sent" and row.subject == "lab" and row.attachment is not None
    assert row.attachment.data == body  # the stored bytes are the sent ones


def test_the_form_is_prefilled_and_a_csv_goes_to_another_address(
        lab: Lab, smtp: SmtpServer) -> None:
    page = lab.client.get("/staff/reports?from=2026-11-01&to=2026-11-30").text
    # Prefilled from PRINTCORE_FINANCE_EMAIL once the wiring hands it to the web context
    # (WebContext.finance_email); until then the field starts empty.
    prefill = getattr(lab.client.app.state.ctx, "finance_email", None) or ""
    assert f'name="address" value="{prefill}"' in page
    assert 'name="export_from" value="2026-11-01"' in page
    r = lab.send(format="csv", address="bursar@university.edu")
    assert r.status_code == 303, r.text
    lab.container.start_delivery()
    [got] = arrived(smtp, "bursar@university.edu")
    [part] = list(got.message.iter_attachments())
    assert part.get_filename() == "payments-2026-11-02-to-2026-11-03.csv"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    rows = list(csv.reader(io.StringIO(payload.decode("utf-8-sig"))))
    assert len(rows) == 4 and rows[0][0].lower().startswith("job")


BAD: list[tuple[dict[str, str | None], str, int]] = [
    ({"confirm_password": None}, "confirm_password", 422),
    ({"confirm_password": "not-the-password"}, "confirm_password", 422),
    ({"address": "finance@"}, "address", 422),
    ({"address": "a@university.edu, b@university.edu"}, "address", 422),
    # refused before the route by the form text check (one-line fields), same 422
    ({"address": "a@university.edu\nBcc: x@y.z"}, "", 422),
    ({"export_from": "2026-11-03", "export_to": "2026-11-02"}, "export_to", 422),
    ({"export_from": "2026-13-01"}, "export_from", 422),
    ({"format": "pdf"}, "format", 422),
    ({"staff_name": "Nobody Here"}, "staff_name", 422),
]


def test_bad_input_queues_nothing(lab: Lab, smtp: SmtpServer) -> None:
    before = lab.rows()
    for changes, field, status in BAD:
        r = lab.send(**changes)
        assert r.status_code == status, (changes, r.text[:300])
        if not field:
            assert "Line breaks and tabs are not allowed" in r.text
            continue
        assert 'id="email-error"' in r.text and "Nothing was sent" in r.text, changes
        assert f'id="err-{field}"' in r.text or field == "staff_name", (changes, field)
    r = lab.send(csrf_token="forged")
    assert r.status_code == 403
    assert lab.rows() == before and lab.lab_events() == []
    lab.client.cookies.clear()
    r = lab.client.post("/staff/reports/email", data={"address": FINANCE},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
    lab.container.start_delivery()
    smtp.wait_for(len(lab.seeded.ids) * 2)  # the seeded students' emails...
    assert not [m for m in smtp.messages() if "university.edu" in " ".join(m.envelope_to)]
