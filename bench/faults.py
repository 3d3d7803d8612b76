"""Faults of issue 16, each injected many times at random points under load: PostgreSQL
restarted (``pg``) and the storage disk filled (``disk``).

    .venv/bin/python bench/faults.py [--runs 20] [--only disk|pg] [--seed N]

Loopback only, bounded (each run lasts a few seconds). One real server per fault
(``printcore serve`` via tests/_live.py) on a fresh PostgreSQL schema, loaded by the
threads of tests/fault/test_pg_restart.py (3 students submitting real fixture models,
one staff member rejecting what arrives, two dashboards listing jobs):

- ``pg``: after a random 0.3–2 s of load, ``pg_ctlcluster … restart``; in half the runs
  (at random) a lock on ``jobs`` first piles requests up inside their statements for a
  random 0.05–0.5 s, so the restart cuts connections mid-request; then 1.5–3 s more load.
- ``disk``: the storage root is a 64 MB tmpfs; after a random 0.3–2 s a big file fills it
  to the last byte, or leaves 1–3 pages (so that a staged file fits and its metadata does
  not), for a random 0.5–2 s, then is deleted; then 1.5–3 s more load.

After every run, what the clients saw succeed is compared with the database and the
storage root (the checks of ``storage_tally``): ``lost`` (a 201/200 missing, a stored file
not what was sent), ``doubled`` (a job, file, folder, event or outbox row twice),
``half_written`` (a row without its file or event, a folder without a row, a temporary
file left), ``server_errors`` (a 5xx other than a 503 with Retry-After — and, for the disk,
a 507 —, or a connection dropped without an answer), the audit's findings, and the
seconds from PostgreSQL's pg_isready (or the space returning) to the first success.

Writes bench/results/faults.json and prints a table. Needs root (tmpfs) and PostgreSQL.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "fault")]

import psycopg  # noqa: E402
from test_pg_restart import (  # noqa: E402
    EXPECTED,
    Answer,
    Load,
    Tally,
    answers_tally,
    pg_ready,
    restart_postgresql,
    schema_dsn_of,
    storage_tally,
)

from _live import PG_DSN, start_server, stop_server  # noqa: E402
from _support import FIXTURES  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "faults.json"
MODELS = [FIXTURES / "models" / name for name in
          ("Moon.stl", "featuretype.3mf", "HalfDonut_ascii.stl", "fandisk.obj")]
DISK_MB = 64
PAGE = os.sysconf("SC_PAGE_SIZE")


def fill(path: Path, leave_bytes: int) -> None:
    """Write ``path`` until the disk is full, then give ``leave_bytes`` back."""
    chunk = b"\0" * (256 * 1024)
    with path.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
        size = handle.tell()
    if leave_bytes:
        os.truncate(path, max(size - leave_bytes, 0))


class Schema:
    """A fresh PostgreSQL schema for one fault's server; dropped on exit."""

    def __enter__(self) -> str:
        self.name = f"pc_bench_faults_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
        return (PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
                + f"?options=-csearch_path%3D{self.name}")

    def __exit__(self, *exc: object) -> None:
        pg_ready()
        for attempt in range(10):  # a server's last connections may still hold locks
            try:
                with psycopg.connect(PG_DSN, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')
                return
            except psycopg.errors.DeadlockDetected:
                time.sleep(1 + attempt)


def _summary(tallies: list[Tally], fault: str) -> dict[str, Any]:
    waits = [t.reconnect_seconds for t in tallies if t.reconnect_seconds is not None]
    answers: dict[str, int] = {}
    for t in tallies:
        for key, n in t.answers.items():
            answers[key] = answers.get(key, 0) + n
    return {
        "fault": fault,
        "runs": len(tallies),
        "lost": sum(len(t.lost) for t in tallies),
        "doubled": sum(len(t.doubled) for t in tallies),
        "half_written": sum(len(t.half_written) for t in tallies),
        "server_errors": sum(len(t.server_errors) for t in tallies),
        "audit_findings_max": max((t.audit_findings for t in tallies), default=0),
        "refused_503": sum(t.refused_503 for t in tallies),
        "refused_507": answers.get("submit 507", 0) + answers.get("reject 507", 0),
        "cut_mid_request": sum(t.cut_mid_request for t in tallies),
        "recover_seconds_median": round(statistics.median(waits), 3) if waits else None,
        "recover_seconds_max": round(max(waits), 3) if waits else None,
        "runs_without_recovery": len(tallies) - len(waits),
        "restart_seconds_median": round(statistics.median(
            [t.restart_seconds for t in tallies]), 2) if fault == "pg" else None,
        "answers": answers,
        "problems": [p for t in tallies for p in t.lost + t.doubled + t.half_written
                     + t.server_errors][:50],
    }


def run_pg(runs: int, rng: random.Random) -> dict[str, Any]:
    tallies: list[Tally] = []
    everything: list[Answer] = []
    with tempfile.TemporaryDirectory() as tmp, Schema() as url:
        server = start_server(Path(tmp) / "home", {"DATABASE_URL": url, "REDIS_URL": ""},
                              "postgresql")
        try:
            for n in range(runs):
                load = Load(server, MODELS)
                tally = Tally()
                load.start()
                locker = None
                try:
                    time.sleep(rng.uniform(0.3, 2.0))
                    if rng.random() < 0.5:
                        locker = psycopg.connect(schema_dsn_of(url))
                        locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
                        time.sleep(rng.uniform(0.05, 0.5))
                    tally.restart_seconds = restart_postgresql()
                    ready_at = time.monotonic()
                    time.sleep(rng.uniform(1.5, 3.0))
                finally:
                    if locker is not None:
                        try:
                            locker.close()
                        except psycopg.Error:
                            pass
                    load.finish()
                    pg_ready()
                answers_tally(load.answers, ready_at, tally)
                everything += load.answers
                storage_tally(server, schema_dsn_of(url), everything, tally)
                tallies.append(tally)
                _keep_log(server, "pg", n, tally)
                print(f"pg run {n + 1}/{runs}: {sum(tally.answers.values())} answers, "
                      f"503 {tally.refused_503} (cut {tally.cut_mid_request}), problems "
                      f"{len(tally.lost + tally.doubled + tally.half_written + tally.server_errors)}"
                      f", back {tally.reconnect_seconds}", flush=True)
        finally:
            stop_server(server)
    return _summary(tallies, "pg")


def run_disk(runs: int, rng: random.Random) -> dict[str, Any]:
    tallies: list[Tally] = []
    everything: list[Answer] = []
    with tempfile.TemporaryDirectory() as tmp, Schema() as url:
        root = Path(tmp) / "storage"
        root.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(root)],
                       check=True)
        try:
            server = start_server(Path(tmp) / "home", {
                "DATABASE_URL": url, "REDIS_URL": "", "PRINTCORE_STORAGE": str(root),
                "PRINTCORE_STORAGE_MIN_FREE_MB": "1"}, "postgresql")
            server_storage = root
            try:
                for n in range(runs):
                    load = Load(server, MODELS)
                    tally = Tally()
                    filler = root / f"filler-{n}.bin"
                    load.start()
                    try:
                        time.sleep(rng.uniform(0.3, 2.0))
                        fill(filler, rng.choice([0, PAGE, 2 * PAGE, 3 * PAGE]))
                        time.sleep(rng.uniform(0.5, 2.0))
                        filler.unlink()
                        ready_at = time.monotonic()
                        time.sleep(rng.uniform(1.5, 3.0))
                    finally:
                        filler.unlink(missing_ok=True)
                        load.finish()
                    answers_tally(load.answers, ready_at, tally, frozenset(EXPECTED | {507}))
                    everything += load.answers
                    storage_tally(_at(server, server_storage), schema_dsn_of(url),
                                  everything, tally)
                    tallies.append(tally)
                    _keep_log(server, "disk", n, tally)
                    print(f"disk run {n + 1}/{runs}: {sum(tally.answers.values())} answers, "
                          f"507 {tally.answers['submit 507'] + tally.answers['reject 507']}, "
                          f"problems {len(tally.lost + tally.doubled + tally.half_written + tally.server_errors)}"
                          f", back {tally.reconnect_seconds}", flush=True)
            finally:
                stop_server(server)
        finally:
            if subprocess.run(["umount", str(root)]).returncode != 0:
                subprocess.run(["umount", "-l", str(root)])
    return _summary(tallies, "disk")


def _keep_log(server: Any, fault: str, run: int, tally: Tally) -> None:
    """Copies the server's log to bench/results/faults-FAULT-runN.log after a bad run."""
    if tally.lost or tally.doubled or tally.half_written or tally.server_errors:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        (RESULTS.parent / f"faults-{fault}-run{run + 1}.log").write_bytes(
            server.log.read_bytes())


def _at(server: Any, storage: Path) -> Any:
    """``server`` whose ``storage`` is ``storage`` (LiveServer's is home/storage)."""

    class _Server:
        def __getattr__(self, name: str) -> Any:
            return getattr(server, name)

        @property
        def storage(self) -> Path:
            return storage

    return _Server()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", choices=["disk", "pg"])
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args(argv)
    if not pg_ready(5):
        print("PostgreSQL is not accepting connections at 127.0.0.1:5432", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    started = datetime.now(UTC)
    results = []
    for fault, run in (("pg", run_pg), ("disk", run_disk)):
        if args.only in (None, fault):
            results.append(run(args.runs, rng))
    report = {
        "command": "bench/faults.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started_utc": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_1m": os.getloadavg()[0]},
        "load": "3 submitting students (fixture models 6 KB-367 KB), 1 staff rejecting, "
                "2 dashboards listing; one server, PostgreSQL 15",
        "seed": args.seed,
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() and args.only else {}
    if args.only and existing.get("results"):
        kept = [r for r in existing["results"] if r["fault"] != args.only]
        report["results"] = kept + results
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    head = (f"{'fault':6} {'runs':>4} {'lost':>4} {'doubled':>7} {'half':>4} {'5xx':>4} "
            f"{'503':>5} {'507':>5} {'cut':>4} {'back p50 s':>10} {'back max s':>10}")
    print(head)
    for r in results:
        print(f"{r['fault']:6} {r['runs']:>4} {r['lost']:>4} {r['doubled']:>7} "
              f"{r['half_written']:>4} {r['server_errors']:>4} {r['refused_503']:>5} "
              f"{r['refused_507']:>5} {r['cut_mid_request']:>4} "
              f"{r['recover_seconds_median']!s:>10} {r['recover_seconds_max']!s:>10}")
        for problem in r["problems"][:10]:
            print("   ", problem)
    bad = any(r["lost"] or r["doubled"] or r["half_written"] or r["server_errors"]
              for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    threading.excepthook = lambda args: print(f"thread failed: {args.exc_value!r}")
    raise SystemExit(main())
