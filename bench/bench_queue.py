"""Benchmark of the self-service queue on PostgreSQL (issue 3).

One run measures, prints a table, and writes JSON to ``bench/results/queue.json``:

1. Commands with 1,000 queued tickets (10 printers, a fresh schema in database
   ``test``): the server-side time of each queue command — the time the Discord
   callback waits for ``QueueService`` — over ``--samples`` calls each, interleaved
   round-robin with a bare ``SELECT 1`` unit of work as the baseline (ratios to it are
   printed because this machine is shared and noisy). Goal: p99 < 100 ms per command.
2. ETA: the FIFO simulation for 10,000 queued tickets over 10 printers with access hours
   ``mon-fri 08:00-22:00; sat 10:00-16:00`` (``QueueService._etas`` on entities in
   memory, and ``status()`` end to end on PostgreSQL with those tickets stored). Goal:
   the simulation < 50 ms.
3. Sweep: one ``sweep()`` over 10,000 due deadlines (10,000 printers whose offer's claim
   window has passed, each holding one of 10,000 offered tickets; every one lapses into
   a missed window and is offered again), on PostgreSQL and SQLite. Goal: < 1 s.

Run: ``.venv/bin/python bench/bench_queue.py`` (``--help`` for flags). The schema and
temporary files are removed at the end, also after an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, insert, text

from adapters.sql import SqlUnitOfWork, make_engine, upgrade
from adapters.sql.tables import printers as printers_table
from adapters.sql.tables import tickets as tickets_table
from printcore.memory import FixedClock
from printcore.queue.access_hours import AccessHours
from printcore.queue.entities import Printer, Ticket
from printcore.queue.service import QueuePolicy, QueueService

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "queue.json"
PG_DSN = os.environ.get("PRINTCORE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
HOURS = "mon-fri 08:00-22:00; sat 10:00-16:00"
T0 = datetime(2026, 9, 7, 15, 0, tzinfo=UTC)  # Monday 10:00 in Chicago
GOALS = {"command_p99_ms_max": 100.0, "eta_ms_max": 50.0, "sweep_s_max": 1.0}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def pg_engine(schema: str) -> Engine:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = (PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
           + f"?options=-csearch_path%3D{schema}")
    engine = make_engine(url)
    upgrade(engine)
    return engine


def drop_schema(schema: str) -> None:
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def service(engine: Engine, clock: FixedClock, access: AccessHours) -> QueueService:
    return QueueService(uow=lambda: SqlUnitOfWork(engine), clock=clock,
                        access=access, policy=QueuePolicy(max_open_tickets=1))


def bulk_tickets(engine: Engine, count: int, start: datetime, status: str = "queued",
                 printer_of: Callable[[int], str | None] = lambda n: None) -> None:
    rows = [{"member": f"m{n}", "member_name": f"Member {n}", "job_name": f"part {n}",
             "est_minutes": 30 + (n * 7) % 240, "created_at": start,
             "queue_key": start.timestamp() + n, "status": status, "version": 1,
             "printer": printer_of(n), "offered_at": start if status == "offered" else None,
             "misses": 0} for n in range(count)]
    with engine.begin() as conn:
        for i in range(0, count, 2000):
            conn.execute(insert(tickets_table), rows[i:i + 2000])


# --- 1. commands ----------------------------------------------------------------------


def bench_commands(engine: Engine, samples: int) -> dict[str, Any]:
    clock = FixedClock(T0)
    svc = service(engine, clock, AccessHours.always())
    svc.sync_printers([(f"X1C-{i}", "") for i in range(1, 11)])
    # 10 members print, then 1,000 wait.
    for i in range(10):
        offered = svc.join(f"p{i}", f"Printing {i}", "part", timedelta(hours=3))
        svc.claim(f"p{i}", offered.ticket.printer or "")
        svc.report_started(f"p{i}")
    bulk_tickets(engine, 1000, T0)

    def bare() -> None:
        with SqlUnitOfWork(engine) as uow:
            uow.connection.execute(text("SELECT 1"))

    def join_cancel() -> tuple[float, float]:
        t0 = time.perf_counter()
        svc.join("bench", "Bench", "bench part", timedelta(minutes=45))
        t1 = time.perf_counter()
        svc.cancel("bench")
        return t1 - t0, time.perf_counter() - t1

    # A claim → close → start cycle on X1C-1, released again with notdone each round:
    # the head member (w) is offered X1C-1 after its print's predicted end.
    cycle_state = {"n": 0}

    def claim_cycle() -> dict[str, float]:
        n = cycle_state["n"]
        cycle_state["n"] += 1
        member = f"w{n}"
        out: dict[str, float] = {}
        svc.join(member, member, "cycle", timedelta(minutes=20))
        # Put the new ticket at the head, as if it had waited longest.
        with SqlUnitOfWork(engine) as uow:
            mine = uow.tickets.for_member(member, open_only=True)[0]
            mine.queue_key = 0.0 - n
            uow.tickets.update(mine)
            uow.commit()
        clock.advance(hours=4)  # every print is now past its predicted end
        t = time.perf_counter()
        svc.sweep()
        out["sweep (offers)"] = time.perf_counter() - t
        printer = next(p.name for p in svc.status()[0] if p.holder == member)
        t = time.perf_counter()
        svc.claim(member, printer)
        out["claim"] = time.perf_counter() - t
        t = time.perf_counter()
        svc.notdone(member, timedelta(minutes=1))
        out["notdone"] = time.perf_counter() - t
        clock.advance(minutes=2)
        svc.sweep()
        printer = next(p.name for p in svc.status()[0] if p.holder == member)
        svc.claim(member, printer)
        t = time.perf_counter()
        svc.close(member, printer, "finished")
        out["close"] = time.perf_counter() - t
        t = time.perf_counter()
        svc.report_started(member)
        out["report_started"] = time.perf_counter() - t
        return out

    times: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds * 1000)

    for _ in range(samples):
        t = time.perf_counter()
        bare()
        record("baseline SELECT 1", time.perf_counter() - t)
        j, c = join_cancel()
        record("join", j)
        record("cancel", c)
        for name, call in (("status", svc.status),
                           ("placement", lambda: svc.placement("m500")),
                           ("update_time", lambda: svc.update_time("m500",
                                                                   timedelta(minutes=50))),
                           ("myjobs", lambda: svc.myjobs("m500")),
                           ("history", svc.history),
                           ("predict", lambda: svc.predict("m500", timedelta(hours=1))),
                           ("sweep (nothing due)", svc.sweep)):
            t = time.perf_counter()
            call()
            record(name, time.perf_counter() - t)
    for _ in range(max(5, samples // 4)):
        for name, seconds in claim_cycle().items():
            record(name, seconds)
    with SqlUnitOfWork(engine) as uow:
        queued = sum(1 for t in uow.tickets.open_tickets() if t.status == "queued")
    base = statistics.median(times["baseline SELECT 1"])
    table = {name: {"n": len(v), "p50_ms": round(statistics.median(v), 2),
                    "p99_ms": round(pct(v, 0.99), 2),
                    "p50_vs_baseline": round(statistics.median(v) / base, 1)}
             for name, v in times.items()}
    return {"queued_tickets_at_end": queued, "commands": table}


# --- 2. ETA -----------------------------------------------------------------------------


def bench_eta(engine: Engine, repeats: int) -> dict[str, Any]:
    access = AccessHours.parse(HOURS, "America/Chicago")
    clock = FixedClock(T0)
    svc = service(engine, clock, access)
    printers = [Printer(f"X1C-{i}", id=i, status="printing", print_ticket=100_000 + i,
                        print_member=f"p{i}", started_at=T0,
                        predicted_end=T0 + timedelta(minutes=17 * i)) for i in range(1, 11)]
    tickets = [Ticket(f"m{n}", f"M{n}", "part", 30 + (n * 7) % 240, T0,
                      T0.timestamp() + n, id=n) for n in range(1, 10_001)]
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        etas = svc._etas(printers, tickets, T0)
        runs.append((time.perf_counter() - t) * 1000)
    last = max(etas.values())
    # End to end: the same tickets stored, status() reads and simulates them.
    svc.sync_printers([(f"X1C-{i}", "") for i in range(1, 11)])
    bulk_tickets(engine, 10_000, T0)
    e2e = []
    for _ in range(max(3, repeats // 5)):
        t = time.perf_counter()
        _, placements = svc.status()
        e2e.append((time.perf_counter() - t) * 1000)
    return {"tickets": len(tickets), "printers": len(printers),
            "simulation_ms_p50": round(statistics.median(runs), 2),
            "simulation_ms_max": round(max(runs), 2),
            "last_eta": last.isoformat(), "status_e2e_ms_p50": round(statistics.median(e2e), 1),
            "status_placements": len(placements)}


# --- 3. sweep ---------------------------------------------------------------------------


def bench_sweep(engine: Engine, count: int) -> dict[str, Any]:
    clock = FixedClock(T0 + timedelta(minutes=11))
    svc = service(engine, clock, AccessHours.always())
    rows = [{"name": f"P{n:05d}", "label": "", "status": "offered", "version": 1,
             "holder_ticket": n + 1, "holder": f"m{n}",
             "claim_deadline": T0 + timedelta(minutes=10)} for n in range(count)]
    with engine.begin() as conn:
        for i in range(0, count, 2000):
            conn.execute(insert(printers_table), rows[i:i + 2000])
    bulk_tickets(engine, count, T0, status="offered", printer_of=lambda n: f"P{n:05d}")
    t = time.perf_counter()
    report = svc.sweep()
    first = time.perf_counter() - t
    t = time.perf_counter()
    again = svc.sweep()
    second = time.perf_counter() - t
    return {"due_deadlines": count, "sweep_s": round(first, 3),
            "report": {"offered": report.offered, "missed": report.missed,
                       "expired": report.expired},
            "second_sweep_s": round(second, 3),
            "second_report": {"offered": again.offered, "missed": again.missed,
                              "expired": again.expired}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100, help="calls per command")
    parser.add_argument("--sweep-deadlines", type=int, default=10_000)
    parser.add_argument("--eta-repeats", type=int, default=30)
    parser.add_argument("--only", choices=["commands", "eta", "sweep"], default=None)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}",
        "goals": GOALS,
    }
    schemas: list[str] = []

    def fresh() -> Engine:
        schema = f"pc_bench_{uuid.uuid4().hex[:10]}"
        schemas.append(schema)
        return pg_engine(schema)

    try:
        if args.only in (None, "commands"):
            engine = fresh()
            results["commands_pg"] = bench_commands(engine, args.samples)
            engine.dispose()
        if args.only in (None, "eta"):
            engine = fresh()
            results["eta_pg"] = bench_eta(engine, args.eta_repeats)
            engine.dispose()
        if args.only in (None, "sweep"):
            engine = fresh()
            results["sweep_pg"] = bench_sweep(engine, args.sweep_deadlines)
            engine.dispose()
            with tempfile.TemporaryDirectory() as tmp:
                engine = make_engine(f"sqlite:///{tmp}/bench.db")
                upgrade(engine)
                results["sweep_sqlite"] = bench_sweep(engine, args.sweep_deadlines)
                engine.dispose()
    finally:
        for schema in schemas:
            drop_schema(schema)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    checks = []
    if "commands_pg" in results:
        worst = max(v["p99_ms"] for k, v in results["commands_pg"]["commands"].items()
                    if not k.startswith("baseline"))
        checks.append(("command p99 ms", worst, GOALS["command_p99_ms_max"]))
    if "eta_pg" in results:
        checks.append(("ETA simulation ms", results["eta_pg"]["simulation_ms_p50"],
                       GOALS["eta_ms_max"]))
    if "sweep_pg" in results:
        checks.append(("sweep s (PostgreSQL)", results["sweep_pg"]["sweep_s"],
                       GOALS["sweep_s_max"]))
        checks.append(("sweep s (SQLite)", results["sweep_sqlite"]["sweep_s"],
                       GOALS["sweep_s_max"]))
    for name, value, goal in checks:
        print(f"{name:24} {value:>10} goal < {goal}: {'met' if value < goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
