"""Benchmark of printcore's print-request paths against a real server (``printcore serve``).

One run measures, prints a table, and writes JSON to ``bench/results/print_requests.json``:

1. Upload throughput: a generated binary STL (default 200 MB, ~4,000,000 triangles)
   posted to ``POST /api/v1/submissions`` (streamed from disk with httpx) compared with
   ``cp`` of the same file on the same disk. Two kinds of request, interleaved:
   * "receive-only": the same body with an invalid email. The server streams the body
     into its staging folder (SHA-256 on the way), then refuses the form fields before
     the model is inspected (adapters/web/intake.py: inspection only runs when no field
     is wrong), and removes the staged file.
   * "full": a valid submission: receive + mesh inspection in the spawned inspector
     process + database row + rename into the job folder.
2. Peak memory: VmRSS before / VmHWM after of the web server process, and VmHWM of the
   inspector child process (the spawned ProcessPoolExecutor worker), read from /proc.
   Peaks are reset before each request by writing 5 to /proc/<pid>/clear_refs.
3. Staff dashboard and ``GET /api/v1/jobs`` with 10,000 jobs in PostgreSQL (fresh
   schema in database ``test``), 200 sequential requests each, interleaved round-robin,
   with ``GET /api/v1/health`` as the baseline.

Goals (checked here, never in tests): upload throughput >= 0.5 x cp; server memory
growth during the upload < 50 MB; p95 of the listing pages < 100 ms.

Run: ``.venv/bin/python bench/bench_print_requests.py`` (``--help`` for flags).
Only 127.0.0.1 is used. Temporary files, server processes (and their inspector
children) and the PostgreSQL schema are removed at the end, also after an error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "print_requests.json"
PASSWORD = "bench staff password 2024"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MB = 1_000_000

GOALS = {
    "upload_ratio_to_cp_min": 0.5,
    "server_rss_growth_mb_max": 50.0,
    "listing_p95_ms_max": 100.0,
}

VALID_FIELDS = {
    "student_name": "Jane Doe",
    "email": "jane.doe@university.edu",
    "discipline": "Mechanical Engineering",
    "class_number": "ME 101",
    "print_method": "filament",
    "color": "Red",
    "preferred_printer": "",
    "notes": "benchmark upload",
}
BAD_EMAIL_FIELDS = {**VALID_FIELDS, "email": "not-an-email"}


class BenchTimeout(Exception):
    pass


# --- /proc helpers ---------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (kB) of ``pid``; empty when it is gone."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def proc_cpu_seconds(pid: int) -> float | None:
    """utime + stime of the process (all its threads), seconds."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            data = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            data = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(data[data.rindex(")") + 2 :].split()[19])


def proc_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\x00", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def proc_children(pid: int) -> list[int]:
    """Direct children, from /proc/<pid>/task/*/children."""
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return kids
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as handle:
                kids.extend(int(x) for x in handle.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return sorted(set(kids))


def child_kind(pid: int) -> str:
    cmd = proc_cmdline(pid)
    if "multiprocessing.spawn" in cmd or "--multiprocessing-fork" in cmd:
        return "inspector-worker"
    if "resource_tracker" in cmd:
        return "resource-tracker"
    return "other"


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, writing 5 to clear_refs)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def kb_to_mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb * 1024 / MB, 1)


# --- small utilities ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_sync() -> float:
    t0 = time.perf_counter()
    subprocess.run(["sync"], check=True, timeout=300)
    return time.perf_counter() - t0


def summary(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {
        "n": int(arr.size),
        "median": float(np.median(arr)),
        "p95": float(np.percentile(arr, 95)),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "mean": float(arr.mean()),
    }


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- STL generation ------------------------------------------------------------------------

STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("v", "<f4", (3, 3)), ("attr", "<u2")])
assert STL_RECORD.itemsize == 50


def write_grid_stl(path: Path, triangles: int, quads_per_row: int = 1000) -> int:
    """A binary STL of a wavy height-field grid (0.1 mm cells, two triangles per cell),
    written in chunks of 100 rows. Returns the file size in bytes."""
    step = np.float32(0.1)
    cols = np.arange(quads_per_row, dtype=np.float32)

    def height(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (5.0 + 2.0 * np.sin(x / 7.0) * np.cos(y / 11.0)).astype(np.float32)

    with path.open("wb") as handle:
        handle.write(b"printcore benchmark: binary STL height-field grid".ljust(80, b" "))
        handle.write(struct.pack("<I", triangles))
        written = 0
        row = 0
        rows_per_chunk = 100
        while written < triangles:
            rows = np.arange(row, row + rows_per_chunk, dtype=np.float32)
            x0 = np.broadcast_to(cols[None, :] * step, (rows.size, cols.size))
            y0 = np.broadcast_to(rows[:, None] * step, (rows.size, cols.size))
            x1, y1 = x0 + step, y0 + step

            def vertex(x: np.ndarray, y: np.ndarray) -> np.ndarray:
                return np.stack([x, y, height(x, y)], axis=-1)

            v00, v10, v11, v01 = vertex(x0, y0), vertex(x1, y0), vertex(x1, y1), vertex(x0, y1)
            tri_a = np.stack([v00, v10, v11], axis=-2)
            tri_b = np.stack([v00, v11, v01], axis=-2)
            tris = np.stack([tri_a, tri_b], axis=2).reshape(-1, 3, 3)
            take = min(tris.shape[0], triangles - written)
            tris = tris[:take]
            normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
            normals /= np.linalg.norm(normals, axis=1, keepdims=True)
            records = np.zeros(take, dtype=STL_RECORD)
            records["v"] = tris
            records["normal"] = normals
            handle.write(records.tobytes())
            written += take
            row += rows_per_chunk
    return path.stat().st_size


# --- the server --------------------------------------------------------------------------


class Server:
    """``python -m entrypoints.cli serve`` on 127.0.0.1:<free port> as a subprocess."""

    def __init__(self, home: Path, env_extra: dict[str, str]) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith("PRINTCORE_")
            and k != "DATABASE_URL"
        }
        self.env.update({
            "PRINTCORE_HOME": str(home),
            "PRINTCORE_HOST": "127.0.0.1",
            "PRINTCORE_PORT": str(self.port),
            "PRINTCORE_BASE_URL": self.url,
            "PRINTCORE_STAFF_PASSWORD": PASSWORD,
            "PYTHONUNBUFFERED": "1",
            **env_extra,
        })
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = home / "server.log"
        self._log_handle: Any = None
        #: every descendant ever seen: pid -> (start ticks, kind), to clean up by pid only
        self.seen_children: dict[int, tuple[int | None, str]] = {}
        #: children still alive 5 s after the server exited, ended here by pid
        self.killed_leftovers: list[dict[str, Any]] = []

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 90) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._log_handle = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "entrypoints.cli", "serve", "--log-level", "warning"],
            env=self.env, cwd=str(self.home), stdout=self._log_handle,
            stderr=subprocess.STDOUT, start_new_session=False,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def children(self) -> dict[int, str]:
        """Current direct children with their kind; remembered for the clean-up."""
        if self.process is None:
            return {}
        found = {pid: child_kind(pid) for pid in proc_children(self.pid)}
        for pid, kind in found.items():
            self.seen_children.setdefault(pid, (proc_start_ticks(pid), kind))
        return found

    def worker_pid(self) -> int | None:
        workers = [p for p, kind in self.children().items() if kind == "inspector-worker"]
        return workers[0] if len(workers) == 1 else (max(workers) if workers else None)

    def stop(self) -> None:
        if self.process is not None:
            self.children()
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
            # inspector children that outlived the server: end them by pid, after checking
            # the pid still belongs to the process we saw (same start time)
            deadline = time.monotonic() + 5
            for pid, (start, kind) in self.seen_children.items():
                while time.monotonic() < deadline and proc_start_ticks(pid) == start:
                    time.sleep(0.1)
                if start is not None and proc_start_ticks(pid) == start:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        self.killed_leftovers.append({"pid": pid, "kind": kind})
                    except ProcessLookupError:
                        pass
            self.process = None
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None


# --- part 1 and 2: upload ----------------------------------------------------------------


class Sampler(threading.Thread):
    """Every ``interval`` s: server RSS, bytes in the staging folder, inspector CPU/RSS."""

    def __init__(self, server: Server, staging: Path, worker: int | None, interval: float = 0.02):
        super().__init__(daemon=True)
        self.server, self.staging, self.worker, self.interval = server, staging, worker, interval
        self.samples: list[tuple[float, int, int, float | None, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            t = time.perf_counter()
            rss = proc_status(self.server.pid).get("VmRSS", 0)
            staged = 0
            try:
                for entry in os.scandir(self.staging):
                    if entry.name.endswith(".part"):
                        try:
                            staged += entry.stat().st_size
                        except FileNotFoundError:
                            pass
            except FileNotFoundError:
                pass
            wcpu = proc_cpu_seconds(self.worker) if self.worker else None
            wrss = proc_status(self.worker).get("VmRSS", 0) if self.worker else 0
            self.samples.append((t, rss, staged, wcpu, wrss))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def post_model(url: str, path: Path, fields: dict[str, str], timeout: float) -> tuple[int, str, float]:
    """POST the file streamed from disk (httpx reads it in 64 KiB chunks)."""
    with httpx.Client(timeout=httpx.Timeout(timeout, connect=10)) as client, path.open("rb") as fh:
        t0 = time.perf_counter()
        response = client.post(
            url + "/api/v1/submissions", data=fields,
            files={"file": (path.name, fh, "application/octet-stream")},
        )
        elapsed = time.perf_counter() - t0
    return response.status_code, response.text, elapsed


def one_upload(server: Server, path: Path, size: int, kind: str, timeout: float) -> dict[str, Any]:
    fields = VALID_FIELDS if kind == "full" else BAD_EMAIL_FIELDS
    staging = server.home / "storage" / ".staging"
    sync_s = run_sync()
    worker = server.worker_pid()
    peak_reset = reset_peak(server.pid) and (worker is None or reset_peak(worker))
    reset_peak(os.getpid())
    before = proc_status(server.pid)
    worker_before = proc_status(worker) if worker else {}
    worker_cpu_before = proc_cpu_seconds(worker) if worker else None
    server_cpu_before = proc_cpu_seconds(server.pid)
    client_before = resource.getrusage(resource.RUSAGE_SELF)
    client_rss_before = proc_status(os.getpid()).get("VmRSS", 0)
    sampler = Sampler(server, staging, worker)
    sampler.start()
    try:
        t_start = time.perf_counter()
        status, body, elapsed = post_model(server.url, path, fields, timeout)
    finally:
        sampler.stop()
    client_after = resource.getrusage(resource.RUSAGE_SELF)
    after = proc_status(server.pid)
    server_cpu_after = proc_cpu_seconds(server.pid)
    worker_after_pid = server.worker_pid()
    worker_after = proc_status(worker_after_pid) if worker_after_pid else {}
    worker_cpu_after = proc_cpu_seconds(worker) if worker else None

    expected = 201 if kind == "full" else 422
    if status != expected:
        raise RuntimeError(f"{kind} upload: HTTP {status}, expected {expected}: {body[:500]}")
    if kind != "full" and "email" not in body:
        raise RuntimeError(f"receive-only upload refused for another reason: {body[:500]}")
    leftovers = [p.name for p in staging.glob("*.part")]

    # Phase split from the samples: the staged file reaching (nearly) full size marks the
    # end of the receive phase (the last <8 KiB may sit in Python's write buffer).
    received_at = next(
        (t - t_start for t, _rss, staged, _c, _w in sampler.samples if staged >= size - (1 << 20)),
        None,
    )
    max_sampled_rss = max((s[1] for s in sampler.samples), default=0)
    max_sampled_worker = max((s[4] for s in sampler.samples), default=0)
    result: dict[str, Any] = {
        "kind": kind,
        "http_status": status,
        "seconds": elapsed,
        "mb_per_s": size / MB / elapsed,
        "received_after_s": received_at,
        "receive_mb_per_s_from_samples": (size / MB / received_at) if received_at else None,
        "after_receive_s": (elapsed - received_at) if received_at else None,
        "sync_before_s": sync_s,
        "peak_reset_ok": peak_reset,
        "server_pid": server.pid,
        "server_rss_before_mb": kb_to_mb(before.get("VmRSS")),
        "server_hwm_after_mb": kb_to_mb(after.get("VmHWM")),
        "server_rss_after_mb": kb_to_mb(after.get("VmRSS")),
        "server_growth_mb": kb_to_mb(after.get("VmHWM", 0) - before.get("VmRSS", 0)),
        "server_max_sampled_rss_mb": kb_to_mb(max_sampled_rss),
        "server_cpu_s": (server_cpu_after or 0) - (server_cpu_before or 0),
        "client_cpu_s": (client_after.ru_utime + client_after.ru_stime)
        - (client_before.ru_utime + client_before.ru_stime),
        "client_growth_mb": kb_to_mb(
            proc_status(os.getpid()).get("VmHWM", 0) - client_rss_before
        ),
        "worker_pid": worker,
        "worker_pid_after": worker_after_pid,
        "worker_rss_before_mb": kb_to_mb(worker_before.get("VmRSS")),
        "worker_hwm_after_mb": kb_to_mb(worker_after.get("VmHWM")),
        "worker_growth_mb": (
            kb_to_mb(worker_after.get("VmHWM", 0) - worker_before.get("VmRSS", 0))
            if worker and worker_after_pid == worker else None
        ),
        "worker_max_sampled_rss_mb": kb_to_mb(max_sampled_worker),
        "worker_cpu_s": (
            (worker_cpu_after - worker_cpu_before)
            if worker_cpu_after is not None and worker_cpu_before is not None else None
        ),
        "staging_leftovers": leftovers,
    }
    if kind == "full":
        result["response"] = json.loads(body)
    return result


def bench_cp(src: Path, dst: Path, repeats: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeats):
        run_sync()
        t0 = time.perf_counter()
        subprocess.run(["cp", str(src), str(dst)], check=True, timeout=600)
        t_cp = time.perf_counter() - t0
        subprocess.run(["sync"], check=True, timeout=600)
        t_sync = time.perf_counter() - t0
        dst.unlink()
        runs.append({"cp_s": t_cp, "cp_plus_sync_s": t_sync})
    return {
        "runs": runs,
        "cp_median_s": statistics.median(r["cp_s"] for r in runs),
        "cp_plus_sync_median_s": statistics.median(r["cp_plus_sync_s"] for r in runs),
    }


def bench_upload(args: argparse.Namespace, work: Path, out: dict[str, Any]) -> dict[str, Any]:
    """Fills ``out`` as it goes (so a failure still reports what was done)."""
    data_dir = work / "data"
    home = work / "home-sqlite"
    data_dir.mkdir()
    home.mkdir()
    triangles = int(round(args.size_mb * MB / 50))
    model = data_dir / "bench_grid.stl"
    log(f"writing a {args.size_mb} MB binary STL ({triangles:,} triangles) to {model}")
    t0 = time.perf_counter()
    size = write_grid_stl(model, triangles)
    gen_s = time.perf_counter() - t0
    tiny = data_dir / "tiny.stl"
    write_grid_stl(tiny, 2000)
    same_disk = os.stat(data_dir).st_dev == os.stat(home).st_dev
    out.update({
        "file_bytes": size, "file_mb": size / MB, "triangles": triangles,
        "generate_s": gen_s, "same_filesystem_as_home": same_disk, "workdir": str(work),
    })

    log("timing cp (sync before each)")
    cp = bench_cp(model, data_dir / "copy.stl", args.repeats)
    out["cp"] = cp
    out["cp_mb_per_s"] = size / MB / cp["cp_median_s"]
    out["cp_plus_sync_mb_per_s"] = size / MB / cp["cp_plus_sync_median_s"]

    max_mb = max(300, int(args.size_mb * 1.5) + 1)
    server = Server(home, {"PRINTCORE_MAX_UPLOAD_MB": str(max_mb)})
    try:
        log(f"starting the server (SQLite, PRINTCORE_MAX_UPLOAD_MB={max_mb})")
        server.start()
        out["server_idle_rss_mb"] = kb_to_mb(proc_status(server.pid).get("VmRSS"))
        # Warm-up: a tiny valid model spawns the inspector process (spawn + imports).
        t0 = time.perf_counter()
        status, body, _ = post_model(server.url, tiny, VALID_FIELDS, 120)
        out["warmup_tiny_valid_s"] = time.perf_counter() - t0
        if status != 201:
            raise RuntimeError(f"warm-up upload failed: HTTP {status}: {body[:500]}")
        status, body, _ = post_model(server.url, tiny, BAD_EMAIL_FIELDS, 120)
        if status != 422:
            raise RuntimeError(f"warm-up bad-email upload: HTTP {status}: {body[:500]}")
        out["children_after_warmup"] = {
            str(pid): {"kind": kind, "cmdline": proc_cmdline(pid)[:200]}
            for pid, kind in server.children().items()
        }
        out["server_rss_after_warmup_mb"] = kb_to_mb(proc_status(server.pid).get("VmRSS"))
        runs: list[dict[str, Any]] = []
        out["runs"] = runs
        for i in range(args.repeats):
            for kind in ("receive-only", "full"):
                log(f"upload {i + 1}/{args.repeats}: {kind}")
                run = one_upload(server, model, size, kind, args.upload_timeout)
                log(
                    f"  {run['seconds']:.2f} s = {run['mb_per_s']:.1f} MB/s; received after "
                    f"{run['received_after_s']} s; server peak growth {run['server_growth_mb']} MB;"
                    f" inspector peak {run['worker_hwm_after_mb']} MB"
                )
                runs.append(run)
        for kind in ("receive-only", "full"):
            mine = [r for r in runs if r["kind"] == kind]
            med = statistics.median(r["seconds"] for r in mine)
            recv = [r["received_after_s"] for r in mine if r["received_after_s"] is not None]
            out[kind] = {
                "median_s": med,
                "mb_per_s": size / MB / med,
                "ratio_to_cp": (size / MB / med) / out["cp_mb_per_s"],
                "ratio_to_cp_plus_sync": (size / MB / med) / out["cp_plus_sync_mb_per_s"],
                "median_received_after_s": statistics.median(recv) if recv else None,
                "server_growth_mb_max": max(r["server_growth_mb"] for r in mine),
                "server_growth_mb_median": statistics.median(r["server_growth_mb"] for r in mine),
                "server_cpu_s_median": statistics.median(r["server_cpu_s"] for r in mine),
                "client_cpu_s_median": statistics.median(r["client_cpu_s"] for r in mine),
                "worker_hwm_mb_max": max((r["worker_hwm_after_mb"] or 0) for r in mine),
                "worker_growth_mb_max": max((r["worker_growth_mb"] or 0) for r in mine),
                "worker_cpu_s_median": statistics.median((r["worker_cpu_s"] or 0) for r in mine),
            }
        full = out["full"]
        if full["median_received_after_s"]:
            full["median_after_receive_s"] = full["median_s"] - full["median_received_after_s"]
        out["server_rss_end_mb"] = kb_to_mb(proc_status(server.pid).get("VmRSS"))
        out["server_hwm_lifetime_note"] = "VmHWM is reset before each request (clear_refs)"
    finally:
        server.stop()
        out["children_killed_after_server_exit"] = server.killed_leftovers
    return out


# --- part 3: PostgreSQL listings ----------------------------------------------------------


def make_jobs(n: int) -> list[Any]:
    from printcore.requests.job import ACTIVE_STATUSES, Job, JobFile, Payment

    statuses = [s.value for s in ACTIVE_STATUSES]
    base = dt.datetime(2025, 1, 6, 8, 0, tzinfo=dt.UTC)
    colors = ["Red", "Blue", "Black", "White", "Green"]
    result = []
    for i in range(n):
        status = statuses[i % len(statuses)]
        created = base + dt.timedelta(minutes=7 * i)
        method = "resin" if i % 4 == 0 else "filament"
        color = colors[i % len(colors)]
        name = f"Student {i:05d}"
        stored = f"Student{i:05d}_{method.title()}_{color}_{i + 1}.stl"
        job = Job(
            student_name=name, email=f"student{i:05d}@university.edu",
            discipline="Mechanical Engineering", class_number=f"ME {100 + i % 50}",
            print_method=method, color=color, created_at=created, updated_at=created,
            notes="Please print with supports." if i % 5 == 0 else "",
            status=status, version=1,
            files=[JobFile(stored_name=stored, original_name=f"bracket_v{i % 9}.stl",
                           role="original", size_bytes=1_000_000 + i, sha256=f"{i:064x}",
                           uploaded_at=created)],
        )
        if status not in ("uploaded", "rejected"):
            job.weight_g, job.time_hours = 20.0 + i % 80, 1.5 + (i % 6) * 0.5
            job.cost_cents = 300 + (i % 80) * 10
        if status == "rejected":
            job.rejection_reasons = ["Walls too thin"]
        if status == "printing":
            job.printer = "Prusa MK4 #2"
        if status == "paid_picked_up":
            job.payments = [Payment(grams=job.weight_g or 20.0, amount_cents=job.cost_cents or 300,
                                    txn_no=f"T{i}", picked_up_by=name, recorded_by="Ada",
                                    recorded_at=created + dt.timedelta(days=3))]
        result.append(job)
    return result


def insert_jobs(database_url: str, n: int) -> dict[str, Any]:
    from sqlalchemy import insert, text

    from adapters.sql import make_engine
    from adapters.sql.convert import job_to_row
    from adapters.sql.tables import jobs

    engine = make_engine(database_url)
    try:
        t0 = time.perf_counter()
        rows = []
        for job in make_jobs(n):
            row = job_to_row(job)
            row.pop("id")
            rows.append(row)
        with engine.begin() as conn:
            for start in range(0, len(rows), 1000):
                conn.execute(insert(jobs), rows[start : start + 1000])
        with engine.begin() as conn:
            conn.execute(text("ANALYZE jobs"))
            counts = dict(conn.execute(
                text("SELECT status, count(*) FROM jobs GROUP BY status ORDER BY status")
            ).all())
        return {"seconds": time.perf_counter() - t0, "counts": counts}
    finally:
        engine.dispose()


def in_process_breakdown(database_url: str, reps: int = 50) -> dict[str, Any]:
    """The same repository calls the endpoints make, timed here in the bench process
    (its own engine, same database): where the endpoint time goes."""
    from sqlalchemy import text

    from adapters.serialization import to_json_dict
    from adapters.sql import SqlUnitOfWork, make_engine
    from adapters.web.api import job_json
    from printcore.requests.lifecycle import allowed_events

    engine = make_engine(database_url)
    out: dict[str, Any] = {}
    try:
        def timed(name: str, func: Any) -> None:
            func()
            values = []
            for _ in range(reps):
                t0 = time.perf_counter()
                func()
                values.append((time.perf_counter() - t0) * 1000)
            out[name] = summary(values)

        def uow_select1() -> None:
            with SqlUnitOfWork(engine) as uow:
                uow.connection.execute(text("SELECT 1")).all()

        def list_uploaded_50() -> Any:
            with SqlUnitOfWork(engine) as uow:
                return uow.jobs.list(status="uploaded", limit=50)

        def list_all_100() -> Any:
            with SqlUnitOfWork(engine) as uow:
                return uow.jobs.list(limit=100)

        def counts() -> Any:
            with SqlUnitOfWork(engine) as uow:
                return uow.jobs.count_by_status()

        found = list_all_100()

        def json_100() -> Any:
            return json.dumps([job_json(j) for j in found])

        def unstructure_100() -> Any:
            return [to_json_dict(j) for j in found]

        def allowed_events_100() -> Any:
            return [allowed_events(j) for j in found]

        def raw_rows_100() -> Any:
            with engine.connect() as conn:
                return conn.execute(text(
                    "SELECT * FROM jobs ORDER BY created_at DESC, id DESC LIMIT 100")).all()

        timed("uow_select_1_ms", uow_select1)
        timed("repo_list_uploaded_50_ms", list_uploaded_50)
        timed("repo_list_all_100_ms", list_all_100)
        timed("repo_count_by_status_ms", counts)
        timed("raw_sql_rows_all_100_ms", raw_rows_100)
        timed("job_json_dumps_100_ms", json_100)
        timed("to_json_dict_100_ms", unstructure_100)
        timed("allowed_events_100_ms", allowed_events_100)
        explain = {}
        with engine.connect() as conn:
            for label, sql in (
                ("list_uploaded_50", "SELECT * FROM jobs WHERE status = 'uploaded' "
                 "ORDER BY created_at, id LIMIT 50"),
                ("list_all_100", "SELECT * FROM jobs ORDER BY created_at DESC, id DESC LIMIT 100"),
                ("count_by_status", "SELECT status, count(*) FROM jobs GROUP BY status"),
            ):
                plan = [r[0] for r in conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql))]
                explain[label] = plan
        out["explain_analyze"] = explain
    finally:
        engine.dispose()
    return out


def html_login(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    page = client.get("/staff/login")
    page.raise_for_status()
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    if not match:
        raise RuntimeError("no csrf_token on /staff/login")
    r = client.post("/staff/login", data={
        "workstation": "Bench desk", "password": PASSWORD, "csrf_token": match.group(1)})
    if r.status_code != 303:
        raise RuntimeError(f"HTML login failed: HTTP {r.status_code}: {r.text[:300]}")
    return client


def bench_pg(args: argparse.Namespace, work: Path, out: dict[str, Any]) -> dict[str, Any]:
    """Fills ``out`` as it goes (so a failure still reports what was done)."""
    import psycopg

    schema = f"pc_bench_{secrets.token_hex(6)}"
    database_url = (
        f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    )
    out.update({"schema": schema, "jobs": args.jobs, "requests": args.requests})
    with psycopg.connect(args.pg_dsn, autocommit=True, connect_timeout=10) as conn:
        out["postgres_version"] = conn.execute("SHOW server_version").fetchone()[0]
        conn.execute(f'CREATE SCHEMA "{schema}"')
    server: Server | None = None
    clients: list[httpx.Client] = []
    try:
        server = Server(work / "home-pg", {"DATABASE_URL": database_url})
        log(f"starting the server on PostgreSQL schema {schema} (migrates on start)")
        t0 = time.perf_counter()
        server.start()
        out["server_start_s"] = time.perf_counter() - t0
        log(f"inserting {args.jobs:,} jobs")
        out["insert"] = insert_jobs(database_url, args.jobs)
        log(f"  {out['insert']['seconds']:.1f} s, per status: {out['insert']['counts']}")

        api = httpx.Client(base_url=server.url, timeout=30)
        clients.append(api)
        r = api.post("/api/v1/auth/login", json={"workstation": "Bench", "password": PASSWORD})
        r.raise_for_status()
        api.headers["Authorization"] = f"Bearer {r.json()['token']}"
        html = html_login(server.url)
        clients.append(html)

        def check(name: str, r: httpx.Response) -> None:
            if r.status_code != 200:
                raise RuntimeError(f"{name}: HTTP {r.status_code}: {r.text[:300]}")

        endpoints = {
            "health": (api, "/api/v1/health"),
            "api_jobs_uploaded": (api, "/api/v1/jobs?status=uploaded"),
            "api_jobs_all": (api, "/api/v1/jobs"),
            "staff_dashboard_uploaded": (html, "/staff?status=uploaded"),
        }
        sizes: dict[str, int] = {}
        # sanity: what each answer holds
        r = api.get("/api/v1/jobs?status=uploaded")
        check("api_jobs_uploaded", r)
        out["api_jobs_uploaded_count"] = len(r.json()["jobs"])
        r = api.get("/api/v1/jobs")
        check("api_jobs_all", r)
        out["api_jobs_all_count"] = len(r.json()["jobs"])
        r = html.get("/staff?status=uploaded")
        check("staff_dashboard_uploaded", r)
        out["dashboard_cards"] = r.text.count('class="card job-card"')
        log(f"warming up ({args.warmup} requests each)")
        for _ in range(args.warmup):
            for name, (client, path) in endpoints.items():
                check(name, client.get(path))
        log(f"timing {args.requests} sequential requests each (interleaved round-robin)")
        times: dict[str, list[float]] = {name: [] for name in endpoints}
        cpu0 = proc_cpu_seconds(server.pid)
        wall0 = time.perf_counter()
        for _ in range(args.requests):
            for name, (client, path) in endpoints.items():
                t0 = time.perf_counter()
                r = client.get(path)
                elapsed = time.perf_counter() - t0
                check(name, r)
                sizes[name] = len(r.content)
                times[name].append(elapsed * 1000)
        out["timed_wall_s"] = time.perf_counter() - wall0
        out["server_cpu_s_during_timed"] = (proc_cpu_seconds(server.pid) or 0) - (cpu0 or 0)
        base = summary(times["health"])
        results = {}
        for name, values in times.items():
            s = summary(values)
            s["ratio_median_to_health"] = s["median"] / base["median"]
            s["ratio_p95_to_health"] = s["p95"] / base["p95"]
            s["response_bytes"] = sizes[name]
            s["path"] = endpoints[name][1]
            results[name] = s
        out["endpoints_ms"] = results
        log("in-process breakdown (bench process, same database)")
        out["breakdown_ms"] = in_process_breakdown(database_url)
    finally:
        for client in clients:
            client.close()
        if server is not None:
            server.stop()
            out["children_killed_after_server_exit"] = server.killed_leftovers
        try:
            with psycopg.connect(args.pg_dsn, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            out["schema_dropped"] = True
        except Exception as err:
            out["schema_dropped"] = False
            out["schema_drop_error"] = repr(err)
    return out


# --- machine, report ----------------------------------------------------------------------


def machine_info(work: Path) -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
    try:
        with open("/proc/cpuinfo") as handle:
            models = {line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")}
        info["cpu_model"] = ", ".join(sorted(models))
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    info["mem_total_gb"] = round(int(line.split()[1]) * 1024 / 1e9, 1)
    except OSError:
        pass
    try:
        df = subprocess.run(["df", "-T", str(work)], capture_output=True, text=True, timeout=10)
        device, fstype = df.stdout.splitlines()[1].split()[:2]
        info["disk_device"], info["filesystem"] = device, fstype
        dev = Path(device).name
        rot = Path(f"/sys/block/{dev}/queue/rotational")
        if rot.exists():
            info["disk_rotational_flag"] = rot.read_text().strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        pass
    for pkg in ("uvicorn", "h11", "httptools", "uvloop", "python-multipart", "starlette",
                "trimesh", "numpy", "httpx", "SQLAlchemy", "psycopg"):
        try:
            info.setdefault("packages", {})[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            info.setdefault("packages", {})[pkg] = None
    info["uvicorn_http_impl"] = "httptools" if importlib.util.find_spec("httptools") else "h11"
    try:
        with open("/proc/loadavg") as handle:
            info["loadavg_at_start"] = handle.read().split()[:3]
    except OSError:
        pass
    return info


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def print_table(results: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str, str]] = []
    up = results.get("upload")
    if up and "full" in up:
        rows.append(("cp, page cache (sync before, not after)",
                     f"{up['cp']['cp_median_s']:.3f} s = {up['cp_mb_per_s']:.0f} MB/s", "", ""))
        rows.append(("cp + sync",
                     f"{up['cp']['cp_plus_sync_median_s']:.3f} s = "
                     f"{up['cp_plus_sync_mb_per_s']:.0f} MB/s", "", ""))
        for kind, label in (("receive-only", "POST receive-only (bad email, no parse)"),
                            ("full", "POST full (receive + inspect + store)")):
            k = up[kind]
            goal = GOALS["upload_ratio_to_cp_min"]
            rows.append((label, f"{k['median_s']:.2f} s = {k['mb_per_s']:.1f} MB/s",
                         f"{k['ratio_to_cp']:.3f} x cp (vs cp+sync {k['ratio_to_cp_plus_sync']:.2f})",
                         f">= {goal} x cp: {verdict(k['ratio_to_cp'] >= goal)}"))
        full = up["full"]
        if full.get("median_received_after_s"):
            rows.append(("  full: body received after (sampled)",
                         f"{full['median_received_after_s']:.2f} s", "", ""))
            rows.append(("  full: after body (inspect + DB + rename)",
                         f"{full['median_after_receive_s']:.2f} s", "", ""))
        for kind in ("receive-only", "full"):
            k = up[kind]
            goal = GOALS["server_rss_growth_mb_max"]
            rows.append((f"web server process peak growth ({kind})",
                         f"{k['server_growth_mb_max']:.1f} MB (max of runs)", "",
                         f"< {goal:.0f} MB: {verdict(k['server_growth_mb_max'] < goal)}"))
        fulls = [r for r in up["runs"] if r["kind"] == "full"]
        rows.append(("inspector child process peak RSS, per full run",
                     " / ".join(f"{r['worker_hwm_after_mb'] or 0:.0f}" for r in fulls) + " MB",
                     "", "no goal"))
        rows.append(("  inspector RSS before each full run",
                     " / ".join(f"{r['worker_rss_before_mb'] or 0:.0f}" for r in fulls) + " MB",
                     "", ""))
        rows.append(("CPU per full upload: server / inspector / client",
                     f"{full['server_cpu_s_median']:.1f} / {full['worker_cpu_s_median']:.1f} / "
                     f"{full['client_cpu_s_median']:.1f} s", "", ""))
    pg = results.get("pg")
    if pg and "endpoints_ms" in pg:
        for name, s in pg["endpoints_ms"].items():
            goal = GOALS["listing_p95_ms_max"]
            rows.append((f"GET {s['path']}",
                         f"median {s['median']:.1f} ms, p95 {s['p95']:.1f} ms",
                         f"{s['ratio_median_to_health']:.1f} x / {s['ratio_p95_to_health']:.1f} x health",
                         "baseline" if name == "health"
                         else f"p95 < {goal:.0f} ms: {verdict(s['p95'] < goal)}"))
    if pg and "breakdown_ms" in pg:
        b = pg["breakdown_ms"]
        for key, label in (
            ("allowed_events_100_ms", "  in bench process: allowed_events() x 100 jobs"),
            ("to_json_dict_100_ms", "  in bench process: to_json_dict() x 100 jobs"),
            ("repo_list_all_100_ms", "  in bench process: jobs.list(limit=100) incl. SQL"),
            ("repo_list_uploaded_50_ms", "  in bench process: jobs.list(uploaded, 50)"),
            ("repo_count_by_status_ms", "  in bench process: count_by_status()"),
        ):
            if key in b:
                rows.append((label, f"median {b[key]['median']:.1f} ms, p95 {b[key]['p95']:.1f} ms",
                             "", ""))
    widths = [max(len(r[i]) for r in rows + [("figure", "measured", "ratio", "goal")])
              for i in range(4)]
    line = "  ".join("{:<" + str(w) + "}" for w in widths)
    print()
    print(line.format("figure", "measured", "ratio", "goal"))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-upload", action="store_true", help="skip parts 1 and 2")
    parser.add_argument("--skip-pg", action="store_true", help="skip part 3 (PostgreSQL)")
    parser.add_argument("--size-mb", type=float, default=200.0, help="STL size in MB (1e6 B)")
    parser.add_argument("--repeats", type=int, default=3, help="cp and upload repetitions")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up requests per endpoint")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--tmpdir", default=None, help="where temporary files go")
    parser.add_argument("--upload-timeout", type=float, default=600)
    parser.add_argument("--max-seconds", type=int, default=2400, help="whole-run time limit")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise BenchTimeout(f"the benchmark ran longer than {args.max_seconds} s")

    def on_term(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(args.max_seconds)

    work = Path(tempfile.mkdtemp(prefix="printcore-bench-", dir=args.tmpdir))
    results: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(work),
        "goals": GOALS,
    }
    failed = False
    try:
        if not args.skip_upload:
            results["upload"] = {}
            try:
                bench_upload(args, work, results["upload"])
            except (Exception, BenchTimeout) as err:
                failed = True
                results["upload"].update({"error": repr(err), "traceback": traceback.format_exc()})
                log(f"upload part failed: {err!r}")
        if not args.skip_pg:
            results["pg"] = {}
            try:
                bench_pg(args, work, results["pg"])
            except (Exception, BenchTimeout) as err:
                failed = True
                results["pg"].update({"error": repr(err), "traceback": traceback.format_exc()})
                log(f"PostgreSQL part failed: {err!r}")
    finally:
        signal.alarm(0)
        shutil.rmtree(work, ignore_errors=True)
        results["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        try:
            with open("/proc/loadavg") as handle:
                results["machine"]["loadavg_at_end"] = handle.read().split()[:3]
        except OSError:
            pass
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_table(results)
    print(f"JSON written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
