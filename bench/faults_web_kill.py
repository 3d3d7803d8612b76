"""A fault of issue 16, injected many times at random points under load: the web process
(``printcore serve``: uvicorn and its spawned model-checking processes) SIGKILLed
mid-upload and mid-transition, then started again on the same database and storage.

    .venv/bin/python bench/faults_web_kill.py [--runs 20] [--seed N]

Loopback only, bounded (each run lasts about ten seconds). Like bench/faults.py, one
PostgreSQL schema and storage root for all the runs (so that later kills meet jobs further
down the line: approvals, prints, completions of big jobs), served by ``printcore serve``
in a process group of its own, without Redis (it delivers its outbox itself, as ``.eml``
files; outbox lease 2 s). Each run loads it with the threads of
tests/fault/test_web_killed.py (two students submitting the fixture models of 6-367 KB,
one submitting a generated binary STL of 20 or 30 MB in 64 KB pieces, two staff members:
one adds a sliced file to each uploaded job, the other takes every job through approve →
force-confirm → mark-printing → mark-complete, small jobs sometimes rejected; after the restart the big model's student
sends small ones). The whole group is SIGKILLed at a point chosen at random per run:

- ``upload``: after 0-0.2 s, once the big body is sent past a random 5-95 % (and not
  whole);
- ``transition``: after 0.3-1.5 s, once a transition request is in flight (in half of
  these runs, while its copy of a job's folder is being written), after 0-20 ms more;
- ``random``: after 0.8-4.5 s, whatever is then in flight.

What was in flight is noted (``mid_upload``: a submission's body partly sent;
``mid_transition``: a transition request unanswered), the server is started again, the
load goes on for a random 0.5-1 s and stops, the outbox is drained, and the checks of
``check_after_kills`` run on everything so far (each problem counted in the run that
first shows it): ``lost`` (a 201/200 missing, a file not what was sent or
not in its folder), ``doubled`` (a job, folder, event, outbox row or ``.eml`` file twice),
``half_written`` (after the audit's repairs: a job whose folder, status or events disagree,
a folder without a row, a temporary file left, a job no answer can account for;
``stray_files``, files in a job's folder that it does not record, are counted apart: the
audit does not report them, and they fail no run), ``emails_missing`` (an event that mails without its outbox
row, a row not sent after the restart or without its ``.eml``), ``server_errors`` (a 5xx
but a 503 with Retry-After, or no answer outside a kill). The storage audit's dry run may
find only what its repairs fix (``problems`` otherwise); after them a second audit must
find nothing (``audit_findings_after_repair``).

Writes bench/results/faults_web_kill.json and prints a table. Needs PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests"), str(ROOT / "tests" / "fault")]

from faults import Schema  # noqa: E402
from test_pg_restart import pg_ready, schema_dsn_of  # noqa: E402
from test_web_killed import (  # noqa: E402
    Kill,
    Request,
    Verdict,
    WebLoad,
    _copying,
    big_stl,
    check_after_kills,
    drain_outbox,
    kill_and_restart,
    start_group,
    stop_group,
    wait_mid_upload,
)

from _support import FIXTURES  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "faults_web_kill.json"
MODELS = [FIXTURES / "models" / name for name in
          ("Moon.stl", "featuretype.3mf", "HalfDonut_ascii.stl", "fandisk.obj")]
SLICED = FIXTURES / "sliced" / "square_ring_plate_1.gcode"
BIG_MB = (20, 30)
TRANSITIONS = {"submit", "sliced", "login", "list"}  # the kinds that are not transitions


def _aim(load: WebLoad, trigger: str, rng: random.Random) -> str:
    """Waits for the run's kill point; returns what it waited for (``… missed`` when the
    point did not come within 15 s: the kill then lands wherever the load is)."""
    if trigger == "upload":  # the first big body is on its way from the start
        time.sleep(rng.uniform(0.0, 0.2))
        staging = load.server.storage / ".staging"
        if not wait_mid_upload(load, staging, rng.uniform(0.05, 0.95), 0, 15):
            return "upload missed"
        return "upload"
    time.sleep(rng.uniform(0.3, 1.5))
    if trigger == "transition":
        copying = rng.random() < 0.5
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if any(r.kind not in TRANSITIONS for r in load.in_flight()) and (
                    not copying or _copying(load.server.storage)):
                time.sleep(rng.uniform(0.0, 0.02))
                return "transition (copying)" if copying else "transition"
            time.sleep(0.001)
        return "transition missed"
    time.sleep(rng.uniform(0.5, 3.0))
    return "random"


def one_run(server: Any, url: str, trigger: str, big: bytes, everything: list[Request],
            rng: random.Random) -> tuple[Any, Kill, Verdict]:
    """Load, one kill at the trigger's point, restart, more load; then the checks of
    everything so far (the load stopped, the outbox drained). Returns the server now
    running, the kill and the verdict."""
    load = WebLoad(server, MODELS, SLICED, big, big_after_kill=False)
    load.start()
    try:
        aimed = _aim(load, trigger, rng)
        kill = kill_and_restart(load, aimed)
        time.sleep(rng.uniform(0.5, 1.0))
    finally:
        load.finish()
    everything += load.requests
    left = drain_outbox(schema_dsn_of(url))
    verdict = check_after_kills(load.server, schema_dsn_of(url), everything)
    if left:
        verdict.emails_missing.append(f"{left} outbox rows not sent 15 s after")
    return load.server, kill, verdict


CATEGORIES = ("lost", "doubled", "half_written", "emails_missing", "server_errors",
              "audit_unrepairable", "stray_files")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args(argv)
    if not pg_ready(5):
        print("PostgreSQL is not accepting connections at 127.0.0.1:5432", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    bigs = [big_stl(mb, seed) for seed, mb in enumerate(BIG_MB)]
    triggers = (["upload", "transition", "random"] * args.runs)[:args.runs]
    rng.shuffle(triggers)
    started = datetime.now(UTC)
    clock = time.monotonic()
    kills: list[Kill] = []
    verdicts: list[Verdict] = []
    seen: set[str] = set()
    mail_temps = 0
    everything: list[Request] = []
    with tempfile.TemporaryDirectory() as tmp, Schema() as url:
        server = start_group(Path(tmp) / "home", {"DATABASE_URL": url})
        try:
            for n, trigger in enumerate(triggers):
                run_started = time.monotonic()
                server, kill, verdict = one_run(server, url, trigger, rng.choice(bigs),
                                                everything, rng)
                for name in CATEGORIES:  # the checks cover every run so far: count anew
                    items = [p for p in getattr(verdict, name) if p not in seen]
                    seen.update(items)
                    setattr(verdict, name, items)
                temps = verdict.audit_found.pop("mail_temp_file", 0)
                if temps > mail_temps:
                    verdict.audit_found["mail_temp_file"] = temps - mail_temps
                    mail_temps = temps
                kills.append(kill)
                verdicts.append(verdict)
                if verdict.problems:
                    RESULTS.parent.mkdir(parents=True, exist_ok=True)
                    (RESULTS.parent / f"faults_web_kill-run{n + 1}.log").write_bytes(
                        server.log.read_bytes())
                print(f"run {n + 1}/{args.runs} {kill.trigger:22} "
                      f"{time.monotonic() - run_started:4.1f} s: mid-upload "
                      f"{kill.mid_upload:d} mid-transition {kill.mid_transition:d} in flight "
                      f"{kill.in_flight}; audit found {dict(verdict.audit_found)}; problems "
                      f"{len(verdict.problems)}", flush=True)
        finally:
            stop_group(server)
    answers: Counter[str] = Counter()
    for r in everything:
        answers[f"{r.kind} {r.status}"] += 1
    found: Counter[str] = Counter()
    for v in verdicts:
        found.update(v.audit_found)
    summary: dict[str, Any] = {
        "fault": "web_kill",
        "runs": len(verdicts),
        "lost": sum(len(v.lost) for v in verdicts),
        "doubled": sum(len(v.doubled) for v in verdicts),
        "half_written": sum(len(v.half_written) for v in verdicts),
        "audit_findings_after_repair": sum(v.audit_findings_after_repair for v in verdicts),
        "audit_unrepairable": sum(len(v.audit_unrepairable) for v in verdicts),
        "emails_missing": sum(len(v.emails_missing) for v in verdicts),
        "emails_checked": verdicts[-1].emails_checked if verdicts else 0,
        "jobs_submitted_201": answers["submit 201"],
        "server_errors": sum(len(v.server_errors) for v in verdicts),
        "stray_files": [p for v in verdicts for p in v.stray_files],
        "mid_upload": sum(k.mid_upload for k in kills),
        "mid_transition": sum(k.mid_transition for k in kills),
        "triggers": dict(Counter(k.trigger for k in kills)),
        "audit_found_before_repair": dict(found),
        "restart_seconds_median": round(statistics.median(k.restart_seconds for k in kills),
                                        2) if kills else None,
        "seconds": round(time.monotonic() - clock, 1),
        "answers": dict(sorted(answers.items())),
        "problems": [p for v in verdicts for p in v.problems][:50],
    }
    report = {
        "command": "bench/faults_web_kill.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "started_utc": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_1m": os.getloadavg()[0]},
        "load": "2 students submitting fixture models (6 KB-367 KB), 1 submitting a "
                f"generated binary STL ({' or '.join(map(str, BIG_MB))} MB), 2 staff: one adding "
                "sliced files, one taking jobs approve → force-confirm → printing → "
                "complete (or reject); one server and schema for all runs, PostgreSQL 15, "
                "no Redis (.eml files)",
        "seed": args.seed,
        "summary": summary,
        "runs": [{"trigger": k.trigger, "mid_upload": k.mid_upload,
                  "mid_transition": k.mid_transition, "in_flight": k.in_flight,
                  "audit_found": dict(v.audit_found), "problems": v.problems[:10]}
                 for k, v in zip(kills, verdicts, strict=True)],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    s = summary
    print(f"{'fault':8} {'runs':>4} {'lost':>4} {'doubled':>7} {'half':>4} {'audit after':>11} "
          f"{'mail missing':>12} {'5xx':>4} {'mid-upload':>10} {'mid-transition':>14} "
          f"{'seconds':>7}")
    print(f"{s['fault']:8} {s['runs']:>4} {s['lost']:>4} {s['doubled']:>7} "
          f"{s['half_written']:>4} {s['audit_findings_after_repair']:>11} "
          f"{s['emails_missing']:>12} {s['server_errors']:>4} {s['mid_upload']:>10} "
          f"{s['mid_transition']:>14} {s['seconds']:>7}")
    print(f"audit found before its repairs: {s['audit_found_before_repair']}; outbox rows "
          f"checked against .eml files: {s['emails_checked']}; kill points {s['triggers']}")
    if s["stray_files"]:
        print(f"unrecorded files left in job folders: {s['stray_files']}")
    for problem in s["problems"][:10]:
        print("   ", problem)
    missed = not (s["mid_upload"] and s["mid_transition"])
    if missed:
        print("the injection missed: no kill mid-upload or none mid-transition")
    bad = any(s[k] for k in ("lost", "doubled", "half_written", "audit_findings_after_repair",
                             "audit_unrepairable", "emails_missing", "server_errors"))
    return 1 if bad or missed else 0


if __name__ == "__main__":
    threading.excepthook = lambda args: print(f"thread failed: {args.exc_value!r}")
    raise SystemExit(main())
