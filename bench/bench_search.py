"""Benchmark of job search (issue 12) on PostgreSQL with 10,000 jobs.

A fresh schema in database ``test`` is migrated (with the pg_trgm GIN index on
``jobs.search_text``), filled with 10,000 generated jobs (names, emails, one original and
0–2 sliced files each; ``executemany`` in batches of 1,000) and analysed. Then, interleaved
round-robin so that drift hits every kind alike:

* in process: ``SqlUnitOfWork(engine).jobs.search(JobQuery(...))`` (the page of 50 and the
  total count, mapped to ``Job``), per query kind, against the baseline of a plain
  ``SELECT * FROM jobs LIMIT 50`` mapped the same way in the same kind of unit of work;
* over HTTP: ``GET /api/v1/jobs?q=…&limit=50`` on a real ``printcore serve`` (uvicorn,
  one process) on the same schema, against ``GET /api/v1/jobs?limit=50`` (the listing).

Goal (checked here, never in tests): p95 of every search < 100 ms.

Run: ``.venv/bin/python bench/bench_search.py [--jobs 10000] [--reps 200]``. The schema
and the server are removed at the end, also after an error. Figures:
docs/benchmarks.md ("Job search").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from sqlalchemy import insert, select, text  # noqa: E402

from adapters.sql import SqlUnitOfWork, make_engine, upgrade  # noqa: E402
from adapters.sql.convert import job_to_row, row_to_job  # noqa: E402
from adapters.sql.tables import jobs  # noqa: E402
from printcore.requests.job import Job, JobFile  # noqa: E402
from printcore.requests.naming import job_basename, stored_file_name  # noqa: E402
from printcore.requests.search import JobQuery  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FIRST = ["Ada", "Grace", "Alan", "Maria", "José", "Zoë", "Wei", "Aisha", "Liam", "Noah",
         "Olivia", "Emma", "Mateo", "Sofía", "Yuki", "Priya", "Omar", "Chloé", "Lukas",
         "Ingrid", "Kwame", "Fatima", "Ivan", "Mei", "Diego", "Hannah", "Arjun", "Léa"]
LAST = ["Lovelace", "Hopper", "Turing", "García", "Müller", "Nguyen", "Smith", "Johnson",
        "Okafor", "Kowalski", "Rossi", "Tanaka", "Patel", "Haddad", "Larsen", "Dubois",
        "Ivanova", "Chen", "Silva", "O'Brien", "Fernández", "Schmidt", "Kim", "Novak"]
PARTS = ["bracket", "gear", "vase", "phone stand", "hinge", "enclosure", "drone arm",
         "keycap", "bust", "miniature", "spool holder", "cable clip", "lens cap", "planter"]
STATUSES = ["uploaded", "pending", "ready_to_print", "printing", "completed",
            "paid_picked_up", "rejected"]


def make_jobs(n: int, seed: int = 12) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    t0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    rows = []
    for i in range(1, n + 1):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        name = f"{first} {last}"
        method = rnd.choice(["filament", "filament", "resin"])
        color = rnd.choice(["Red", "Black", "White", "Grey", "Blue", "Clear"])
        at = t0 + dt.timedelta(minutes=17 * i)
        job = Job(name, f"{first[0].lower()}{last.lower()}{i}@university.edu",
                  rnd.choice(["Mechanical Engineering", "Art", "Architecture", "Physics"]),
                  f"ME {100 + i % 300}", method, color, at, updated_at=at,
                  preferred_printer=rnd.choice(["", "", "X1C-1", "X1C-2", "Form 3"]),
                  status=rnd.choice(STATUSES), id=i)
        base = job_basename(name, method, color, i)
        part = rnd.choice(PARTS)
        job.files.append(JobFile(stored_file_name(base, "original", ".stl"),
                                 f"{part} v{rnd.randint(1, 9)} final.stl", "original",
                                 rnd.randint(10_000, 50_000_000), "0" * 64, at))
        for k in range(rnd.choice([0, 0, 1, 2])):
            job.files.append(JobFile(stored_file_name(base, "sliced", ".gcode.3mf", k + 1),
                                     f"{part}_plate_{k + 1}.gcode.3mf", "sliced", 5000,
                                     "1" * 64, at + dt.timedelta(hours=1)))
        row = job_to_row(job)
        row["version"] = 1
        rows.append(row)
    return rows


#: Query kinds: label → JobQuery arguments.
KINDS: dict[str, dict[str, Any]] = {
    "name, common (\"garcía\")": {"q": "garcía"},
    "full name (\"maria lovelace\")": {"q": "maria lovelace"},
    "email fragment (\"hopper12\")": {"q": "hopper12"},
    "original file (\"phone stand v3\")": {"q": "phone stand v3"},
    "stored file (\"_sliced2\")": {"q": "_sliced2"},
    "#id (\"#4321\")": {"q": "#4321"},
    "number (\"4321\": id or text)": {"q": "4321"},
    "2 letters (\"li\": no trigram)": {"q": "li"},
    "no match (\"zzqx\")": {"q": "zzqx"},
    "filter only (resin, by name)": {"print_method": "resin", "sort": "name"},
    "q + filters (\"gear\", Black, X1C-1)": {"q": "gear", "color": "Black",
                                             "preferred_printer": "X1C-1"},
}
BASELINE = "baseline: SELECT * FROM jobs LIMIT 50"


def stats(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": statistics.median(values), "p95": q[94], "max": values[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--http-reps", type=int, default=100)
    args = parser.parse_args()

    schema = f"pc_bench_search_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    server = None
    try:
        upgrade(engine)
        t0 = time.perf_counter()
        rows = make_jobs(args.jobs)
        with engine.begin() as conn:
            for start in range(0, len(rows), 1000):
                conn.execute(insert(jobs), rows[start : start + 1000])
            conn.execute(text("SELECT setval(pg_get_serial_sequence('jobs', 'id'), "
                              "(SELECT max(id) FROM jobs))"))
            conn.execute(text("ANALYZE jobs"))
        print(f"inserted {args.jobs} jobs in {time.perf_counter() - t0:.1f} s")

        with engine.connect() as conn:
            plan = "\n".join(r[0] for r in conn.execute(text(
                "EXPLAIN ANALYZE SELECT count(*) FROM jobs WHERE search_text LIKE "
                "'%phone stand v3%'")))
        print(plan)

        def baseline() -> int:
            with SqlUnitOfWork(engine) as uow:
                got = [row_to_job(r) for r in
                       uow.connection.execute(select(jobs).limit(50)).mappings()]
            return len(got)

        def searcher(kwargs: dict[str, Any]) -> Any:
            query = JobQuery(limit=50, **kwargs)

            def run() -> int:
                with SqlUnitOfWork(engine) as uow:
                    return uow.jobs.search(query)[1]
            return run

        calls = {BASELINE: baseline, **{k: searcher(v) for k, v in KINDS.items()}}
        totals = {k: f() for k, f in calls.items()}  # warm up; totals for the table
        times: dict[str, list[float]] = {k: [] for k in calls}
        for _ in range(args.reps):
            for k, f in calls.items():
                t = time.perf_counter()
                f()
                times[k].append((time.perf_counter() - t) * 1000)
        in_process = {k: {**stats(v), "total": totals[k]} for k, v in times.items()}

        from _live import login, start_server, stop_server

        home = Path(tempfile.mkdtemp(prefix="bench-search-"))
        server = start_server(home, {"DATABASE_URL": url}, "postgresql")
        http_times: dict[str, list[float]] = {}
        with httpx.Client(base_url=server.url + "/api/v1", timeout=30) as api:
            api.headers.update(login(api, "Bench desk"))
            requests = {"baseline: GET /jobs?limit=50": {"limit": "50"},
                        **{k: {**{p: str(x) for p, x in v.items()}, "limit": "50"}
                           for k, v in KINDS.items()}}
            for params in requests.values():
                assert api.get("/jobs", params=params).status_code == 200
            http_times = {k: [] for k in requests}
            for _ in range(args.http_reps):
                for k, params in requests.items():
                    t = time.perf_counter()
                    r = api.get("/jobs", params=params)
                    http_times[k].append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, r.text
        stop_server(server)
        server = None
        over_http = {k: stats(v) for k, v in http_times.items()}

        print(f"\nin process ({args.reps} rounds), ms:")
        print(f"{'query':45} {'matches':>8} {'p50':>7} {'p95':>7} {'max':>7}")
        for k, s in in_process.items():
            print(f"{k:45} {s['total']:>8} {s['p50']:7.2f} {s['p95']:7.2f} {s['max']:7.2f}")
        print(f"\nover HTTP ({args.http_reps} rounds), ms:")
        for k, s in over_http.items():
            print(f"{k:45} {'':>8} {s['p50']:7.2f} {s['p95']:7.2f} {s['max']:7.2f}")
        worst = max(s["p95"] for k, s in over_http.items() if not k.startswith("baseline"))
        print(f"\nworst search p95 over HTTP: {worst:.1f} ms (goal < 100 ms: "
              f"{'met' if worst < 100 else 'NOT met'})")
        out = ROOT / "bench" / "results" / "search.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps({"jobs": args.jobs, "in_process_ms": in_process,
                                   "http_ms": over_http, "plan": plan}, indent=1))
    finally:
        if server is not None:
            from _live import stop_server

            stop_server(server)
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
