"""Payment exports (issue 13) on every backend: the repository query, the rows, the xlsx
opened with openpyxl cell by cell, the CSV parsed back, the API (422s, 401, empty range,
file names) and ``printcore export payments``.

The lab is seeded through the real service (submit, approve, confirm with the emailed
token, print, complete, pick up, revert the pickup, pick up again) with a fake clock
across days around the range 2026-11-02..2026-11-03 in America/Chicago (UTC-6 then:
the range is [2026-11-02T06:00Z, 2026-11-04T06:00Z)). A student named
``=HYPERLINK("http://x")``, a transaction number ``+1-2`` and a pickup by ``@bob`` must come
out neutralised (leading ``'``) in both formats, while numbers stay numbers.

Bad inputs tried (API 422 and CLI exit 1): a reversed range, ``2026-13-01``, ``11/02/2026``,
``2026-11-2``, ``yesterday``, an empty and a missing ``from``, year 1999, 3654 days; and
no login (401).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import openpyxl
import pytest
from sqlalchemy import Engine

from adapters.exports import (
    CURRENCY_FORMAT,
    DATETIME_FORMAT,
    GRAMS_FORMAT,
    headers,
    neutralise,
    payments_csv,
    payments_xlsx,
)
from adapters.sql import SqlUnitOfWork
from printcore import Actor, PrintRequests, StaffDirectory, Submission
from printcore.memory import FixedClock, MemorySigner, PlainHasher
from printcore.requests.memory import MemoryFileStore
from printcore.requests.payments_report import DateRange, PaymentReport, PaymentRow
from printcore.slicing import SliceEstimate

Factory = Callable[[], Any]
ZONE = "America/Chicago"
ANA = Actor.staff("Ana Lee", "front-desk")
BEN = Actor.staff("Ben Ode", "back-room")
EVIL_NAME = '=HYPERLINK("http://x")'
CREATED = datetime(2026, 10, 30, 15, 0, tzinfo=UTC)
START = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # 2026-11-02 00:00 in Chicago (CST)
END = datetime(2026, 11, 4, 6, 0, tzinfo=UTC)  # 2026-11-04 00:00, excluded
SECOND = timedelta(seconds=1)


@attrs.define
class Seeded:
    ids: dict[str, int]
    requests: PrintRequests


def seed(factory: Factory) -> Seeded:
    """Five jobs: ``before`` paid a second before the range, ``ana`` paid at its first
    instant, reverted and paid again (above the quote, with a reason), ``evil`` paid at
    its last second, ``after`` paid at the range's end, ``unpaid`` only completed."""
    clock = FixedClock(CREATED)
    files = MemoryFileStore()
    directory = StaffDirectory(uow=factory, hasher=PlainHasher(), clock=clock)
    directory.add(ANA.name)
    directory.add(BEN.name)
    svc = PrintRequests(uow=factory, files=files, signer=MemorySigner(), clock=clock)
    students = {"before": "Bea Before", "ana": "Ana Example", "evil": EVIL_NAME,
                "after": "Al After", "unpaid": "Una Paid"}
    ids: dict[str, int] = {}
    for key, name in students.items():
        job = svc.submit(Submission(name, f"{key}@example.edu", "-Engineering", "ENGR 101",
                                    "filament", "Red"),
                         files.stage("part.stl", b"solid part", ".stl"))
        assert job.id is not None
        sliced = svc.add_sliced_file(job.id, ANA, files.stage(
            "part.gcode.3mf", b"; sliced", ".gcode.3mf"), SliceEstimate(seconds=3600, grams=10))
        svc.approve(job.id, ANA, 10, 1, sliced.stored_name)
        with factory() as uow:
            token = next(m.payload["confirm_token"] for m in uow.outbox.list(limit=1000)
                         if m.subject_id == job.id and "confirm_token" in m.payload)
        svc.confirm(token)
        svc.start_print(job.id, ANA, "Bambu X1")
        svc.complete(job.id, ANA)
        ids[key] = job.id
        clock.advance(minutes=5)

    def at(when: datetime) -> None:
        clock.current = when

    at(START - SECOND)
    svc.pick_up(ids["before"], ANA, 12, "T-before", "Bea Before")
    at(START)
    svc.pick_up(ids["ana"], ANA, 12.5, "T-100", "Ana Example")
    at(START + timedelta(hours=9))
    svc.revert_pickup(ids["ana"], BEN, "Wrong job weighed")
    at(START + timedelta(days=1, hours=10))
    svc.pick_up(ids["ana"], BEN, 50, "T-101", "Her roommate",
                override_reason="Printed larger on request")
    at(END - SECOND)
    svc.pick_up(ids["evil"], ANA, 20, "+1-2", "@bob")
    at(END)
    svc.pick_up(ids["after"], ANA, 9, "T-after", "Al After")
    return Seeded(ids, svc)


def november(first: str = "2026-11-02", last: str = "2026-11-03") -> DateRange:
    return DateRange.parse(first, last, ZONE)


# --- the repository query and the rows ---------------------------------------------------


def test_repository_finds_jobs_with_payments_in_range(uow_factory: Factory) -> None:
    lab = seed(uow_factory)
    with uow_factory() as uow:
        found = uow.jobs.with_payments_between(START, END)
        assert [j.id for j in found] == sorted([lab.ids["ana"], lab.ids["evil"]])
        assert uow.jobs.with_payments_between(START - SECOND, START) == [
            uow.jobs.get(lab.ids["before"])]
        assert [j.id for j in uow.jobs.with_payments_between(END, END + SECOND)] == [
            lab.ids["after"]]
        assert uow.jobs.with_payments_between(END + SECOND, END + timedelta(days=9)) == []


def test_rows_include_the_voided_payment(uow_factory: Factory) -> None:
    lab = seed(uow_factory)
    rows = PaymentReport(uow_factory).rows(november())
    assert [(r.job_id, r.txn_no, r.voided) for r in rows] == [
        (lab.ids["ana"], "T-100", True), (lab.ids["ana"], "T-101", False),
        (lab.ids["evil"], "+1-2", False)]
    voided, again, evil = rows
    assert voided.recorded_at == START and voided.recorded_at.utcoffset() == timedelta(hours=-6)
    assert voided.voided_at == START + timedelta(hours=9)
    assert voided.void_reason == "Wrong job weighed" and voided.staff == ANA.name
    assert (again.grams, again.amount_cents, again.quoted_cents) == (50, 500, 300)
    assert again.override_reason == "Printed larger on request" and again.staff == BEN.name
    assert again.picked_up_by == "Her roommate" and again.voided_at is None
    assert (evil.student, evil.email, evil.picked_up_by) == (EVIL_NAME, "evil@example.edu",
                                                             "@bob")
    assert (evil.discipline, evil.class_number, evil.method, evil.color) == (
        "-Engineering", "ENGR 101", "filament", "Red")
    # one day either side moves the edges: the payments a second outside come in
    wider = PaymentReport(uow_factory).rows(november("2026-11-01", "2026-11-04"))
    assert {r.txn_no for r in wider} == {"T-before", "T-100", "T-101", "+1-2", "T-after"}


# --- the files --------------------------------------------------------------------------


def _sheet(body: bytes) -> Any:
    book = openpyxl.load_workbook(io.BytesIO(body))
    assert book.sheetnames == ["Payments"]
    return book["Payments"]


def check_xlsx(body: bytes, seeded: Seeded) -> None:
    sheet = _sheet(body)
    assert [c.value for c in sheet[1]] == headers(ZONE)
    assert sheet.max_row == 4 and sheet.freeze_panes == "A2"
    voided, again, evil = (list(sheet[n]) for n in (2, 3, 4))
    ana = seeded.ids["ana"]
    assert voided[0].value == ana and voided[0].data_type == "n"
    assert voided[1].value == "Ana Example" and voided[1].data_type == "s"
    assert voided[3].value == "'-Engineering"  # text starting with '-' neutralised
    assert voided[7].value == 12.5 and voided[7].number_format == GRAMS_FORMAT
    assert voided[8].value == 3 and voided[8].number_format == CURRENCY_FORMAT
    assert voided[8].data_type == "n" and voided[9].value == 3
    assert voided[10].value is None  # no override reason
    assert voided[14].value == datetime(2026, 11, 2, 0, 0)  # lab wall time, a real datetime
    assert voided[14].is_date and voided[14].number_format == DATETIME_FORMAT
    assert voided[15].value == "voided"
    assert voided[16].value == datetime(2026, 11, 2, 9, 0) and voided[16].is_date
    assert voided[17].value == "Wrong job weighed"
    assert again[8].value == 5 and again[9].value == 3 and again[15].value is None
    assert again[10].value == "Printed larger on request" and again[13].value == BEN.name
    assert again[16].value is None
    assert evil[1].value == "'" + EVIL_NAME and evil[1].data_type == "s"
    assert evil[11].value == "'+1-2" and evil[12].value == "'@bob"
    assert evil[7].value == 20 and evil[7].data_type == "n"
    assert evil[14].value == datetime(2026, 11, 3, 23, 59, 59)
    for row in sheet.iter_rows(min_row=2):
        assert not any(c.data_type == "f" for c in row)  # no formula anywhere


def check_csv(body: bytes, seeded: Seeded) -> None:
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert rows[0] == headers(ZONE) and len(rows) == 4
    voided, again, evil = rows[1:]
    assert voided[0] == str(seeded.ids["ana"]) and voided[3] == "'-Engineering"
    assert voided[7:10] == ["12.5", "3.00", "3.00"]
    assert voided[14] == "2026-11-02 00:00:00-06:00" and voided[15] == "voided"
    assert voided[16] == "2026-11-02 09:00:00-06:00" and voided[17] == "Wrong job weighed"
    assert again[7:11] == ["50.0", "5.00", "3.00", "Printed larger on request"]
    assert again[15:] == ["", "", ""]
    assert evil[1] == "'" + EVIL_NAME and evil[11:13] == ["'+1-2", "'@bob"]


def test_files_cell_by_cell(uow_factory: Factory) -> None:
    seeded = seed(uow_factory)
    rows = PaymentReport(uow_factory).rows(november())
    check_xlsx(payments_xlsx(rows, ZONE), seeded)
    check_csv(payments_csv(rows, ZONE), seeded)


def test_empty_range_gives_headers_only() -> None:
    sheet = _sheet(payments_xlsx([], ZONE))
    assert sheet.max_row == 1 and [c.value for c in sheet[1]] == headers(ZONE)
    text = payments_csv([], ZONE).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text))) == [headers(ZONE)]


def test_neutralise_only_formula_starts() -> None:
    for raw in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise(raw) == "'" + raw
    for raw in ("Ana", "", " =1", "1-2", "'quoted"):
        assert neutralise(raw) == raw
    row = PaymentRow(1, "=x", "e", "d", "c", "filament", "Red", -1.0, -5, None, None, "-3",
                     "p", "s", START, None, None)
    sheet = _sheet(payments_xlsx([row], ZONE))
    assert sheet["H2"].value == -1 and sheet["I2"].value == -0.05  # numbers kept
    assert sheet["B2"].value == "'=x" and sheet["L2"].value == "'-3"


# --- the API ----------------------------------------------------------------------------

PASSWORD = "export-test-password"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_engine(request: pytest.FixtureRequest) -> Engine:
    name = "pg_engine" if request.param == "postgresql" else "sqlite_engine"
    engine: Engine = request.getfixturevalue(name)
    return engine


@pytest.fixture
def api(db_engine: Engine, tmp_path: Path) -> Iterator[tuple[Any, Seeded]]:
    from starlette.testclient import TestClient

    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from entrypoints.web import app_from_container

    seeded = seed(lambda: SqlUnitOfWork(db_engine))
    env = {"PRINTCORE_HOME": str(tmp_path / "home"), "PRINTCORE_TIMEZONE": ZONE,
           "PRINTCORE_SECRET_KEY": "export-test-secret", "PRINTCORE_STAFF_PASSWORD": PASSWORD}
    container = bootstrap(load_settings(env, env_file=None), engine=db_engine)
    app = app_from_container(container, isolated_inspection=True)
    client = TestClient(app, base_url="http://127.0.0.1")
    try:
        token = client.post("/api/v1/auth/login", json={"password": PASSWORD,
                                                        "workstation": "finance"}).json()
        client.headers["authorization"] = f"Bearer {token['token']}"
        yield client, seeded
    finally:
        client.close()
        app.state.ctx.inspector.close()
        container.close()


def test_api_exports(api: tuple[Any, Seeded]) -> None:
    client, seeded = api
    params = {"from": "2026-11-02", "to": "2026-11-03"}
    r = client.get("/api/v1/reports/payments.xlsx", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert r.headers["content-disposition"] == (
        'attachment; filename="payments-2026-11-02-to-2026-11-03.xlsx"')
    check_xlsx(r.content, seeded)
    r = client.get("/api/v1/reports/payments.csv", params=params)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == (
        'attachment; filename="payments-2026-11-02-to-2026-11-03.csv"')
    check_csv(r.content, seeded)
    r = client.get("/api/v1/reports/payments.xlsx", params={"from": "2026-12-01",
                                                            "to": "2026-12-31"})
    assert r.status_code == 200 and _sheet(r.content).max_row == 1  # empty: headers only


BAD_RANGES: list[tuple[dict[str, str], str]] = [
    ({"from": "2026-11-03", "to": "2026-11-02"}, "to"),  # reversed
    ({"from": "2026-13-01", "to": "2026-12-01"}, "from"),
    ({"from": "11/02/2026", "to": "2026-12-01"}, "from"),
    ({"from": "2026-11-01", "to": "2026-11-2"}, "to"),
    ({"from": "yesterday", "to": "2026-12-01"}, "from"),
    ({"from": "", "to": "2026-12-01"}, "from"),
    ({"to": "2026-12-01"}, "from"),
    ({"from": "1999-12-31", "to": "2026-12-01"}, "from"),
    ({"from": "2016-01-01", "to": "2026-01-01"}, "to"),  # 3654 days
]


def test_api_refuses_bad_ranges(api: tuple[Any, Seeded]) -> None:
    client, _ = api
    for ext in ("xlsx", "csv"):
        for params, field in BAD_RANGES:
            r = client.get(f"/api/v1/reports/payments.{ext}", params=params)
            assert r.status_code == 422, (params, r.text)
            error = r.json()["error"]
            assert field in error["fields"], (params, error)
            assert "YYYY-MM-DD" in error["fields"][field] or "days" in error["fields"][field]
    assert client.get("/api/v1/reports/payments.xlsx", params={
        "from": "2016-01-02", "to": "2026-01-01"}).status_code == 200  # 3653 days: allowed
    del client.headers["authorization"]
    client.cookies.clear()  # the login's session cookie too
    r = client.get("/api/v1/reports/payments.csv", params={"from": "2026-11-02",
                                                           "to": "2026-11-03"})
    assert r.status_code == 401


def test_openapi_documents_the_exports(api: tuple[Any, Seeded]) -> None:
    client, _ = api
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for ext, media in (("xlsx", "application/vnd.openxmlformats-officedocument."
                                "spreadsheetml.sheet"), ("csv", "text/csv")):
        operation = paths[f"/reports/payments.{ext}"]["get"]
        assert {p["name"] for p in operation["parameters"]} == {"from", "to"}
        assert operation["responses"]["200"]["content"][media]["schema"]["format"] == "binary"
        assert {"401", "422"} <= set(operation["responses"])


# --- the CLI ----------------------------------------------------------------------------


def test_cli_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    from adapters.sql import make_engine, upgrade
    from entrypoints.cli import main
    from entrypoints.settings import load_settings

    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    for name, value in {"PRINTCORE_HOME": str(home), "PRINTCORE_TIMEZONE": ZONE,
                        "PRINTCORE_SECRET_KEY": "export-test-secret"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    engine = make_engine(load_settings(env_file=None).database_url)
    upgrade(engine)
    seeded = seed(lambda: SqlUnitOfWork(engine))
    engine.dispose()
    out = tmp_path / "nov.xlsx"
    args = ["export", "payments", "--from", "2026-11-02", "--to", "2026-11-03"]
    assert main([*args, "--output", str(out)]) == 0
    assert "3 payment(s) from 2026-11-02 to 2026-11-03" in capsys.readouterr().out
    check_xlsx(out.read_bytes(), seeded)
    csv_out = tmp_path / "nov.csv"
    assert main([*args, "--format", "csv", "--output", str(csv_out)]) == 0
    check_csv(csv_out.read_bytes(), seeded)
    capsys.readouterr()
    bad = tmp_path / "bad.csv"
    assert main(["export", "payments", "--from", "2026-11-03", "--to", "2026-11-02",
                 "--output", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "reversed" in err and "Nothing was written" in err and not bad.exists()
    assert main(["export", "payments", "--from", "1999-01-01", "--to", "2026-11-02",
                 "--output", str(bad)]) == 1
    assert "2000" in capsys.readouterr().err and not bad.exists()
    assert main([*args, "--output", str(tmp_path / "missing" / "x.csv")]) == 1
    assert "does not exist" in capsys.readouterr().err
