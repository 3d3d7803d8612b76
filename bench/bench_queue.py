"""Benchmark of the self-service printer queue (issues 3 and 14).

One run measures, prints tables, and writes JSON to ``bench/results/queue.json``:

1. ``commands``: every member command — join, claim, close, report started, notdone,
   cancel, update time, status, placement (``/status`` for one member), myjobs (``/mine``),
   history, predict, and a sweep with nothing due — as the server-side time of the
   ``QueueService`` call a Discord callback waits for, with 1,000 and 10,000 queued
   tickets (10 printers, 10 members printing), on SQLite (a file in a temporary folder)
   and on PostgreSQL (a fresh schema in database ``test``). Each round runs every command
   once, interleaved with a bare ``SELECT 1`` unit of work on the same engine (its pool,
   its connection): the baseline, so that figures can be read as ratios on this shared,
   noisy machine. p50 / p95 / p99 in ms over ``--samples`` rounds (claim, notdone, close
   and report started over a quarter of them: each needs a claim cycle). Goal (issue 14):
   p99 < 50 ms with 1,000 queued, < 100 ms with 10,000.
2. ``eta``: the FIFO simulation of ETAs (``QueueService._etas``, entities in memory) for
   10,000 queued tickets over 10 printers with access hours ``mon-fri 09:00-17:00``
   (America/Chicago; from a Friday 16:00, so the queue runs over many nights and
   weekends), and ``status()`` end to end with those tickets stored (SQLite and
   PostgreSQL): on a quiet machine, then UNDER LOAD — one process per CPU spinning
   (``multiprocessing``) for the length of the measurement. Baseline in the same
   conditions: a pure-Python reference loop (a heap of 10 printers pushed and popped
   10,000 times), so that ``ETA / reference`` says how much the load, not the code,
   moved the figure. Goal: the simulation < 50 ms under load.
3. ``sweep``: one ``sweep()`` over N due deadlines (N printers whose offer's claim window
   has passed, each holding one of N offered tickets; every one lapses into a missed
   window and is offered again), on PostgreSQL and SQLite, for each N of
   ``--sweep-deadlines`` (default 10,000; e.g. ``1000,5000,10000,20000``). Goal: 10,000
   in < 1 s, linear in N.

Run: ``.venv/bin/python bench/bench_queue.py [--only commands|eta|sweep]`` (``--help``
for the other flags). The PostgreSQL schemas, temporary files and load processes are
removed or stopped at the end, also after an error. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from printcore.queue.memory import MemoryQueueDatabase, MemoryQueueUnitOfWork
from printcore.queue.service import QueuePolicy, QueueService

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "queue.json"
PG_DSN = os.environ.get("PRINTCORE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
HOURS = "mon-fri 09:00-17:00"
ZONE = "America/Chicago"
T0 = datetime(2026, 9, 7, 15, 0, tzinfo=UTC)  # Monday 10:00 in Chicago
ETA_T0 = datetime(2026, 9, 11, 21, 0, tzinfo=UTC)  # Friday 16:00 in Chicago, lab open
#: Goals (issue 14): command p99 by queued tickets, ETA under load, sweep of 10,000 due.
COMMAND_P99_GOAL_MS: dict[int, float] = {1000: 50.0, 10_000: 100.0}
ETA_GOAL_MS = 50.0
SWEEP_GOAL_S = 1.0
#: The member commands (Discord and CLI), whose p99 the goal is about.
MEMBER_COMMANDS = ("join", "claim", "close", "report_started", "notdone", "cancel",
                   "update_time", "status", "status_page (15 shown)", "placement", "myjobs",
                   "history", "predict")
COMMANDS = (*(c for c in MEMBER_COMMANDS if not c.startswith("status_page")),
            "sweep (nothing due)")


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(pct(ms, 0.95), 2), "p99_ms": round(pct(ms, 0.99), 2),
            "max_ms": round(max(ms), 2)}


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # not on every platform
        return "?"


# --- databases ------------------------------------------------------------------------


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


class Databases:
    """Fresh migrated databases, each removed by :meth:`close` (PostgreSQL schemas dropped,
    SQLite files in one temporary folder)."""

    def __init__(self) -> None:
        self.schemas: list[str] = []
        self.engines: list[Engine] = []
        self.tmp = tempfile.TemporaryDirectory(prefix="pc_bench_queue_")

    def fresh(self, backend: str) -> Engine:
        if backend == "postgresql":
            schema = f"pc_bench_{uuid.uuid4().hex[:10]}"
            self.schemas.append(schema)
            engine = pg_engine(schema)
        else:
            engine = make_engine(f"sqlite:///{self.tmp.name}/{uuid.uuid4().hex[:10]}.db")
            upgrade(engine)
        self.engines.append(engine)
        return engine

    def close(self) -> None:
        for engine in self.engines:
            engine.dispose()
        for schema in self.schemas:
            drop_schema(schema)
        self.tmp.cleanup()


def service(engine: Engine, clock: FixedClock, access: AccessHours) -> QueueService:
    return QueueService(uow=lambda: SqlUnitOfWork(engine), clock=clock,
                        access=access, policy=QueuePolicy(max_open_tickets=1))


def bulk_tickets(engine: Engine, count: int, start: datetime, status: str = "queued",
                 printer_of: Callable[[int], str | None] = lambda n: None) -> None:
    """``count`` tickets of members ``m0`` … written directly (one multi-row INSERT per
    2,000), one second apart in the queue, estimates 30-269 minutes."""
    rows = [{"member": f"m{n}", "member_name": f"Member {n}", "job_name": f"part {n}",
             "est_minutes": 30 + (n * 7) % 240, "created_at": start,
             "queue_key": start.timestamp() + n, "status": status, "version": 1,
             "printer": printer_of(n), "offered_at": start if status == "offered" else None,
             "misses": 0} for n in range(count)]
    with engine.begin() as conn:
        for i in range(0, count, 2000):
            conn.execute(insert(tickets_table), rows[i:i + 2000])


# --- 1. commands ----------------------------------------------------------------------


def bench_commands(engine: Engine, queued: int, samples: int,
                   gc_freeze: bool = False) -> dict[str, Any]:
    """Every member command with ``queued`` tickets waiting behind 10 printing members.
    With ``gc_freeze``, the objects alive after the set-up are moved out of the cyclic
    garbage collector's reach (``gc.freeze()``), as a long-running bot or web process
    could do after start-up: its full collections then scan only what the commands
    allocate."""
    clock = FixedClock(T0)
    svc = service(engine, clock, AccessHours.always())
    svc.sync_printers([(f"X1C-{i}", "") for i in range(1, 11)])
    for i in range(10):  # 10 members print, then ``queued`` wait
        offered = svc.join(f"p{i}", f"Printing {i}", "part", timedelta(hours=3))
        svc.claim(f"p{i}", offered.ticket.printer or "")
        svc.report_started(f"p{i}")
    bulk_tickets(engine, queued, T0)
    middle = f"m{queued // 2}"

    def bare() -> None:
        with SqlUnitOfWork(engine) as uow:
            uow.connection.execute(text("SELECT 1"))

    def join_cancel() -> tuple[float, float]:
        t0 = time.perf_counter()
        svc.join("bench", "Bench", "bench part", timedelta(minutes=45))
        t1 = time.perf_counter()
        svc.cancel("bench")
        return t1 - t0, time.perf_counter() - t1

    # A claim → notdone → claim → close → start cycle: a new member is put at the head
    # of the queue (as if they had waited longest) and offered a printer whose print is
    # past its predicted end.
    cycle = {"n": 0}

    def claim_cycle() -> dict[str, float]:
        n = cycle["n"]
        cycle["n"] += 1
        member = f"w{n}"
        out: dict[str, float] = {}
        svc.join(member, member, "cycle", timedelta(minutes=20))
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

    calls: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("status", svc.status),
        ("placement", lambda: svc.placement(middle)),
        ("update_time", lambda: svc.update_time(middle, timedelta(minutes=50))),
        ("myjobs", lambda: svc.myjobs(middle)),
        ("history", svc.history),
        ("predict", lambda: svc.predict(middle, timedelta(hours=1))),
        ("sweep (nothing due)", svc.sweep),
    )
    if hasattr(svc, "status_page"):  # the paged status the front ends show (issue 14)
        calls = (*calls, ("status_page (15 shown)", lambda: svc.status_page(15)))
    for _ in range(3):  # warm-up: pools, statement caches
        bare()
        join_cancel()
    if gc_freeze:
        gc.collect()
        gc.freeze()
    for _ in range(samples):
        t = time.perf_counter()
        bare()
        record("baseline SELECT 1", time.perf_counter() - t)
        j, c = join_cancel()
        record("join", j)
        record("cancel", c)
        for name, call in calls:
            t = time.perf_counter()
            call()
            record(name, time.perf_counter() - t)
    for _ in range(max(5, samples // 4)):
        t = time.perf_counter()
        bare()
        record("baseline SELECT 1", time.perf_counter() - t)
        for name, seconds in claim_cycle().items():
            record(name, seconds)
    with SqlUnitOfWork(engine) as uow:
        waiting = sum(1 for t in uow.tickets.open_tickets() if t.status == "queued")
    base = statistics.median(times["baseline SELECT 1"])
    table = {}
    for name, ms in times.items():
        row = summary(ms)
        row["p50_vs_baseline"] = round(row["p50_ms"] / base, 1)
        row["p99_vs_baseline"] = round(row["p99_ms"] / base, 1)
        table[name] = row
    if gc_freeze:
        gc.unfreeze()
    return {"queued": queued, "queued_at_end": waiting, "load_before": load_average(),
            "gc_freeze": gc_freeze, "commands": table}


# --- 2. ETA -----------------------------------------------------------------------------


def _spin(stop: Any) -> None:
    """A CPU burner: spins until ``stop`` is set (at most 15 minutes)."""
    end = time.monotonic() + 900
    x = 0
    while not stop.is_set() and time.monotonic() < end:
        for _ in range(10_000):
            x = (x * 31 + 7) % 1_000_003


@contextmanager
def cpu_load(processes: int) -> Iterator[None]:
    """``processes`` processes spinning on the CPUs while the block runs."""
    if processes <= 0:
        yield
        return
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    burners = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(processes)]
    for p in burners:
        p.start()
    time.sleep(1.0)  # let them reach full speed
    try:
        yield
    finally:
        stop.set()
        for p in burners:
            p.join(10)
            if p.is_alive():
                p.terminate()
                p.join(5)


def reference_loop() -> None:
    """The ETA simulation's skeleton without its calendar: 10 printers in a heap, 10,000
    pops and pushes. Its time, measured beside the ETA's, says how fast this machine is
    running Python at that moment."""
    heap = [(float(i), f"X1C-{i}") for i in range(10)]
    heapq.heapify(heap)
    for n in range(10_000):
        free, name = heapq.heappop(heap)
        heapq.heappush(heap, (free + 60.0 * (30 + (n * 7) % 240), name))


def eta_world() -> tuple[list[Printer], list[Ticket]]:
    printers = [Printer(f"X1C-{i}", id=i, status="printing", print_ticket=100_000 + i,
                        print_member=f"p{i}", started_at=ETA_T0,
                        predicted_end=ETA_T0 + timedelta(minutes=17 * i))
                for i in range(1, 11)]
    tickets = [Ticket(f"m{n}", f"M{n}", "part", 30 + (n * 7) % 240, ETA_T0,
                      ETA_T0.timestamp() + n, id=n) for n in range(1, 10_001)]
    return printers, tickets


def measure_eta(svc: QueueService, repeats: int,
                stored: dict[str, QueueService]) -> dict[str, Any]:
    printers, tickets = eta_world()
    sims, refs = [], []
    etas: dict[int, datetime] = {}
    for _ in range(repeats):  # interleaved: simulation, reference
        t = time.perf_counter()
        etas = svc._etas(printers, tickets, ETA_T0)
        sims.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        reference_loop()
        refs.append((time.perf_counter() - t) * 1000)
    out: dict[str, Any] = {"simulation": summary(sims), "reference": summary(refs),
                           "simulation_vs_reference_p50": round(
                               statistics.median(sims) / statistics.median(refs), 1),
                           "etas": len(etas),
                           "last_eta": max(etas.values()).isoformat()}
    for backend, stored_svc in stored.items():
        e2e = []
        for _ in range(max(3, repeats // 5)):
            t = time.perf_counter()
            _, placements = stored_svc.status()
            e2e.append((time.perf_counter() - t) * 1000)
        out[f"status_{backend}"] = summary(e2e)
        out[f"status_{backend}"]["placements"] = len(placements)
    return out


def bench_eta(dbs: Databases, backends: list[str], repeats: int,
              load_processes: int) -> dict[str, Any]:
    access = AccessHours.parse(HOURS, ZONE)
    empty = MemoryQueueDatabase()  # the simulation reads no store: entities are given
    svc = QueueService(uow=lambda: MemoryQueueUnitOfWork(empty), clock=FixedClock(ETA_T0),
                       access=access, policy=QueuePolicy())
    stored: dict[str, QueueService] = {}
    for backend in backends:  # the same 10,000 tickets stored, for status() end to end
        engine = dbs.fresh(backend)
        s = service(engine, FixedClock(ETA_T0), access)
        s.sync_printers([(f"X1C-{i}", "") for i in range(1, 11)])
        bulk_tickets(engine, 10_000, ETA_T0)
        stored[backend] = s
    result: dict[str, Any] = {"tickets": 10_000, "printers": 10, "hours": f"{HOURS} {ZONE}",
                              "from": ETA_T0.isoformat()}
    result["quiet"] = {"load_before": load_average(), **measure_eta(svc, repeats, stored)}
    with cpu_load(load_processes):
        result["under_load"] = {"load_processes": load_processes,
                                **measure_eta(svc, repeats, stored),
                                "load_after": load_average()}
    return result


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
                              "expired": again.expired},
            "load_before": load_average()}


# --- profile ------------------------------------------------------------------------------


def profile_commands(engine: Engine, queued: int, calls: int, top: int) -> dict[str, Any]:
    """cProfile of ``calls`` joins (each with its cancel) and ``calls`` full ``status()``
    with ``queued`` tickets: the ``top`` functions by cumulative time, as text, so that
    whoever speeds the service up can see where the time goes."""
    import cProfile
    import io
    import pstats

    clock = FixedClock(T0)
    svc = service(engine, clock, AccessHours.parse(HOURS, ZONE))
    svc.sync_printers([(f"X1C-{i}", "") for i in range(1, 11)])
    for i in range(10):
        offered = svc.join(f"p{i}", f"Printing {i}", "part", timedelta(hours=3))
        svc.claim(f"p{i}", offered.ticket.printer or "")
        svc.report_started(f"p{i}")
    bulk_tickets(engine, queued, T0)

    def joins() -> None:
        svc.join("bench", "Bench", "bench part", timedelta(minutes=45))
        svc.cancel("bench")

    out: dict[str, Any] = {}
    for name, call in (("join + cancel", joins), ("status", svc.status)):
        call()  # warm
        prof = cProfile.Profile()
        started = time.perf_counter()
        prof.enable()
        for _ in range(calls):
            call()
        prof.disable()
        per_call = (time.perf_counter() - started) / calls * 1000
        text_out = io.StringIO()
        pstats.Stats(prof, stream=text_out).strip_dirs().sort_stats("cumulative").print_stats(
            top)
        out[name] = {"ms_per_call_under_cprofile": round(per_call, 1),
                     "top": text_out.getvalue()}
    return out


# --- the tables -------------------------------------------------------------------------


def print_tables(results: dict[str, Any]) -> list[tuple[str, float, float]]:
    """Print the figures; return the checks (name, value, goal) against the goals."""
    checks: list[tuple[str, float, float]] = []
    runs = [(k, v) for k, v in results.items() if k.startswith("commands_")]
    if runs:
        print("\nCommands: p50 / p95 / p99 ms (p99 / baseline p50)")
        heads = [f"{v['backend']} {v['queued']:,}" for _, v in runs]
        print(f"{'command':22}" + "".join(f"{h:>30}" for h in heads))
        names = ["baseline SELECT 1", *COMMANDS, "status_page (15 shown)", "sweep (offers)"]
        for name in names:
            cells = []
            for _, v in runs:
                row = v["commands"].get(name)
                cells.append("-" if row is None else
                             f"{row['p50_ms']:.1f}/{row['p95_ms']:.1f}/{row['p99_ms']:.1f}"
                             f" ({row['p99_vs_baseline']:.0f}x)")
            print(f"{name:22}" + "".join(f"{c:>30}" for c in cells))
        for _, v in runs:
            member = {k: r for k, r in v["commands"].items() if k in MEMBER_COMMANDS}
            worst = max(member, key=lambda k: member[k]["p99_ms"])
            goal = COMMAND_P99_GOAL_MS.get(v["queued"], 100.0)
            checks.append((f"worst command p99 ms, {v['backend']} {v['queued']:,} "
                           f"({worst})", member[worst]["p99_ms"], goal))
    if "eta" in results:
        eta = results["eta"]
        print(f"\nETA: {eta['tickets']:,} tickets, {eta['printers']} printers, {eta['hours']}")
        print(f"{'':12}{'simulation p50/p95/max ms':>28}{'reference p50':>15}{'ratio':>8}"
              + "".join(f"{'status ' + b + ' p50/max':>26}" for b in
                        [k[7:] for k in eta["quiet"] if k.startswith("status_")]))
        for when in ("quiet", "under_load"):
            r = eta[when]
            sim = r["simulation"]
            line = (f"{when:12}{sim['p50_ms']:>12.1f}/{sim['p95_ms']:.1f}/{sim['max_ms']:.1f}"
                    f"{r['reference']['p50_ms']:>15.1f}{r['simulation_vs_reference_p50']:>8}")
            for k in r:
                if k.startswith("status_"):
                    line += f"{r[k]['p50_ms']:>19.1f}/{r[k]['max_ms']:.1f}"
            print(line)
        checks.append(("ETA simulation p95 ms, quiet", eta["quiet"]["simulation"]["p95_ms"],
                       ETA_GOAL_MS))
        checks.append(("ETA simulation p95 ms, under load",
                       eta["under_load"]["simulation"]["p95_ms"], ETA_GOAL_MS))
    sweeps = [(k, v) for k, v in results.items() if k.startswith("sweep_")]
    if sweeps:
        print("\nSweep over due deadlines: first sweep s (second, nothing due)")
        for k, runs_ in sweeps:
            for v in runs_:
                print(f"{k[6:]:12}{v['due_deadlines']:>8,} due {v['sweep_s']:>8.3f} s "
                      f"({v['second_sweep_s']:.3f} s)  {v['report']}")
                if v["due_deadlines"] == 10_000:
                    checks.append((f"sweep s, 10,000 due, {k[6:]}", v["sweep_s"],
                                   SWEEP_GOAL_S))
    print()
    for name, value, goal in checks:
        print(f"{name:58} {value:>10} goal < {goal}: {'met' if value < goal else 'NOT met'}")
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--only", choices=["commands", "eta", "sweep"], default=None)
    parser.add_argument("--samples", type=int, default=100,
                        help="rounds of commands per size and database (default 100)")
    parser.add_argument("--queued", default="1000,10000",
                        help="queued tickets for the commands, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="databases, comma-separated: sqlite, postgresql")
    parser.add_argument("--eta-repeats", type=int, default=40)
    parser.add_argument("--load-processes", type=int, default=os.cpu_count() or 2,
                        help="CPU burners for the ETA under load (default: one per CPU)")
    parser.add_argument("--sweep-deadlines", default="10000",
                        help="due deadlines per sweep, comma-separated")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="commands: gc.freeze() after the set-up (see bench_commands)")
    parser.add_argument("--profile", action="store_true",
                        help="instead: cProfile of join and status with the largest --queued "
                             "on each backend, top functions printed")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in ("sqlite", "postgresql"):
            parser.error(f"--backends: unknown database {b!r} (sqlite, postgresql)")
    try:
        sizes = [int(n) for n in args.queued.split(",")]
        due = [int(n) for n in args.sweep_deadlines.split(",")]
    except ValueError:
        parser.error("--queued and --sweep-deadlines take whole numbers, comma-separated")
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["bench/bench_queue.py", *(argv or sys.argv[1:])]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}",
        "load_at_start": load_average(),
        "goals": {"command_p99_ms_max": {str(n): g for n, g in COMMAND_P99_GOAL_MS.items()},
                  "eta_ms_max": ETA_GOAL_MS, "sweep_s_max": SWEEP_GOAL_S},
    }
    dbs = Databases()
    if args.profile:
        try:
            for backend in backends:
                found = profile_commands(dbs.fresh(backend), max(sizes), 20, 25)
                for name, r in found.items():
                    print(f"\n=== {name}, {backend}, {max(sizes):,} queued: "
                          f"{r['ms_per_call_under_cprofile']} ms per call under cProfile")
                    print(r["top"])
        finally:
            dbs.close()
        return 0
    try:
        if args.only in (None, "commands"):
            for backend in backends:
                for queued in sizes:
                    started = time.perf_counter()
                    run = bench_commands(dbs.fresh(backend), queued, args.samples,
                                         args.gc_freeze)
                    run["backend"] = backend
                    run["seconds"] = round(time.perf_counter() - started, 1)
                    results[f"commands_{backend}_{queued}"] = run
                    print(f"commands {backend} {queued:,}: {run['seconds']} s", flush=True)
        if args.only in (None, "eta"):
            results["eta"] = bench_eta(dbs, backends, args.eta_repeats, args.load_processes)
        if args.only in (None, "sweep"):
            for backend in backends:
                results[f"sweep_{backend}"] = [bench_sweep(dbs.fresh(backend), n) for n in due]
    finally:
        dbs.close()
    results["load_at_end"] = load_average()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_tables(results)
    print(f"\nload average at start {results['load_at_start']}, at end "
          f"{results['load_at_end']}; JSON: {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
