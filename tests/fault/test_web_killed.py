"""The web process SIGKILLed mid-upload and mid-transition (issue 16): what clients saw
succeed is kept once, the storage audit finds only what its repairs fix, and no committed
change is missing its email.

A real ``printcore serve`` (uvicorn and its spawned model-checking processes, in a
process group of their own) on a fresh PostgreSQL schema, without Redis (the web process
delivers the outbox itself, as ``.eml`` files), is loaded by client threads
(:class:`WebLoad`): two students submitting small fixture models, one submitting a
generated 25 MB binary STL (its body is sent in 64 KB pieces, counted), and two staff
members, one adding a sliced file to each uploaded job, the other taking every job
through approve → force-confirm → mark-printing → mark-complete (small ones are sometimes
rejected), each transition a copy of the job's folder. The whole process group is SIGKILLed at a chosen point:

- ``upload``: while the 25 MB body is partly sent and the server's staging folder holds
  a ``.part`` file of at least 1 MB;
- ``transition``: while a transition's copy of a big job's folder is being written (a
  ``.<name>.<hex>.tmp`` folder exists in a status folder);

then the server is started again on the same database and storage root, the load goes
on for a moment, the outbox is drained, and (server stopped) :func:`check_after_kills`
compares what the clients saw with the database, the storage root and the ``.eml``
files; the storage audit (dry run) may find only repairable leftovers, and after its
repairs a second audit finds nothing.

The repeated runs (20 kills at random points) are ``bench/faults_web_kill.py``.
"""

from __future__ import annotations

import email
import hashlib
import io
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path
from typing import Any

import attrs
import httpx
import psycopg
import pytest
from test_pg_restart import FORM, pg_ready, schema_dsn_of

from _live import PASSWORD, STAFF, LiveServer, _printcore, free_port
from adapters.files.audit import audit_storage
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import load_settings
from printcore import Actor

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: Event kinds that write an outbox row (email) in their transaction → the row's kind.
MAILS = {"submit": "submitted", "approve": "approved", "reject": "rejected",
         "complete": "completed"}
#: The staff member's next step for a job in each status: (URL segment, event kind).
NEXT = {"pending": ("force-confirm", "force_confirm"),
        "ready_to_print": ("mark-printing", "start_print"),
        "printing": ("mark-complete", "complete")}
#: The event kinds of the staff's requests (each 2xx answer one event).
ACTIONS = {"add_sliced_file", "approve", "reject", "force_confirm", "start_print", "complete"}
_MESSAGE_ID = re.compile(r"printcore\.outbox\.(\d+)\.")
_TEMP_COPY = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")


def big_stl(megabytes: float, seed: int = 1) -> bytes:
    """A binary STL of about ``megabytes`` MB: small random triangles (a valid file)."""
    import numpy as np

    count = int(megabytes * 1_000_000) // 50
    rng = np.random.default_rng(seed)
    rows = np.zeros(count, dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")])
    rows["v"] = (rng.random((count, 1, 3), dtype=np.float32) * 100
                 + rng.random((count, 3, 3), dtype=np.float32))
    return b"\0" * 80 + struct.pack("<I", count) + rows.tobytes()


# -- the server, in a process group of its own --------------------------------------


def start_group(home: Path, env_extra: dict[str, str], port: int | None = None,
                add_staff: bool = True) -> LiveServer:
    """``printcore serve`` as tests/_live.py's ``start_server`` runs it, but as the leader
    of a new process group (so :func:`kill_group` takes its inspector children too); the
    outbox lease is 2 s, so a row leased by a killed process is delivered again soon."""
    port = port or free_port()
    env = {
        **os.environ,
        "PRINTCORE_HOME": str(home), "PRINTCORE_PORT": str(port),
        "PRINTCORE_BASE_URL": f"http://127.0.0.1:{port}",
        "PRINTCORE_STAFF_PASSWORD": PASSWORD,
        "PRINTCORE_LOGIN_FAILURES_PER_MINUTE": "100000",
        "PRINTCORE_SUBMISSIONS_PER_HOUR": "100000",
        "PRINTCORE_SUBMISSION_MAIL_PER_HOUR": "100000",
        "PRINTCORE_OUTBOX_LEASE_SECONDS": "2",
        "REDIS_URL": "",
        **env_extra,
    }
    if add_staff:
        _printcore(env, "staff", "add", STAFF)
    log = home / "server.log"
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "entrypoints.cli", "serve", "--log-level", "warning"],
            env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                return LiveServer(url, home, "postgresql", process, log, env)
        except httpx.HTTPError:
            time.sleep(0.1)
    kill_group(process)
    raise RuntimeError(f"server did not start: {log.read_text()}")


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the server and every process of its group; waits for the leader."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def restart(server: LiveServer) -> LiveServer:
    """The server again, on the same port, home, database and storage root."""
    port = int(server.env["PRINTCORE_PORT"])
    extra = {k: v for k, v in server.env.items() if os.environ.get(k) != v}
    return start_group(server.home, extra, port, add_staff=False)


def stop_group(server: LiveServer) -> None:
    """SIGTERM (a clean stop), then SIGKILL for the group's remains."""
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    kill_group(server.process)


# -- the load --------------------------------------------------------------------------


class Counted(io.RawIOBase):
    """An upload body that counts the bytes httpx has read from it (``sent``)."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.sent = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.sent = {0: offset, 1: self.sent + offset, 2: len(self.data) + offset}[whence]
        return self.sent

    def tell(self) -> int:
        return self.sent

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else min(self.sent + size, len(self.data))
        chunk = bytes(self.data[self.sent:end])
        self.sent = end
        return chunk


@attrs.define(eq=False)
class Request:
    """One request: what it was, and its answer (``status`` 0: no HTTP answer)."""

    kind: str  # "submit", "sliced" or an event kind (approve, reject, ...)
    job_id: int | None = None
    big: bool = False
    body: Counted | None = None
    size: int = 0
    sha256: str = ""
    status: int | None = None  # None while in flight
    text: str = ""
    stored_name: str = ""  # of a sliced file answered 201
    in_flight_at_kill: bool = False
    outage: bool = False  # made while the server was down (killed, not yet back)


@attrs.define
class WebLoad:
    """Client threads against ``server`` (replaceable: ``server`` is read per request)
    until :meth:`finish`; every request in ``requests``."""

    server: LiveServer
    models: list[Path]
    sliced: Path
    big: bytes
    requests: list[Request] = attrs.Factory(list)
    stop: threading.Event = attrs.Factory(threading.Event)
    down: threading.Event = attrs.Factory(threading.Event)
    lock: threading.Lock = attrs.Factory(threading.Lock)
    threads: list[threading.Thread] = attrs.Factory(list)
    big_jobs: set[int] = attrs.Factory(set)
    transitions_done: int = 0
    #: False: once the server was killed, the big model's student sends small ones (a
    #: big model's check takes seconds, which the end of a run would wait for).
    big_after_kill: bool = True
    killed: bool = False

    def _do(self, req: Request, call: Callable[[httpx.Client], httpx.Response]
            ) -> httpx.Response | None:
        with self.lock:
            self.requests.append(req)
            req.outage = self.down.is_set()
        try:
            with httpx.Client(base_url=self.server.url + "/api/v1", timeout=60) as api:
                r = call(api)
        except httpx.HTTPError as err:
            req.text = repr(err)
            req.outage |= self.down.is_set()
            req.status = 0
            time.sleep(0.1)  # the server is away: let it come back
            return None
        req.text = r.text[:300]
        if req.kind == "submit" and r.status_code == 201:
            req.job_id = int(r.json()["id"])
            if req.big:
                with self.lock:
                    self.big_jobs.add(req.job_id)
        if req.kind == "sliced" and r.status_code == 201:
            req.stored_name = r.json()["file"]["stored_name"]
        req.status = r.status_code
        return r

    def in_flight(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.status is None]

    def kill(self) -> list[Request]:
        """SIGKILL the server's group; returns the requests then in flight (their fate
        the clients will not learn), marked so. Requests made until :meth:`back` may
        find no server."""
        with self.lock:
            self.down.set()
            self.killed = True
            flying = [r for r in self.requests if r.status is None]
            for r in flying:
                r.in_flight_at_kill = True
            kill_group(self.server.process)
        return flying

    def back(self, server: LiveServer) -> None:
        self.server = server
        self.down.clear()

    def _submitter(self, n: int, big: bool) -> None:
        i = n
        while not self.stop.is_set():
            if big and (self.big_after_kill or not self.killed):
                data, name = self.big, "big_part.stl"
            else:
                model = self.models[i % len(self.models)]
                data, name = model.read_bytes(), model.name
            body = Counted(data)
            req = Request("submit", big=len(data) == len(self.big), body=body, size=len(data),
                          sha256=hashlib.sha256(data).hexdigest())
            self._do(req, lambda api, b=body, nm=name: api.post(
                "/submissions", data=FORM, files={"file": (nm, b)}))
            i += 1

    def _login(self) -> dict[str, str]:
        while not self.stop.is_set():
            r = self._do(Request("login"), lambda api: api.post(
                "/auth/login", json={"workstation": "Kill desk", "password": PASSWORD}))
            if r is not None and r.status_code == 200:
                return {"Authorization": f"Bearer {r.json()['token']}"}
        return {}

    def _staff(self, uploads: bool) -> None:
        """One staff member: with ``uploads``, adds sliced files to the uploaded jobs
        that have none; without, moves the jobs on (approve, reject, force-confirm, ...)."""
        headers = self._login()
        sliced = self.sliced.read_bytes()
        step = 0
        while not self.stop.is_set():
            r = self._do(Request("list"), lambda api: api.get(
                "/jobs", headers=headers, params={"limit": 30}))
            if r is not None and r.status_code == 401:
                headers = self._login()
                continue
            if r is None or r.status_code != 200:
                continue
            jobs = r.json()["jobs"]
            made = len(self.requests)
            for job in sorted(jobs, key=lambda j: -(j["id"] in self.big_jobs)):
                if self.stop.is_set() or self.down.is_set():
                    break
                step += 1
                self._step(job, headers, sliced, step, uploads)
            if len(self.requests) == made:
                time.sleep(0.05)  # nothing to do: list again in a moment

    def _step(self, job: dict[str, Any], headers: dict[str, str], sliced: bytes,
              step: int, uploads: bool) -> None:
        job_id, status = job["id"], job["status"]
        body: dict[str, Any] = {"staff_name": STAFF}
        if status == "uploaded":
            files = [f for f in job["files"] if f["role"] == "sliced"]
            if uploads and files:
                return
            if not uploads and not files and (job_id in self.big_jobs or step % 4):
                return
            if not uploads and not files:
                kind, path, body["custom_reason"] = "reject", "reject", "Kill test"
            elif not files:
                self._do(Request("sliced", job_id, size=len(sliced),
                                 sha256=hashlib.sha256(sliced).hexdigest()),
                         lambda api: api.post(
                             f"/jobs/{job_id}/files", headers=headers,
                             data={"staff_name": STAFF},
                             files={"file": (self.sliced.name, sliced)}))
                return
            else:
                kind, path = "approve", "approve"
                body.update(weight_g=12.5, time_hours=1.5,
                            authoritative_file=files[0]["stored_name"])
        elif status in NEXT and not uploads:
            path, kind = NEXT[status]
            body["reason"] = "at the desk"
        else:
            return
        r = self._do(Request(kind, job_id), lambda api: api.post(
            f"/jobs/{job_id}/{path}", headers=headers, json=body))
        if r is not None and r.status_code == 200:
            self.transitions_done += 1

    def start(self, small_submitters: int = 2) -> None:
        self.threads = [threading.Thread(target=self._submitter, args=(n, False), daemon=True)
                        for n in range(small_submitters)]
        self.threads.append(threading.Thread(target=self._submitter, args=(0, True),
                                             daemon=True))
        self.threads += [threading.Thread(target=self._staff, args=(uploads,), daemon=True)
                         for uploads in (True, False)]
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)


# -- the kill points -------------------------------------------------------------------


def _part_files(staging: Path) -> Iterator[int]:
    try:
        with os.scandir(staging) as items:
            for item in items:
                if item.name.endswith(".part"):
                    try:
                        yield item.stat().st_size
                    except FileNotFoundError:
                        pass
    except FileNotFoundError:
        return


def _copying(root: Path) -> bool:
    """A transition's copy of a job's folder is being written (``.<name>.<hex>.tmp``)."""
    try:
        with os.scandir(root) as statuses:
            for status in statuses:
                if status.is_dir() and not status.name.startswith("."):
                    with os.scandir(status.path) as children:
                        if any(_TEMP_COPY.match(c.name) for c in children):
                            return True
    except FileNotFoundError:
        pass
    return False


def wait_mid_upload(load: WebLoad, staging: Path, fraction: float, min_part: int,
                    timeout: float) -> bool:
    """Until a big upload's body is sent past ``fraction`` (and not whole) while the
    staging folder holds a .part file of ≥ ``min_part`` bytes; False at ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in load.in_flight():
            if r.big and r.body is not None and fraction * r.size <= r.body.sent < r.size \
                    and max(_part_files(staging), default=0) >= min_part:
                return True
        time.sleep(0.002)
    return False


def wait_mid_transition(load: WebLoad, root: Path, timeout: float) -> bool:
    """Until a transition is in flight while a copy of a job's folder is being written;
    False at ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r.kind not in {"submit", "sliced", "login", "list"}
               for r in load.in_flight()) and _copying(root):
            return True
        time.sleep(0.001)
    return False


@attrs.define
class Kill:
    """What one kill hit."""

    trigger: str
    mid_upload: bool = False  # a submission's body partly sent
    mid_transition: bool = False  # a transition request in flight
    in_flight: list[str] = attrs.Factory(list)
    restart_seconds: float = 0.0


def kill_and_restart(load: WebLoad, trigger: str) -> Kill:
    """SIGKILL the load's server group now, note what was in flight, start it again."""
    flying = load.kill()
    kill = Kill(trigger)
    kill.mid_upload = any(r.kind == "submit" and r.body is not None
                          and 0 < r.body.sent < r.size for r in flying)
    kill.mid_transition = any(r.kind not in {"submit", "sliced", "login", "list"}
                              for r in flying)
    kill.in_flight = sorted(f"{r.kind} {r.job_id or ''}".strip() for r in flying
                            if r.kind not in {"login", "list"})
    started = time.monotonic()
    load.back(restart(load.server))
    kill.restart_seconds = time.monotonic() - started
    return kill


# -- the checks --------------------------------------------------------------------------


@attrs.define
class Verdict:
    lost: list[str] = attrs.Factory(list)
    doubled: list[str] = attrs.Factory(list)
    half_written: list[str] = attrs.Factory(list)
    emails_missing: list[str] = attrs.Factory(list)
    server_errors: list[str] = attrs.Factory(list)
    audit_found: Counter[str] = attrs.Factory(Counter)
    audit_unrepairable: list[str] = attrs.Factory(list)
    audit_findings_after_repair: int = 0
    #: Files in a job's folder that it does not record: a sliced file whose upload was
    #: killed between storing it and the commit. The audit does not report them (a
    #: slicer's saves are unrecorded files too); not a failure here, counted.
    stray_files: list[str] = attrs.Factory(list)
    emails_checked: int = 0  # outbox rows compared with the .eml files
    answers: Counter[str] = attrs.Factory(Counter)

    @property
    def problems(self) -> list[str]:
        return (self.lost + self.doubled + self.half_written + self.emails_missing
                + self.server_errors + self.audit_unrepairable)


def drain_outbox(schema_dsn: str, timeout: float = 15.0) -> int:
    """Waits (the server running) until no outbox row is pending; returns those left."""
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(schema_dsn) as conn:
            left = conn.execute("SELECT count(*) FROM outbox WHERE status <> 'sent'"
                                ).fetchone()
        n = int(left[0]) if left else 0
        if n == 0 or time.monotonic() > deadline:
            return n
        time.sleep(0.2)


def check_after_kills(server: LiveServer, schema_dsn: str, requests: list[Request]
                      ) -> Verdict:
    """Compares what the clients saw with the database, the storage root and the
    ``.eml`` files; then the storage audit (dry run, repairs, again). No request may be
    in progress (the server stopped, or its load and outbox done): the audit runs with
    ``settle_seconds=0``."""
    v = Verdict()
    for r in requests:
        v.answers[f"{r.kind} {r.status}"] += 1
        if r.status is not None and r.status >= 500 and not (
                r.status == 503 and "retry" in r.text.lower()):
            v.server_errors.append(f"{r.kind} {r.job_id}: {r.status} {r.text[:120]}")
        elif r.status == 0 and not (r.in_flight_at_kill or r.outage):
            v.server_errors.append(f"{r.kind} {r.job_id}: no answer, not at a kill: {r.text}")
    with psycopg.connect(schema_dsn) as conn:
        rows = conn.execute("SELECT id, status, files, authoritative_file FROM jobs"
                            ).fetchall()
        events = conn.execute("SELECT subject_id, kind, to_status FROM events "
                              "WHERE subject = 'job' ORDER BY id").fetchall()
        outbox = conn.execute("SELECT id, subject_id, kind, status FROM outbox "
                              "WHERE subject = 'job'").fetchall()
    jobs = {job_id: (status, files) for job_id, status, files, _ in rows}
    event_count = Counter((j, k) for j, k, _ in events)
    mail_count = Counter((j, k) for _, j, k, _ in outbox)
    last_status: dict[int, str] = {}
    for j, _, to in events:
        if to is not None:
            last_status[j] = to

    created = [r for r in requests if r.kind == "submit" and r.status == 201]
    seen = Counter(r.job_id for r in created)
    v.doubled += [f"job {j} answered 201 {n} times" for j, n in seen.items() if n > 1]
    unknown_submits = sum(r.kind == "submit" and r.status != 201 and r.in_flight_at_kill
                          for r in requests)
    extra = set(jobs) - set(seen)
    if len(extra) > unknown_submits:
        v.half_written.append(f"jobs {sorted(extra)} made, only {unknown_submits} "
                              "submissions' fate unknown")
    for r in created:
        if r.job_id not in jobs:
            v.lost.append(f"job {r.job_id} (201) missing")
            continue
        originals = [f for f in jobs[r.job_id][1] if f["role"] == "original"]
        if [(f["sha256"], f["size_bytes"]) for f in originals] != [(r.sha256, r.size)]:
            v.lost.append(f"job {r.job_id}: original recorded {originals}, sent "
                          f"{r.size} bytes {r.sha256[:12]}")
    for r in requests:
        if r.kind == "sliced" and r.status == 201 and r.job_id in jobs and not any(
                f["stored_name"] == r.stored_name and f["sha256"] == r.sha256
                for f in jobs[r.job_id][1]):
            v.lost.append(f"job {r.job_id}: sliced file {r.stored_name} (201) not recorded")
    ok: Counter[tuple[int, str]] = Counter()
    unsure: Counter[tuple[int, str]] = Counter()
    for r in requests:
        if r.job_id is None or r.kind in {"login", "list"}:
            continue
        kind = {"sliced": "add_sliced_file"}.get(r.kind, r.kind)
        if r.status in (200, 201):
            ok[(r.job_id, kind)] += 1
        elif r.in_flight_at_kill and r.status in (0, None):
            unsure[(r.job_id, kind)] += 1
    for key in set(ok) | set(event_count):
        job_id, kind = key
        if kind not in ACTIONS or (job_id not in jobs and not ok[key]):
            continue  # submit events (counted above), the audit's repairs
        have, want = event_count[key], ok[key]
        if have < want:
            v.lost.append(f"job {job_id}: {want} × {kind} answered 2xx, {have} events")
        elif have > want + unsure[key]:
            v.doubled.append(f"job {job_id}: {have} {kind} events for {want} answers "
                             f"(+{unsure[key]} unknown)")
    for job_id, (status, _) in jobs.items():
        if last_status.get(job_id) != status:
            v.half_written.append(f"job {job_id} is {status}, its last event says "
                                  f"{last_status.get(job_id)}")
        for event, mail in MAILS.items():
            n_events, n_mails = event_count[(job_id, event)], mail_count[(job_id, mail)]
            if n_mails < n_events:
                v.emails_missing.append(f"job {job_id}: {n_events} {event} events, "
                                        f"{n_mails} {mail} outbox rows")
            elif n_mails > n_events:
                v.doubled.append(f"job {job_id}: {n_mails} {mail} rows for {n_events} "
                                 f"{event} events")
    _check_emails(server.mail, outbox, v)
    _audit(server, v)
    _check_folders(server.storage, jobs, v)
    return v


def _check_emails(mail_dir: Path, outbox: list[tuple[Any, ...]], v: Verdict) -> None:
    """Every outbox row sent, its .eml there once (by Message-ID), no .eml of no row."""
    written: Counter[int] = Counter()
    for path in mail_dir.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        match = _MESSAGE_ID.search(str(message["Message-ID"]))
        if match is None:
            v.half_written.append(f"{path.name}: no outbox Message-ID")
            continue
        written[int(match.group(1))] += 1
    rows = {row_id: status for row_id, _, _, status in outbox}
    v.emails_checked = len(rows)
    for row_id, job_id, kind, status in outbox:
        if status != "sent":
            v.emails_missing.append(f"outbox row {row_id} (job {job_id} {kind}) is {status}")
        elif written[row_id] == 0:
            v.emails_missing.append(f"outbox row {row_id} (job {job_id} {kind}) sent, no .eml")
        elif written[row_id] > 1:
            v.doubled.append(f"outbox row {row_id} (job {job_id} {kind}): "
                             f"{written[row_id]} .eml files")
    v.half_written += [f".eml of no outbox row {n}" for n in written if n not in rows]
    temps = [p.name for p in mail_dir.glob(".*.tmp")]
    if temps:
        v.audit_found["mail_temp_file"] += len(temps)  # a killed write; never delivered


def _audit(server: LiveServer, v: Verdict) -> None:
    container = bootstrap(load_settings(server.env, env_file=None), migrate=False)
    try:
        found = audit_storage(container.files, container.requests.uow, settle_seconds=0)
        v.audit_found.update(f.kind for f in found.findings)
        v.audit_unrepairable += [f"audit: {f.kind}: {f.message}" for f in found.findings
                                 if not f.repairable]
        report = audit_storage(container.files, container.requests.uow, repair=True,
                               actor=Actor.staff(STAFF, "Kill desk"), settle_seconds=0)
        v.audit_unrepairable += [f"repair not done: {r.finding.kind} {r.error}"
                                 for r in report.repairs if not r.done]
        after = audit_storage(container.files, container.requests.uow, settle_seconds=0)
        v.audit_findings_after_repair = len(after.findings)
        v.audit_unrepairable += [f"after repair: {f.kind}: {f.message}"
                                 for f in after.findings]
    finally:
        container.close()


_HASHES: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    """SHA-256 of a file, remembered by (path, size, mtime) across checks."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _HASHES[key]


def _check_folders(root: Path, jobs: dict[int, tuple[str, list[dict[str, Any]]]],
                   v: Verdict) -> None:
    """After the repairs: each job's folder once, where its status says, holding its
    recorded files (SHA-256) and nothing unrecorded; no temporary file anywhere."""
    folders: dict[int, list[Path]] = {}
    for folder in root.glob("*/*_*"):
        if folder.is_dir() and not folder.name.startswith("."):
            folders.setdefault(int(folder.name.rsplit("_", 1)[1]), []).append(folder)
    for job_id in sorted(set(folders) - set(jobs)):
        v.half_written.append(f"folder of job {job_id} without a row: {folders[job_id]}")
    for job_id, (status, files) in jobs.items():
        found = folders.get(job_id, [])
        if len(found) != 1:
            (v.doubled if len(found) > 1 else v.half_written).append(
                f"job {job_id}: {len(found)} folders {found}")
            continue
        folder = found[0]
        if folder.parent.name.lower() != status.replace("_", "").lower():
            v.half_written.append(f"job {job_id} is {status}, its folder is in "
                                  f"{folder.parent.name}")
        names = {f["stored_name"] for f in files}
        for f in files:
            path = folder / f["stored_name"]
            if not path.is_file() or _sha256(path) != f["sha256"]:
                v.lost.append(f"job {job_id}: {f['stored_name']} missing or changed")
        stray = sorted(p.name for p in folder.iterdir()
                       if p.name not in names and p.name != "metadata.json")
        if stray:
            v.stray_files.append(f"job {job_id}: unrecorded files in its folder {stray}")
    v.half_written += [f"temporary file left: {p}" for p in root.rglob("*")
                       if p.name.endswith((".part", ".tmp"))]


# -- the test --------------------------------------------------------------------------

KILLS_EACH = 3


@pytest.mark.parametrize("fault_home", ["postgresql"], indirect=True)
def test_web_killed_mid_upload_and_mid_transition(fault_home: dict[str, str],
                                                  fixtures_dir: Path) -> None:
    if not pg_ready(3):
        pytest.fail("PostgreSQL is not accepting connections")
    home = Path(fault_home["PRINTCORE_HOME"])
    schema_dsn = schema_dsn_of(fault_home["DATABASE_URL"])
    models = [fixtures_dir / "models" / n for n in ("Moon.stl", "featuretype.3mf")]
    started = time.monotonic()
    server = start_group(home, {"DATABASE_URL": fault_home["DATABASE_URL"]})
    load = WebLoad(server, models, fixtures_dir / "sliced" / "square_ring_plate_1.gcode",
                   big_stl(25))
    kills: list[Kill] = []
    load.start()
    try:
        for trigger in ["upload", "transition"] * KILLS_EACH:
            if trigger == "upload":
                hit = wait_mid_upload(load, load.server.storage / ".staging", 0.3,
                                      1_000_000, 20)
            else:
                hit = wait_mid_transition(load, load.server.storage, 20)
            assert hit, f"no {trigger} to kill within 20 s"
            kills.append(kill_and_restart(load, trigger))
            time.sleep(0.3)
        time.sleep(1.0)
    finally:
        load.finish()
    try:
        left = drain_outbox(schema_dsn)
    finally:
        stop_group(load.server)
    verdict = check_after_kills(load.server, schema_dsn, load.requests)
    print(f"\n{len(kills)} kills: mid-upload {sum(k.mid_upload for k in kills)}, "
          f"mid-transition {sum(k.mid_transition for k in kills)}; in flight "
          f"{[k.in_flight for k in kills]}; audit found {dict(verdict.audit_found)}; "
          f"answers {dict(verdict.answers)}; {time.monotonic() - started:.1f} s")
    assert left == 0, "outbox rows still pending"
    assert verdict.problems == [], verdict.problems
    assert verdict.audit_findings_after_repair == 0
    assert sum(k.mid_upload for k in kills if k.trigger == "upload") == KILLS_EACH
    assert sum(k.mid_transition for k in kills if k.trigger == "transition") == KILLS_EACH
    assert verdict.answers["submit 201"] > 0 and load.transitions_done > 0


# -- a kill between an email's .eml file and the commit of "sent" ------------------------

_DIE_AFTER_WRITING = """
import os, signal, sys
from adapters.mail.transports import FileTransport
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import load_settings

class DiesAfterWriting(FileTransport):
    def send(self, message):
        super().send(message)
        os.kill(os.getpid(), signal.SIGKILL)  # before the row is marked sent

settings = load_settings(os.environ, env_file=None)
container = bootstrap(settings, migrate=False, transport=DiesAfterWriting(settings.mail_dir))
container.outbox.deliver_due()
sys.exit(3)  # not reached: the .eml is written first
"""


@pytest.mark.parametrize("fault_home", ["sqlite", "postgresql"], indirect=True)
def test_an_email_written_just_before_a_kill_is_not_written_again(
        fault_home: dict[str, str], tmp_path: Path) -> None:
    """The web process killed after it wrote a row's ``.eml`` and before it recorded the
    row as sent: the row's lease runs out, it is delivered again, and the mail folder still
    holds that message once. Before the fix (found by bench/faults_web_kill.py: 2 ``.eml``
    files with one Message-ID after a kill), the file transport wrote every attempt as a
    new file."""
    from adapters.files.staging import StagingArea
    from printcore import StagedFile, Submission

    env = {**fault_home, "PRINTCORE_OUTBOX_LEASE_SECONDS": "2"}
    container = bootstrap(load_settings(env, env_file=None))
    try:
        upload = StagingArea(container.files.staging_dir).open(1_000_000)
        upload.write(b"solid part\nendsolid part\n")
        staged = StagedFile(upload.path, "part.stl", ".stl", 25, upload.finish())
        job = container.requests.submit(
            Submission("Jane Doe", "jane.doe@university.edu", "ME", "", "filament", "Red"),
            staged)
        child = subprocess.run([sys.executable, "-c", _DIE_AFTER_WRITING], env=env,
                               capture_output=True, timeout=60)
        assert child.returncode == -signal.SIGKILL, child.stderr.decode()
        mail = container.settings.mail_dir
        assert len(list(mail.glob("*.eml"))) == 1, "the child wrote the email, then died"
        time.sleep(2.2)  # the dead process's lease runs out
        report = container.outbox.deliver_due()
        assert report.sent == 1, report
        [row] = container.outbox.list(subject="job", subject_id=job.id, limit=5)
        assert row.status == "sent" and row.attempts == 2
        ids = Counter(str(email.message_from_bytes(p.read_bytes(), policy=policy.default)
                          ["Message-ID"]) for p in mail.glob("*.eml"))
        assert list(ids.values()) == [1], ids
    finally:
        container.close()


# -- a kill between a submission's folder and its commit --------------------------------


@pytest.mark.parametrize("fault_home", ["postgresql"], indirect=True)
def test_a_submission_killed_before_its_commit_leaves_only_a_repairable_folder(
        fault_home: dict[str, str], fixtures_dir: Path) -> None:
    """The web process killed after it stored a submission's model in ``Uploaded/`` and
    before the commit (held there: the test locks the events table): the folder of a job
    that was never saved is a leftover the audit's repairs remove, once a later job is
    saved (the id is never given out again). Before the fix it was an ``orphan_folder``
    with no safe repair, left for staff to move by hand."""
    home = Path(fault_home["PRINTCORE_HOME"])
    schema_dsn = schema_dsn_of(fault_home["DATABASE_URL"])
    model = fixtures_dir / "models" / "Moon.stl"
    server = start_group(home, {"DATABASE_URL": fault_home["DATABASE_URL"]})
    answers: list[int] = []

    def submit() -> None:
        try:
            answers.append(httpx.post(server.url + "/api/v1/submissions", data=FORM,
                                      files={"file": (model.name, model.read_bytes())},
                                      timeout=30).status_code)
        except httpx.HTTPError:
            answers.append(0)

    try:
        with psycopg.connect(schema_dsn) as locker:
            locker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            client = threading.Thread(target=submit)
            client.start()
            deadline = time.monotonic() + 20
            while not list((server.storage / "Uploaded").glob("*_*/metadata.json")):
                assert time.monotonic() < deadline, "the submission never stored its model"
                time.sleep(0.01)
            kill_group(server.process)
            client.join(30)
        assert answers == [0], "the student got no answer"
        server = restart(server)
        submit()  # a later job, saved
        assert answers[-1] == 201
    finally:
        stop_group(server)
    with psycopg.connect(schema_dsn) as conn:
        saved = [row[0] for row in conn.execute("SELECT id FROM jobs")]
    unsaved = [p for p in (server.storage / "Uploaded").iterdir()
               if int(p.name.rsplit("_", 1)[1]) not in saved]
    assert len(saved) == 1 and len(unsaved) == 1
    verdict = Verdict()
    _audit(server, verdict)
    assert verdict.audit_found == {"staging_leftover": 1}, verdict.audit_found
    assert verdict.audit_unrepairable == [] and verdict.audit_findings_after_repair == 0
    assert not unsaved[0].exists()
    assert len(list((server.storage / "Uploaded").iterdir())) == 1
