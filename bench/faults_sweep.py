"""Faults of issue 16 on the queue's deadlines, each injected many times at random points:
the sweeper killed between a deadline and its offer (``kill``) and its wall clock jumping
(``clock``). The figure asked for: every due deadline fires once, never early.

    .venv/bin/python bench/faults_sweep.py [--runs 20] [--only kill|clock] [--seed N]

Loopback only, bounded (each run lasts a few seconds). One fresh PostgreSQL schema per
fault, the three starter printers, a queue kept at least six members long (joined through
``QueueService`` in this process). The sweeper is a real process sweeping every second
(``PRINTCORE_SWEEP_SECONDS=1``), without Discord, so the ``discord`` notices are delivered
to its log (``adapters.queue_log.LogSender``, one ``queue notice … message=ID`` line per
delivery): ``printcore sweep`` or the Discord bot's own loops
(``adapters.discord.bot.sweep_forever`` and ``deliver_forever``, the code ``printcore
bot`` runs, here started by ``bench/faults_sweep.py --bot-loops``); for ``kill`` the
killed one (``printcore sweep`` and the bot's loops in turn) is followed by the other
kind, for ``clock`` the first half
of the runs use ``printcore sweep``, the second half the bot's loops. In each run the claim
deadlines of the three offered printers are set on their rows ("planted") to instants a
second or two ahead (two of them often at the same instant), as a claim window lapsing
then; the sweep is what fires them.

- ``kill``: SIGKILL of the sweeper's process group, then a new sweeper. Where, one run in
  three each: ``random`` (a uniform moment from 1 s before to 1.2 s after the deadline: before
  the sweep that fires, inside it, or after it), ``inside`` (the firing sweep pinned inside
  its transaction by a lock on the outbox table, so it has updated the rows and waits to
  insert the notices; killed there and the lock released), ``after_commit`` (the firing
  sweep committed, its notices not yet delivered: ``printcore sweep`` pinned on its
  heartbeat row, which it writes between the sweep and the delivery; the bot's loops
  killed the moment the commit is visible).
- ``clock``: the sweeper runs under libfaketime (``LD_PRELOAD``, the offset read from
  ``FAKETIME_TIMESTAMP_FILE`` at every call with ``FAKETIME_NO_CACHE=1``; the monotonic
  clock is left alone, ``FAKETIME_DONT_FAKE_MONOTONIC=1``, as an NTP step leaves it) with
  ``PRINTCORE_CLAIM_WINDOW_MINUTES=1`` and the access hours of :data:`ACCESS` in
  America/Chicago. A small preloaded shim (:data:`SHIM_C`, built with ``cc``) sends
  ``clock_nanosleep`` on the monotonic clock straight to the kernel: libfaketime 0.9.10
  fails ``time.sleep`` with EINVAL there once its offset changes. Scenarios, in turn:
  ``forward`` (a step of 1 s to an hour, log-uniform, during the open windows), ``backward``
  (the same back, then, after 1.5 s in which nothing may fire, forward again to the true
  time), ``dst_fall`` (the process put at 2026-11-01 06:59:57 UTC, 01:59:57 CDT, deadlines
  planted either side of the change to CST at 07:00 UTC, then a step back by an hour
  across it, then forward again), ``dst_spring`` (put at 2027-03-14 07:59:57 UTC, 01:59:57
  CST; with :data:`ACCESS` the lab closes when the clock jumps past 02:30, at 08:00 UTC,
  and opens at 03:01 CDT, 08:01 UTC; deadlines before and inside that closed minute, then
  a forward step to 08:00:58). Ordinary runs put the process at a fixed Wednesday noon
  CST first, so the figures do not depend on when the bench runs.

What counts, after the last run, from the whole history in the ``events`` and ``outbox``
tables and the sweepers' logs (:func:`audit`: every offer opens a deadline, its
``claim_by`` or the one planted on its printer later; a ``missed`` or ``expired`` event
of that ticket on that printer closes it):

- ``deadlines``: deadlines that came due (planted ones, and the sweepers' own one-minute
  windows that a jump made due); ``fired``: those closed by one lapse;
- ``lost``: a due deadline still open at the end, a printer left idle with members
  queued while the lab is open, an event without its notice row, a notice row never
  delivered (one still leased by a killed deliverer counts apart, as ``held_by_lease``:
  the lease, 2 minutes, then frees it);
- ``doubled``: a lapse with no open offer of that printer to that ticket (a deadline
  firing twice), an offer of a printer already offered or to a member already holding
  an offer, two notice rows for one event, one notice row delivered twice;
- ``early``: a lapse stamped (by the sweeper's own clock, ``events.at``) before its
  deadline; on the two DST days an offer stamped inside a stretch :data:`CLOSED` says
  the lab is closed, or a claim deadline other than what :func:`expected_claim_by` (those
  stretches written out by hand) gives. "Early" is measured against the process's clock
  at the time it fired: a forward step makes that clock read later than the true time,
  so a window may lapse before as much *elapsed* time has passed as it promised. That is
  what correcting a clock that was slow means (the window's end was already past by the
  true time), not a fault of the sweep: it is reported as a figure, the shortfall (the
  deadline in true time minus the true moment it fired, from the offsets the bench set:
  ``shortfall_seconds_max`` and ``shortfalls_over_0_5_s``), not as a failure. It
  includes the bench's own jumps to each run's starting time. A backward step must
  never fire or offer anything again (a lapse there is early or doubled).

Each run waits (up to 10 s) until its planted deadlines fired, the printers were offered
again and the notices went out; ``runs_not_settled_in_10_s`` counts those that did not.
``per_run`` lists where each kill landed (``before the sweep``, ``inside the sweep``,
``after commit``, ``after commit, before delivery``, ``after delivery``; ``not pinned``
when a lock did not catch the sweep within 5 s, killed anyway) or which step was made.

Writes bench/results/faults_sweep.json and prints a table. Needs PostgreSQL, and for
``clock`` libfaketime (Debian package ``faketime``) and a C compiler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests")]

import psycopg  # noqa: E402

from _live import PG_DSN  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "faults_sweep.json"
APP = "pc_faults_sweeper"
LAB_ZONE = "America/Chicago"
#: Access hours for ``clock``: every day; on the two nights of a clock change these are
#: the stretches of :data:`CLOSED` (written out by hand from the module doc of
#: printcore.queue.access_hours).
ACCESS = "daily 00:00-01:30, 01:45-02:30, 03:01-23:00"
_U = UTC


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


#: Where :data:`ACCESS` is closed (UTC) on and around the two nights. 2026-11-01 (clocks
#: back at 07:00 UTC, 02:00 CDT → 01:00 CST): open 05:00–06:30 (00:00–01:30 CDT),
#: 06:45 (01:45 CDT) – 08:30 (02:30 CST, the first time the clock reads it), 09:01 (03:01
#: CST) – 05:00 next day. 2027-03-14 (clocks forward at 08:00 UTC, 02:00 CST → 03:00 CDT):
#: open 06:00–07:30 (00:00–01:30 CST), 07:45 (01:45 CST) – 08:00 (the clock jumps past
#: 02:30), 08:01 (03:01 CDT) – 04:00 next day.
CLOSED = [
    (_t("2026-11-01T04:00:00"), _t("2026-11-01T05:00:00")),  # 23:00-24:00 CDT Saturday
    (_t("2026-11-01T06:30:00"), _t("2026-11-01T06:45:00")),
    (_t("2026-11-01T08:30:00"), _t("2026-11-01T09:01:00")),
    (_t("2027-03-14T05:00:00"), _t("2027-03-14T06:00:00")),  # 23:00-24:00 CST Saturday
    (_t("2027-03-14T07:30:00"), _t("2027-03-14T07:45:00")),
    (_t("2027-03-14T08:00:00"), _t("2027-03-14T08:01:00")),
]
#: Ordinary runs: Wednesday 2026-12-02 12:00 CST (open 03:01–23:00 CST, 09:01–05:00 UTC).
BASE = _t("2026-12-02T18:00:00")
DST_FALL = _t("2026-11-01T06:59:57")
DST_SPRING = _t("2027-03-14T07:59:57")
CLAIM_WINDOW = timedelta(minutes=1)

SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
/* Sleeps on the monotonic clock go to the kernel: libfaketime 0.9.10 with
   FAKETIME_DONT_FAKE_MONOTONIC=1 turns them into EINVAL once its offset changes. */
int clock_nanosleep(clockid_t clock, int flags, const struct timespec *req,
                    struct timespec *rem) {
    if (clock != CLOCK_REALTIME)
        return syscall(SYS_clock_nanosleep, clock, flags, req, rem) == 0 ? 0 : errno;
    int (*next)(clockid_t, int, const struct timespec *, struct timespec *) =
        (int (*)(clockid_t, int, const struct timespec *, struct timespec *))
        dlsym(RTLD_NEXT, "clock_nanosleep");
    return next(clock, flags, req, rem);
}
"""


def libfaketime() -> Path | None:
    """libfaketime.so.1 of the Debian package ``faketime``, or None."""
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    return found[0] if found else None


def build_shim(folder: Path) -> Path:
    """Compile :data:`SHIM_C` into ``folder``; raises CalledProcessError without cc."""
    source, library = folder / "sleep_shim.c", folder / "sleep_shim.so"
    source.write_text(SHIM_C)
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
                   check=True, capture_output=True, timeout=60)
    return library


def expected_claim_by(at: datetime, window: timedelta = CLAIM_WINDOW) -> datetime:
    """``at`` plus ``window`` of open time, skipping :data:`CLOSED` (independent of
    printcore.queue.access_hours: only those stretches, walked in order)."""
    left, now = window, at
    for start, end in CLOSED:
        if end <= now:
            continue
        if now >= start:  # inside a closed stretch: wait for its end
            now = end
            continue
        if now + left <= start:
            break
        left -= start - now
        now = end
    return now + left


def closed_at(at: datetime) -> bool:
    return any(start <= at < end for start, end in CLOSED)


# --- the database and the sweeper ---------------------------------------------------------


class Lab:
    """A fresh schema with the starter printers, the environment for sweepers on it, the
    queue service (this process's clock) to join members, and a connection to read and
    plant. ``close()`` drops the schema."""

    def __init__(self, folder: Path, extra_env: dict[str, str] | None = None) -> None:
        self.schema = f"pc_bench_sweep_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        url = (PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
               + f"?options=-csearch_path%3D{self.schema}")
        self.env = {**os.environ, "PRINTCORE_HOME": str(folder / "home"), "DATABASE_URL": url,
                    "PRINTCORE_SECRET_KEY": "faults-sweep", "PRINTCORE_SWEEP_SECONDS": "1",
                    "PYTHONUNBUFFERED": "1",
                    **(extra_env or {})}
        for key in ("DISCORD_TOKEN", "REDIS_URL", "PRINTCORE_STORAGE"):
            self.env.pop(key, None)
        from entrypoints.bootstrap import bootstrap
        from entrypoints.settings import load_settings

        mine = {**self.env, "PRINTCORE_ACCESS_HOURS": "always"}  # joins at any real time
        self.container = bootstrap(load_settings(mine, env_file=None))
        self.env["DATABASE_URL"] = url + f"&application_name={APP}"
        self.conn = psycopg.connect(PG_DSN, autocommit=True)
        self.conn.execute(f'SET search_path TO "{self.schema}"')
        self.members = 0

    def close(self) -> None:
        self.container.close()
        self.conn.close()
        for attempt in range(10):
            try:
                with psycopg.connect(PG_DSN, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
                return
            except psycopg.errors.DeadlockDetected:
                time.sleep(1 + attempt)

    def top_up(self, queued: int = 6) -> None:
        """Join members until ``queued`` tickets are queued."""
        have = self.conn.execute(
            "SELECT count(*) FROM tickets WHERE status = 'queued'").fetchone()[0]
        for _ in range(queued - have):
            self.members += 1
            self.container.queue.join(f"m{self.members}", f"Member {self.members}", "part",
                                      timedelta(hours=1))

    def offered(self) -> list[tuple[str, int]]:
        return [(r[0], r[1]) for r in self.conn.execute(
            "SELECT name, holder_ticket FROM printers WHERE status = 'offered' ORDER BY name")]

    def plant(self, deadlines: dict[str, datetime]) -> None:
        with self.conn.transaction():
            for name, at in deadlines.items():
                self.conn.execute("UPDATE printers SET claim_deadline = %s WHERE name = %s",
                                  (at, name))

    def last_ids(self) -> tuple[int, int]:
        row = self.conn.execute("SELECT (SELECT coalesce(max(id), 0) FROM events), "
                                "(SELECT coalesce(max(id), 0) FROM outbox)").fetchone()
        return int(row[0]), int(row[1])

    def events_after(self, after: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, subject_id, kind, at, details FROM events WHERE id > %s AND "
            "subject = 'ticket' AND kind IN ('offer', 'missed', 'expired') ORDER BY id",
            (after,)).fetchall()
        return [{"id": r[0], "ticket": r[1], "kind": r[2], "at": r[3],
                 "printer": (r[4] or {}).get("printer"),
                 "claim_by": (r[4] or {}).get("claim_by")} for r in rows]

    def outbox_after(self, after: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, subject_id, kind, status, lease_until, payload FROM outbox "
            "WHERE id > %s AND channel = 'discord' ORDER BY id", (after,)).fetchall()
        return [{"id": r[0], "ticket": r[1], "kind": r[2], "status": r[3], "lease": r[4],
                 "printer": (r[5] or {}).get("printer")} for r in rows]

    def waiting_query(self) -> str | None:
        """The statement a sweeper backend waits on a lock in, or None."""
        row = self.conn.execute(
            "SELECT query FROM pg_stat_activity WHERE application_name = %s "
            "AND wait_event_type = 'Lock'", (APP,)).fetchone()
        return None if row is None else str(row[0])

    def lock_conn(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(PG_DSN)
        conn.execute(f'SET search_path TO "{self.schema}"')
        return conn


@attrs.define
class Sweeper:
    """One sweeper process (``sweep``: ``printcore sweep``; ``bot``: the bot's loops)
    logging to ``log``; ``env`` its environment."""

    kind: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Sweeper:
        command = ([sys.executable, "-m", "entrypoints.cli", "sweep"] if self.kind == "sweep"
                   else [sys.executable, str(Path(__file__).resolve()), "--bot-loops"])
        with self.log.open("ab") as out:
            out.write(b"printcore-bench-start\n")
            out.flush()
            self.process = subprocess.Popen(command, env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


_NOTICE = re.compile(r"queue notice .*\bmessage=(\d+)")


def deliveries(logs: list[Path]) -> Counter[int]:
    """How many times each outbox row was delivered, from the sweepers' logs."""
    seen: Counter[int] = Counter()
    for log in logs:
        if log.exists():
            for line in log.read_text(errors="replace").splitlines():
                if (match := _NOTICE.search(line)) is not None:
                    seen[int(match.group(1))] += 1
    return seen


def wait_for(check: Callable[[], Any], seconds: float, step: float = 0.02) -> Any:
    end = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(step)


# --- one run's tally ------------------------------------------------------------------------


@attrs.define
class Plant:
    printer: str
    ticket: int
    deadline: datetime  # as the sweeper's clock reads it
    offset: float = 0.0  # the sweeper's clock minus the true time when planted
    after: int = 0  # the last event id when planted


@attrs.define
class RunTally:
    """What one run did (its deadlines are counted by :func:`audit`)."""

    run: int
    case: str
    sweeper: str
    first_event: int = 0
    started_at: datetime = attrs.Factory(lambda: datetime.now(UTC))
    kill_point: str | None = None
    settled: bool = False
    seconds: float = 0.0


@attrs.define
class Audit:
    """The whole history of a lab's queue, checked: see the module doc."""

    deadlines: int = 0
    fired: int = 0
    lost: list[str] = attrs.Factory(list)
    doubled: list[str] = attrs.Factory(list)
    early: list[str] = attrs.Factory(list)
    held_by_lease: int = 0
    offers: int = 0
    notices: int = 0
    shortfalls: list[float] = attrs.Factory(list)


def _lapses(events: list[dict[str, Any]], plant: Plant) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] in ("missed", "expired")
            and e["ticket"] == plant.ticket and e["printer"] == plant.printer]


def settled(lab: Lab, before: tuple[int, int], plants: list[Plant], logs: list[Path]) -> bool:
    """Every planted deadline fired, its printer offered again, every notice row of the
    run delivered (or held by a lease)."""
    events = lab.events_after(before[0])
    if any(not _lapses(events, p) for p in plants):
        return False
    offered = {e["printer"] for e in events if e["kind"] == "offer"}
    if any(p.printer not in offered for p in plants):
        return False
    seen = deliveries(logs)
    rows = lab.outbox_after(before[1])
    if len(rows) < len(events):
        return False
    return all(seen[r["id"]] or _leased(r) for r in rows)


def _leased(row: dict[str, Any]) -> bool:
    return row["status"] == "pending" and row["lease"] is not None


def audit(lab: Lab, plants: list[Plant], logs: list[Path], runs: list[RunTally],
          clock: FakeClock | None = None, dst: bool = False) -> Audit:
    """Walk every offer and lapse of the lab's history in commit order: each offer opens a
    deadline (its ``claim_by``, or the one planted on its printer later), each lapse must
    close the open deadline of its printer and ticket, at or after it; what is still open
    and due at the end is lost. Then each event against its notice row, and each row
    against its deliveries."""
    events, rows, seen = lab.events_after(0), lab.outbox_after(0), deliveries(logs)
    result = Audit()
    end_now = clock.now() if clock is not None else datetime.now(UTC)

    def run_of(event_id: int) -> int:
        return next((i for i in range(len(runs) - 1, -1, -1)
                     if runs[i].first_event < event_id), -1)

    def true(stamp: datetime, event_id: int) -> datetime:
        if clock is None:
            return stamp
        i = run_of(event_id)
        since = runs[i].started_at if i >= 0 else datetime.min.replace(tzinfo=UTC)
        until = runs[i + 1].started_at if i + 1 < len(runs) else datetime.now(UTC)
        return clock.true_time(stamp, since, until)

    def tag(event_id: int) -> str:
        i = run_of(event_id)
        return ("before run 1" if i < 0 else
                f"run {runs[i].run} ({runs[i].case}, {runs[i].sweeper})")

    pending = sorted(plants, key=lambda p: p.after)
    open_: dict[str, dict[str, Any]] = {}
    holding: dict[int, str] = {}
    for e in events:
        while pending and pending[0].after < e["id"]:
            plant = pending.pop(0)
            offer = open_.get(plant.printer)
            if offer is None or offer["ticket"] != plant.ticket:
                result.lost.append(f"{tag(plant.after + 1)}: planted {plant.printer} for "
                                   f"ticket {plant.ticket}, not its open offer")
                continue
            offer["deadline"] = plant.deadline
            offer["true_deadline"] = plant.deadline - timedelta(seconds=plant.offset)
        if e["kind"] == "offer":
            result.offers += 1
            if e["printer"] in open_:
                result.doubled.append(f"{tag(e['id'])}: {e['printer']} offered to ticket "
                                      f"{e['ticket']} while offered to "
                                      f"{open_[e['printer']]['ticket']}")
            if e["ticket"] in holding:
                result.doubled.append(f"{tag(e['id'])}: ticket {e['ticket']} offered "
                                      f"{e['printer']} while offered {holding[e['ticket']]}")
            claim_by = datetime.fromisoformat(e["claim_by"])
            open_[e["printer"]] = {"ticket": e["ticket"], "deadline": claim_by,
                                   "true_deadline": true(e["at"], e["id"]) + (claim_by - e["at"])}
            holding[e["ticket"]] = e["printer"]
            if dst and closed_at(e["at"]):
                result.early.append(f"{tag(e['id'])}: {e['printer']} offered at {e['at']} "
                                    "while the lab is closed")
            if dst and claim_by != expected_claim_by(e["at"]) and _near_dst(e["at"]):
                result.early.append(f"{tag(e['id'])}: offered at {e['at']}, claim by "
                                    f"{claim_by}, expected {expected_claim_by(e['at'])}")
            continue
        offer = open_.get(e["printer"])
        if offer is None or offer["ticket"] != e["ticket"]:
            result.doubled.append(f"{tag(e['id'])}: ticket {e['ticket']} {e['kind']} on "
                                  f"{e['printer']} with no open offer of it")
            continue
        del open_[e["printer"]]
        holding.pop(e["ticket"], None)
        result.deadlines += 1
        result.fired += 1
        if e["at"] < offer["deadline"]:
            result.early.append(f"{tag(e['id'])}: {e['printer']} lapsed at {e['at']}, its "
                                f"deadline {offer['deadline']}")
        result.shortfalls.append(
            (offer["true_deadline"] - true(e["at"], e["id"])).total_seconds())
    for name, offer in open_.items():
        if offer["deadline"] <= end_now - timedelta(seconds=2):
            result.deadlines += 1
            result.lost.append(f"{name}'s deadline {offer['deadline']} for ticket "
                               f"{offer['ticket']} never fired")
    idle = lab.conn.execute("SELECT count(*) FROM printers WHERE status = 'idle'").fetchone()[0]
    queued = lab.conn.execute(
        "SELECT count(*) FROM tickets WHERE status = 'queued'").fetchone()[0]
    if idle and queued and not closed_at(end_now):
        result.lost.append(f"at the end {idle} printer(s) idle with {queued} queued")
    kinds = {"offer": "offered", "missed": "missed", "expired": "expired"}
    wanted = Counter((e["ticket"], kinds[e["kind"]], e["printer"]) for e in events)
    have = Counter((r["ticket"], r["kind"], r["printer"]) for r in rows)
    for key in wanted.keys() | have.keys():
        if have[key] > wanted[key]:
            result.doubled.append(f"{have[key]} notice rows for {wanted[key]} {key}")
        elif have[key] < wanted[key]:
            result.lost.append(f"{have[key]} notice rows for {wanted[key]} {key}")
    result.notices = len(rows)
    for row in rows:
        n = seen[row["id"]]
        if n > 1:
            result.doubled.append(f"notice {row['id']} ({row['kind']}, ticket {row['ticket']}) "
                                  f"delivered {n} times")
        elif n == 0 and _leased(row):
            result.held_by_lease += 1
        elif n == 0:
            result.lost.append(f"notice {row['id']} ({row['kind']}, ticket {row['ticket']}, "
                               f"{row['status']}) never delivered")
    return result


def _near_dst(at: datetime) -> bool:
    """Within a day of one of the two clock changes :data:`CLOSED` covers."""
    return any(abs((at - night).total_seconds()) < 86400 for night in (DST_FALL, DST_SPRING))


# --- kill ---------------------------------------------------------------------------------

KILL_POINTS = ("random", "inside", "after_commit")


def kill_run(lab: Lab, n: int, point: str, rng: random.Random, sweeper: Sweeper,
             then: Sweeper, logs: list[Path]) -> tuple[RunTally, Sweeper, list[Plant]]:
    """One kill: plant, kill ``sweeper`` at ``point``, start ``then`` (a sweeper of the
    same or the other kind), wait until it has fired them; returns the running sweeper
    and the planted deadlines."""
    started = time.monotonic()
    kind = sweeper.kind
    lab.top_up()
    wait_for(lambda: len(lab.offered()) == 3, 5)
    before = lab.last_ids()
    tally = RunTally(n, point, f"{kind}->{then.kind}", first_event=before[0])
    first = datetime.now(UTC) + timedelta(seconds=rng.uniform(0.3, 1.2))
    plants = [Plant(name, ticket, first + timedelta(seconds=rng.choice((0.0, 0.0,
                                                                       rng.uniform(0, 0.6)))),
                    after=before[0])
              for name, ticket in lab.offered()]
    holder: psycopg.Connection[Any] | None = None
    try:
        if point == "random":
            lab.plant({p.printer: p.deadline for p in plants})
            at = first + timedelta(seconds=rng.uniform(-1.0, 1.2))
            time.sleep(max((at - datetime.now(UTC)).total_seconds(), 0))
        elif point == "inside":
            holder = lab.lock_conn()
            holder.execute("LOCK TABLE outbox IN EXCLUSIVE MODE")
            lab.plant({p.printer: p.deadline for p in plants})
            pinned = wait_for(lambda: "outbox" in (lab.waiting_query() or ""), 5)
            tally.kill_point = "inside the sweep" if pinned else "not pinned"
        elif kind == "sweep":  # after_commit: the heartbeat written between sweep and delivery
            holder = lab.lock_conn()
            holder.execute("SELECT value FROM settings WHERE key = 'heartbeat:sweeper' "
                           "FOR UPDATE")
            wait_for(lambda: "settings" in (lab.waiting_query() or ""), 3)
            now = datetime.now(UTC)
            for p in plants:
                p.deadline = min(p.deadline, now)
            lab.plant({p.printer: p.deadline for p in plants})
            holder.commit()  # let the idle sweep's beat through, then hold the next one
            wait_for(lambda: "settings" not in (lab.waiting_query() or ""), 2)
            holder.execute("SELECT value FROM settings WHERE key = 'heartbeat:sweeper' "
                           "FOR UPDATE")
            pinned = wait_for(lambda: "settings" in (lab.waiting_query() or "")
                              and all(_lapses(lab.events_after(before[0]), p) for p in plants),
                              5)
            tally.kill_point = "after commit" if pinned else "not pinned"
        else:  # the bot's loops: kill as soon as the commit shows
            lab.plant({p.printer: p.deadline for p in plants})
            wait_for(lambda: any(_lapses(lab.events_after(before[0]), p) for p in plants), 5,
                     step=0.002)
        sweeper.kill()
    finally:
        if holder is not None:
            holder.rollback()
            holder.close()
    if tally.kill_point is None:
        fired = [bool(_lapses(lab.events_after(before[0]), p)) for p in plants]
        rows = lab.outbox_after(before[1])
        seen = deliveries(logs)
        tally.kill_point = ("before the sweep" if not any(fired) else
                            "after commit, before delivery" if any(not seen[r["id"]]
                                                                   for r in rows)
                            else "after delivery")
    sweeper = then.start()
    tally.settled = bool(wait_for(lambda: settled(lab, before, plants, logs), 10, step=0.1))
    tally.seconds = round(time.monotonic() - started, 2)
    return tally, sweeper, plants


def run_kill(runs: int, rng: random.Random, keep_logs: bool = True) -> dict[str, Any]:
    """``runs`` kills on one lab; the summary (with ``keep_logs``, the sweepers' logs go
    to bench/results when something was lost, doubled or early)."""
    tallies: list[RunTally] = []
    plants: list[Plant] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lab = Lab(folder)
        logs = [folder / "sweep.log", folder / "bot.log"]
        try:
            lab.top_up()
            sweepers = {kind: Sweeper(kind, lab.env, log) for kind, log in
                        zip(("sweep", "bot"), logs, strict=True)}
            current = sweepers["sweep"].start()
            for n in range(runs):
                # Killed: sweep, bot, sweep... each followed by the other kind.
                then = sweepers["bot" if n % 2 == 0 else "sweep"]
                wait_for(lambda s=current: _swept_once(s), 10, step=0.1)
                point = KILL_POINTS[(n // 2) % 3]
                tally, current, planted = kill_run(lab, n + 1, point, rng, current, then,
                                                   logs)
                tallies.append(tally)
                plants += planted
            current.stop()
            found = audit(lab, plants, logs, tallies)
            if keep_logs:
                _keep_logs_of(found, logs, "kill")
        finally:
            for s in locals().get("sweepers", {}).values():
                s.stop()
            lab.close()
    return _summary(found, tallies, "kill")


def _swept_once(sweeper: Sweeper) -> bool:
    """The sweeper has started and swept (its log says so), so a kill finds it looping."""
    text = sweeper.log.read_text(errors="replace") if sweeper.log.exists() else ""
    return sweeper.alive() and "sweep" in text[text.rfind("printcore-bench-start") + 21:]


def _keep_logs_of(found: Audit, logs: list[Path], fault: str) -> None:
    if found.lost or found.doubled or found.early:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        for log in logs:
            if log.exists():
                (RESULTS.parent / f"faults_sweep-{fault}-{log.name}").write_text(
                    log.read_text(errors="replace"))


# --- clock --------------------------------------------------------------------------------


@attrs.define
class FakeClock:
    """The offset file a faked sweeper reads, with the history of offsets (true time of
    each change, seconds) to map its stamps back to true time."""

    path: Path
    history: list[tuple[datetime, float]] = attrs.Factory(list)

    def set(self, offset: float) -> None:
        offset = float(round(offset))  # libfaketime reads whole seconds here
        self.path.write_text(f"{offset:+.0f}\n")
        self.history.append((datetime.now(UTC), offset))

    def put_at(self, target: datetime) -> None:
        self.set((target - datetime.now(UTC)).total_seconds())

    @property
    def offset(self) -> float:
        return self.history[-1][1] if self.history else 0.0

    def now(self) -> datetime:
        """What the sweeper's clock reads now."""
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def true_time(self, stamp: datetime, since: datetime, until: datetime) -> datetime:
        """The true time at which the sweeper's clock read ``stamp``, among the offsets
        in force between the true times ``since`` and ``until`` (the latest that fits,
        0.3 s of slack)."""
        slack = timedelta(seconds=0.3)
        fits = []
        for i, (at, off) in enumerate(self.history):
            end = self.history[i + 1][0] if i + 1 < len(self.history) else datetime.now(UTC)
            true = stamp - timedelta(seconds=off)
            if end >= since and at <= until and at - slack <= true <= end + slack:
                fits.append(true)
        return fits[-1] if fits else stamp - timedelta(seconds=self.offset)


CLOCK_CASES = ("forward", "backward", "dst_fall", "dst_spring")


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def clock_run(lab: Lab, n: int, case: str, rng: random.Random, clock: FakeClock,
              sweeper: Sweeper) -> tuple[RunTally, list[Plant]]:
    """One clock case on the running faked ``sweeper``; the run and its planted
    deadlines."""
    started = time.monotonic()
    lab.top_up()
    tally = RunTally(n, case, sweeper.kind, first_event=lab.last_ids()[0])
    if case in ("forward", "backward"):
        clock.put_at(BASE + timedelta(minutes=10 * n))
    else:
        clock.put_at(DST_FALL if case == "dst_fall" else DST_SPRING)
    wait_for(lambda: len(lab.offered()) == 3, 8)
    time.sleep(1.2)  # a sweep at the new time: whatever is due there fires before planting
    lab.top_up()
    wait_for(lambda: len(lab.offered()) == 3, 5)
    before = lab.last_ids()
    now = clock.now()
    if case.startswith("dst"):  # dst_fall: either side of 07:00 UTC, the change to CST;
        # dst_spring: before 08:00 UTC, and twice inside the closed minute after it
        base = DST_FALL if case == "dst_fall" else DST_SPRING
        instants = [max(base + timedelta(seconds=s), now + timedelta(seconds=0.3))
                    for s in (2.5, 4.5, 5.5)]
    else:
        first = now + timedelta(seconds=rng.uniform(1.5, 3.0))
        instants = [first + timedelta(seconds=rng.choice((0.0, 0.0, rng.uniform(0, 0.5))))
                    for _ in range(3)]
    plants = [Plant(name, ticket, at, clock.offset, before[0])
              for (name, ticket), at in zip(lab.offered(), instants, strict=True)]
    lab.plant({p.printer: p.deadline for p in plants})
    logs = [sweeper.log]
    if case == "forward":
        time.sleep(rng.uniform(0.3, 1.2))
        step = _log_uniform(rng, 1, 3600)
        clock.set(clock.offset + step)
        tally.kill_point = f"+{step:.0f} s"
    elif case == "backward":
        time.sleep(rng.uniform(0.3, 1.2))
        step = _log_uniform(rng, 1, 3600)
        true_offset = clock.offset
        clock.set(true_offset - step)
        tally.kill_point = f"-{step:.0f} s"
        time.sleep(1.5)  # nothing may fire here unless its deadline came again
        clock.set(true_offset)
    elif case == "dst_fall":
        wait_for(lambda: all(_lapses(lab.events_after(before[0]), p) for p in plants), 8,
                 step=0.1)
        back = clock.offset
        clock.set(back - 3600)  # back across the change: 07:00 UTC -> 06:00 UTC
        tally.kill_point = "-3600 s across 07:00 UTC"
        time.sleep(1.5)
        clock.set(back)
    else:  # dst_spring: wait for the lapses in the closed minute, then step to 08:00:58
        wait_for(lambda: all(_lapses(lab.events_after(before[0]), p) for p in plants), 8,
                 step=0.1)
        time.sleep(1.2)  # a sweep or so inside the closed minute: no offer may come
        clock.put_at(_t("2027-03-14T08:00:58.5"))
        tally.kill_point = "+~55 s inside the closed minute"
    tally.settled = bool(wait_for(lambda: settled(lab, before, plants, logs), 10, step=0.1))
    tally.seconds = round(time.monotonic() - started, 2)
    return tally, plants


def run_clock(runs: int, rng: random.Random, keep_logs: bool = True) -> dict[str, Any]:
    """``runs`` clock cases on one lab; the summary (``keep_logs`` as for run_kill)."""
    lib = libfaketime()
    if lib is None:
        raise SystemExit("libfaketime is missing: apt-get install -y faketime")
    tallies: list[RunTally] = []
    plants: list[Plant] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clock = FakeClock(folder / "faketime")
        clock.set(0)
        shim = build_shim(folder)
        lab = Lab(folder, clock_env(lib, shim, clock.path))
        sweeper: Sweeper | None = None
        logs: list[Path] = []
        try:
            for n in range(runs):
                kind = "sweep" if n < (runs + 1) // 2 else "bot"
                if sweeper is None or sweeper.kind != kind:
                    if sweeper is not None:
                        sweeper.stop()
                    sweeper = Sweeper(kind, lab.env, folder / f"{kind}.log").start()
                    logs.append(sweeper.log)
                    wait_for(lambda s=sweeper: _swept_once(s), 10, step=0.1)
                tally, planted = clock_run(lab, n + 1, CLOCK_CASES[n % len(CLOCK_CASES)],
                                           rng, clock, sweeper)
                tallies.append(tally)
                plants += planted
            found = audit(lab, plants, logs, tallies, clock, dst=True)
            if keep_logs:
                _keep_logs_of(found, logs, "clock")
        finally:
            if sweeper is not None:
                sweeper.stop()
            lab.close()
    return _summary(found, tallies, "clock")


def clock_env(lib: Path, shim: Path, offset_file: Path) -> dict[str, str]:
    """The environment of a sweeper whose wall clock reads ``offset_file``."""
    return {"LD_PRELOAD": f"{shim}:{lib}", "FAKETIME_TIMESTAMP_FILE": str(offset_file),
            "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "PRINTCORE_CLAIM_WINDOW_MINUTES": "1", "PRINTCORE_ACCESS_HOURS": ACCESS,
            "PRINTCORE_TIMEZONE": LAB_ZONE}


# --- the bot's loops without Discord ------------------------------------------------------


def bot_loops() -> int:
    """The Discord bot's sweep and delivery loops (``adapters.discord.bot``), delivering the
    ``discord`` channel to the log instead of Discord."""
    from adapters.discord.bot import deliver_forever, sweep_forever, sweep_once
    from adapters.queue_log import LogSender
    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from printcore.outbox import OutboxService

    settings = load_settings(env_file=None)
    container = bootstrap(settings)
    outbox = OutboxService(uow=container.queue.uow, clock=container.queue.clock,
                           senders={"discord": LogSender()})

    async def both() -> None:
        wake = asyncio.Event()
        await sweep_once(container.queue)
        print("bot loops: swept once", flush=True)
        await asyncio.gather(
            sweep_forever(container.queue, float(settings.sweep_seconds), after=wake.set),
            deliver_forever(outbox, 2.0, wake))

    try:
        asyncio.run(both())
    except KeyboardInterrupt:
        pass
    finally:
        container.close()
    return 0


# --- the report ---------------------------------------------------------------------------


def _summary(found: Audit, tallies: list[RunTally], fault: str) -> dict[str, Any]:
    shortfalls = found.shortfalls or [0.0]
    return {
        "fault": fault,
        "runs": len(tallies),
        "deadlines": found.deadlines,
        "fired": found.fired,
        "lost": len(found.lost),
        "doubled": len(found.doubled),
        "early": len(found.early),
        "held_by_lease": found.held_by_lease,
        "offers": found.offers,
        "notices": found.notices,
        "runs_not_settled_in_10_s": sum(1 for t in tallies if not t.settled),
        "shortfall_seconds_max": round(max(shortfalls), 3),
        "shortfalls_over_0_5_s": sum(1 for s in shortfalls if s > 0.5),
        "run_seconds_median": round(statistics.median([t.seconds for t in tallies]), 2)
        if tallies else None,
        "cases": dict(Counter(f"{t.case}/{t.sweeper}" for t in tallies)),
        "kill_points": dict(Counter(t.kill_point for t in tallies if t.kill_point))
        if fault == "kill" else None,
        "per_run": [f"{t.run} {t.case}/{t.sweeper}: {t.kill_point} ({t.seconds} s)"
                    for t in tallies],
        "problems": (found.lost + found.doubled + found.early)[:50],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", choices=["kill", "clock"])
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--bot-loops", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bot_loops:
        return bot_loops()
    rng = random.Random(args.seed)
    started = datetime.now(UTC)
    results = []
    for fault, run in (("kill", run_kill), ("clock", run_clock)):
        if args.only in (None, fault):
            begun = time.monotonic()
            result = run(args.runs, rng)
            result["seconds"] = round(time.monotonic() - begun, 1)
            results.append(result)
    report = {
        "command": "bench/faults_sweep.py " + " ".join(argv if argv is not None
                                                       else sys.argv[1:]),
        "started_utc": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_1m": os.getloadavg()[0]},
        "setup": "3 printers, >= 6 queued members, sweep every 1 s, PostgreSQL; clock: "
                 f"claim window 1 min, access hours {ACCESS!r} ({LAB_ZONE})",
        "seed": args.seed,
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() and args.only else {}
    if args.only and existing.get("results"):
        kept = [r for r in existing["results"] if r["fault"] != args.only]
        report["results"] = kept + results
    RESULTS.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"{'fault':6} {'runs':>4} {'deadlines':>9} {'fired':>5} {'lost':>4} {'doubled':>7} "
          f"{'early':>5} {'leased':>6} {'short max s':>11} {'s/run':>5} {'total s':>7}")
    for r in results:
        print(f"{r['fault']:6} {r['runs']:>4} {r['deadlines']:>9} {r['fired']:>5} "
              f"{r['lost']:>4} {r['doubled']:>7} {r['early']:>5} {r['held_by_lease']:>6} "
              f"{r['shortfall_seconds_max']:>11} {r['run_seconds_median']!s:>5} "
              f"{r['seconds']:>7}")
        for problem in r["problems"][:10]:
            print("   ", problem)
    return 1 if any(r["lost"] or r["doubled"] or r["early"] for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
