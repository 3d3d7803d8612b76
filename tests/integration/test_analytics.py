"""The lab's figures (printcore.requests.analytics) on memory, SQLite and PostgreSQL,
against values computed by hand from one seeded history, plus the API and the page.

The history is made through the real PrintRequests service on a fake clock, in
America/Chicago (UTC−5 in October 2026): six jobs submitted on different local days,
approved, rejected with listed and custom reasons, confirmed by staff, printed, one print
failed, completed (one completion reverted and done again), picked up, and one pickup
reverted (its payment voided). Two events fall at 23:30 local, which is the next day in
UTC, and must count on their local day. Range: 2026-10-05 to 2026-10-06.

Bad inputs tried (API 422 with fields, page 422 with the message): dates not
YYYY-MM-DD (``2026-13-01``, ``yesterday``, ``20261005``, ``2026-10-5``, a week date,
non-ASCII digits), ``from`` after ``to``, a range of 367 days, a year beyond 9998 and
before 1970; no login (401, page redirects to the login).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.sql import SqlUnitOfWork
from adapters.sql.analytics import SqlHistory
from printcore.errors import ValidationError
from printcore.events import Event
from printcore.memory import FixedClock, MemorySigner, PlainHasher
from printcore.queue.memory import MemoryQueueDatabase, MemoryQueueUnitOfWork
from printcore.queue.service import QueueService
from printcore.requests.analytics import Analytics, DateRange, HistoryReader
from printcore.requests.analytics_memory import MemoryHistory
from printcore.requests.job import Actor, Submission
from printcore.requests.memory import MemoryDatabase, MemoryFileStore, MemoryUnitOfWork
from printcore.requests.service import REJECTION_REASONS, PrintRequests
from printcore.staff import StaffDirectory

ZONE = "America/Chicago"
ANA = Actor.staff("Ana Lee", "front-desk")
R1 = REJECTION_REASONS[1]
CUSTOM = "Please send the model in millimetres."


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def seed(uow: Callable[[], Any]) -> dict[str, int]:
    """The history described in the module docstring; returns the job ids by letter."""
    clock = FixedClock(utc(10, 1, 12))
    files = MemoryFileStore()
    svc = PrintRequests(uow=uow, files=files, signer=MemorySigner(), clock=clock)
    StaffDirectory(uow=uow, hasher=PlainHasher(), clock=clock).add(ANA.name)
    ids: dict[str, int] = {}

    def at(moment: datetime) -> None:
        clock.current = moment

    def submit(letter: str, moment: datetime, method: str, color: str) -> int:
        at(moment)
        job = svc.submit(Submission(f"Student {letter}", f"{letter}@example.edu", "Art",
                                    "ART 1", method, color),
                         files.stage("part.stl", b"solid " + letter.encode(), ".stl"))
        assert job.id is not None
        ids[letter] = job.id
        return job.id

    def approve(job_id: int, moment: datetime, grams: float) -> None:
        at(moment)
        sliced = svc.add_sliced_file(job_id, ANA, files.stage("part.gcode", b"; g", ".gcode"),
                                     None)
        svc.approve(job_id, ANA, grams, 1.0, sliced.stored_name)

    def step(moment: datetime, action: str, job_id: int, **kwargs: Any) -> None:
        at(moment)
        getattr(svc, action)(job_id, ANA, **kwargs)

    a = submit("A", utc(10, 4, 15), "filament", "red")
    f = submit("F", utc(10, 5, 4), "filament", "green")  # 10-04 23:00 local
    b = submit("B", utc(10, 5, 14), "resin", "clear")
    c = submit("C", utc(10, 6, 4, 30), "filament", "red")  # 10-05 23:30 local
    d = submit("D", utc(10, 6, 14), "filament", "blue")
    approve(a, utc(10, 5, 15), 50)
    step(utc(10, 5, 17), "force_confirm", a, reason="Said yes at the desk")
    step(utc(10, 5, 19), "start_print", a, printer="MK4")
    step(utc(10, 5, 21), "fail_print", a, reason="Spaghetti")
    step(utc(10, 5, 22), "start_print", a, printer="MK4")
    step(utc(10, 6, 2), "complete", a)
    step(utc(10, 6, 4, 30), "pick_up", a, grams=40, txn_no="T-A",  # 10-05 23:30 local
         picked_up_by="Student A")
    approve(b, utc(10, 5, 18), 30)
    step(utc(10, 6, 18), "force_confirm", b, reason="Phoned")
    step(utc(10, 6, 19), "start_print", b)
    step(utc(10, 6, 23), "complete", b)
    step(utc(10, 7, 0), "pick_up", b, grams=25, txn_no="T-B", picked_up_by="Student B")
    step(utc(10, 7, 1), "revert_pickup", b, reason="Wrong job handed over")
    step(utc(10, 6, 15), "reject", c, reasons=[R1], custom_reason=CUSTOM)
    step(utc(10, 6, 16), "reject", d, reasons=[R1])
    approve(f, utc(10, 6, 15), 20)
    step(utc(10, 6, 16), "force_confirm", f, reason="In person")
    step(utc(10, 6, 17), "start_print", f)
    step(utc(10, 6, 18), "complete", f)
    step(utc(10, 6, 18, 30), "revert_completion", f, reason="Not finished")
    step(utc(10, 6, 19), "complete", f)
    step(utc(10, 6, 20), "pick_up", f, grams=12, txn_no="T-F", picked_up_by="Student F")
    submit("E", utc(10, 7, 6), "filament", "blue")  # 10-07 01:00 local: after the range
    return ids


ZERO = {"approvals": 0, "rejections": 0, "failed_prints": 0, "completions": 0,
        "pickups": 0, "reverted_completions": 0, "reverted_pickups": 0, "submissions": 0}
EXPECTED: dict[str, Any] = {
    "from": "2026-10-05", "to": "2026-10-06", "timezone": ZONE,
    "days": [
        {"date": "2026-10-05", **ZERO, "submissions": 2, "approvals": 2, "failed_prints": 1,
         "completions": 1, "pickups": 1},
        {"date": "2026-10-06", **ZERO, "submissions": 1, "approvals": 1, "rejections": 2,
         "completions": 3, "pickups": 2, "reverted_completions": 1, "reverted_pickups": 1},
    ],
    "totals": {**ZERO, "submissions": 3, "approvals": 3, "rejections": 2, "failed_prints": 1,
               "completions": 4, "pickups": 3, "reverted_completions": 1,
               "reverted_pickups": 1},
    "rejection_reasons": [{"reason": R1, "count": 2}, {"reason": CUSTOM, "count": 1}],
    "lead_times": [
        # A 24 h, B 4 h, F 35 h
        {"stage": "review", "from": "submitted", "to": "approved", "jobs": 3,
         "median_hours": 24.0, "p90_hours": 35.0},
        # A 2 h, B 24 h, F 1 h
        {"stage": "confirmation", "from": "approved", "to": "confirmed", "jobs": 3,
         "median_hours": 2.0, "p90_hours": 24.0},
        # A 2 h, B 1 h, F 1 h
        {"stage": "wait_to_print", "from": "confirmed", "to": "printing started", "jobs": 3,
         "median_hours": 1.0, "p90_hours": 2.0},
        # A 7 h (from the first start, over the failure), B 4 h, F 2 h (to the standing
        # completion, after the revert)
        {"stage": "printing", "from": "printing started", "to": "completed", "jobs": 3,
         "median_hours": 4.0, "p90_hours": 7.0},
        # A 2.5 h, F 1 h; B's pickup was reverted
        {"stage": "pickup", "from": "completed", "to": "picked up", "jobs": 2,
         "median_hours": 1.75, "p90_hours": 2.5},
    ],
    # 40 g filament = 400 ¢; 12 g filament = 120 ¢ → the 300 ¢ minimum; B's resin voided
    "material": [
        {"print_method": "filament", "color": "green", "grams": 12.0, "payments": 1,
         "revenue_cents": 300},
        {"print_method": "filament", "color": "red", "grams": 40.0, "payments": 1,
         "revenue_cents": 400},
    ],
    "revenue_cents": 700, "payments": 2, "voided_payments": 1,
}
EXPECTED["group"] = "day"
EXPECTED["periods"] = [{"period": d["date"], "first": d["date"], "last": d["date"],
                        **{k: v for k, v in d.items() if k != "date"}}
                       for d in EXPECTED["days"]]
EXPECTED["printers"] = []  # no queue in this history
# 2 days; 4 completions - 1 reverted = 3 prints; 3 pickups - 1 reverted = 2
EXPECTED["throughput"] = {"days": 2, "prints": 3, "pickups": 2, "prints_per_day": 1.5,
                          "prints_per_week": 10.5, "pickups_per_day": 1.0,
                          "pickups_per_week": 7.0}
EXPECTED["queue_waits"] = [
    {"wait": "offered", "from": "joined", "to": "offered", "tickets": 0,
     "median_minutes": None, "p90_minutes": None},
    {"wait": "started", "from": "joined", "to": "started", "tickets": 0,
     "median_minutes": None, "p90_minutes": None}]

Backend = tuple[Callable[[], Any], HistoryReader]
QueueBackend = tuple[Callable[[], Any], Callable[[], Any], HistoryReader]


@pytest.fixture(params=["memory", "sqlite",
                        pytest.param("postgresql", marks=pytest.mark.postgres)])
def backends(request: pytest.FixtureRequest) -> QueueBackend:
    """(requests unit of work, queue unit of work, reader) over one store."""
    if request.param == "memory":
        db, queue = MemoryDatabase(), MemoryQueueDatabase()
        return ((lambda: MemoryUnitOfWork(db)), (lambda: MemoryQueueUnitOfWork(queue)),
                MemoryHistory(db, queue))
    engine = request.getfixturevalue("pg_engine" if request.param == "postgresql"
                                     else "sqlite_engine")
    return (lambda: SqlUnitOfWork(engine)), (lambda: SqlUnitOfWork(engine)), SqlHistory(engine)


@pytest.fixture()
def backend(backends: QueueBackend) -> Backend:
    return backends[0], backends[2]


def _analytics(reader: HistoryReader) -> Analytics:
    return Analytics(reader, FixedClock(utc(10, 20, 12)), ZONE)


def test_every_figure_matches_the_hand_computed_history(backend: Backend) -> None:
    from adapters.web.analytics_api import report_json

    uow, reader = backend
    seed(uow)
    assert report_json(_analytics(reader).report("2026-10-05", "2026-10-06")) == EXPECTED


@pytest.mark.parametrize("share", [0.0, 2.0], ids=["single-pass", "touched-first"])
def test_both_stage_statements_give_the_hand_computed_figures(
        backend: Backend, share: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL picks one of two statements for the stages by how much of the log the
    range covers (``_WIDE_SHARE``); forced each way, the seeded history's figures are the
    hand-computed ones, for the two days and for 10-06 alone (A's review and B's pickup
    stage start before it)."""
    import adapters.sql.analytics as sql_analytics
    from adapters.web.analytics_api import report_json

    monkeypatch.setattr(sql_analytics, "_WIDE_SHARE", share)
    uow, reader = backend
    seed(uow)
    svc = _analytics(reader)
    assert report_json(svc.report("2026-10-05", "2026-10-06")) == EXPECTED
    monkeypatch.setattr(sql_analytics, "_WIDE_SHARE", 1.0 - share / 2)  # the other one
    other = report_json(svc.report("2026-10-06", "2026-10-06"))
    monkeypatch.setattr(sql_analytics, "_WIDE_SHARE", share)
    assert report_json(svc.report("2026-10-06", "2026-10-06")) == other


def test_the_local_day_boundary_and_ranges_outside_the_history(backend: Backend) -> None:
    from adapters.web.analytics_api import report_json

    uow, reader = backend
    seed(uow)
    svc = _analytics(reader)
    # Only 10-05: C's submission and A's pickup at 23:30 local (04:30 UTC on 10-06) count.
    one = report_json(svc.report("2026-10-05", "2026-10-05"))
    assert one["totals"]["submissions"] == 2 and one["totals"]["pickups"] == 1
    assert one["material"] == [EXPECTED["material"][1]] and one["revenue_cents"] == 400
    # 10-07 local: E submitted at 01:00 local; B's pickup and revert were 10-06 local.
    late = report_json(svc.report("2026-10-07", "2026-10-07"))
    assert late["totals"] == {**ZERO, "submissions": 1}
    assert late["voided_payments"] == 0 and late["material"] == []
    # Nothing happened in September: every figure is zero, stages have no jobs.
    empty = report_json(svc.report("2026-09-01", "2026-09-30"))
    assert len(empty["days"]) == 30 and empty["totals"] == ZERO
    assert all(s["jobs"] == 0 and s["median_hours"] is None for s in empty["lead_times"])


def test_submit_and_submitted_on_one_local_day_add_up(backend: Backend) -> None:
    """Older logs name a submission ``submitted``: one of those on 10-05 local beside the
    seed's two ``submit`` events that day counts three (PostgreSQL's per-day counts once
    kept only one of the two kinds' rows for a day), and a day with only one kind (10-06)
    stays as it was."""
    from adapters.web.analytics_api import report_json

    uow, reader = backend
    ids = seed(uow)
    with uow() as u:
        u.events.append(Event("job", ids["D"] + 100, "submitted", ANA, utc(10, 5, 20)))
        u.commit()
    days = report_json(_analytics(reader).report("2026-10-05", "2026-10-06"))["days"]
    assert [d["submissions"] for d in days] == [3, 1]


def test_the_default_range_is_the_last_30_local_days() -> None:
    svc = Analytics(MemoryHistory(MemoryDatabase()), FixedClock(utc(10, 20, 3)), ZONE)
    span = svc.range()  # 03:00 UTC on 10-20 is still 10-19 in Chicago
    assert (span.first, span.last) == (date(2026, 9, 20), date(2026, 10, 19))
    assert span.start == utc(9, 20, 5) and span.end == utc(10, 20, 5)


@pytest.mark.parametrize(("first", "last", "fields"), [
    ("2026-13-01", "2026-10-06", {"from"}),
    ("yesterday", "2026-10-06", {"from"}),
    ("20261005", "2026-10-06", {"from"}),
    ("2026-10-5", "2026-10-06", {"from"}),
    ("2026-W41-1", "2026-10-06", {"from"}),
    ("2026-10-05", "٢٠٢٦-١٠-٠٦", {"to"}),
    ("2026-10-07", "2026-10-06", {"from", "to"}),
    ("2025-10-05", "2026-10-06", {"to"}),  # 367 days
    ("1969-12-31", "1970-01-01", {"from"}),
    ("9999-12-30", "9999-12-31", {"from", "to"}),
])
def test_bad_ranges_are_refused_with_the_accepted_form(first: str, last: str,
                                                       fields: set[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        DateRange.parse(first, last, ZONE, date(2026, 10, 20))
    assert set(caught.value.fields) == fields
    assert "YYYY-MM-DD" in caught.value.message


def test_a_whole_year_of_366_days_is_accepted() -> None:
    span = DateRange.parse("2027-10-06", "2028-10-05", ZONE, date(2026, 10, 20))
    assert len(span.days()) == 366


def test_figures_per_iso_week_clip_the_first_and_last_week(backend: Backend) -> None:
    """2026-10-01 (a Thursday) to 10-07: week 40 is 10-01..10-04 (A and F submitted on
    10-04 local), week 41 is 10-05..10-07 (B, C, D, E and every other step). Bad input
    tried: ``group=month`` and ``group=`` + a space → ValidationError on ``group``."""
    from adapters.web.analytics_api import report_json

    uow, reader = backend
    seed(uow)
    svc = _analytics(reader)
    weekly = report_json(svc.report("2026-10-01", "2026-10-07", "week"))
    assert weekly["group"] == "week" and len(weekly["days"]) == 7
    assert weekly["periods"] == [
        {"period": "2026-W40", "first": "2026-10-01", "last": "2026-10-04",
         **ZERO, "submissions": 2},
        {"period": "2026-W41", "first": "2026-10-05", "last": "2026-10-07",
         **EXPECTED["totals"], "submissions": 4},
    ]
    assert report_json(svc.report("2026-10-05", "2026-10-06", " WEEK "))["periods"][0][
        "period"] == "2026-W41"
    for bad in ("month", "weeks", "d"):
        with pytest.raises(ValidationError) as caught:
            svc.report("2026-10-01", "2026-10-07", bad)
        assert set(caught.value.fields) == {"group"}


# --- the self-service queue's figures ----------------------------------------------------

MEMBERS = {f"m{n}": f"Member {n}" for n in range(1, 5)}


def seed_queue(queue_uow: Callable[[], Any], clock: FixedClock) -> None:
    """Printers P1, P2, P3 (P3 out of service); times UTC (Chicago is UTC-5):

    * M1 joins 10-04 20:00 (offered P1 at once), claims, starts 20:10, closes 10-05 08:00;
    * M2 joins 10-05 06:00 (offered P2 at once), claims 06:05, starts 06:15, closes 10:30;
    * M3 joins 10-05 07:00 (both busy: queued), offered P1 at 08:00 when M1 closes,
      claims 08:05, starts 08:15, closes 11:00;
    * M4 joins 10-06 10:00 (offered P1 at once), misses the 10-minute claim window
      (sweep 10:11), is offered again, claims, starts 10:20 and is still printing.
    """
    from datetime import timedelta

    svc = QueueService(uow=queue_uow, clock=clock)

    def at(moment: datetime) -> None:
        clock.current = moment

    at(utc(10, 4, 19))
    svc.sync_printers([("P1", ""), ("P2", ""), ("P3", "")])
    svc.set_in_service("P3", False, ANA)
    at(utc(10, 4, 20))
    svc.join("m1", MEMBERS["m1"], "bracket", timedelta(minutes=720))
    at(utc(10, 4, 20, 5))
    svc.claim("m1", "P1")
    at(utc(10, 4, 20, 10))
    svc.report_started("m1")
    at(utc(10, 5, 6))
    svc.join("m2", MEMBERS["m2"], "gear", timedelta(minutes=240))
    at(utc(10, 5, 6, 5))
    svc.claim("m2", "P2")
    at(utc(10, 5, 6, 15))
    svc.report_started("m2")
    at(utc(10, 5, 7))
    assert svc.join("m3", MEMBERS["m3"], "hinge", timedelta(minutes=60)).position == 1
    at(utc(10, 5, 8))
    svc.close("m1", "P1", "finished")
    at(utc(10, 5, 8, 5))
    svc.claim("m3", "P1")
    at(utc(10, 5, 8, 15))
    svc.report_started("m3")
    at(utc(10, 5, 10, 30))
    svc.close("m2", "P2", "finished")
    at(utc(10, 5, 11))
    svc.close("m3", "P1", "finished")
    at(utc(10, 6, 10))
    svc.join("m4", MEMBERS["m4"], "clip", timedelta(minutes=120))
    at(utc(10, 6, 10, 11))
    svc.sweep()
    (ticket,) = svc.myjobs("m4")
    assert ticket.status == "offered" and ticket.printer == "P1", ticket
    at(utc(10, 6, 10, 15))
    svc.claim("m4", "P1")
    at(utc(10, 6, 10, 20))
    svc.report_started("m4")


def test_printer_utilisation_and_queue_waits_match_the_hand_computed_queue(
        backends: QueueBackend) -> None:
    """Range 10-05..10-06 local = 10-05 05:00 to 10-07 05:00 UTC, 48 hours; now is
    10-06 12:00 UTC.

    P1: M1 05:00→08:00 (started before the range: 3 h), M3 08:15→11:00 (2 h 45), M4
    10-06 10:20→now 12:00 (still printing: 1 h 40) = 7 h 25 = 7.42 h, 7.41667/48 = 0.1545.
    P2: M2 06:15→10:30 = 4.25 h, 4.25/48 = 0.0885. P3 (out of service): 0.
    Joined → offered, first offers in the range: M2 0, M3 60, M4 0 (its re-offer after
    the miss does not count) → median 0, p90 (3rd of 3) 60. M1's offer was before.
    Joined → started: M2 15, M3 75, M4 20 → median 20, p90 75.
    """
    from adapters.web.analytics_api import report_json

    _uow, queue_uow, reader = backends
    clock = FixedClock(utc(10, 4, 19))
    seed_queue(queue_uow, clock)
    clock.current = utc(10, 6, 12)
    svc = Analytics(reader, clock, ZONE)
    got = report_json(svc.report("2026-10-05", "2026-10-06"))
    assert got["printers"] == [
        {"printer": "P1", "prints": 3, "hours_in_use": 7.42, "hours_in_range": 48.0,
         "utilisation": 0.1545},
        {"printer": "P2", "prints": 1, "hours_in_use": 4.25, "hours_in_range": 48.0,
         "utilisation": 0.0885},
        {"printer": "P3", "prints": 0, "hours_in_use": 0.0, "hours_in_range": 48.0,
         "utilisation": 0.0},
    ]
    assert got["queue_waits"] == [
        {"wait": "offered", "from": "joined", "to": "offered", "tickets": 3,
         "median_minutes": 0.0, "p90_minutes": 60.0},
        {"wait": "started", "from": "joined", "to": "started", "tickets": 3,
         "median_minutes": 20.0, "p90_minutes": 75.0},
    ]
    # 10-06 local alone (10-06 05:00 to 10-07 05:00 UTC): only M4's 1 h 40 on P1, and M4's
    # waits; M1's print, which ended on 10-05, is not there.
    day = report_json(svc.report("2026-10-06", "2026-10-06"))
    assert day["printers"][0] == {"printer": "P1", "prints": 1, "hours_in_use": 1.67,
                                  "hours_in_range": 24.0, "utilisation": 0.0694}
    assert day["printers"][1]["prints"] == 0
    assert [(w["tickets"], w["median_minutes"]) for w in day["queue_waits"]] == [
        (1, 0.0), (1, 20.0)]
    # 10-04 local (10-04 05:00 to 10-05 05:00 UTC): M1 20:10→05:00 = 8 h 50 = 8.83 h.
    before = report_json(svc.report("2026-10-04", "2026-10-04"))
    assert before["printers"][0]["hours_in_use"] == 8.83
    assert before["queue_waits"][0]["tickets"] == 1  # M1 offered at once: 0 min


# --- the API and the page, on the real app (SQLite) -------------------------------------

PASSWORD = "reports-test-password"


@pytest.fixture()
def lab(tmp_path: Path) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from entrypoints.web import app_from_container

    env = {"PRINTCORE_HOME": str(tmp_path / "home"), "PRINTCORE_TIMEZONE": ZONE,
           "PRINTCORE_SECRET_KEY": "analytics-test-secret",
           "PRINTCORE_STAFF_PASSWORD": PASSWORD}
    container = bootstrap(load_settings(env, env_file=None), clock=FixedClock(utc(10, 7, 3)))
    seed(lambda: SqlUnitOfWork(container.engine))
    app = app_from_container(container, isolated_inspection=True)
    client = TestClient(app, base_url="http://127.0.0.1")
    try:
        yield client
    finally:
        client.close()
        app.state.ctx.inspector.close()
        container.close()


def _login(client: Any) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"workstation": "Desk", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_the_api_answers_the_figures_and_refuses_bad_ranges(lab: Any) -> None:
    assert lab.get("/api/v1/analytics?from=2026-10-05&to=2026-10-06").status_code == 401
    headers = _login(lab)
    r = lab.get("/api/v1/analytics?from=2026-10-05&to=2026-10-06", headers=headers)
    assert r.status_code == 200, r.text
    idle = [{"printer": f"X1C-{n}", "prints": 0, "hours_in_use": 0.0, "hours_in_range": 48.0,
             "utilisation": 0.0} for n in (1, 2, 3)]  # the default printers, unused
    assert r.json() == {**EXPECTED, "printers": idle}
    weekly = lab.get("/api/v1/analytics?from=2026-10-01&to=2026-10-07&group=week",
                     headers=headers).json()
    assert [p["period"] for p in weekly["periods"]] == ["2026-W40", "2026-W41"]
    default = lab.get("/api/v1/analytics", headers=headers).json()  # the clock: 10-06 local
    assert (default["from"], default["to"]) == ("2026-09-07", "2026-10-06")
    for query, fields in (("from=2026-10-06&to=2026-10-05", {"from", "to"}),
                          ("from=soon&to=2026-10-05", {"from"}),
                          ("from=2025-01-01&to=2026-10-05", {"to"}),
                          ("from=2026-10-01&to=2026-10-05&group=month", {"group"})):
        r = lab.get(f"/api/v1/analytics?{query}", headers=headers)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "validation_error" and set(error["fields"]) == fields
        assert "YYYY-MM-DD" in error["message"] or "week" in error["message"]


def test_the_reports_page_shows_the_figures_tables_and_charts(lab: Any) -> None:
    r = lab.get("/staff/reports", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
    _login(lab)  # also sets the session cookie the page reads
    r = lab.get("/staff/reports?from=2026-10-05&to=2026-10-06")
    assert r.status_code == 200, r.text
    html = r.text
    assert '<a href="/staff/reports">Reports</a>' in html
    assert 'data-figure="submissions">3<' in html and 'data-figure="pickups">3<' in html
    assert 'data-cents="700">$7.00' in html
    assert html.count('<svg class="chart"') == 2
    assert '<title id="chart-submissions-title">Submissions per day</title>' in html
    assert "<title>2026-10-06: 3</title>" in html  # the completions bar of 10-06
    assert '<tr data-day="2026-10-05"><th scope="row">2026-10-05</th><td>2</td>' in html
    assert '<tr data-stage="pickup">' in html and "<td>1.75</td><td>2.50</td>" in html
    assert CUSTOM in html and "$4.00" in html and "$3.00" in html
    bad = lab.get("/staff/reports?from=2026-10-06&to=2026-10-05")
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text
    assert 'value="2026-10-06"' in bad.text  # what was typed stays in the form
    weekly = lab.get("/staff/reports?from=2026-10-01&to=2026-10-07&group=week")
    assert weekly.status_code == 200, weekly.text
    html = weekly.text
    assert '<option value="week" selected>' in html
    assert '<tr data-week="2026-W40"><th scope="row">2026-W40' in html
    assert "(2026-10-01 to 2026-10-04)" in html and "(2026-10-05 to 2026-10-07)" in html
    assert '<title id="chart-submissions-title">Submissions per week</title>' in html
    assert "<title>2026-W41: 4</title>" in html  # B, C, D, E submitted that week
    assert '<tr data-printer="X1C-1"><th scope="row">X1C-1</th><td>0</td>' in html
    assert '<tr data-wait="offered">' in html
    assert 'action="/staff/reports/email"' in html and 'name="confirm_password"' in html
    month = lab.get("/staff/reports?from=2026-10-01&to=2026-10-07&group=month")
    assert month.status_code == 422 and "use day or week" in month.text


def test_openapi_documents_the_grouping_and_the_queue_figures(lab: Any) -> None:
    operation = lab.get("/api/v1/openapi.json").json()["paths"]["/analytics"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == {"from", "to", "group"}
    assert params["group"]["schema"]["enum"] == ["day", "week"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"group", "periods", "printers", "queue_waits"} <= set(schema["required"])
    headers = _login(lab)
    body = lab.get("/api/v1/analytics?from=2026-10-01&to=2026-10-07&group=week",
                   headers=headers).json()
    assert set(body) == set(schema["properties"])  # every answered key is documented
    for key in ("periods", "printers", "queue_waits"):
        item = schema["properties"][key]["items"]
        assert all(set(row) == set(item["required"]) for row in body[key]), key
