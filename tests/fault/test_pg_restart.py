"""PostgreSQL restarted under load (issue 16): requests in flight fail cleanly, the app
reconnects by itself, and nothing is lost or doubled.

A real server (``printcore serve``) on a fresh PostgreSQL schema takes submissions of real
fixture models from three client threads while a staff thread rejects what arrives (each
rejection a copy of the job's folder into ``Rejected/`` and an email in the outbox) and two
dashboards list the jobs; one ``pg_ctlcluster … restart`` lands in the middle, while a lock
the test holds on ``jobs`` has piled requests up inside their statements (so the restart
surely cuts connections mid-request, not only idle ones). Checked:

- every answer is 2xx, a refusal the load expects (409/422), or 503 with ``Retry-After``
  and a JSON error message: never a 500, never a dropped connection;
- after PostgreSQL is back, requests succeed again without restarting the server
  (pool_pre_ping), within ``RECONNECT_SECONDS`` of ``pg_isready``;
- what the clients saw succeed is in the database exactly once: each 201 is one job with
  its file (same SHA-256 as sent) in the folder its status names and nowhere else, one
  ``submit`` event and one ``submitted`` outbox row; each 200 rejection one ``reject``
  event and one ``rejected`` outbox row; a job no client saw created is allowed only for an
  answer that said the commit's fate was unknown, and must be as complete;
- the storage audit (``GET /api/v1/admin/audit``) finds nothing to repair.

Before the fix (found with this test and ``bench/faults.py``): a statement whose connection
the restart cut answered 500 (``psycopg.OperationalError: server closed the connection
unexpectedly`` reached Starlette unmapped), and the 503s of the connect failures carried no
Retry-After. PostgreSQL is left running (pg_isready) when the test returns, also on failure.

The repeated runs (≥ 20 restarts at random points) are ``bench/faults.py --only pg``.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import httpx
import psycopg
import pytest

from _live import PASSWORD, PG_DSN, STAFF, LiveServer, login, start_server, stop_server
from _support import service_missing

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CLUSTER = ("15", "main")
RECONNECT_SECONDS = 10.0
#: Refusals the load itself causes (a job rejected by the other thread first, …).
EXPECTED = {200, 201, 409, 422}
FORM = {
    "student_name": "Jane Doe",
    "email": "jane.doe@university.edu",
    "discipline": "Mechanical Engineering",
    "class_number": "ME 101",
    "print_method": "filament",
    "color": "Red",
    "preferred_printer": "",
    "notes": "",
}
#: The words of the 503s of a connection the restart cut inside a request (adapters.sql.uow).
LOST_MID_REQUEST = "connection was lost"
UNKNOWN_FATE = "may or may not have been saved"


def pg_ready(timeout: float = 60.0) -> bool:
    """Wait until PostgreSQL accepts connections; True when it does within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0:
            return True
        time.sleep(0.1)
    return False


def restart_postgresql() -> float:
    """``pg_ctlcluster … restart`` (fast shutdown: sessions are cut); returns the seconds
    until pg_isready again. Always leaves PostgreSQL running, or raises saying why not."""
    started = time.monotonic()
    try:
        done = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *CLUSTER,
                               "restart"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    finally:
        if not pg_ready(5):
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *CLUSTER, "start"],
                           capture_output=True, timeout=120)
        assert pg_ready(), "PostgreSQL did not come back after the restart"
    return time.monotonic() - started


@attrs.define
class Answer:
    kind: str  # submit | reject | list (the staff's) | read (a dashboard's)
    at: float  # time.monotonic() when the answer came
    status: int  # 0: no HTTP answer (transport error)
    job_id: int | None = None
    sha256: str | None = None
    retry_after: str | None = None
    body: str = ""


@attrs.define
class Load:
    """Client threads against ``server`` until ``stop`` is set; answers in ``answers``."""

    server: LiveServer
    models: list[Path]
    answers: list[Answer] = attrs.Factory(list)
    stop: threading.Event = attrs.Factory(threading.Event)
    lock: threading.Lock = attrs.Factory(threading.Lock)
    threads: list[threading.Thread] = attrs.Factory(list)

    def _record(self, kind: str, call: Callable[[], httpx.Response],
                **extra: Any) -> httpx.Response | None:
        try:
            r = call()
        except httpx.HTTPError as err:
            with self.lock:
                self.answers.append(Answer(kind, time.monotonic(), 0, body=repr(err)))
            return None
        job_id = None
        if kind == "submit" and r.status_code == 201:
            job_id = int(r.json()["id"])
        with self.lock:
            self.answers.append(Answer(kind, time.monotonic(), r.status_code,
                                       job_id if job_id is not None else extra.get("job_id"),
                                       extra.get("sha256"), r.headers.get("retry-after"),
                                       r.text[:500]))
        return r

    def _submitter(self, n: int) -> None:
        with self.server.api() as api:
            i = n
            while not self.stop.is_set():
                model = self.models[i % len(self.models)]
                data = model.read_bytes()
                self._record("submit", lambda: api.post(
                    "/submissions", data=FORM, files={"file": (model.name, data)}),
                    sha256=hashlib.sha256(data).hexdigest())
                i += 1

    def _login(self, api: httpx.Client, workstation: str) -> dict[str, str]:
        """Logs in, trying again while the database is away (a 503 is a fair answer)."""
        while True:
            r = self._record("login", lambda: api.post("/auth/login", json={
                "workstation": workstation, "password": PASSWORD}))
            if r is not None and r.status_code == 200:
                return {"Authorization": f"Bearer {r.json()['token']}"}
            time.sleep(0.1)

    def _staff(self) -> None:
        with self.server.api() as api:
            headers = self._login(api, "Restart desk")
            body = {"staff_name": STAFF, "custom_reason": "Restart test"}
            while not self.stop.is_set():
                r = self._record("list", lambda: api.get(
                    "/jobs", headers=headers, params={"status": "uploaded", "limit": 5}))
                if r is None or r.status_code != 200:
                    time.sleep(0.05)
                    continue
                for job in r.json()["jobs"][:2]:
                    self._record("reject", lambda j=job: api.post(
                        f"/jobs/{j['id']}/reject", headers=headers, json=body),
                        job_id=job["id"])

    def _reader(self) -> None:
        with self.server.api() as api:
            headers = self._login(api, "Dashboard")
            while not self.stop.is_set():
                self._record("read", lambda: api.get("/jobs", headers=headers,
                                                     params={"limit": 20}))

    def start(self, submitters: int = 3, readers: int = 2) -> None:
        self.threads = [threading.Thread(target=self._submitter, args=(n,), daemon=True)
                        for n in range(submitters)]
        self.threads.append(threading.Thread(target=self._staff, daemon=True))
        self.threads += [threading.Thread(target=self._reader, daemon=True)
                         for _ in range(readers)]
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)


@attrs.define
class Tally:
    """What one restart did: the figures bench/faults.py adds up."""

    answers: Counter[str] = attrs.Factory(Counter)  # "kind status" → count
    server_errors: list[str] = attrs.Factory(list)  # 5xx but 503, 503 without Retry-After,
    #                                                  or no HTTP answer at all
    refused_503: int = 0
    cut_mid_request: int = 0  # 503s of a connection lost inside a statement
    lost: list[str] = attrs.Factory(list)
    doubled: list[str] = attrs.Factory(list)
    half_written: list[str] = attrs.Factory(list)
    audit_findings: int = 0
    reconnect_seconds: float | None = None
    restart_seconds: float = 0.0


def answers_tally(answers: list[Answer], ready_at: float, tally: Tally,
                  expected: frozenset[int] = frozenset(EXPECTED)) -> None:
    """Counts ``answers`` into ``tally``; a status outside ``expected`` (and not a 503
    with Retry-After) is a server error; ``reconnect_seconds`` is the first success
    after ``ready_at`` (monotonic seconds)."""
    for a in answers:
        tally.answers[f"{a.kind} {a.status}"] += 1
        if a.status == 503:
            tally.refused_503 += 1
            tally.cut_mid_request += LOST_MID_REQUEST in a.body
            if not a.retry_after or '"message"' not in a.body:
                tally.server_errors.append(f"503 without Retry-After or message: {a.body}")
        elif a.status not in expected:
            tally.server_errors.append(f"{a.kind} {a.status}: {a.body}")
    after = [a.at for a in answers if a.at >= ready_at and a.status in (200, 201)]
    tally.reconnect_seconds = (min(after) - ready_at) if after else None


def storage_tally(server: LiveServer, schema_dsn: str, answers: list[Answer],
                  tally: Tally) -> None:
    """Compares what clients saw succeed with the database and the storage root."""
    root = server.storage
    created = [a for a in answers if a.kind == "submit" and a.status == 201]
    rejected = {a.job_id for a in answers if a.kind == "reject" and a.status == 200}
    unknown = sum(UNKNOWN_FATE in a.body for a in answers if a.status == 503)
    with psycopg.connect(schema_dsn) as conn:
        rows = conn.execute("SELECT id, status, files FROM jobs").fetchall()
        jobs = {job_id: status for job_id, status, _ in rows}
        files = Counter({job_id: sum(f["role"] == "original" for f in recorded)
                         for job_id, _, recorded in rows})
        events = Counter(conn.execute("SELECT subject_id, kind FROM events "
                                      "WHERE subject = 'job'").fetchall())
        outbox = Counter(conn.execute("SELECT subject_id, kind FROM outbox "
                                      "WHERE subject = 'job'").fetchall())
    folders = Counter[int]()
    where: dict[int, Path] = {}
    for folder in root.glob("*/*_*"):
        if folder.is_dir() and not folder.name.startswith("."):
            job_id = int(folder.name.rsplit("_", 1)[1])
            folders[job_id] += 1
            where[job_id] = folder
    seen = Counter(a.job_id for a in created)
    tally.doubled += [f"job {j} answered 201 {n} times" for j, n in seen.items() if n > 1]
    tally.lost += [f"job {a.job_id} (201) missing" for a in created if a.job_id not in jobs]
    tally.lost += [f"job {j}: rejection (200) not kept" for j in rejected
                   if jobs.get(j) != "rejected"]
    extra = set(jobs) - set(seen)
    if len(extra) > unknown:
        tally.half_written.append(f"jobs {sorted(extra)} made, {unknown} answers said "
                                  "their fate was unknown")
    orphans = set(folders) - set(jobs)
    tally.half_written += [f"folder of job {j} without a row" for j in sorted(orphans)]
    sha_sent = {a.job_id: a.sha256 for a in created}
    for job_id, status in jobs.items():
        if files[job_id] != 1 or folders[job_id] != 1 or events[(job_id, "submit")] != 1:
            (tally.doubled if max(files[job_id], folders[job_id],
                                  events[(job_id, "submit")]) > 1 else tally.half_written
             ).append(f"job {job_id}: {files[job_id]} original files, {folders[job_id]} "
                      f"folders, {events[(job_id, 'submit')]} submit events")
            continue
        folder = where[job_id]
        if folder.parent.name.lower() != status.replace("_", "").lower():
            tally.half_written.append(f"job {job_id} is {status} but its folder is {folder}")
        originals = [p for p in folder.iterdir() if p.suffix in (".stl", ".obj", ".3mf")]
        sha = hashlib.sha256(originals[0].read_bytes()).hexdigest() if originals else None
        if job_id in sha_sent and sha != sha_sent[job_id]:
            tally.lost.append(f"job {job_id}: stored file is not what was sent")
        if outbox[(job_id, "submitted")] != 1:
            tally.doubled.append(f"job {job_id}: {outbox[(job_id, 'submitted')]} submitted "
                                 "emails") if outbox[(job_id, "submitted")] > 1 else \
                tally.lost.append(f"job {job_id}: no submitted email")
        if status == "rejected":
            for table, name in ((events, "reject event"), (outbox, "rejected email")):
                kind = "reject" if table is events else "rejected"
                if table[(job_id, kind)] != 1:
                    (tally.doubled if table[(job_id, kind)] > 1 else tally.lost).append(
                        f"job {job_id}: {table[(job_id, kind)]} × {name}")
    leftovers = [p for p in root.rglob("*") if p.name.endswith((".part", ".tmp"))]
    tally.half_written += [f"temporary file left: {p}" for p in leftovers]
    with server.api() as api:
        r = api.get("/admin/audit", headers=login(api, "Audit desk"))
        assert r.status_code == 200, r.text
        tally.audit_findings = len(r.json()["findings"])


def restart_once(server: LiveServer, schema_dsn: str, models: list[Path], before: float,
                 after: float, pile_up: float = 0.0) -> Tally:
    """Load for ``before`` s, one restart, load for ``after`` s past pg_isready, then the
    counts. With ``pile_up`` > 0, a connection of the test's own holds ``LOCK TABLE jobs``
    for that many seconds before the restart, so that requests are surely in the middle
    of a statement when the restart cuts their connections (without it, one lands there
    only by chance: a statement lasts a millisecond). PostgreSQL is running again when
    this returns (or raises)."""
    load = Load(server, models)
    tally = Tally()
    load.start()
    locker: psycopg.Connection[Any] | None = None
    try:
        time.sleep(before)
        if pile_up > 0:
            locker = psycopg.connect(schema_dsn)
            locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
            time.sleep(pile_up)
        tally.restart_seconds = restart_postgresql()
        ready_at = time.monotonic()
        time.sleep(after)
    finally:
        if locker is not None:
            try:
                locker.close()  # cut by the restart already
            except psycopg.Error:
                pass
        load.finish()
        pg_ready()
    answers_tally(load.answers, ready_at, tally)
    storage_tally(server, schema_dsn, load.answers, tally)
    return tally


def schema_dsn_of(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.mark.parametrize("fault_home", ["postgresql"], indirect=True)
def test_postgresql_restart_mid_load(fault_home: dict[str, str], fixtures_dir: Path) -> None:
    if not pg_ready(3):
        service_missing(f"PostgreSQL at {PG_DSN} is not accepting connections")
    home = Path(fault_home["PRINTCORE_HOME"])
    server = start_server(home, {"DATABASE_URL": fault_home["DATABASE_URL"], "REDIS_URL": ""},
                          "postgresql")
    models = [fixtures_dir / "models" / name
              for name in ("Moon.stl", "featuretype.3mf", "HalfDonut_ascii.stl")]
    started = time.monotonic()
    try:
        tally = restart_once(server, schema_dsn_of(fault_home["DATABASE_URL"]), models,
                             before=2.0, after=4.0, pile_up=1.5)
    finally:
        stop_server(server)
        assert pg_ready(), "PostgreSQL must be left running"
    print(f"\nrestart {tally.restart_seconds:.1f} s, cut mid-statement "
          f"{tally.cut_mid_request}, answers {dict(tally.answers)}, "
          f"reconnected {tally.reconnect_seconds} s after pg_isready")
    assert tally.server_errors == [], tally.server_errors
    assert tally.lost == [] and tally.doubled == [], (tally.lost, tally.doubled)
    assert tally.half_written == [], tally.half_written
    assert tally.audit_findings == 0
    assert tally.refused_503 > 0, "no request met the restart: the test proved nothing"
    # Whether one of the requests piled up behind the lock is inside its statement at the
    # instant of the restart (and answers "connection was lost") is timing: usually some
    # are (the printout says how many); bench/faults.py counts them over 20 restarts.
    assert tally.answers["submit 201"] > 0 and tally.answers["reject 200"] > 0
    assert tally.reconnect_seconds is not None, "nothing succeeded after the restart"
    assert tally.reconnect_seconds < RECONNECT_SECONDS
    assert time.monotonic() - started < 60
