"""Issue 16: the worker and Redis killed (SIGKILL) and restarted during a stream of state
changes; every committed email reaches the SMTP server exactly once (by Message-ID).

The helpers here are shared with bench/faults_mail.py (the same fault ×20 at random
points): :class:`TimedSmtp` stamps each accepted message with the time and the client's
TCP port; :func:`smtp_ports_of` reads a worker's SMTP connections from /proc before it is
killed; :class:`Load` is the stream of state changes; :func:`once_tally` compares the
outbox with what the server accepted.

The one duplicate the design cannot prevent is a kill after the server's 250 and before
the worker commits ``sent`` (tests/delivery/test_delivery_worker.py): a duplicate is "in
the known window" when its first copy came over a connection of a worker killed after
that copy was accepted (or just before: the worker had handed it over whole, and died
waiting for the 250) and the row was still not ``sent`` once the worker was dead
(:func:`in_known_window`). Any other duplicate, and any row never accepted, fails.

Also here, found by that bench: processes starting together on a fresh PostgreSQL
database (its two workers booting side by side) each ran the migrations and all but one
exited 1; migrations now queue on an advisory lock.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from _delivery import (
    ADA,
    OwnRedis,
    WorkerProcess,
    approve,
    open_container,
    settings_env,
    submit,
    wait_until,
    whole_life,
)
from sqlalchemy import select

from _smtp import SmtpServer, _Handler
from adapters.mail.sender import message_id_for
from adapters.sql.tables import outbox
from entrypoints.bootstrap import Container

_ROW_ID = re.compile(r"<printcore\.outbox\.(\d+)\.")


# --- helpers (also used by bench/faults_mail.py) -----------------------------------------


@attrs.frozen
class Accepted:
    """One message the SMTP server accepted: its Message-ID, when (``time.monotonic``,
    just before the 250 is written) and the client's TCP port."""

    message_id: str
    at: float
    port: int


class _TimedHandler(_Handler):
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        if answer.startswith("250"):
            assert isinstance(self.server, TimedSmtp)
            with self.server.lock:  # the handler runs on the server's one event loop
                message = self.server.received[-1].message
            self.server.stamp(Accepted(str(message["Message-ID"]), time.monotonic(),
                                       int(session.peer[1])))
        return answer


class TimedSmtp(SmtpServer):
    """tests/_smtp.py's server, keeping an :class:`Accepted` per accepted message."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self._accepted: list[Accepted] = []

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self._controller = Controller(_TimedHandler(self), hostname="127.0.0.1",
                                      port=self.port)
        self._controller.start()

    def stamp(self, accepted: Accepted) -> None:
        with self.lock:
            self._accepted.append(accepted)

    def accepted(self) -> list[Accepted]:
        with self.lock:
            return list(self._accepted)


def smtp_ports_of(pid: int, smtp_port: int) -> set[int]:
    """The local TCP ports of process ``pid``'s connections to ``smtp_port`` (Linux
    /proc; an empty set once the process is gone)."""
    inodes: set[str] = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = fd.readlink().as_posix()
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        tables = [Path(f"/proc/{pid}/net/{name}").read_text() for name in ("tcp", "tcp6")]
    except OSError:
        return set()
    ports = set()
    for table in tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == smtp_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


@attrs.frozen
class Kill:
    """Workers SIGKILLed at ``at`` (``time.monotonic``): the local ports of the SMTP
    connections they held, and the outbox rows not ``sent`` once they were dead."""

    at: float
    ports: frozenset[int]
    not_sent: frozenset[int]


class Load(threading.Thread):
    """State changes that mail, one after another with a short random pause (0–20 ms),
    until :meth:`finish`: submit (1 email), submit + approve (2), submit + reject (2), a
    whole life (5). ``errors``: what a change raised (none should)."""

    def __init__(self, container: Container, rng: random.Random) -> None:
        super().__init__(name="mail-load", daemon=True)
        self.container = container
        self.rng = random.Random(rng.random())
        self.done = threading.Event()
        self.changes = 0
        self.errors: list[str] = []

    def run(self) -> None:
        c = self.container
        while not self.done.is_set():
            step = self.rng.random()
            try:
                if step < 0.35:
                    submit(c, email=f"s{self.changes}@university.edu")
                elif step < 0.65:
                    approve(c, submit(c))
                elif step < 0.85:
                    c.requests.reject(submit(c), ADA, custom_reason="Walls too thin.")
                else:
                    whole_life(c)
            except Exception as err:  # listed: a state change must not fail
                self.errors.append(repr(err)[:300])
            else:
                self.changes += 1
            self.done.wait(self.rng.uniform(0, 0.02))

    def finish(self) -> None:
        self.done.set()
        self.join(30)


def not_sent_ids(container: Container) -> frozenset[int]:
    """Ids of the outbox rows not ``sent`` (one indexed query, cheap enough to poll)."""
    with container.engine.connect() as conn:
        return frozenset(conn.execute(
            select(outbox.c.id).where(outbox.c.status != "sent")).scalars())


def all_sent(container: Container) -> bool:
    return not not_sent_ids(container)


def in_known_window(first: Accepted, row_id: int, kill: Kill) -> bool:
    """Whether ``kill`` fell between the server's acceptance of a row's first copy and
    the commit of ``sent``: the copy came over a connection of a worker killed then, the
    server accepted it before (or, the client having handed it over whole before dying,
    at most 1 s after) the kill, and the row was still not ``sent`` once it was dead."""
    return (first.port in kill.ports and first.at <= kill.at + 1.0
            and row_id in kill.not_sent)


def once_tally(container: Container, smtp: TimedSmtp, kills: list[Kill]) -> dict[str, Any]:
    """``committed`` (outbox rows), ``delivered`` (rows accepted at least once),
    ``accepted`` (messages), ``lost``, ``doubled``, ``doubled_in_known_window`` (see the
    module doc) with ``window_hits`` (row, copies, ms from the first 250 to the kill) and
    ``problems`` (every loss, every other duplicate, any unknown Message-ID)."""
    domain = container.email_sender.renderer.domain
    rows = container.outbox.list(limit=1_000_000)
    expected = {message_id_for(m, domain): m for m in rows}
    accepted = smtp.accepted()
    counts = Counter(a.message_id for a in accepted)
    lost = [f"lost: row {m.id} ({m.kind}, {m.status}, attempts {m.attempts}, "
            f"{m.last_error}) never accepted" for mid, m in expected.items() if not counts[mid]]
    lost += [f"lost: row {m.id} accepted but {m.status} (attempts {m.attempts}, "
             f"{m.last_error})" for mid, m in expected.items()
             if counts[mid] and m.status != "sent"]
    strangers = [f"unknown Message-ID accepted: {mid}" for mid in counts if mid not in expected]
    in_window: list[dict[str, Any]] = []
    other: list[str] = []
    for mid, n in counts.items():
        if n < 2:
            continue
        copies = [a for a in accepted if a.message_id == mid]
        first = copies[0]
        found = _ROW_ID.match(mid)
        row_id = int(found.group(1)) if found else -1
        hits = [k for k in kills if in_known_window(first, row_id, k)]
        if hits:
            in_window.append({"row": row_id, "copies": n,
                              "kill_after_250_ms": round((hits[0].at - first.at) * 1000, 2)})
            continue
        near = min(kills, key=lambda k: abs(k.at - first.at), default=None)
        where = "no kill" if near is None else (
            f"nearest kill {(near.at - first.at) * 1000:+.1f} ms after the first 250, "
            f"its port {'among' if first.port in near.ports else 'not among'} the killed "
            f"worker's, row {'not yet' if row_id in near.not_sent else 'already'} sent then")
        other.append(f"doubled outside the known window: row {row_id} accepted {n} times "
                     f"(ports {[a.port for a in copies]}, "
                     f"{[round((a.at - first.at) * 1000, 1) for a in copies]} ms; {where})")
    return {
        "committed": len(expected),
        "delivered": sum(1 for mid in expected if counts[mid]),
        "accepted": len(accepted),
        "lost": len(lost),
        "doubled": len(in_window) + len(other),
        "doubled_in_known_window": len(in_window),
        "window_hits": in_window,
        "problems": lost + other + strangers,
    }


# --- the test ------------------------------------------------------------------------------


@pytest.fixture()
def timed_smtp() -> Iterator[TimedSmtp]:
    server = TimedSmtp()
    server.start()
    yield server
    server.stop()


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_worker_and_redis_killed_during_a_stream_every_email_once(
    home: Path, timed_smtp: TimedSmtp, own_redis: OwnRedis, database: str,
    workers: list[WorkerProcess],
) -> None:
    """Two workers; a thread makes state changes throughout. Four faults, 1.2 s apart:
    one worker SIGKILLed; Redis SIGKILLed (every queued message gone); both workers and
    Redis; one worker again. Each comes back after 0.3–0.8 s. Then the stream stops, and
    within 30 s every row is ``sent``, each accepted by the SMTP server once; a repeat is
    allowed only in the known window (and printed)."""
    rng = random.Random(16)
    env = settings_env(home, timed_smtp, own_redis.url, database,
                       PRINTCORE_OUTBOX_LEASE_SECONDS="3")
    kills: list[Kill] = []

    def kill(chosen: list[int]) -> None:
        ports = {p for i in chosen for p in smtp_ports_of(workers[i].pid, timed_smtp.port)}
        at = time.monotonic()
        for i in chosen:
            workers[i].kill()
        kills.append(Kill(at, frozenset(ports), not_sent_ids(container)))

    with open_container(env) as container:
        workers.extend(WorkerProcess(env).start() for _ in range(2))
        load = Load(container, rng)
        load.start()
        try:
            for who, redis_too in (([0], False), ([], True), ([0, 1], True), ([1], False)):
                time.sleep(1.2)
                kill(who)
                if redis_too:
                    own_redis.stop()
                time.sleep(rng.uniform(0.3, 0.8))
                if redis_too:
                    own_redis.start()
                for i in who:
                    workers[i] = WorkerProcess(env).start()
                    workers.append(workers[i])  # stopped by the fixture too
            time.sleep(1.0)
        finally:
            load.finish()
        assert load.errors == []
        assert load.changes > 20, load.changes
        wait_until(lambda: all_sent(container), 30, what="every outbox row sent")
        time.sleep(1.0)  # a late second copy would arrive now
        tally = once_tally(container, timed_smtp, kills)
        print("window hits:", tally["window_hits"])
        assert tally["problems"] == []
        assert tally["lost"] == 0 and tally["delivered"] == tally["committed"]
        assert tally["doubled"] == tally["doubled_in_known_window"]


def test_known_window_is_the_killed_workers_connection_before_sent() -> None:
    """The classification itself: the first copy over a killed worker's connection, the
    row not ``sent`` after the kill, accepted before the kill or up to 1 s after (the
    message was written whole before the worker died) is in the window; another
    connection, a row already sent, or an acceptance long after the kill is not."""
    kill = Kill(100.0, frozenset({4000}), frozenset({7}))
    assert in_known_window(Accepted("<m>", 99.99, 4000), 7, kill)
    assert in_known_window(Accepted("<m>", 100.005, 4000), 7, kill)
    assert not in_known_window(Accepted("<m>", 99.99, 4001), 7, kill)
    assert not in_known_window(Accepted("<m>", 99.99, 4000), 8, kill)
    assert not in_known_window(Accepted("<m>", 101.5, 4000), 7, kill)


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_worker_killed_with_the_message_handed_over_repeats_it_once(
    home: Path, timed_smtp: TimedSmtp, redis_db: Any, database: str,
    workers: list[WorkerProcess],
) -> None:
    """The unclosable window, made to happen: when the SMTP server holds the whole DATA
    of message 3 it SIGKILLs the (one-thread) worker and then accepts the message, so the
    server has it and the worker never learnt. A new worker sends it again once the lease
    (3 s) runs out: the one repeat, same Message-ID, counted in the known window; the
    other five rows once each."""
    env = settings_env(home, timed_smtp, redis_db.url, database,
                       PRINTCORE_OUTBOX_LEASE_SECONDS="3")
    seen: list[str] = []
    kills: list[Kill] = []
    victim: list[WorkerProcess] = []

    def on_data(message: Any) -> None:
        seen.append(str(message["Message-ID"]))
        if len(seen) == 3 and victim:
            ports = smtp_ports_of(victim[0].pid, timed_smtp.port)
            at = time.monotonic()
            victim[0].kill()
            kills.append(Kill(at, frozenset(ports), not_sent_ids(container)))

    timed_smtp.on_data = on_data
    with open_container(env) as container:
        for n in range(6):
            submit(container, email=f"student{n}@university.edu")
        first = WorkerProcess(env, threads=1)
        workers.append(first)
        victim.append(first)
        first.start(wait=False)
        assert first.process is not None
        assert first.process.wait(30) == -9
        wait_until(lambda: kills, 10, what="the kill noted")  # on the SMTP server's thread
        assert len(kills) == 1 and kills[0].ports
        workers.append(WorkerProcess(env, threads=1).start())
        wait_until(lambda: all_sent(container), 30, what="every outbox row sent")
        time.sleep(1.0)
        tally = once_tally(container, timed_smtp, kills)
        assert tally["problems"] == [], tally
        assert tally["committed"] == tally["delivered"] == 6
        assert tally["doubled"] == tally["doubled_in_known_window"] == 1
        assert Counter(a.message_id for a in timed_smtp.accepted())[seen[2]] == 2
        assert tally["window_hits"][0]["kill_after_250_ms"] < 0  # killed before the 250


_BOOT = """
import sys, time
from adapters.sql.engine import make_engine
from adapters.sql.migrate import upgrade_if_behind
import alembic.command  # imported before the start line, so all start together
engine = make_engine(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
upgrade_if_behind(engine)
"""


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_processes_starting_together_on_a_fresh_database_all_start(
    database: str, tmp_path: Path,
) -> None:
    """Found by bench/faults_mail.py when its two workers booted side by side on a fresh
    PostgreSQL schema (as ``docker compose up`` starts web, worker and bot): both ran the
    migrations, and one exited 1 (``duplicate key ... (alembic_version, …)``). Four
    processes run ``upgrade_if_behind`` (what ``bootstrap`` runs) at the same instant:
    they queue on an advisory lock, every one exits 0, and the schema is at the head."""
    from adapters.sql.engine import make_engine
    from adapters.sql.migrate import _version_rows, shipped_head

    at = time.time() + 3.0
    logs = [tmp_path / f"boot-{n}.log" for n in range(4)]
    procs = []
    for log in logs:
        with log.open("wb") as out:
            procs.append(subprocess.Popen([sys.executable, "-c", _BOOT, database, str(at)],
                                          stdout=out, stderr=subprocess.STDOUT))
    codes = [p.wait(60) for p in procs]
    assert codes == [0, 0, 0, 0], "\n".join(log.read_text()[-1500:] for log in logs)
    engine = make_engine(database)
    try:
        assert _version_rows(engine) == [shipped_head()]
    finally:
        engine.dispose()
