"""Benchmark of outbox delivery through Redis and one ``printcore worker`` (issue 4).

1. Throughput: ``--rows`` (2,000) outbox rows committed in one transaction (the
   commit's fast path hands their ids to Dramatiq, exactly as a state change does) →
   messages accepted by a local aiosmtpd server, through Redis and ONE worker process
   (``printcore worker --threads T``, for each ``--threads`` value). Timed from just
   before the commit to the last message accepted. Baseline: a bare ``smtplib`` loop (one
   connection, in its own process like the worker) sending the same messages, already
   rendered, to the same server; the ratio worker / baseline is printed. Goal ≥ 100
   messages/s.
2. Latency at idle: ``--changes`` (50) real state changes (a print request submitted,
   in this process, against the same database), one at a time with the worker idle in
   between (``--gap`` s); per change, from the end of the service call (its commit and
   the hand-over to Redis done) and from its start, to the moment the SMTP server has
   the message. Median and p90. Goal: median < 1 s.

The SMTP server (aiosmtpd) runs in this process and only counts and time-stamps what it
accepts (no parsing). Redis: an empty numbered database on ``PRINTCORE_TEST_REDIS_URL``
(default redis://127.0.0.1:6379), flushed at the end. Database: SQLite in a temporary
home (``--database postgresql`` for a fresh schema in ``PRINTCORE_TEST_PG_DSN``).

Run: ``.venv/bin/python bench/bench_outbox.py [--rows 2000] [--threads 8 2 1]
[--changes 50] [--database sqlite|postgresql] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import re
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("PRINTCORE_TEST_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
PG_DSN = os.environ.get("PRINTCORE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
GOALS = {"throughput_msg_per_s_min": 100.0, "idle_latency_median_s_max": 1.0}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- the SMTP server: counts and time-stamps ----------------------------------------------


class CountingSmtp:
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        sock = __import__("socket").socket()
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        sock.close()
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, bytes]] = []  # (monotonic, Message-ID line)
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any,
                                  envelope: Any) -> str:
                now = time.monotonic()
                raw: bytes = envelope.original_content or envelope.content
                start = raw.find(b"Message-ID:")
                mid = raw[start:raw.find(b"\n", start)].strip() if start >= 0 else b""
                with outer.lock:
                    outer.arrivals.append((now, mid))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def reset(self) -> None:
        with self.lock:
            self.arrivals.clear()

    def wait_for(self, n: int, timeout: float) -> float:
        """Wait until ``n`` arrived; returns the monotonic time of the n-th."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.arrivals) >= n:
                    return self.arrivals[n - 1][0]
            time.sleep(0.002)
        raise TimeoutError(f"only {self.count()} of {n} messages arrived in {timeout} s")


# --- Redis and the database ---------------------------------------------------------------


@contextmanager
def redis_db() -> Iterator[str]:
    import redis

    me = uuid.uuid4().hex
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{REDIS_URL}/{db}")
        if client.dbsize() == 0 and client.set("printcore-test:claimed-by", me, nx=True,
                                               ex=3600):
            if client.dbsize() == 1:
                try:
                    yield f"{REDIS_URL}/{db}"
                finally:
                    client.flushdb()
                return
            client.delete("printcore-test:claimed-by")
    raise RuntimeError(f"no empty Redis database on {REDIS_URL}")


@contextmanager
def database(kind: str, home: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{home / 'printcore.db'}"
        return
    import psycopg

    schema = f"pc_bench_outbox_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield (PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
               + f"?options=-csearch_path%3D{schema}")
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def environment(home: Path, smtp_port: int, redis_url: str, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRINTCORE_", "SMTP_", "REDIS_", "DATABASE_"))}
    env.update({
        "PRINTCORE_HOME": str(home), "PRINTCORE_SECRET_KEY": "bench",
        "DATABASE_URL": db_url, "REDIS_URL": redis_url,
        "PRINTCORE_MAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port), "SMTP_TLS": "none",
        "SMTP_FROM": "Fab Lab <fablab@university.edu>",
        "PYTHONPATH": str(ROOT / "src"),
    })
    return env


class Worker:
    def __init__(self, env: dict[str, str], threads: int, log: Path) -> None:
        self.log = log
        with open(log, "wb") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "entrypoints.cli", "worker", "--threads", str(threads)],
                env=env, cwd=env["PRINTCORE_HOME"], stdout=handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while b"worker started" not in log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log.read_text()}")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the worker process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the measurements ---------------------------------------------------------------------


def commit_rows(container: Any, template: Any, n: int, fast_path: bool = True) -> None:
    """``n`` copies of ``template`` (an outbox row) committed in one transaction; the
    commit hands them to Redis (the relay's fast path), as any state change does; without
    ``fast_path`` the worker's relay finds them (as after Redis was down)."""
    from printcore.outbox import OutboxMessage

    now = datetime.now(UTC)
    with container.outbox.uow() as uow:
        if not fast_path:
            uow.after_commit = None
        for _ in range(n):
            uow.outbox.add(OutboxMessage(
                channel="email", kind=template.kind, recipient=template.recipient,
                subject="job", subject_id=template.subject_id, created_at=now,
                payload=dict(template.payload), next_attempt_at=now))
        uow.commit()


def throughput(container: Any, env: dict[str, str], smtp: CountingSmtp, rows: int,
               threads: int, home: Path, fast_path: bool = True) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(env["REDIS_URL"])  # no leftovers of an earlier run
    client.delete(*(client.keys("dramatiq*") or ["dramatiq"]))
    template = container.outbox.list(limit=1)[0]
    worker = Worker({**env, "PRINTCORE_WORKER_THREADS": str(threads)}, threads,
                    home / f"worker-t{threads}.log")
    try:
        smtp.reset()
        time.sleep(0.5)
        cpu_before = worker.cpu_seconds()
        start = time.monotonic()
        commit_rows(container, template, rows, fast_path)
        committed = time.monotonic()
        last = smtp.wait_for(rows, timeout=max(120.0, rows / 5))
        cpu = worker.cpu_seconds() - cpu_before
        time.sleep(0.5)
        extra = smtp.count() - rows
    finally:
        worker.stop()
    log = worker.log.read_text(errors="replace")
    relayed = sum(int(m) for m in re.findall(r"outbox relayed\s+messages=(\d+)", log))
    return {"threads": threads, "rows": rows, "hand_over": "commit" if fast_path else "relay", "commit_and_handover_s": committed - start,
            "total_s": last - start, "msg_per_s": rows / (last - start),
            "duplicates": extra, "worker_relay_handed_over": relayed,
            "worker_cpu_ms_per_message": cpu * 1000 / rows,
            "worker_skipped": log.count("outcome=skipped"),
            "worker_sent": log.count("outcome=sent")}


def _baseline_client(path: str, port: str) -> None:
    """Subprocess: send the pickled messages over one smtplib connection; print seconds."""
    messages = pickle.loads(Path(path).read_bytes())
    start = time.monotonic()
    with smtplib.SMTP("127.0.0.1", int(port), timeout=30) as client:
        client.ehlo()
        for message in messages:
            client.send_message(message)
    print(time.monotonic() - start)


def baseline(container: Any, smtp: CountingSmtp, rows: int, home: Path) -> dict[str, Any]:
    """The same messages rendered (as the worker renders them) and sent by bare smtplib."""
    template = container.outbox.list(limit=1)[0]
    messages = []
    for i in range(rows):
        template.id = 10_000_000 + i
        messages.append(container.email_sender.render(template))
    path = home / "rendered.pickle"
    path.write_bytes(pickle.dumps(messages))
    smtp.reset()
    start = time.monotonic()
    out = subprocess.run([sys.executable, __file__, "--baseline-client", str(path),
                          str(smtp.port)], capture_output=True, text=True, check=True)
    wall = time.monotonic() - start
    smtp.wait_for(rows, 60)
    sending = float(out.stdout.strip())
    return {"rows": rows, "send_s": sending, "msg_per_s": rows / sending,
            "process_wall_s": wall}


def idle_latency(container: Any, env: dict[str, str], smtp: CountingSmtp, changes: int,
                 gap: float, home: Path) -> dict[str, Any]:
    from printcore.requests.job import Submission
    from printcore.requests.ports import StagedFile

    worker = Worker(env, int(env.get("PRINTCORE_WORKER_THREADS", "8")),
                    home / "worker-idle.log")
    from_return: list[float] = []
    from_start: list[float] = []
    calls: list[float] = []
    try:
        time.sleep(1.0)
        for i in range(changes):
            smtp.reset()
            upload = container.staging.open(10_000_000)
            upload.write(b"solid x\nendsolid x\n")
            digest = upload.finish()
            staged = StagedFile(upload.path, "part.stl", ".stl", 19, digest)
            start = time.monotonic()
            container.requests.submit(
                Submission(f"Student {i}", f"s{i}@university.edu", "ME", "", "filament",
                           "Red"), staged)
            returned = time.monotonic()
            arrived = smtp.wait_for(1, 30)
            from_return.append(arrived - returned)
            from_start.append(arrived - start)
            calls.append(returned - start)
            time.sleep(gap)
    finally:
        worker.stop()

    def summary(values: list[float]) -> dict[str, float]:
        return {"median_s": statistics.median(values), "p90_s": pct(values, 0.9),
                "min_s": min(values), "max_s": max(values)}

    return {"changes": changes, "gap_s": gap, "from_commit": summary(from_return),
            "from_call_start": summary(from_start), "state_change_call": summary(calls)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--threads", type=int, nargs="+", default=[8, 2, 1])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--gap", type=float, default=0.3,
                        help="seconds between two idle-latency state changes")
    parser.add_argument("--hand-over", choices=["commit", "relay", "both"], default="both",
                        help="who puts the rows on Redis: the commit's fast path, the "
                             "worker's relay poll, or a run of each")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--json", type=Path, default=None, help="also write figures here")
    parser.add_argument("--baseline-client", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_client:
        _baseline_client(*args.baseline_client)
        return 0

    sys.path.insert(0, str(ROOT / "src"))
    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from printcore.requests.job import Submission
    from printcore.requests.ports import StagedFile

    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg": os.getloadavg()},
        "database": args.database, "goals": GOALS,
    }
    smtp = CountingSmtp()
    smtp.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp, redis_db() as rurl, \
                database(args.database, Path(tmp)) as db_url:
            home = Path(tmp)
            env = environment(home, smtp.port, rurl, db_url)
            container = bootstrap(load_settings(env, env_file=None))
            try:
                # one real print request: its "submitted" row is the template
                upload = container.staging.open(10_000_000)
                upload.write(b"solid x\nendsolid x\n")
                digest = upload.finish()
                container.requests.submit(
                    Submission("Jane Doe", "jane.doe@university.edu", "ME", "ME 101",
                               "filament", "Red"),
                    StagedFile(upload.path, "part.stl", ".stl", 19, digest))
                worker = Worker(env, 1, home / "worker-warm.log")  # delivers the template
                smtp.wait_for(1, 30)
                worker.stop()

                results["baseline_smtplib"] = base = baseline(container, smtp, args.rows, home)
                print(f"baseline smtplib, one connection: {base['msg_per_s']:.0f} msg/s "
                      f"({args.rows} in {base['send_s']:.2f} s)", flush=True)
                results["throughput"] = []
                modes = {"commit": [True], "relay": [False], "both": [True, False]}
                for threads, fast in [(t, f) for t in args.threads
                                      for f in modes[args.hand_over]]:
                    run = throughput(container, env, smtp, args.rows, threads, home, fast)
                    run["ratio_to_baseline"] = run["msg_per_s"] / base["msg_per_s"]
                    results["throughput"].append(run)
                    print(f"worker --threads {threads}, hand-over by {run['hand_over']}: "
                          f"{run['msg_per_s']:.0f} msg/s "
                          f"({args.rows} in {run['total_s']:.2f} s, commit+hand-over "
                          f"{run['commit_and_handover_s']:.2f} s, duplicates "
                          f"{run['duplicates']}; worker relay re-handed {run['worker_relay_handed_over']}, "
                          f"skipped {run['worker_skipped']}; worker CPU "
                          f"{run['worker_cpu_ms_per_message']:.1f} ms/msg), "
                          f"{run['ratio_to_baseline']:.2f}× baseline",
                          flush=True)
                results["idle_latency"] = lat = idle_latency(
                    container, env, smtp, args.changes, args.gap, home)
                fc, fs = lat["from_commit"], lat["from_call_start"]
                print(f"idle latency over {args.changes} changes: from commit median "
                      f"{fc['median_s'] * 1000:.0f} ms, p90 {fc['p90_s'] * 1000:.0f} ms "
                      f"(max {fc['max_s'] * 1000:.0f} ms); from the call's start median "
                      f"{fs['median_s'] * 1000:.0f} ms, p90 {fs['p90_s'] * 1000:.0f} ms",
                      flush=True)
            finally:
                container.close()
    finally:
        smtp.stop()
    results["machine"]["load_avg_end"] = os.getloadavg()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    best = max(r["msg_per_s"] for r in results["throughput"])
    print(f"goals: throughput >= 100 msg/s: {'met' if best >= 100 else 'NOT met'} "
          f"(best {best:.0f}); idle median < 1 s: "
          f"{'met' if results['idle_latency']['from_commit']['median_s'] < 1 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
