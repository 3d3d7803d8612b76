"""Benchmark of the reports and the payments export (issue 13) on PostgreSQL: one year
of a busy lab, 20,000 jobs and 100,000 events.

A fresh schema in database ``test`` is migrated and filled straight through the SQL
tables (``executemany`` in batches of 2,000, not through the service per job): 20,000
jobs submitted evenly over 2025-12-01..2026-11-30 (America/Chicago), each with its
lifecycle events (submit; rejected 22 %; else approved, confirmed, printed — 3 % of prints
failed once and reprinted — completed and picked up with a payment, 60 % of jobs; the
rest stopped on the way), then self-service queue tickets (join, offer, start, close on
three printers) until the log holds exactly 100,000 events; then ``VACUUM ANALYZE``.

Measured over HTTP on a real ``printcore serve`` (uvicorn, one process), interleaved
round-robin so that drift hits every request alike:

* ``GET /api/v1/health`` — the bare baseline;
* ``GET /api/v1/analytics`` and ``GET /staff/reports`` for the year and for one month
  (2026-10-01..2026-10-31), per day; the year per week too;
* ``GET /api/v1/reports/payments.xlsx`` for the year.

Goals (checked here, never in tests): p95 of the report page and the analytics API
< 300 ms; the xlsx export of a year < 3 s.

Run: ``.venv/bin/python bench/bench_reports.py [--jobs 20000] [--events 100000]
[--reps 30]``. The schema and the server are removed at the end, also after an error.
Figures: docs/reports.md ("Speed"); raw numbers in bench/results/reports.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from sqlalchemy import insert, text  # noqa: E402

from adapters.sql import make_engine, upgrade  # noqa: E402
from adapters.sql.convert import converter  # noqa: E402
from adapters.sql.tables import events, jobs, printers, tickets  # noqa: E402
from printcore.requests.job import Payment  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ZONE = ZoneInfo("America/Chicago")
YEAR = ("2025-12-01", "2026-11-30")
MONTH = ("2026-10-01", "2026-10-31")
STAFF = ("Ana Lee", "Ben Ode", "Cy Park")
PRINTERS = ("X1C-1", "X1C-2", "X1C-3")
BATCH = 2000


def _event(subject: str, subject_id: int, kind: str, at: dt.datetime,
           details: dict[str, Any] | None = None, actor: str = "Ana Lee",
           actor_kind: str = "staff") -> dict[str, Any]:
    return {"subject": subject, "subject_id": subject_id, "kind": kind,
            "actor_kind": actor_kind, "actor_name": actor, "workstation": "Bench desk",
            "at": at, "from_status": None, "to_status": None, "details": details or {}}


def make_lab(n_jobs: int, n_events: int, seed: int = 13) -> tuple[list[dict[str, Any]],
                                                                  list[dict[str, Any]],
                                                                  list[dict[str, Any]]]:
    """(job rows, event rows, ticket rows), events oldest first per subject."""
    rnd = random.Random(seed)
    start = dt.datetime(2025, 12, 1, tzinfo=ZONE).astimezone(dt.UTC)
    span = dt.timedelta(days=365)
    job_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    hour = dt.timedelta(hours=1)
    for i in range(1, n_jobs + 1):
        at = start + span * (i - 0.5) / n_jobs
        method = rnd.choice(["filament", "filament", "filament", "resin"])
        color = rnd.choice(["Red", "Black", "White", "Grey", "Blue", "Clear"])
        staff = rnd.choice(STAFF)
        status, payments, reasons = "uploaded", [], []
        evs = [_event("job", i, "submit", at, actor=f"Student {i}", actor_kind="student")]
        roll = rnd.random()
        t = at + hour * rnd.uniform(1, 48)
        if roll < 0.22:
            status, reasons = "rejected", [rnd.choice(["Too large", "Not manifold"])]
            evs.append(_event("job", i, "reject", t, {"reasons": reasons}, staff))
        elif roll >= 0.25:
            grams = round(rnd.uniform(5, 300), 1)
            evs.append(_event("job", i, "approve", t, {"weight_g": grams}, staff))
            status = "pending"
            steps = [("confirm", "ready_to_print"), ("start_print", "printing"),
                     ("complete", "completed"), ("pick_up", "paid_picked_up")]
            stop = 4 if roll >= 0.40 else rnd.randint(0, 3)
            for kind, reached in steps[:stop]:
                t += hour * rnd.uniform(0.5, 30)
                if kind == "complete" and rnd.random() < 0.03:
                    evs.append(_event("job", i, "fail_print", t, {"reason": "Spaghetti"}, staff))
                    t += hour
                    evs.append(_event("job", i, "start_print", t, {}, staff))
                    t += hour * rnd.uniform(0.5, 10)
                evs.append(_event("job", i, kind, t, {}, staff))
                status = reached
                if kind == "pick_up":
                    payments.append(Payment(grams, max(300, round(grams * 10)), f"T-{i}",
                                            f"Student {i}", staff, t))
        job_rows.append({
            "id": i, "status": status, "version": len(evs), "student_name": f"Student {i}",
            "email": f"student{i}@university.edu", "discipline": "Mechanical Engineering",
            "class_number": f"ME {100 + i % 300}", "print_method": method, "color": color,
            "preferred_printer": "", "notes": "", "created_at": at, "updated_at": t,
            "files": [], "rejection_reasons": reasons,
            "payments": converter.unstructure(payments, list[Payment]),
            "failed_attempts": 0, "search_text": f"student {i}\nstudent{i}@university.edu",
            "staff_notes": ""})
        event_rows.extend(evs)
    ticket_rows: list[dict[str, Any]] = []
    n_tickets = max(0, (n_events - len(event_rows)) // 4)
    for k in range(1, n_tickets + 1):
        joined = start + span * (k - 0.5) / max(n_tickets, 1)
        offered = joined + dt.timedelta(minutes=rnd.uniform(0, 90))
        started = offered + dt.timedelta(minutes=rnd.uniform(1, 20))
        minutes = rnd.randint(20, 600)
        closed = started + dt.timedelta(minutes=minutes)
        printer = PRINTERS[k % len(PRINTERS)]
        member = f"member{k % 400}"
        ticket_rows.append({
            "id": k, "member": member, "member_name": member.title(), "job_name": "part",
            "est_minutes": minutes, "created_at": joined, "queue_key": joined.timestamp(),
            "status": "done", "version": 5, "printer": printer, "offered_at": offered,
            "claimed_at": offered, "started_at": started, "closed_at": closed,
            "outcome": "finished", "actual_minutes": minutes, "misses": 0})
        for kind, when in (("join", joined), ("offer", offered), ("start", started),
                           ("close", closed)):
            event_rows.append(_event("ticket", k, kind, when, {"printer": printer,
                                                                "member": member},
                                     member, "member"))
    # Exactly n_events: pad with joins that never got further (cancelled later).
    k = n_tickets
    while len(event_rows) < n_events:
        k += 1
        joined = start + span * rnd.random()
        ticket_rows.append({
            "id": k, "member": f"member{k % 400}", "member_name": "Late", "job_name": "part",
            "est_minutes": 60, "created_at": joined, "queue_key": joined.timestamp(),
            "status": "cancelled", "version": 2, "printer": None, "offered_at": None,
            "claimed_at": None, "started_at": None, "closed_at": None, "outcome": None,
            "actual_minutes": None, "misses": 0})
        event_rows.append(_event("ticket", k, "join", joined, {}, f"member{k % 400}", "member"))
    del event_rows[n_events:]
    return job_rows, event_rows, ticket_rows


def batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for at in range(0, len(rows), BATCH):
        yield rows[at : at + BATCH]


def stats(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": statistics.median(values), "p95": q[94], "max": values[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--export-reps", type=int, default=5)
    parser.add_argument("--keep", action="store_true",
                        help="print the schema's URL and keep the server's home (profiling)")
    args = parser.parse_args()

    schema = f"pc_bench_reports_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    server = None
    home: Path | None = None
    try:
        upgrade(engine)
        t0 = time.perf_counter()
        job_rows, event_rows, ticket_rows = make_lab(args.jobs, args.events)
        made = time.perf_counter() - t0
        with engine.begin() as conn:
            conn.execute(insert(printers), [{"name": p, "label": "", "status": "idle",
                                             "version": 1} for p in PRINTERS])
            for part in batches(job_rows):
                conn.execute(insert(jobs), part)
            for part in batches(ticket_rows):
                conn.execute(insert(tickets), part)
            for part in batches(event_rows):
                conn.execute(insert(events), part)
            for table in ("jobs", "tickets", "printers"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does after a load
        paid = sum(1 for r in job_rows if r["payments"])
        print(f"generated in {made:.1f} s, inserted in {time.perf_counter() - t0 - made:.1f} s:"
              f" {len(job_rows)} jobs ({paid} paid), {len(ticket_rows)} tickets, "
              f"{len(event_rows)} events")

        from _live import login, start_server, stop_server

        home = Path(tempfile.mkdtemp(prefix="bench-reports-"))
        server = start_server(home, {"DATABASE_URL": url,
                                     "PRINTCORE_TIMEZONE": "America/Chicago"}, "postgresql")
        requests: dict[str, str] = {
            "baseline: GET /api/v1/health": "/api/v1/health",
            "GET /api/v1/analytics, year": f"/api/v1/analytics?from={YEAR[0]}&to={YEAR[1]}",
            "GET /api/v1/analytics, year per week":
                f"/api/v1/analytics?from={YEAR[0]}&to={YEAR[1]}&group=week",
            "GET /api/v1/analytics, month":
                f"/api/v1/analytics?from={MONTH[0]}&to={MONTH[1]}",
            "GET /staff/reports, year": f"/staff/reports?from={YEAR[0]}&to={YEAR[1]}",
            "GET /staff/reports, month": f"/staff/reports?from={MONTH[0]}&to={MONTH[1]}",
        }
        export = f"/api/v1/reports/payments.xlsx?from={YEAR[0]}&to={YEAR[1]}"
        times: dict[str, list[float]] = {k: [] for k in requests}
        with httpx.Client(base_url=server.url, timeout=60) as client:
            api = httpx.Client(base_url=server.url + "/api/v1", timeout=60)
            headers = login(api, "Bench desk")
            client.cookies.update(api.cookies)  # the session cookie the page reads
            api.close()
            client.headers.update(headers)
            for path in requests.values():  # warm up, and check they answer
                r = client.get(path)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
            year = client.get(requests["GET /api/v1/analytics, year"]).json()
            for _ in range(args.reps):
                for k, path in requests.items():
                    t = time.perf_counter()
                    r = client.get(path)
                    times[k].append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, r.text[:300]
            export_times = []
            for _ in range(args.export_reps):
                t = time.perf_counter()
                r = client.get(export)
                export_times.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text[:300]
            export_bytes = len(r.content)
        stop_server(server)
        server = None
        over_http = {k: stats(v) for k, v in times.items()}
        base = over_http["baseline: GET /api/v1/health"]["p95"]

        print(f"\nover HTTP ({args.reps} rounds), ms:")
        print(f"{'request':42} {'p50':>8} {'p95':>8} {'max':>8} {'p95/base':>9}")
        for k, s in over_http.items():
            print(f"{k:42} {s['p50']:8.1f} {s['p95']:8.1f} {s['max']:8.1f} "
                  f"{s['p95'] / base:9.1f}")
        worst = max(s["p95"] for k, s in over_http.items() if not k.startswith("baseline"))
        print(f"\nyear: {year['totals']['submissions']} submissions, {year['payments']} "
              f"payments, {sum(p['prints'] for p in year['printers'])} queue prints")
        print(f"worst report p95: {worst:.1f} ms (goal < 300 ms: "
              f"{'met' if worst < 300 else 'NOT met'})")
        print(f"xlsx of the year ({export_bytes:,} bytes): median "
              f"{statistics.median(export_times):.2f} s, max {max(export_times):.2f} s "
              f"(goal < 3 s: {'met' if max(export_times) < 3 else 'NOT met'})")
        out = ROOT / "bench" / "results" / "reports.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps({"jobs": len(job_rows), "events": len(event_rows),
                                   "tickets": len(ticket_rows), "http_ms": over_http,
                                   "xlsx_s": export_times, "xlsx_bytes": export_bytes},
                                  indent=1))
        if args.keep:
            print(f"kept: {url}")
    finally:
        if server is not None:
            from _live import stop_server

            stop_server(server)
        engine.dispose()
        if not args.keep:
            if home is not None:
                shutil.rmtree(home, ignore_errors=True)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
