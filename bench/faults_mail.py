"""Fault of issue 16, injected many times at random points under load: the Dramatiq worker
and Redis killed (SIGKILL) and restarted, while state changes keep committing emails.
Every committed outbox row must reach the SMTP server exactly once (by Message-ID).

    .venv/bin/python bench/faults_mail.py [--runs 20] [--seed N] [--workers 2]
                                         [--database postgresql|sqlite]

Loopback only, bounded (each run lasts a few seconds). One installation on a fresh
PostgreSQL schema (or a SQLite file), a private ``redis-server`` (tests/delivery/_delivery.py
``OwnRedis``: no persistence, so a kill loses every queued message), ``--workers``
``printcore worker`` processes (``WorkerProcess``, 2 threads each, outbox lease 3 s) and an
aiosmtpd server in this process (tests/_smtp.py) that stamps each accepted message with the
time and the client's port. A thread in this process makes a steady stream of state
changes that mail (submit; submit + approve; submit + reject; a whole life: five emails),
as the web process would: ``REDIS_URL`` is set, so each commit hands its rows to Dramatiq.

Each run: after a random 0.3–1.5 s of load, SIGKILL one worker (half of the runs; a
quarter of those kill every worker) or Redis (the other half); in a third of the runs the
other one too, 0–0.5 s later. Each is restarted after a random 0.2–2 s (``down_seconds``;
a worker then boots for a second or two, not waited for); 0.5–1.5 s more load; then the
load stops and the run waits until every outbox row is ``sent`` (``drain_seconds``, from
the end of the load, including the boot of a restarted worker).

The tally, at the SMTP server: ``committed`` (outbox rows), ``delivered`` (rows accepted at
least once), ``lost`` (a row never accepted, or not ``sent``), ``doubled`` (a row accepted
twice or more). A kill after the server's 250 but before the worker commits ``sent`` is the
one window the design cannot close (tests/delivery/test_delivery_worker.py): a duplicate
counts as ``doubled_in_known_window`` when its first copy came over a connection of a
worker killed after that copy was accepted (or up to 1 s before: the worker had written
the whole message and died waiting for the 250), and the row was still not ``sent`` once
that worker was dead (the row statuses are read right after each kill); ``window_hits``
gives, for each, the milliseconds from the 250 to the kill. Any other duplicate is a bug
and is listed in ``problems`` with the nearest kill.

Writes bench/results/faults_mail.json and prints a table. Needs redis-server and
PostgreSQL (or ``--database sqlite``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "delivery")]

import psycopg  # noqa: E402
from _delivery import (  # noqa: E402
    OwnRedis,
    WorkerProcess,
    open_container,
    settings_env,
    wait_until,
)
from test_delivery_faults import (  # noqa: E402
    Kill,
    Load,
    TimedSmtp,
    all_sent,
    not_sent_ids,
    once_tally,
    smtp_ports_of,
)

from _live import PG_DSN  # noqa: E402
from entrypoints.bootstrap import Container  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "faults_mail.json"


@contextmanager
def database(kind: str, home: Path) -> Iterator[str]:
    """A DATABASE_URL: a fresh PostgreSQL schema (dropped after) or a SQLite file."""
    if kind == "sqlite":
        yield f"sqlite:///{home / 'printcore.db'}"
        return
    name = f"pc_bench_mail_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield (PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
               + f"?options=-csearch_path%3D{name}")
    finally:
        for attempt in range(10):  # another session dropping its schema may deadlock ours
            try:
                with psycopg.connect(PG_DSN, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
                break
            except psycopg.errors.DeadlockDetected:
                time.sleep(1 + attempt)


@attrs.define
class Run:
    fault: str
    kills: list[Kill] = attrs.Factory(list)
    down_seconds: dict[str, float] = attrs.Factory(dict)
    workers_killed: int = 0
    changes: int = 0
    load_errors: list[str] = attrs.Factory(list)
    drain_seconds: float | None = None
    problems: list[str] = attrs.Factory(list)


class Bench:
    """One installation: database, Redis, SMTP, workers; runs faults against it."""

    def __init__(self, home: Path, url: str, workers: int, rng: random.Random) -> None:
        self.rng = rng
        self.smtp = TimedSmtp()
        self.smtp.start()
        self.redis = OwnRedis(home)
        self.redis.start()
        self.env = settings_env(home, self.smtp, self.redis.url, url,
                                PRINTCORE_OUTBOX_LEASE_SECONDS="3")
        self.url = url
        self.workers = [WorkerProcess(self.env).start(wait=False) for _ in range(workers)]
        for worker in self.workers:  # booting side by side
            wait_until(worker._started, 60, what=f"the worker to start ({worker.log})")

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.redis.stop()
        self.smtp.stop()

    def kill_workers(self, container: Container, run: Run) -> list[int]:
        """SIGKILL one worker (or, a quarter of the time, all); returns their indexes.
        The SMTP connections they held and the rows not yet ``sent`` once they are dead
        are noted (:class:`Kill`)."""
        count = len(self.workers) if self.rng.random() < 0.25 else 1
        chosen = sorted(self.rng.sample(range(len(self.workers)), count))
        victims = [self.workers[i] for i in chosen]
        ports = {p for w in victims for p in smtp_ports_of(w.pid, self.smtp.port)}
        at = time.monotonic()
        for worker in victims:
            worker.kill()
        run.workers_killed += len(victims)
        run.kills.append(Kill(at, frozenset(ports), not_sent_ids(container)))
        return chosen

    def one(self, container: Container, fault: str, also: bool) -> Run:
        other = "redis" if fault == "worker" else "worker"
        run = Run(fault + ("+" + other if also else ""))
        load = Load(container, self.rng)
        load.start()
        try:
            time.sleep(self.rng.uniform(0.3, 1.5))
            back: list[tuple[float, float, str, list[int]]] = []  # (due, killed, what, who)
            for n, what in enumerate([fault, other] if also else [fault]):
                if n:
                    time.sleep(self.rng.uniform(0, 0.5))
                killed = time.monotonic()
                chosen = self.kill_workers(container, run) if what == "worker" else []
                if what == "redis":
                    self.redis.stop()
                back.append((killed + self.rng.uniform(0.2, 2.0), killed, what, chosen))
            for due, killed, what, chosen in sorted(back):
                time.sleep(max(0.0, due - time.monotonic()))
                run.down_seconds[what] = round(time.monotonic() - killed, 2)
                if what == "redis":
                    self.redis.start()
                else:  # not waited for here: Redis may be due back while it boots
                    for i in chosen:
                        self.workers[i] = WorkerProcess(self.env).start(wait=False)
            time.sleep(self.rng.uniform(0.5, 1.5))
        finally:
            load.finish()
        run.changes, run.load_errors = load.changes, load.errors
        started = time.monotonic()
        try:
            for worker in self.workers:  # raises if one exited instead of starting
                wait_until(worker._started, 60, what=f"the worker to start ({worker.log})")
            wait_until(lambda: all_sent(container), 60, 0.05, what="every outbox row sent")
            run.drain_seconds = round(time.monotonic() - started, 3)
        except AssertionError as err:
            run.problems.append(str(err)[:500])
        return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args(argv)
    # Live page updates also go through Redis; while it is down on purpose, each would warn.
    logging.getLogger("printcore.live").setLevel(logging.ERROR)
    rng = random.Random(args.seed)
    started, clock = datetime.now(UTC), time.monotonic()
    # Half the runs kill the worker, half Redis; a third also kill the other one.
    faults = ["worker", "redis"] * (args.runs // 2) + ["worker"] * (args.runs % 2)
    rng.shuffle(faults)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        with database(args.database, home) as url:
            bench = Bench(home, url, args.workers, rng)
            try:
                with open_container(bench.env) as container:
                    for n, fault in enumerate(faults):
                        run = bench.one(container, fault, rng.random() < 1 / 3)
                        runs.append(run)
                        print(f"run {n + 1}/{len(faults)} {run.fault:12} "
                              f"{run.changes:4} changes, down {run.down_seconds} s, "
                              f"drained in {run.drain_seconds} s, load errors "
                              f"{len(run.load_errors)}", flush=True)
                    time.sleep(2)  # a late second copy would arrive now
                    result = once_tally(container, bench.smtp, [k for r in runs for k in r.kills])
            finally:
                logs = {w.log.name: w.text()[-4000:] for w in bench.workers}
                bench.close()
    problems = result.pop("problems")
    problems += [f"load: {e}" for r in runs for e in r.load_errors]
    problems += [f"run {n + 1}: {p}" for n, r in enumerate(runs) for p in r.problems]
    drains = [r.drain_seconds for r in runs if r.drain_seconds is not None]
    summary = {
        "fault": "worker and Redis killed (SIGKILL) and restarted",
        "runs": len(runs),
        "worker_kills": sum(len(r.kills) for r in runs),
        "worker_processes_killed": sum(r.workers_killed for r in runs),
        "redis_kills": sum("redis" in r.fault for r in runs),
        "changes": sum(r.changes for r in runs),
        **result,
        "drain_seconds_median": round(statistics.median(drains), 3) if drains else None,
        "drain_seconds_max": max(drains) if drains else None,
        "problems": problems[:50],
    }
    report = {
        "command": "bench/faults_mail.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started_utc": started.isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - clock, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_1m": os.getloadavg()[0]},
        "load": f"1 thread of state changes (submit / approve / reject / whole life), "
                f"{args.workers} workers x 2 threads, outbox lease 3 s, {args.database}",
        "seed": args.seed,
        "summary": summary,
        "runs": [attrs.asdict(r, filter=lambda a, _: a.name != "kills") | {
            "kills_at_not_sent": [len(k.not_sent) for k in r.kills]} for r in runs],
    }
    if summary["problems"]:
        report["worker_logs_tail"] = logs
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'runs':>4} {'w-kills':>7} {'r-kills':>7} {'committed':>9} {'delivered':>9} "
          f"{'lost':>4} {'doubled':>7} {'in window':>9} {'drain p50 s':>11} {'max s':>6}")
    s = summary
    print(f"{s['runs']:>4} {s['worker_kills']:>7} {s['redis_kills']:>7} {s['committed']:>9} "
          f"{s['delivered']:>9} {s['lost']:>4} {s['doubled']:>7} "
          f"{s['doubled_in_known_window']:>9} {s['drain_seconds_median']!s:>11} "
          f"{s['drain_seconds_max']!s:>6}   ({report['seconds']} s)")
    for problem in s["problems"][:10]:
        print("   ", problem)
    bad = s["lost"] or s["doubled"] > s["doubled_in_known_window"] or s["problems"]
    return 1 if bad else 0


if __name__ == "__main__":
    threading.excepthook = lambda args: print(f"thread failed: {args.exc_value!r}")
    raise SystemExit(main())
