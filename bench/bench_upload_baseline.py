"""Upload receive path against a bare streaming endpoint, same server settings (issue 16).

One run, on one machine, with the same 200 MB binary STL (``bench_print_requests``'s
generator) and the same client (``httpx`` multipart, the file streamed from disk):

1. ``cp`` of the file (page cache, ``sync`` before), for continuity with
   docs/benchmarks.md.
2. A **bare Starlette endpoint** on uvicorn with the same settings as ``printcore serve``
   (``uvicorn.run(app, host, port)`` with its defaults: one process, ``http="auto"``
   which is httptools here, ``loop="auto"`` which is asyncio without uvloop; the resolved
   implementations are recorded). Three routes, each taking the same multipart body:

   * ``/raw``: ``request.stream()`` written to ``<staging>/<uuid>.part``, then removed
     (the baseline the goal is about);
   * ``/sha256``: the same plus ``hashlib.sha256().update(chunk)`` per chunk;
   * ``/multipart``: python-multipart's ``MultipartParser`` (as printcore uses it), the
     file part written and hashed, the fields kept (what printcore's receive does,
     without its collector code);
   * ``/multipart-thread``: the same with SHA-256 and the writes in a thread fed through
     a bounded queue (16 chunks), overlapping the socket reads. The same change was
     made in printcore's path (a writer thread per upload) and reverted: on these 2
     cores, shared with the client, it gave 0.63 × bare against 0.85 × for the
     synchronous path (docs/benchmarks.md).

   The two extra routes give the split by subtraction; the profile gives it directly.
3. The **real** receive path: ``printcore serve`` (SQLite), ``POST /api/v1/submissions``
   with an invalid email (body streamed to staging with SHA-256, then refused before the
   inspector, staged file removed: ``bench_print_requests``'s "receive-only") and a full
   valid submission.
4. Memory: server VmHWM (reset before each request via ``/proc/<pid>/clear_refs``) minus
   VmRSS before, per request, for both servers.
5. A **profile** of the real server during ``--profile-uploads`` receive-only uploads:
   ``py-spy record --format raw`` on the server's pid (not in the timed runs); each sample
   is put in one bucket by its innermost printcore/library frame: HTTP parsing (uvicorn's
   httptools protocol), ASGI plumbing (Starlette's request stream, asyncio), multipart
   parsing (python-multipart, printcore's collector callbacks), hashing (the
   ``_hash.update`` line of ``StagedUpload.write``), writing (its ``_file.write`` line),
   other.

Goal (issue 16): real receive >= 0.8 x bare ``/raw`` (checked on the median of the
per-round ratios: each round posts to every route in turn, so a ratio within a round is
less exposed to the shared machine's load drifting than the ratio of the medians; both
are written), server memory growth < 50 MB for a 200 MB upload. Writes ``bench/results/upload_baseline.json``; prints a table.

Run: ``.venv/bin/python bench/bench_upload_baseline.py [--size-mb 200 --repeats 3]``.
Only 127.0.0.1. The temporary folder and both servers are removed at the end.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_print_requests as bpr  # the shared generator, server and probes

ROOT = bpr.ROOT
RESULTS = ROOT / "bench" / "results" / "upload_baseline.json"
MB = bpr.MB
PY_SPY = Path(sys.executable).with_name("py-spy")

GOALS = {"receive_ratio_to_bare_min": 0.8, "server_rss_growth_mb_max": 50.0}

BARE_ROUTES = ("raw", "sha256", "multipart", "multipart-thread")


# --- the bare server (run as a subprocess: this file with --bare-server) ----------------


def bare_app(staging: Path) -> Any:
    """The Starlette app of the bare endpoint; each route answers 201 with the byte count."""
    import hashlib
    import uuid

    from python_multipart.multipart import MultipartParser, parse_options_header
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    staging.mkdir(parents=True, exist_ok=True)

    async def raw(request: Request) -> JSONResponse:
        path = staging / f"{uuid.uuid4().hex}.part"
        size = 0
        with open(path, "xb") as handle:
            async for chunk in request.stream():
                handle.write(chunk)
                size += len(chunk)
        path.unlink()
        return JSONResponse({"bytes": size}, status_code=201)

    async def sha256(request: Request) -> JSONResponse:
        path = staging / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        size = 0
        with open(path, "xb") as handle:
            async for chunk in request.stream():
                digest.update(chunk)
                handle.write(chunk)
                size += len(chunk)
        path.unlink()
        return JSONResponse({"bytes": size, "sha256": digest.hexdigest()}, status_code=201)

    async def multipart(request: Request) -> JSONResponse:
        _, params = parse_options_header(request.headers["content-type"])
        path = staging / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        state: dict[str, Any] = {"headers": b"", "file": None, "data": bytearray(),
                                 "fields": 0, "size": 0}
        handle = open(path, "xb")  # noqa: SIM115 - closed below

        def on_header_value(data: bytes, start: int, end: int) -> None:
            state["headers"] += data[start:end]

        def on_headers_finished() -> None:
            state["file"] = b"filename=" in state["headers"]
            state["headers"] = b""

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if state["file"]:
                chunk = data[start:end]
                digest.update(chunk)
                handle.write(chunk)
                state["size"] += end - start
            else:
                state["data"] += data[start:end]

        def on_part_end() -> None:
            if not state["file"]:
                state["fields"] += 1
                state["data"] = bytearray()

        parser = MultipartParser(params[b"boundary"], {
            "on_header_value": on_header_value, "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data, "on_part_end": on_part_end})
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        finally:
            handle.close()
            path.unlink()
        return JSONResponse({"bytes": state["size"], "fields": state["fields"],
                             "sha256": digest.hexdigest()}, status_code=201)

    async def multipart_thread(request: Request) -> JSONResponse:
        """As ``multipart``, but SHA-256 and the writes run in one thread per upload fed
        through a bounded queue (16 chunks), so they overlap the socket reads: what moving
        ``StagedUpload.write``'s work off the event loop would give."""
        import queue
        import threading

        _, params = parse_options_header(request.headers["content-type"])
        path = staging / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        state: dict[str, Any] = {"headers": b"", "file": None, "fields": 0, "size": 0}
        handle = open(path, "xb")  # noqa: SIM115 - closed below

        def writer() -> None:
            while (chunk := chunks.get()) is not None:
                digest.update(chunk)
                handle.write(chunk)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()

        def on_header_value(data: bytes, start: int, end: int) -> None:
            state["headers"] += data[start:end]

        def on_headers_finished() -> None:
            state["file"] = b"filename=" in state["headers"]
            state["headers"] = b""

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if state["file"]:
                chunks.put(data[start:end])
                state["size"] += end - start

        def on_part_end() -> None:
            if not state["file"]:
                state["fields"] += 1

        parser = MultipartParser(params[b"boundary"], {
            "on_header_value": on_header_value, "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data, "on_part_end": on_part_end})
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        finally:
            chunks.put(None)
            thread.join()
            handle.close()
            path.unlink()
        return JSONResponse({"bytes": state["size"], "fields": state["fields"],
                             "sha256": digest.hexdigest()}, status_code=201)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [Route("/api/v1/health", health)]
    for name, handler in (("raw", raw), ("sha256", sha256), ("multipart", multipart),
                          ("multipart-thread", multipart_thread)):
        routes.append(Route(f"/{name}/api/v1/submissions", handler, methods=["POST"]))
    return Starlette(routes=routes)


def serve_bare(port: int, staging: Path) -> None:
    """uvicorn.run as ``entrypoints.cli.cmd_serve`` calls it (no workers, auto http/loop)."""
    import uvicorn

    uvicorn.run(bare_app(staging), host="127.0.0.1", port=port, log_level="warning",
                proxy_headers=False, forwarded_allow_ips="")


class BareServer(bpr.Server):
    """The bare endpoint as a subprocess; reuses ``bench_print_requests.Server``'s
    start/stop (health poll, clean-up by pid)."""

    def start(self, timeout: float = 60) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._log_handle = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(self.port),
             str(self.home / "storage" / ".staging")],
            env=self.env, cwd=str(self.home), stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bare server exited early:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"bare server did not answer within {timeout}s")


def bare_upload(server: BareServer, route: str, path: Path, size: int,
                timeout: float) -> dict[str, Any]:
    """One POST of the same multipart body to a bare route; time and memory as in
    ``bench_print_requests.one_upload``."""
    sync_s = bpr.run_sync()
    peak_reset = bpr.reset_peak(server.pid)
    before = bpr.proc_status(server.pid)
    cpu_before = bpr.proc_cpu_seconds(server.pid)
    status, body, elapsed = bpr.post_model(server.url + "/" + route, path,
                                           bpr.BAD_EMAIL_FIELDS, timeout)
    after = bpr.proc_status(server.pid)
    cpu_after = bpr.proc_cpu_seconds(server.pid)
    if status != 201:
        raise RuntimeError(f"bare /{route}: HTTP {status}: {body[:300]}")
    answer = json.loads(body)
    if route == "raw" and answer["bytes"] <= size:
        raise RuntimeError(f"bare /raw stored {answer['bytes']} bytes for a {size} B file")
    if route.startswith("multipart") and answer["bytes"] != size:
        raise RuntimeError(f"bare /multipart stored {answer['bytes']} B, expected {size}")
    return {
        "kind": f"bare-{route}", "http_status": status, "seconds": elapsed,
        "mb_per_s": size / MB / elapsed, "sync_before_s": sync_s, "peak_reset_ok": peak_reset,
        "server_rss_before_mb": bpr.kb_to_mb(before.get("VmRSS")),
        "server_hwm_after_mb": bpr.kb_to_mb(after.get("VmHWM")),
        "server_growth_mb": bpr.kb_to_mb(after.get("VmHWM", 0) - before.get("VmRSS", 0)),
        "server_cpu_s": (cpu_after or 0) - (cpu_before or 0), "answer": answer,
    }


# --- the profile --------------------------------------------------------------------------

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _lines_of(path: Path, *needles: str) -> set[int]:
    """The line numbers of ``path`` holding any of ``needles`` (stripped line equal)."""
    return {number for number, text in enumerate(path.read_text().splitlines(), 1)
            if text.strip() in needles}


def classify(stack: list[str], hash_lines: set[int], write_lines: set[int]) -> str:
    """The bucket of one py-spy raw stack (root first, as py-spy writes it; file names are
    relative to their ``sys.path`` entry, e.g. ``asyncio/selector_events.py``)."""
    for frame in reversed(stack):  # innermost first
        m = FRAME.match(frame.strip())
        file = "/" + (m.group("file") if m else frame)
        func = m.group("func") if m else ""
        line = int(m.group("line")) if m and m.group("line") else None
        if file.endswith("/adapters/files/staging.py"):
            if line in hash_lines:
                return "hashing (SHA-256)"
            if line in write_lines:
                return "writing (file.write)"
            return "staging: open, close, unlink"
        if "/python_multipart/" in file or file.endswith("/adapters/web/uploads.py"):
            return "multipart parsing"
        if "/uvicorn/protocols/http/" in file:
            return "HTTP parsing (uvicorn httptools protocol)"
        if "/starlette/" in file or "/uvicorn/" in file:
            return "ASGI plumbing (Starlette, uvicorn)"
        if file.endswith("/asyncio/selector_events.py") and "_read_ready" in func:
            return "socket reads (sock.recv)"
        if "/asyncio/" in file or file.endswith("/selectors.py"):
            return "event loop (asyncio)"
    return "other"


def profile_real(server: bpr.Server, model: Path, uploads: int, rate: int,
                 timeout: float, work: Path) -> dict[str, Any]:
    """py-spy on the server pid during ``uploads`` receive-only requests; the split in %."""
    if not PY_SPY.is_file():
        raise RuntimeError(f"{PY_SPY} not found (pip install py-spy)")
    raw = work / "pyspy.txt"
    spy = subprocess.Popen(
        [str(PY_SPY), "record", "--format", "raw", "--rate", str(rate), "--pid",
         str(server.pid), "--output", str(raw), "--nonblocking"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.5)  # attach
        if spy.poll() is not None:
            raise RuntimeError(f"py-spy exited: {spy.stdout.read().decode()[-500:]}")  # type: ignore[union-attr]
        seconds = []
        for _ in range(uploads):
            status, body, elapsed = bpr.post_model(server.url, model, bpr.BAD_EMAIL_FIELDS,
                                                   timeout)
            if status != 422:
                raise RuntimeError(f"profiled upload: HTTP {status}: {body[:300]}")
            seconds.append(elapsed)
    finally:
        if spy.poll() is None:
            spy.send_signal(signal.SIGINT)
        try:
            out, _ = spy.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            out, _ = spy.communicate()
    staging_py = ROOT / "src" / "adapters" / "files" / "staging.py"
    # In the caller's thread (StagedUpload.write) and in the upload's writer thread (feed).
    hash_lines = _lines_of(staging_py, "self._hash.update(chunk)", "digest.update(chunk)")
    write_lines = _lines_of(staging_py, "self._file.write(chunk)", "file.write(chunk)")
    buckets: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote nothing: {out.decode(errors='replace')[-500:]}")
    for text in raw.read_text().splitlines():
        stack_text, _, count_text = text.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        stack = stack_text.split(";")
        if stack and stack[0].startswith(("process ", "thread ")):
            stack = [f for f in stack if not f.startswith(("process ", "thread "))]
        total += count
        buckets[classify(stack, hash_lines, write_lines)] += count
        leaves[stack[-1].strip() if stack else "?"] += count
    return {
        "tool": "py-spy record --format raw --nonblocking", "rate_hz": rate,
        "uploads": uploads, "upload_seconds": seconds, "samples": total,
        "staging_lines": {"hash": sorted(hash_lines), "write": sorted(write_lines)},
        "split_samples": dict(buckets.most_common()),
        "split_percent": {k: round(100 * v / total, 1) for k, v in buckets.most_common()}
        if total else {},
        "top_leaf_frames": [{"frame": f, "samples": n,
                             "percent": round(100 * n / total, 1)}
                            for f, n in leaves.most_common(15)] if total else [],
        "py_spy_output_tail": out.decode(errors="replace")[-800:],
    }



# --- the same split without HTTP: the receive code on an in-memory body ------------------


def in_process_split(model: Path, staging: Path, chunk_bytes: int, repeats: int,
                     ) -> dict[str, Any]:
    """CPU seconds (``time.process_time``, median of ``repeats``) of each part of the
    receive path on the same multipart body, fed in ``chunk_bytes`` chunks in this
    process: python-multipart alone (no-op callbacks), SHA-256 alone, the writes alone
    (``open(..., "xb")``, ``write``, ``close``; the ``unlink`` timed apart), and
    printcore's own ``adapters.web.uploads.receive_form`` (parser + collector + hash +
    write) with ``discard_files``. No HTTP, no socket: what is left of the server's time
    (socket reads, the event loop, uvicorn) is the HTTP side."""
    import asyncio
    import hashlib

    from python_multipart.multipart import MultipartParser

    from adapters.files.staging import StagingArea
    from adapters.web.uploads import receive_form

    boundary = b"----printcorebench" + os.urandom(8).hex().encode()
    head = b"".join(
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + k.encode()
        + b'"\r\n\r\n' + v.encode() + b"\r\n" for k, v in bpr.BAD_EMAIL_FIELDS.items())
    head += (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; '
             b'filename="bench_grid.stl"\r\nContent-Type: application/octet-stream\r\n\r\n')
    payload = model.read_bytes()
    body = head + payload + b"\r\n--" + boundary + b"--\r\n"
    view = memoryview(body)
    chunks = [bytes(view[i:i + chunk_bytes]) for i in range(0, len(body), chunk_bytes)]
    file_chunks = [payload[i:i + chunk_bytes] for i in range(0, len(payload), chunk_bytes)]
    del view
    staging.mkdir(parents=True, exist_ok=True)
    area = StagingArea(staging)
    content_type = "multipart/form-data; boundary=" + boundary.decode()

    def parse_only() -> None:
        parser = MultipartParser(boundary, {})
        for c in chunks:
            parser.write(c)
        parser.finalize()

    def sha_only() -> None:
        digest = hashlib.sha256()
        for c in file_chunks:
            digest.update(c)
        digest.hexdigest()

    target = staging / "write-only.part"

    def write_only() -> None:
        with open(target, "xb") as handle:
            for c in file_chunks:
                handle.write(c)

    def unlink_only() -> None:
        target.unlink()

    async def stream() -> Any:
        for c in chunks:
            yield c

    def printcore_receive() -> None:
        form = asyncio.run(receive_form(content_type, stream(), area, 10 * len(payload),
                                        {"file"}, len(body)))
        received = form.file("file")
        if received is None or received.staged.size_bytes != len(payload):
            raise RuntimeError("receive_form did not stage the whole file")
        form.discard_files()

    parts: dict[str, list[float]] = {
        "python-multipart parse (no-op callbacks)": [], "SHA-256": [],
        "write (open, write, close)": [], "unlink of the staged file": [],
        "printcore receive_form (all of it, incl. unlink)": []}
    for _ in range(repeats):
        for name, fn in (("python-multipart parse (no-op callbacks)", parse_only),
                         ("SHA-256", sha_only), ("write (open, write, close)", write_only),
                         ("unlink of the staged file", unlink_only),
                         ("printcore receive_form (all of it, incl. unlink)",
                          printcore_receive)):
            if not name.startswith("unlink"):
                bpr.run_sync()  # no write-back of the previous part inside this one
            t0 = time.process_time()
            fn()
            parts[name].append(time.process_time() - t0)
    med = {k: statistics.median(v) for k, v in parts.items()}
    known = sum(v for k, v in med.items() if not k.startswith("printcore"))
    whole = med["printcore receive_form (all of it, incl. unlink)"]
    return {"chunk_bytes": chunk_bytes, "chunks": len(chunks), "body_bytes": len(body),
            "repeats": repeats, "cpu_s": parts, "cpu_s_median": med,
            "collector_and_rest_s": whole - known,
            "percent_of_receive_form": {k: round(100 * v / whole, 1) for k, v in med.items()
                                        if not k.startswith("printcore")} | {
                "collector, asyncio.run and the rest": round(100 * (whole - known) / whole, 1)}}


# --- the run ----------------------------------------------------------------------------


def median_of(runs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    mine = [r for r in runs if r["kind"] == kind]
    med = statistics.median(r["seconds"] for r in mine)
    return {"n": len(mine), "median_s": med, "seconds": [r["seconds"] for r in mine],
            "server_growth_mb_max": max(r["server_growth_mb"] for r in mine),
            "server_cpu_s_median": statistics.median(r["server_cpu_s"] for r in mine)}


def run(args: argparse.Namespace, work: Path, out: dict[str, Any]) -> None:
    data = work / "data"
    data.mkdir()
    triangles = int(round(args.size_mb * MB / 50))
    model = data / "bench_grid.stl"
    bpr.log(f"writing a {args.size_mb} MB binary STL ({triangles:,} triangles)")
    size = bpr.write_grid_stl(model, triangles)
    tiny = data / "tiny.stl"
    bpr.write_grid_stl(tiny, 2000)
    out.update({"file_bytes": size, "file_mb": size / MB})
    bpr.log("timing cp (sync before each)")
    out["cp"] = bpr.bench_cp(model, data / "copy.stl", args.repeats)
    out["cp_mb_per_s"] = size / MB / out["cp"]["cp_median_s"]

    max_mb = max(300, int(args.size_mb * 1.5) + 1)
    bare = BareServer(work / "home-bare", {})
    real = bpr.Server(work / "home-real", {"PRINTCORE_MAX_UPLOAD_MB": str(max_mb)})
    try:
        bpr.log("starting the bare endpoint and printcore serve (SQLite)")
        bare.start()
        real.start()
        for route in BARE_ROUTES:  # warm-up
            bpr.post_model(bare.url + "/" + route, tiny, bpr.BAD_EMAIL_FIELDS, 60)
        status, body, _ = bpr.post_model(real.url, tiny, bpr.VALID_FIELDS, 120)
        if status != 201:
            raise RuntimeError(f"warm-up upload: HTTP {status}: {body[:300]}")
        out["server_idle_rss_mb"] = {"bare": bpr.kb_to_mb(bpr.proc_status(bare.pid).get("VmRSS")),
                                     "real": bpr.kb_to_mb(bpr.proc_status(real.pid).get("VmRSS"))}
        out["uvicorn_resolved"] = resolved_uvicorn(bare.log_tail())
        runs: list[dict[str, Any]] = []
        out["runs"] = runs
        kinds = [f"bare-{r}" for r in BARE_ROUTES] + ["receive-only"] + (
            ["full"] if args.full_repeats else [])
        for i in range(args.repeats):
            order = kinds if i % 2 == 0 else kinds[::-1]
            for kind in order:
                if kind == "full" and i >= args.full_repeats:
                    continue
                if kind.startswith("bare-"):
                    r = bare_upload(bare, kind[5:], model, size, args.upload_timeout)
                else:
                    r = bpr.one_upload(real, model, size, kind, args.upload_timeout)
                    r.pop("response", None)
                bpr.log(f"  {i + 1}/{args.repeats} {kind:18} {r['seconds']:.3f} s = "
                        f"{r['mb_per_s']:.0f} MB/s, server growth {r['server_growth_mb']} MB, "
                        f"server CPU {r['server_cpu_s']:.2f} s")
                r["round"] = i
                runs.append(r)
        summary = {kind: median_of(runs, kind) for kind in kinds}
        bare_s = summary["bare-raw"]["median_s"]
        for s in summary.values():
            s["mb_per_s"] = size / MB / s["median_s"]
            s["ratio_to_bare_raw"] = bare_s / s["median_s"]
            s["ratio_to_cp"] = out["cp"]["cp_median_s"] / s["median_s"]
        out["summary"] = summary
        # the same ratio per round (the two requests a second apart), then the median:
        # less exposed to the load drifting over the run than the ratio of the medians
        by_round = {(r["round"], r["kind"]): r for r in runs}
        for kind in kinds:
            pairs = [by_round[(i, "bare-raw")]["seconds"] / by_round[(i, kind)]["seconds"]
                     for i in range(args.repeats) if (i, kind) in by_round]
            summary[kind]["paired_ratio_to_bare_raw_median"] = statistics.median(pairs)
            summary[kind]["paired_ratios_to_bare_raw"] = pairs
            bare_cpu = summary["bare-raw"]["server_cpu_s_median"]
            summary[kind]["cpu_ratio_bare_over_this"] = (
                bare_cpu / summary[kind]["server_cpu_s_median"]
                if summary[kind]["server_cpu_s_median"] else None)
        recv = summary["receive-only"]
        # the goal is checked on the per-round ratio (see above); both are in the JSON
        out["goal_check"] = {
            "receive_ratio_to_bare": recv["paired_ratio_to_bare_raw_median"],
            "receive_ratio_of_medians": recv["ratio_to_bare_raw"],
            "receive_ratio_met": (recv["paired_ratio_to_bare_raw_median"]
                                  >= GOALS["receive_ratio_to_bare_min"]),
            "server_growth_mb_max": max(s["server_growth_mb_max"] for k, s in summary.items()
                                        if not k.startswith("bare")),
        }
        out["goal_check"]["server_growth_met"] = (
            out["goal_check"]["server_growth_mb_max"] < GOALS["server_rss_growth_mb_max"])
        if args.split_repeats:
            bpr.log("the same parts in this process, no HTTP (CPU time)")
            out["in_process_split"] = in_process_split(
                model, work / "split-staging", args.chunk_kib * 1024, args.split_repeats)
        if args.profile_uploads:
            bpr.log(f"profiling the real server (py-spy, {args.profile_uploads} receive-only)")
            out["profile"] = profile_real(real, model, args.profile_uploads, args.rate,
                                          args.upload_timeout, work)
    finally:
        bare.stop()
        real.stop()


def resolved_uvicorn(_log: str) -> dict[str, str]:
    """What uvicorn's ``auto`` picks in this environment (its own import rules)."""
    import importlib.util

    return {"http": "httptools" if importlib.util.find_spec("httptools") else "h11",
            "loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            "workers": "1 (uvicorn.run without workers=, as printcore serve)"}


def print_table(out: dict[str, Any]) -> None:
    s = out.get("summary", {})
    if not s:
        return
    print(f"\n{'request (same ' + format(out['file_mb'], '.0f') + ' MB multipart body)':40} {'median s':>9} {'MB/s':>7} "
          f"{'x bare':>7} {'x cp':>6} {'growth MB':>10} {'srv CPU s':>10}")
    for kind, v in s.items():
        print(f"{kind:40} {v['median_s']:9.3f} {v['mb_per_s']:7.0f} "
              f"{v['ratio_to_bare_raw']:7.2f} {v['ratio_to_cp']:6.2f} "
              f"{v['server_growth_mb_max']:10.1f} {v['server_cpu_s_median']:10.2f}")
    g = out["goal_check"]
    print(f"receive / bare = {g['receive_ratio_to_bare']:.2f} (goal >= "
          f"{GOALS['receive_ratio_to_bare_min']}: {'met' if g['receive_ratio_met'] else 'NOT met'})"
          f"; server growth {g['server_growth_mb_max']:.1f} MB (goal < 50: "
          f"{'met' if g['server_growth_met'] else 'NOT met'})")
    sp = out.get("in_process_split")
    if sp:
        print(f"\nin this process, no HTTP ({sp['chunk_bytes'] // 1024} KiB chunks), CPU s:")
        for k, v in sp["cpu_s_median"].items():
            print(f"  {k:50} {v:6.3f}")
    p = out.get("profile")
    if p:
        print(f"\nprofile of the real receive path ({p['samples']} samples):")
        for k, v in p["split_percent"].items():
            print(f"  {k:45} {v:5.1f} %")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=200.0)
    parser.add_argument("--repeats", type=int, default=7,
                        help="rounds of the bare routes and the receive-only upload")
    parser.add_argument("--full-repeats", type=int, default=2,
                        help="full (inspected, stored) submissions, in the first rounds")
    parser.add_argument("--profile-uploads", type=int, default=4,
                        help="receive-only uploads under py-spy (0: no profile)")
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--split-repeats", type=int, default=5,
                        help="rounds of the in-process split (0: none)")
    parser.add_argument("--chunk-kib", type=int, default=64,
                        help="chunk size of the in-process split (KiB)")
    parser.add_argument("--upload-timeout", type=float, default=600)
    parser.add_argument("--tmpdir", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--bare-server", nargs=2, metavar=("PORT", "STAGING"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_server:
        serve_bare(int(args.bare_server[0]), Path(args.bare_server[1]))
        return 0
    if args.size_mb <= 0 or args.repeats < 1:
        parser.error("--size-mb > 0 and --repeats >= 1")
    signal.signal(signal.SIGTERM, lambda signum, _f: (_ for _ in ()).throw(SystemExit(128 + signum)))
    work = Path(tempfile.mkdtemp(prefix="printcore-bench-upload-", dir=args.tmpdir))
    out: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": bpr.machine_info(work), "goals": GOALS,
    }
    failed = False
    try:
        run(args, work, out)
    except Exception as err:
        failed = True
        out.update({"error": repr(err), "traceback": traceback.format_exc()})
        bpr.log(f"failed: {err!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        out["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        out["machine"]["loadavg_at_end"] = list(os.getloadavg())
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print_table(out)
    print(f"JSON written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
