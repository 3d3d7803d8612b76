"""The first week of term under load (issue 16): the whole system at once, on loopback.

One run starts, on PostgreSQL (a fresh schema in database ``test``, dropped at the end)
with Redis (a free numbered database on 127.0.0.1:6379, claimed like the tests do and
flushed at the end):

* ``printcore serve`` (the web process measured), ``printcore worker`` (Dramatiq on
  Redis, writing the emails as ``.eml`` files in ``$PRINTCORE_HOME/mail``) and
  ``printcore sweep`` (``PRINTCORE_SWEEP_SECONDS=1``);

and drives it for ``--duration`` seconds with an httpx + asyncio driver:

* ``--students`` students, each submitting one real model from
  ``../shared/fixtures/models`` (two in three through ``POST /api/v1/submissions``, one in
  three through the public form ``GET /`` + ``POST /submit``), then reading their status
  page now and then, and, once staff approved, confirming the cost with the link from
  their emailed ``.eml`` file (``POST /api/v1/confirm`` or the ``/confirm/{token}`` form);
  plus ``--big`` uploads of a generated 200 MB binary STL;
* ``--staff`` staff sessions, each logged in twice (the login form, whose cookie keeps
  ``GET /staff/events`` open and reads the dashboard ``GET /staff``; and
  ``POST /api/v1/auth/login`` for a bearer token), taking their share of the jobs (id
  modulo the number of staff) through the lifecycle with the JSON API: sliced file
  upload (``wormdrive.gcode.3mf``), approve (weight g, time h; the cost follows), and after
  the student's confirmation mark-printing, mark-complete and payment;
* ``--members`` queue members running join / claim / report started / close (and
  placement while they wait) through ``QueueService`` (what the Discord bot calls), built
  by ``entrypoints.bootstrap`` on the same database, each call run in a pool of
  ``--queue-threads`` threads as the bot runs them; ``--printers`` printers.

Recorded: per route (and per queue command) count, p50/p95/p99 (ms), answers by status,
transport errors; requests per second; the web process's VmRSS every second during the
load and for ``--after`` seconds after it. At the end: every submission that got a 2xx is
in the database exactly once, with its model file on disk at the recorded size; every
email in the outbox is sent and its ``.eml`` (by Message-ID) is in the mail folder exactly
once, and no file is there without its row.

Goals (issue 16): 0 server errors (5xx), dashboard ``GET /staff`` p95 < 200 ms, queue
commands p99 < 100 ms.

Run: ``.venv/bin/python bench/load.py --students 200 --staff 2 --members 50 --duration 120
--big 2``. Results are appended to ``bench/results/load.json`` (the last 10 runs kept).
Only 127.0.0.1 is used; every request loop stops at its deadline; the processes started
here are ended by pid at the end, also after an error.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email import policy as email_policy
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_print_requests import Server, proc_status, write_grid_stl

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures"
RESULTS = ROOT / "bench" / "results" / "load.json"
PASSWORD = "bench staff password 2024"  # what bench_print_requests.Server sets
SECRET = "load-bench-secret-" + secrets.token_hex(8)
STAFF_NAMES = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra"]
MODELS = ["rear_case.stl", "Moon.stl", "HalfDonut_ascii.stl", "fandisk.obj",
          "featuretype.3mf", "Original3DBenchy.3mf"]
SLICED = FIXTURES / "sliced" / "wormdrive.gcode.3mf"
REDIS_CLAIM = "printcore-test:claimed-by"  # the marker tests/delivery/_delivery.py uses
GOALS = {"server_errors_max": 0, "dashboard_p95_ms_max": 200.0, "queue_p99_ms_max": 100.0}
#: 199,500,084 bytes: under PRINTCORE_MAX_UPLOAD_MB=200 (200,000,000 bytes of file; the
#: 4,000,000 triangles of bench_print_requests.py make 200,000,084 bytes, refused with 413)
BIG_TRIANGLES = 3_990_000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- recording ---------------------------------------------------------------------------


class Recorder:
    """Per route: latencies (ms) and answers by status (``"200"``, ``"error:ReadTimeout"``,
    ``"refused:<reason>"`` for the queue's domain refusals). Thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.times: list[float] = []  # monotonic end time of every HTTP request
        self.examples: dict[str, list[str]] = defaultdict(list)
        #: requests under way: token -> (route, perf_counter at the start)
        self.inflight: dict[int, tuple[str, float]] = {}
        self.next_token = 0

    def begin(self, route: str) -> int:
        with self.lock:
            self.next_token += 1
            self.inflight[self.next_token] = (route, time.perf_counter())
            return self.next_token

    def end(self, token: int) -> None:
        with self.lock:
            self.inflight.pop(token, None)

    def open_requests(self) -> list[dict[str, Any]]:
        now = time.perf_counter()
        with self.lock:
            return sorted(({"route": r, "age_s": round(now - t0, 1)}
                           for r, t0 in self.inflight.values()), key=lambda x: -x["age_s"])

    def add(self, route: str, ms: float, status: str, detail: str = "",
            http: bool = True) -> None:
        with self.lock:
            self.ms[route].append(ms)
            self.status[route][status] += 1
            if http:
                self.times.append(time.monotonic())
            bad = status.startswith("error") or status.startswith("5")
            if bad and len(self.examples[route]) < 5:
                self.examples[route].append(f"{status}: {detail[:300]}")

    def table(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for route in sorted(self.ms):
            arr = np.asarray(self.ms[route])
            out[route] = {
                "count": int(arr.size),
                "p50_ms": round(float(np.percentile(arr, 50)), 1),
                "p95_ms": round(float(np.percentile(arr, 95)), 1),
                "p99_ms": round(float(np.percentile(arr, 99)), 1),
                "max_ms": round(float(arr.max()), 1),
                "by_status": dict(sorted(self.status[route].items())),
            }
            if self.examples.get(route):
                out[route]["error_examples"] = self.examples[route]
        return out


def is_busy(r: httpx.Response) -> bool:
    """A 503 that asks to come back later because too many uploads wait to be checked
    (``BusyError``): a designed refusal, counted as ``busy``, not as a server error."""
    if r.status_code != 503 or "Retry-After" not in r.headers:
        return False
    if r.headers.get("content-type", "").startswith("application/json"):
        return bool(r.json().get("error", {}).get("code") == "busy")
    return "uploaded files right now" in r.text


async def timed(rec: Recorder, route: str, coro: Any) -> httpx.Response | None:
    t0 = time.perf_counter()
    token = rec.begin(route)
    try:
        r = await coro
    except httpx.HTTPError as err:
        rec.add(route, (time.perf_counter() - t0) * 1000, f"error:{type(err).__name__}", repr(err))
        return None
    finally:
        rec.end(token)
    if is_busy(r):
        rec.add(route, (time.perf_counter() - t0) * 1000, "busy", "")
        return r
    rec.add(route, (time.perf_counter() - t0) * 1000, str(r.status_code),
            r.text[:300] if r.status_code >= 500 else "")
    return r


# --- processes ---------------------------------------------------------------------------


class Child:
    """A ``printcore`` subcommand as a subprocess, logging to ``home/<name>.log``."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], home: Path) -> None:
        self.log = home / f"{name}.log"
        self.handle = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", "entrypoints.cli", *args],
                                        env=env, cwd=str(home), stdout=self.handle,
                                        stderr=subprocess.STDOUT)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.log.name} exited: {self.tail()}")
            if text in self.log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.log.name}: no {text!r} within {timeout}s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.handle.close()
        return self.process.returncode


def claim_redis_db(base: str) -> tuple[int, str]:
    me = "load-bench-" + secrets.token_hex(6)
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{base}/{db}")
        if client.dbsize() == 0 and client.set(REDIS_CLAIM, me, nx=True, ex=3600):
            if client.dbsize() == 1:
                return db, f"{base}/{db}"
            client.delete(REDIS_CLAIM)
    raise RuntimeError(f"no empty Redis database on {base} (1-15 all busy)")


class RssSampler(threading.Thread):
    """VmRSS (kB) of ``pid`` every second: ``(seconds since start, kB, phase)``."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.phase, self.t0 = pid, "before", time.monotonic()
        self.samples: list[tuple[float, int, str]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            rss = proc_status(self.pid).get("VmRSS")
            if rss is not None:
                self.samples.append((round(time.monotonic() - self.t0, 1), rss, self.phase))
            self.stop_event.wait(1.0)


# --- the students ------------------------------------------------------------------------


class Lab:
    """What the simulated people share: the server, the run's tag, what was submitted."""

    def __init__(self, args: argparse.Namespace, server_url: str, mail: Path, tag: str,
                 deadline: float, big: Path | None) -> None:
        self.args, self.url, self.mail, self.tag = args, server_url, mail, tag
        self.deadline, self.big = deadline, big
        self.rec = Recorder()
        self.accepted: dict[str, dict[str, Any]] = {}  # tag -> {id?, model, size, via}
        self.refused: dict[str, str] = {}  # tag -> status of a non-2xx submission
        self.busy_retries = 0  # submissions sent again after a 503 busy (Retry-After)
        self.approved: dict[int, asyncio.Event] = {}
        self.lifecycle: dict[str, int] = defaultdict(int)
        self.sse: dict[str, Any] = defaultdict(int)
        self.hung: list[str] = []
        self.hung_requests: list[dict[str, Any]] = []
        self.failures: dict[str, str] = {}
        self.staff_errors: list[str] = []

    def left(self) -> float:
        return self.deadline - time.monotonic()


def fields(name: str, mail: str, notes: str) -> dict[str, str]:
    return {"student_name": name, "email": mail, "discipline": "Mechanical Engineering",
            "class_number": "ME 101", "print_method": random.choice(["filament", "resin"]),
            "color": random.choice(["Red", "Black", "White"]), "preferred_printer": "",
            "notes": notes}


def confirm_token(mail: Path, job_id: int) -> str | None:
    for path in sorted(mail.glob(f"*-job{job_id}-approved-*.eml"), reverse=True):
        message = email.message_from_bytes(path.read_bytes(), policy=email_policy.default)
        body = message.get_body(("plain",))
        if body is not None:
            match = re.search(r"/confirm/(\S+)", body.get_content())
            if match:
                return match.group(1)
    return None


async def submit(lab: Lab, client: httpx.AsyncClient, tag: str, model: Path, via: str,
                 name: str, addr: str) -> int | None:
    """One submission; returns the job id (API) or 0 (form: id from the status page).
    Told the server is busy (503 ``busy``), the student waits its Retry-After and sends
    the file again, while the load lasts."""
    for _attempt in range(10):
        r = await submit_once(lab, client, tag, model, via, name, addr)
        if r is None or not is_busy(r):
            break
        lab.busy_retries += 1
        wait = float(r.headers.get("Retry-After", "5"))
        if lab.left() < wait + 5:
            break
        await asyncio.sleep(wait)
    ok = r is not None and r.status_code == (303 if via == "form" else 201)
    if not ok:
        lab.refused.setdefault(tag, "transport error" if r is None else
                               "busy" if is_busy(r) else str(r.status_code))
        return None
    assert r is not None
    job_id = int(r.json()["id"]) if via != "form" else 0
    status_url = r.json()["status_url"] if via != "form" else r.headers["location"]
    lab.accepted[tag] = {"id": job_id or None, "model": model.name, "via": via,
                         "size": model.stat().st_size, "status_url": status_url}
    return job_id


async def submit_once(lab: Lab, client: httpx.AsyncClient, tag: str, model: Path, via: str,
                      name: str, addr: str) -> httpx.Response | None:
    """One try: the response, or None (transport error or no form)."""
    data = fields(name, addr, tag)
    with model.open("rb") as handle:
        files = {"file": (model.name, handle, "application/octet-stream")}
        if via == "form":
            page = await timed(lab.rec, "GET /", client.get("/"))
            match = re.search(r'name="csrf_token" value="([^"]+)"', page.text) if page else None
            if match is None:
                lab.refused[tag] = "no form"
                return None
            return await timed(lab.rec, "POST /submit", client.post(
                "/submit", data={"csrf_token": match.group(1), **data}, files=files))
        route = "POST /api/v1/submissions" + (" (200 MB)" if via == "big" else "")
        return await timed(lab.rec, route, client.post("/api/v1/submissions", data=data,
                                                       files=files))


async def student(lab: Lab, i: int, start_in: float) -> None:
    await asyncio.sleep(start_in)
    if lab.left() < 5:
        return
    via = "form" if i % 3 == 2 else "api"
    tag = f"{lab.tag}-s{i:03d}"
    model = FIXTURES / "models" / MODELS[i % len(MODELS)]
    async with httpx.AsyncClient(base_url=lab.url, timeout=120) as client:
        job_id = await submit(lab, client, tag, model, via, f"Student {i:03d}",
                              f"student{i:03d}@university.edu")
        if job_id is None:
            return
        status_url = lab.accepted[tag]["status_url"].split("?")[0]
        if job_id == 0:  # the form: the status page names the job
            r = await timed(lab.rec, "GET /status/{token}", client.get(status_url))
            match = re.search(r"#(\d+)", r.text) if r is not None else None
            if match is None:
                return
            job_id = int(match.group(1))
            lab.accepted[tag]["id"] = job_id
        event = lab.approved.setdefault(job_id, asyncio.Event())
        while lab.left() > 1:
            try:
                await asyncio.wait_for(event.wait(), timeout=min(random.uniform(10, 20),
                                                                 lab.left()))
            except TimeoutError:
                await timed(lab.rec, "GET /status/{token}", client.get(status_url))
                continue
            break
        token = None
        while token is None and lab.left() > 1:  # the worker writes the email
            token = confirm_token(lab.mail, job_id)
            if token is None:
                await asyncio.sleep(0.5)
        if token is None:
            return
        if i % 2:
            r = await timed(lab.rec, "POST /api/v1/confirm",
                            client.post("/api/v1/confirm", json={"token": token}))
        else:
            page = await timed(lab.rec, "GET /confirm/{token}", client.get(f"/confirm/{token}"))
            match = re.search(r'name="csrf_token" value="([^"]+)"', page.text) if page else None
            r = None if match is None else await timed(
                lab.rec, "POST /confirm/{token}",
                client.post(f"/confirm/{token}", data={"csrf_token": match.group(1)}))
        if r is not None and r.status_code < 400:
            lab.lifecycle["confirmed"] += 1


async def big_upload(lab: Lab, k: int, start_in: float) -> None:
    await asyncio.sleep(start_in)
    assert lab.big is not None
    async with httpx.AsyncClient(base_url=lab.url, timeout=600) as client:
        await submit(lab, client, f"{lab.tag}-big{k}", lab.big, "big", f"Big Student {k}",
                     f"big{k}@university.edu")


# --- the staff ---------------------------------------------------------------------------


async def html_login(lab: Lab, client: httpx.AsyncClient, workstation: str) -> None:
    page = await client.get("/staff/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if match is None:
        raise RuntimeError("no csrf_token on /staff/login")
    r = await client.post("/staff/login", data={"workstation": workstation,
                                                "password": PASSWORD,
                                                "csrf_token": match.group(1)})
    if r.status_code != 303:
        raise RuntimeError(f"login form: HTTP {r.status_code}: {r.text[:300]}")


async def sse_stream(lab: Lab, client: httpx.AsyncClient, who: str) -> None:
    """Keeps ``GET /staff/events`` open until the deadline; counts events, reconnects."""
    while lab.left() > 0:
        t0 = time.perf_counter()
        try:
            async with client.stream("GET", "/staff/events",
                                     timeout=httpx.Timeout(10, read=30)) as r:
                lab.rec.add("GET /staff/events (open)", (time.perf_counter() - t0) * 1000,
                            str(r.status_code))
                if r.status_code != 200:
                    await asyncio.sleep(1)
                    continue
                lab.sse["streams_opened"] += 1
                async for line in r.aiter_lines():
                    if line.startswith("event: change"):
                        lab.sse["changes_seen"] += 1
                        lab.sse[f"changes_seen_{who}"] += 1
                    if lab.left() <= 0:
                        return
        except httpx.HTTPError as err:
            if lab.left() > 0:
                lab.rec.add("GET /staff/events (open)", (time.perf_counter() - t0) * 1000,
                            f"error:{type(err).__name__}", repr(err))
                lab.sse["stream_errors"] += 1
                await asyncio.sleep(1)


async def staff_member(lab: Lab, index: int) -> None:
    name = STAFF_NAMES[index]
    n = lab.args.staff
    async with httpx.AsyncClient(base_url=lab.url, timeout=60) as html, \
            httpx.AsyncClient(base_url=lab.url + "/api/v1", timeout=60) as api:
        await html_login(lab, html, f"Desk {index + 1}")
        r = await api.post("/auth/login", json={"workstation": f"Desk {index + 1} API",
                                                "password": PASSWORD})
        r.raise_for_status()
        api.headers["Authorization"] = f"Bearer {r.json()['token']}"
        stream = asyncio.create_task(sse_stream(lab, html, f"desk{index + 1}"))
        tabs = ["uploaded", "pending", "ready_to_print", "printing", "completed"]
        turn = 0

        async def act(job: dict[str, Any], path: str, body: dict[str, Any], step: str) -> bool:
            r = await timed(lab.rec, f"POST /api/v1/jobs/{{id}}/{path}", api.post(
                f"/jobs/{job['id']}/{path}",
                json={"staff_name": name, "version": job["version"], **body}))
            if r is not None and r.status_code == 200:
                lab.lifecycle[step] += 1
                return True
            return False

        while lab.left() > 2:
            try:
                await staff_round(lab, api, html, name, index, n, tabs, turn, act)
            except Exception as err:
                lab.lifecycle["staff_round_errors"] += 1
                if len(lab.staff_errors) < 10:
                    lab.staff_errors.append(f"{name}: {err!r}"[:300])
            turn += 1
            await asyncio.sleep(random.uniform(0.3, 0.8))
        stream.cancel()
        try:
            await stream
        except (asyncio.CancelledError, httpx.HTTPError):
            pass


async def staff_round(lab: Lab, api: httpx.AsyncClient, html: httpx.AsyncClient, name: str,
                      index: int, n: int, tabs: list[str], turn: int, act: Any) -> None:
    """One look at the dashboard, then up to 3 of this desk's jobs moved per state."""
    lab.lifecycle["staff_rounds"] += 1
    await timed(lab.rec, "GET /staff (dashboard)",
                html.get("/staff", params={"status": tabs[turn % len(tabs)]}))
    for status in ("completed", "printing", "ready_to_print", "uploaded"):
        r = await timed(lab.rec, "GET /api/v1/jobs?status=",
                        api.get("/jobs", params={"status": status, "limit": 50}))
        if r is None or r.status_code != 200 or lab.left() < 2:
            continue
        mine = [j for j in r.json()["jobs"] if j["id"] % n == index][:3]
        for job in mine:
            if status == "completed":
                await act(job, "payment", {"grams": 12.5, "txn_no": f"TX-{job['id']}",
                                           "picked_up_by": job["student_name"]},
                          "paid_picked_up")
            elif status == "printing":
                await act(job, "mark-complete", {}, "completed")
            elif status == "ready_to_print":
                await act(job, "mark-printing", {"printer": "X1C-1"}, "printing")
            else:
                await approve(lab, api, name, job)


async def approve(lab: Lab, api: httpx.AsyncClient, name: str, job: dict[str, Any]) -> None:
    """Job page, sliced file, approve with its weight and time (the cost follows)."""
    await timed(lab.rec, "GET /api/v1/jobs/{id}", api.get(f"/jobs/{job['id']}"))
    with SLICED.open("rb") as handle:
        r = await timed(lab.rec, "POST /api/v1/jobs/{id}/files", api.post(
            f"/jobs/{job['id']}/files", data={"staff_name": name},
            files={"file": (SLICED.name, handle)}))
    if r is None or r.status_code != 201:
        return
    stored = r.json()["file"]["stored_name"]
    version = r.json()["job"]["version"]
    r = await timed(lab.rec, "POST /api/v1/jobs/{id}/approve", api.post(
        f"/jobs/{job['id']}/approve",
        json={"staff_name": name, "weight_g": 10.48, "time_hours": 1.0,
              "authoritative_file": stored, "version": version}))
    if r is not None and r.status_code == 200:
        lab.lifecycle["approved"] += 1
        lab.approved.setdefault(job["id"], asyncio.Event()).set()


# --- the queue members -------------------------------------------------------------------


def queue_step(queue: Any, rec: Recorder, member: str) -> None:
    """One command for ``member``, chosen from its ticket, timed as the bot waits for it."""
    from printcore.errors import PrintcoreError, StorageError

    def run(command: str, func: Any, *a: Any) -> Any:
        t0 = time.perf_counter()
        try:
            result = func(*a)
        except StorageError as err:  # the database unreachable: an error, not a refusal
            rec.add(f"queue {command}", (time.perf_counter() - t0) * 1000,
                    "error:StorageError", repr(err), http=False)
            return None
        except PrintcoreError as err:
            reason = getattr(err, "reason", None) or type(err).__name__
            rec.add(f"queue {command}", (time.perf_counter() - t0) * 1000,
                    f"refused:{reason}", http=False)
            return None
        except Exception as err:
            rec.add(f"queue {command}", (time.perf_counter() - t0) * 1000,
                    f"error:{type(err).__name__}", repr(err), http=False)
            return None
        rec.add(f"queue {command}", (time.perf_counter() - t0) * 1000, "ok", http=False)
        return result

    tickets = run("myjobs", queue.myjobs, member) or []
    ticket = next((t for t in tickets if t.status in ("queued", "offered", "claimed",
                                                      "printing")), None)
    if ticket is None:
        run("join", queue.join, member, member.title(), f"part for {member}",
            timedelta(minutes=random.randint(20, 120)))
    elif ticket.status == "offered":
        run("claim", queue.claim, member, ticket.printer)
    elif ticket.status == "claimed":
        run("report_started", queue.report_started, member)
    elif ticket.status == "printing":
        run("close", queue.close, member, ticket.printer, "finished")
    else:
        run("placement", queue.placement, member)


async def queue_member(lab: Lab, queue: Any, pool: ThreadPoolExecutor, i: int) -> None:
    loop = asyncio.get_running_loop()
    member = f"member{i:02d}"
    await asyncio.sleep(random.uniform(0, 5))
    while lab.left() > 1:
        await loop.run_in_executor(pool, queue_step, queue, lab.rec, member)
        await asyncio.sleep(random.uniform(0.5, 1.5))


# --- checks ------------------------------------------------------------------------------


def check_submissions(lab: Lab, dsn: str, schema: str, storage: Path) -> dict[str, Any]:
    with psycopg.connect(dsn, options=f"-csearch_path={schema}") as conn:
        rows = conn.execute("SELECT id, notes, status, files FROM jobs WHERE notes LIKE %s",
                            (lab.tag + "-%",)).fetchall()
    by_tag: dict[str, list[tuple[int, str, list[dict[str, Any]]]]] = defaultdict(list)
    for job_id, notes, status, files in rows:
        by_tag[notes].append((job_id, status, files))
    missing, doubled, file_missing, wrong_size, wrong_id = [], [], [], [], []
    for tag, sent in lab.accepted.items():
        found = by_tag.get(tag, [])
        if not found:
            missing.append(tag)
            continue
        if len(found) > 1:
            doubled.append(tag)
        job_id, _status, files = found[0]
        if sent["id"] is not None and sent["id"] != job_id:
            wrong_id.append(tag)
        model = next((f for f in files if f.get("role") == "original"), None)
        if model is None:
            file_missing.append(tag)
            continue
        on_disk = list(storage.glob(f"*/*_{job_id}/{model['stored_name']}"))
        if not on_disk:
            file_missing.append(tag)
        elif on_disk[0].stat().st_size != sent["size"]:
            wrong_size.append(tag)
    unexpected = sorted(set(by_tag) - set(lab.accepted))
    return {"accepted_2xx": len(lab.accepted), "in_database": len(rows),
            "missing": missing, "doubled": doubled, "wrong_id": wrong_id,
            "file_missing": file_missing, "file_wrong_size": wrong_size,
            "in_database_without_2xx": unexpected,
            "refused": dict(sorted(lab.refused.items())),
            "sent_again_after_busy": lab.busy_retries}


def outbox_state(dsn: str, schema: str) -> list[tuple[int, str, str, Any]]:
    with psycopg.connect(dsn, options=f"-csearch_path={schema}") as conn:
        return conn.execute("SELECT id, status, kind, created_at FROM outbox "
                            "WHERE channel = 'email' ORDER BY id").fetchall()


def check_mail(dsn: str, schema: str, mail: Path, wait: float) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    rows = outbox_state(dsn, schema)
    while any(r[1] == "pending" for r in rows) and time.monotonic() < deadline:
        time.sleep(1)
        rows = outbox_state(dsn, schema)
    ids: dict[int, int] = defaultdict(int)
    foreign = []
    for path in mail.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email_policy.default)
        match = re.match(r"<printcore\.outbox\.(\d+)\.", str(message.get("Message-ID", "")))
        if match:
            ids[int(match.group(1))] += 1
        else:
            foreign.append(path.name)
    by_status: dict[str, int] = defaultdict(int)
    for _id, status, _kind, _at in rows:
        by_status[status] += 1
    sent = {r[0] for r in rows if r[1] == "sent"}
    return {"outbox_rows": len(rows), "by_status": dict(by_status),
            "eml_files": sum(ids.values()) + len(foreign),
            "sent_without_file": sorted(sent - set(ids)),
            "file_more_than_once": sorted(i for i, c in ids.items() if c > 1),
            "file_without_sent_row": sorted(set(ids) - sent),
            "files_without_outbox_id": foreign[:20]}


# --- the run -----------------------------------------------------------------------------


async def drive(lab: Lab, queue: Any, args: argparse.Namespace) -> float:
    """Every simulated person as a task; returns the wall time. Tasks still running
    ``--grace`` s after the deadline are cancelled and named in ``lab.hung``."""
    pool = ThreadPoolExecutor(max_workers=args.queue_threads, thread_name_prefix="queue")
    work: dict[str, Any] = {}
    spread = max(1.0, args.duration * 0.6)
    for i in range(args.students):
        work[f"student{i:03d}"] = student(lab, i, random.uniform(0, spread))
    for k in range(args.big):
        work[f"big{k}"] = big_upload(lab, k, args.duration * (0.1 + 0.5 * k / max(1, args.big)))
    for s in range(args.staff):
        work[f"staff{s}"] = staff_member(lab, s)
    for m in range(args.members):
        work[f"member{m:02d}"] = queue_member(lab, queue, pool, m)
    t0 = time.monotonic()
    tasks = [asyncio.create_task(coro, name=name) for name, coro in work.items()]
    _done, pending = await asyncio.wait(tasks, timeout=lab.left() + args.grace)
    lab.hung = sorted(t.get_name() for t in pending)
    lab.hung_requests = lab.rec.open_requests()
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    pool.shutdown(wait=True)
    failures = [t for t in tasks if not t.cancelled() and t.exception() is not None]
    for t in failures[:5]:
        err = t.exception()
        assert err is not None
        log(f"driver task {t.get_name()} failed: "
            f"{''.join(traceback.format_exception(err))[-800:]}")
    lab.failures = {t.get_name(): repr(t.exception())[:300] for t in failures}
    return time.monotonic() - t0


def pg_started(dsn: str) -> str:
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        return str(conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0])


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": sys.version.split()[0]}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in text.splitlines()
                           if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--staff", type=int, default=2, choices=range(1, len(STAFF_NAMES) + 1))
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--printers", type=int, default=10)
    parser.add_argument("--queue-threads", type=int, default=8)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--after", type=float, default=30.0,
                        help="seconds of RSS sampling after the load")
    parser.add_argument("--big", type=int, default=2, help="200 MB uploads")
    parser.add_argument("--grace", type=float, default=120.0,
                        help="seconds after the load's end before tasks still running are "
                             "cancelled (and named under 'hung')")
    parser.add_argument("--pg-dsn", default=os.environ.get(
        "PRINTCORE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--no-save", action="store_true", help="do not write load.json")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 1800 or args.students > 2000 or args.members > 500:
        parser.error("bounded runs only: --duration 1..1800 s, --students <= 2000, "
                     "--members <= 500")
    for name in MODELS:
        if not (FIXTURES / "models" / name).exists():
            parser.error(f"missing fixture {FIXTURES / 'models' / name}")

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    work = Path(tempfile.mkdtemp(prefix="printcore-load-"))
    home = work / "home"
    home.mkdir()
    schema = f"pc_load_{secrets.token_hex(6)}"
    tag = f"load-{secrets.token_hex(4)}"
    out: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "bench/load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(), "loadavg_before": os.getloadavg(), "goals": GOALS,
        "settings": {k: v for k, v in vars(args).items() if k not in ("pg_dsn",)},
        "schema": schema,
    }
    children: list[Child] = []
    server: Server | None = None
    container: Any = None
    redis_url = None
    db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    try:
        for attempt in range(30):  # PostgreSQL may be restarting (the fault runs do it)
            try:
                with psycopg.connect(args.pg_dsn, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f'CREATE SCHEMA "{schema}"')
                break
            except psycopg.OperationalError:
                if attempt == 29:
                    raise
                time.sleep(2)
        out["postgres_started_at_before"] = pg_started(args.pg_dsn)
        db, redis_url = claim_redis_db(args.redis)
        out["redis_db"] = db
        (home / "printers.yaml").write_text("printers:\n" + "".join(
            f"  - name: X1C-{n}\n    label: Bambu Lab X1 Carbon {n}\n"
            for n in range(1, args.printers + 1)))
        env_extra = {
            "DATABASE_URL": db_url, "REDIS_URL": redis_url, "PRINTCORE_SECRET_KEY": SECRET,
            "PRINTCORE_MAIL_BACKEND": "file", "PRINTCORE_OUTBOX_RETRY_SECONDS": "1",
            "PRINTCORE_SWEEP_SECONDS": "1",
            # 200 students from one loopback address: the per-client limits would refuse
            # them (tests/e2e/test_abuse.py measures the limits on their own).
            "PRINTCORE_LOGIN_FAILURES_PER_MINUTE": "100000",
            "PRINTCORE_SUBMISSIONS_PER_HOUR": "100000",
            "PRINTCORE_SUBMISSION_MAIL_PER_HOUR": "100000",
        }
        server = Server(home, env_extra)
        env = dict(server.env)
        for name in STAFF_NAMES[: args.staff]:
            subprocess.run([sys.executable, "-m", "entrypoints.cli", "staff", "add", name],
                           env=env, cwd=str(home), check=True, capture_output=True, timeout=120)
        big = None
        if args.big:
            big = work / "big_grid.stl"
            log("writing the 200 MB STL")
            out["big_bytes"] = write_grid_stl(big, BIG_TRIANGLES)
        log(f"starting serve, worker and sweep on schema {schema}, Redis db {db}")
        server.start()
        children.append(Child("worker", ["worker", "--threads", "2"], env, home))
        children[-1].wait_for("worker started", 60)
        children.append(Child("sweep", ["sweep"], env, home))

        from entrypoints.bootstrap import bootstrap
        from entrypoints.settings import load_settings

        container = bootstrap(load_settings(env, env_file=None))
        sampler = RssSampler(server.pid)
        sampler.start()
        time.sleep(3)
        sampler.phase = "load"
        lab = Lab(args, server.url, home / "mail", tag, time.monotonic() + args.duration, big)
        log(f"load: {args.students} students, {args.staff} staff, {args.members} members, "
            f"{args.big} big uploads, {args.duration:.0f} s")
        wall = asyncio.run(drive(lab, container.queue, args))
        sampler.phase = "after"
        out["loadavg_end_of_load"] = os.getloadavg()
        out["hung_tasks"], out["failed_tasks"] = lab.hung, lab.failures
        out["hung_requests"] = lab.hung_requests
        out["staff_round_error_examples"] = lab.staff_errors
        out["exited_during_load"] = {c.log.stem: c.process.returncode for c in children
                                     if c.process.poll() is not None}
        if server.process is not None and server.process.poll() is not None:
            out["exited_during_load"]["serve"] = server.process.returncode
        log(f"load done in {wall:.1f} s; sampling RSS for {args.after:.0f} s and checking")
        after_started = time.monotonic()
        out["mail"] = check_mail(args.pg_dsn, schema, home / "mail", wait=args.after)
        # after the quiet period: a submission the server finished after its client gave
        # up shows here as in the database without a 2xx
        time.sleep(max(0.0, args.after - (time.monotonic() - after_started)))
        out["submissions"] = check_submissions(lab, args.pg_dsn, schema, home / "storage")
        sampler.stop_event.set()
        sampler.join(timeout=5)

        routes = lab.rec.table()
        http_times = np.asarray(lab.rec.times)
        load_end = lab.deadline
        rps = float(((http_times <= load_end)).sum()) / args.duration if http_times.size else 0.0
        five = {r: {s: c for s, c in v["by_status"].items() if s.startswith("5")}
                for r, v in routes.items()}
        transport = {r: {s: c for s, c in v["by_status"].items() if s.startswith("error")}
                     for r, v in routes.items() if not r.startswith("queue ")}
        queue_ms = [ms for r, v in lab.rec.ms.items() if r.startswith("queue ") for ms in v]
        queue_errors = {r: {s: c for s, c in v["by_status"].items() if s.startswith("error")}
                        for r, v in routes.items() if r.startswith("queue ")}
        rss = sampler.samples
        def phase_kb(phase: str) -> list[int]:
            return [kb for _, kb, p in rss if p == phase]
        load_kb, after_kb = phase_kb("load"), phase_kb("after")
        dash = routes.get("GET /staff (dashboard)", {})
        out.update({
            "wall_s": round(wall, 1), "requests_per_second": round(rps, 1),
            "http_requests": int(http_times.size), "routes": routes,
            "server_errors": {r: v for r, v in five.items() if v},
            "server_error_count": sum(sum(v.values()) for v in five.values()),
            "transport_errors": {r: v for r, v in transport.items() if v},
            "queue_errors": {r: v for r, v in queue_errors.items() if v},
            "queue_all_commands": {
                "count": len(queue_ms),
                "p50_ms": round(float(np.percentile(queue_ms, 50)), 1) if queue_ms else None,
                "p95_ms": round(float(np.percentile(queue_ms, 95)), 1) if queue_ms else None,
                "p99_ms": round(float(np.percentile(queue_ms, 99)), 1) if queue_ms else None},
            "dashboard_p95_ms": dash.get("p95_ms"),
            "lifecycle": dict(lab.lifecycle), "sse": dict(lab.sse),
            "rss_mb": {
                "before": round(phase_kb("before")[-1] / 1024, 1) if phase_kb("before") else None,
                "load_max": round(max(load_kb) / 1024, 1) if load_kb else None,
                "load_end": round(load_kb[-1] / 1024, 1) if load_kb else None,
                "after_first": round(after_kb[0] / 1024, 1) if after_kb else None,
                "after_last": round(after_kb[-1] / 1024, 1) if after_kb else None,
                "after_max": round(max(after_kb) / 1024, 1) if after_kb else None},
            "rss_samples": [(t, round(kb / 1024, 1), p) for t, kb, p in rss],
            "loadavg_after": os.getloadavg(),
            "postgres_started_at_after": pg_started(args.pg_dsn),
        })
        out["postgres_restarted_during_run"] = (
            out["postgres_started_at_after"] != out["postgres_started_at_before"])
        out["verdict"] = {
            "server_errors": out["server_error_count"] <= GOALS["server_errors_max"],
            "dashboard_p95": (dash.get("p95_ms") or 1e9) < GOALS["dashboard_p95_ms_max"],
            "queue_p99": (out["queue_all_commands"]["p99_ms"] or 1e9) < GOALS["queue_p99_ms_max"],
            "rss_no_growth_after": (after_kb[-1] <= after_kb[0] + 5 * 1024) if after_kb else None,
            "nothing_lost": not (out["submissions"]["missing"] or out["submissions"]["doubled"]
                                 or out["submissions"]["file_missing"]
                                 or out["submissions"]["file_wrong_size"]
                                 or out["mail"]["sent_without_file"]
                                 or out["mail"]["file_more_than_once"]
                                 or out["mail"]["file_without_sent_row"]
                                 or out["mail"]["by_status"].get("pending")
                                 or out["mail"]["by_status"].get("failed")),
        }
    except BaseException as err:
        out["error"] = "".join(traceback.format_exception(err))[-3000:]
        log(f"run failed: {out['error']}")
    finally:
        if container is not None:
            container.close()
        for child in children:
            out.setdefault("exit_codes", {})[child.log.stem] = child.stop()
        if server is not None:
            out["server_log_tail"] = server.log_tail(1500)
            server.stop()
            out["children_killed_after_server_exit"] = server.killed_leftovers
        for child in children:
            text = child.log.read_text(errors="replace")
            out.setdefault("child_log_problems", {})[child.log.stem] = [
                line for line in text.splitlines()
                if re.search(r"Traceback|ERROR|CRITICAL", line)][:20]
        if redis_url:
            try:
                redis.Redis.from_url(redis_url).flushdb()
            except redis.RedisError as err:
                out["redis_flush_error"] = repr(err)
        try:
            with psycopg.connect(args.pg_dsn, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            out["schema_dropped"] = True
        except psycopg.Error as err:
            out["schema_dropped"] = repr(err)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in out.items() if k not in ("rss_samples", "routes")},
                     indent=1, default=str))
    for route, v in out.get("routes", {}).items():
        print(f"{route:45} n={v['count']:6} p50={v['p50_ms']:8} p95={v['p95_ms']:8} "
              f"p99={v['p99_ms']:8} {v['by_status']}")
    if not args.no_save:
        previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": []}
        previous["runs"] = (previous.get("runs", []) + [out])[-10:]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(previous, indent=1, default=str) + "\n")
        log(f"wrote {RESULTS}")
    return 0 if "error" not in out else 1


if __name__ == "__main__":
    sys.exit(main())
