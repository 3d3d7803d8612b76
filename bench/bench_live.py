"""Benchmark of live updates (issue 12): SSE fan-out to open staff pages.

``--streams`` (20) Server-Sent-Event streams are open on ``GET /staff/events`` of a real
``printcore serve`` (uvicorn, one process; ``tests/_live.start_server``), each logged in
on its own (``POST /api/v1/auth/login``: a session cookie) and past its ``ready`` event.
Then ``--changes`` (50) committed changes are made one at a time over the API (default:
``POST /api/v1/jobs/{id}/reject`` on jobs submitted before the streams opened;
``--change submit``: a submission of ``Moon.stl`` is the change). For each change the
benchmark records ``t0`` just before the request, ``t1`` when its response is in, and
the moment each stream has parsed the change's event (matched by kind and job id).
Figures: per change, the time until ALL streams have it (max over the streams), and
per stream (every stream × change), each from the request's start and from its response
(negative when the event beat the response: the wake-up is sent right after the
commit, before the response is written). After a change has reached every stream (or
10 s passed) the next one waits ``--gap`` s (0.2) × a random factor in [0.5, 1.5)
(``--seed``), so changes do not phase-lock with the 1 s poll.

Baseline, in the same run right before each printcore run: a bare Starlette app in its
own uvicorn process (this file with ``--baseline-server``), whose ``GET /staff/events``
has the same shape as printcore's (a ``ready`` event, then wait on an ``asyncio.Event``
that a change swaps and sets, read what is new) but keeps the changes in a Python list,
and whose ``POST /change`` appends one and wakes the streams. Same client code, same N,
M and gaps. The table gives median, p90, p99 and max and printcore / baseline.

Goal (checked here, never in tests): all streams have a change within median < 200 ms
and p99 < 1 s.

Run: ``.venv/bin/python bench/bench_live.py [--streams 20] [--changes 50]
[--database sqlite|postgresql|both] [--change reject|submit] [--gap 0.2] [--seed 12]``.
Loopback only. SQLite lives in a temporary home; PostgreSQL is a fresh schema in
``PRINTCORE_TEST_PG_DSN`` (default database ``test``), dropped at the end, also after an
error; the servers are stopped. Raw figures: ``bench/results/live.json``
(git-ignored). Figures: docs/benchmarks.md ("Live updates (SSE fan-out)").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

GOAL_MEDIAN_S = 0.200
GOAL_P99_S = 1.0
WAIT_PER_CHANGE_S = 10.0
MODEL = ROOT.parent / "shared" / "fixtures" / "models" / "Moon.stl"


# --- the baseline server (a subprocess) -----------------------------------------------------


def baseline_server(port: int) -> None:
    """A bare Starlette SSE fan-out: an in-memory list of changes and an asyncio.Event."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    changes: list[dict[str, Any]] = []
    state: dict[str, asyncio.Event | None] = {"event": None}

    def wake() -> None:
        old, state["event"] = state["event"], asyncio.Event()
        if old is not None:
            old.set()

    async def events(request: Request) -> Response:
        async def stream() -> Any:
            if state["event"] is None:
                state["event"] = asyncio.Event()
            yield "retry: 2000\n\n"
            last = len(changes)
            yield f"id: {last}\nevent: ready\ndata: {json.dumps({'id': last})}\n\n"
            while True:
                event = state["event"]
                for change in changes[last:]:
                    last = change["id"]
                    yield f"id: {last}\nevent: change\ndata: {json.dumps(change)}\n\n"
                assert event is not None
                try:
                    await asyncio.wait_for(event.wait(), 1.0)
                except TimeoutError:
                    pass

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    async def change(request: Request) -> Response:
        body = await request.json()
        item = {"id": len(changes) + 1, "subject": "job", "subject_id": body["subject_id"],
                "kind": body["kind"]}
        changes.append(item)
        wake()
        return JSONResponse(item)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/staff/events", events),
                            Route("/change", change, methods=["POST"]),
                            Route("/health", health)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


class Baseline:
    def __init__(self, log: Path) -> None:
        from _live import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.handle = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--baseline-server", str(self.port)],
            stdout=self.handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"baseline server did not start: {log.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.handle.close()


# --- the client: N streams and one actor, in one asyncio loop -------------------------------


class Streams:
    """N SSE readers; ``arrivals[i][(kind, subject_id)]`` = perf_counter() when stream i
    parsed that change's event."""

    def __init__(self, url: str, n: int, login: bool) -> None:
        self.url, self.n, self.login = url, n, login
        self.arrivals: list[dict[tuple[str, int], float]] = [{} for _ in range(n)]
        self.ready = [asyncio.Event() for _ in range(n)]
        self.changed = asyncio.Event()
        self.clients: list[httpx.AsyncClient] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.errors: list[str] = []

    async def open(self) -> None:
        from _live import PASSWORD

        for i in range(self.n):
            client = httpx.AsyncClient(base_url=self.url, timeout=httpx.Timeout(10, read=120))
            self.clients.append(client)
            if self.login:
                r = await client.post("/api/v1/auth/login",
                                      json={"workstation": f"Dashboard {i + 1}",
                                            "password": PASSWORD})
                r.raise_for_status()
            self.tasks.append(asyncio.create_task(self._read(i, client)))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in self.ready)), 30)

    async def _read(self, i: int, client: httpx.AsyncClient) -> None:
        try:
            async with client.stream("GET", "/staff/events") as response:
                if response.status_code != 200:
                    self.errors.append(f"stream {i}: HTTP {response.status_code}")
                    return
                kind, data = "message", ""
                async for line in response.aiter_lines():
                    if line == "":
                        if kind == "ready":
                            self.ready[i].set()
                        elif kind == "change" and data:
                            now = time.perf_counter()
                            change = json.loads(data)
                            self.arrivals[i][(change["kind"], int(change["subject_id"]))] = now
                            self.changed.set()
                        kind, data = "message", ""
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data += line[6:]
        except (httpx.HTTPError, asyncio.CancelledError) as err:
            if not isinstance(err, asyncio.CancelledError):
                self.errors.append(f"stream {i}: {err!r}")

    async def wait_all(self, key: tuple[str, int], timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while not all(key in a for a in self.arrivals):
            left = deadline - time.perf_counter()
            if left <= 0:
                return False
            self.changed.clear()
            if all(key in a for a in self.arrivals):
                break
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return False
        return True

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for client in self.clients:
            await client.aclose()


def pct(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"n": len(values), "median_s": pct(values, 0.5), "p90_s": pct(values, 0.9),
            "p99_s": pct(values, 0.99), "max_s": max(values), "min_s": min(values)}


async def measure(url: str, n: int, m: int, gap: float, rnd: random.Random,
                  trigger: Any, login: bool) -> dict[str, Any]:
    """``trigger(i)`` is a coroutine making change i; returns its key after the response."""
    streams = Streams(url, n, login)
    t_open = time.perf_counter()
    await streams.open()
    opened = time.perf_counter() - t_open
    rows: list[dict[str, Any]] = []
    try:
        await asyncio.sleep(0.5)
        for i in range(m):
            t0 = time.perf_counter()
            key = await trigger(i)
            t1 = time.perf_counter()
            complete = await streams.wait_all(key, WAIT_PER_CHANGE_S)
            got = [a[key] for a in streams.arrivals if key in a]
            rows.append({"key": list(key), "request_s": t1 - t0, "complete": complete,
                         "missing": n - len(got),
                         "from_start_s": [t - t0 for t in got],
                         "from_response_s": [t - t1 for t in got]})
            await asyncio.sleep(gap * (0.5 + rnd.random()))
    finally:
        await streams.close()
    full = [r for r in rows if r["complete"]]
    return {
        "streams": n, "changes": m, "open_and_ready_s": opened,
        "incomplete_changes": len(rows) - len(full),
        "missing_arrivals": sum(r["missing"] for r in rows),
        "stream_errors": streams.errors,
        "all_streams_from_start": summary([max(r["from_start_s"]) for r in full]),
        "all_streams_from_response": summary([max(r["from_response_s"]) for r in full]),
        "per_stream_from_start": summary([x for r in rows for x in r["from_start_s"]]),
        "per_stream_from_response": summary([x for r in rows for x in r["from_response_s"]]),
        "first_stream_from_start": summary([min(r["from_start_s"]) for r in rows
                                            if r["from_start_s"]]),
        "request": summary([r["request_s"] for r in rows]),
        "rows": rows,
    }


async def run_baseline(url: str, n: int, m: int, gap: float, seed: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as actor:
        async def trigger(i: int) -> tuple[str, int]:
            r = await actor.post("/change", json={"kind": "reject", "subject_id": i + 1})
            r.raise_for_status()
            return ("reject", i + 1)

        await trigger(-1)  # warm the connection
        return await measure(url, n, m, gap, random.Random(seed), trigger, login=False)


async def run_printcore(url: str, n: int, m: int, gap: float, seed: int,
                        change: str) -> dict[str, Any]:
    from _live import PASSWORD, STAFF

    model = MODEL.read_bytes()
    fields = {"student_name": "Jane Doe", "email": "jane.doe@university.edu",
              "discipline": "Mechanical Engineering", "class_number": "ME 101",
              "print_method": "filament", "color": "Red", "preferred_printer": "",
              "notes": ""}
    async with httpx.AsyncClient(base_url=url + "/api/v1", timeout=60) as actor:
        async def submit() -> int:
            r = await actor.post("/submissions", data=fields,
                                 files={"file": ("Moon.stl", model)})
            assert r.status_code == 201, r.text
            return int(r.json()["id"])

        r = await actor.post("/auth/login", json={"workstation": "Bench actor",
                                                  "password": PASSWORD})
        r.raise_for_status()
        actor.headers["Authorization"] = f"Bearer {r.json()['token']}"
        t = time.perf_counter()
        jobs = [await submit() for _ in range(m + 1 if change == "reject" else 1)]
        prepared = time.perf_counter() - t

        async def reject(job_id: int) -> tuple[str, int]:
            r = await actor.post(f"/jobs/{job_id}/reject",
                                 json={"staff_name": STAFF, "custom_reason": "Bench."})
            assert r.status_code == 200, r.text
            return ("reject", job_id)

        await reject(jobs.pop())  # warm up the path (and the actor's connection)

        async def trigger(i: int) -> tuple[str, int]:
            if change == "reject":
                return await reject(jobs[i])
            return ("submit", await submit())

        out = await measure(url, n, m, gap, random.Random(seed), trigger, login=True)
        out["prepare_submissions_s"] = prepared
        return out


# --- servers and the run ----------------------------------------------------------------------


def start_printcore(kind: str, home: Path) -> tuple[Any, str | None]:
    from _live import PG_DSN, start_server

    extra: dict[str, str] = {"PRINTCORE_SECRET_KEY": "bench-live-" + uuid.uuid4().hex}
    schema = None
    if kind == "postgresql":
        import psycopg

        schema = f"pc_bench_live_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_DSN, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        extra["DATABASE_URL"] = (PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
                                 + f"?options=-csearch_path%3D{schema}")
    try:
        return start_server(home, extra, kind), schema
    except BaseException:
        drop_schema(schema)
        raise


def drop_schema(schema: str | None) -> None:
    if schema is None:
        return
    import psycopg

    from _live import PG_DSN

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def ms(s: dict[str, float], key: str) -> str:
    return f"{s[key] * 1000:8.1f}" if s else "       -"


def print_table(kind: str, pc: dict[str, Any], base: dict[str, Any]) -> None:
    print(f"\n{kind}: {pc['streams']} streams, {pc['changes']} changes "
          f"(incomplete: printcore {pc['incomplete_changes']}, baseline "
          f"{base['incomplete_changes']}; missing arrivals {pc['missing_arrivals']} / "
          f"{base['missing_arrivals']}), ms")
    print(f"{'figure':44} {'median':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    for label, key in [("all streams, from request start", "all_streams_from_start"),
                       ("all streams, from response", "all_streams_from_response"),
                       ("per stream, from request start", "per_stream_from_start"),
                       ("per stream, from response", "per_stream_from_response"),
                       ("the request itself", "request")]:
        a, b = pc[key], base[key]
        print(f"{'printcore ' + label:44} " + " ".join(ms(a, k) for k in
                                                      ("median_s", "p90_s", "p99_s", "max_s")))
        print(f"{'baseline  ' + label:44} " + " ".join(ms(b, k) for k in
                                                      ("median_s", "p90_s", "p99_s", "max_s")))
        if key.endswith("from_start") or key == "request":
            ratios = [a[k] / b[k] if a and b and b[k] > 0 else float("nan")
                      for k in ("median_s", "p90_s", "p99_s", "max_s")]
            print(f"{'  ratio printcore / baseline':44} "
                  + " ".join(f"{r:7.1f}×" for r in ratios))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"],
                        default="both")
    parser.add_argument("--change", choices=["reject", "submit"], default="reject")
    parser.add_argument("--gap", type=float, default=0.2,
                        help="mean seconds between a change reaching all streams and the next")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "live.json")
    parser.add_argument("--baseline-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        baseline_server(args.baseline_server)
        return 0
    if not 1 <= args.streams <= 200 or not 1 <= args.changes <= 1000:
        parser.error("--streams 1..200, --changes 1..1000")

    from _live import stop_server

    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"nproc": len(os.sched_getaffinity(0)), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "platform": platform.platform(),
                    "load_avg_before": os.getloadavg()},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                 if k != "baseline_server"},
        "goals": {"all_streams_median_s": GOAL_MEDIAN_S, "all_streams_p99_s": GOAL_P99_S},
        "runs": {},
    }
    m = results["machine"]
    print(f"nproc {m['nproc']}, python {m['python']}, load average before "
          f"{' '.join(f'{x:.2f}' for x in m['load_avg_before'])}", flush=True)
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        for kind in kinds:
            home = Path(tmp) / kind
            home.mkdir()
            load_start = os.getloadavg()
            baseline = Baseline(home / "baseline.log")
            try:
                base = asyncio.run(run_baseline(baseline.url, args.streams, args.changes,
                                                args.gap, args.seed))
            finally:
                baseline.stop()
            server, schema = start_printcore(kind, home)
            try:
                pc = asyncio.run(run_printcore(server.url, args.streams, args.changes,
                                               args.gap, args.seed, args.change))
            finally:
                stop_server(server)
                drop_schema(schema)
            results["runs"][kind] = {"printcore": pc, "baseline": base,
                                     "load_avg_start": load_start,
                                     "load_avg_end": os.getloadavg()}
            print_table(kind, pc, base)
            s = pc["all_streams_from_start"]
            met = (bool(s) and pc["incomplete_changes"] == 0
                   and s["median_s"] < GOAL_MEDIAN_S and s["p99_s"] < GOAL_P99_S)
            verdicts.append(f"{kind}: {'met' if met else 'NOT met'}")
            if pc["stream_errors"] or base["stream_errors"]:
                print("stream errors:", pc["stream_errors"], base["stream_errors"])
            print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    m["load_avg_after"] = os.getloadavg()
    print(f"\nload average after {' '.join(f'{x:.2f}' for x in m['load_avg_after'])}")
    print(f"goal (all {args.streams} streams, from request start: median < 200 ms, "
          f"p99 < 1 s): " + "; ".join(verdicts))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(f"raw figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
