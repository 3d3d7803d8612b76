"""Benchmark of the Bambu watcher (issue 15): report-to-queue latency and the watcher's CPU.

``--printers`` (30) simulated X1 printers, each its own MQTT client on Mosquitto
(default the machine's, 127.0.0.1:1883, ``tls: false``), publish a full, real-shaped
``device/{serial}/report`` every second (``--seconds``, 30, after a 3 s warm-up), spread
evenly over the second; each report moves the layer on by one, so the watcher turns each
into a ``progress`` report. The publishers run in a child process (this file with
``--publish``) and stamp each payload with ``time.time()`` just before publishing (key
``bench_published_at``; the watcher ignores it) and log (printer, layer, stamp).

The main process runs the real :class:`adapters.bambu.watcher.Watcher` (one connection per
printer, one consumer thread) with one of two sinks (``--sink``):

* ``queue``: ``QueueService.printer_reported`` on SQLite built by
  ``entrypoints.bootstrap`` in a temporary home (the printers file lists the 30 printers):
  the latency is published → the queue's change committed (the sink call returned).
* ``recording``: appends the report to a list (the watcher alone).

Figures: latency p50/p95/p99/max (ms) over every progress report matched to its
publication; the main process's CPU (``resource.getrusage``, user + system) over the
measured window, as a share of one core and per report. Goal (issue 15, checked here,
never in tests): p99 < 200 ms with 30 printers publishing every second.

Run: ``.venv/bin/python bench/bench_bambu.py [--sink queue|recording|both] [--printers 30]
[--seconds 30] [--host 127.0.0.1 --port 1883]``. Loopback only. Raw figures:
``bench/results/bambu.json`` (git-ignored). Figures: docs/printers.md ("Benchmark").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

GOAL_P99_MS = 200.0
WARMUP_S = 3.0


def publish(args: argparse.Namespace) -> int:
    """The child: ``--printers`` clients, one full report each per second, then the log."""
    import paho.mqtt.client as mqtt

    serials = args.serials.split(",")
    clients = []
    for serial in serials:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"bench-{serial}")
        client.connect(args.host, args.port, keepalive=30)
        client.loop_start()
        clients.append(client)
    time.sleep(0.5)
    log: list[tuple[str, int, float]] = []
    start = time.monotonic() + 0.2
    total = WARMUP_S + args.seconds
    n = len(serials)
    for tick in range(int(total)):
        for i, (serial, client) in enumerate(zip(serials, clients, strict=True)):
            due = start + tick + i / n
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            layer = tick + 1
            stamp = time.time()
            body = {"print": {
                "command": "push_status", "msg": 0, "sequence_id": str(tick),
                "gcode_state": "RUNNING", "mc_percent": min(99, tick),
                "mc_remaining_time": max(1, 600 - tick), "subtask_name": f"bench-{i}",
                "gcode_file": f"/sdcard/bench-{i}.3mf", "layer_num": layer,
                "total_layer_num": 10_000, "print_error": 0, "mc_print_error_code": "0",
                "subtask_id": f"{serial}-1", "task_id": "0", "nozzle_temper": 220.1,
                "bed_temper": 60.0, "wifi_signal": "-50dBm", "bench_published_at": stamp}}
            client.publish(f"device/{serial}/report", json.dumps(body), qos=0)
            log.append((serial, layer, stamp))
    time.sleep(1.0)
    for client in clients:
        client.disconnect()
        client.loop_stop()
    Path(args.out).write_text(json.dumps(log))
    return 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def run(sink_kind: str, args: argparse.Namespace) -> dict[str, Any]:
    from adapters.bambu.watcher import Watcher, WatchSettings, WatchTarget
    from adapters.printers_file import WatchedPrinter
    from printcore.queue.printer_status import PrinterReport

    serials = [f"BENCH{uuid.uuid4().hex[:10].upper()}" for _ in range(args.printers)]
    names = {s: f"B-{i:02d}" for i, s in enumerate(serials)}
    by_name = {v: k for k, v in names.items()}
    arrivals: dict[tuple[str, int], float] = {}
    lock = threading.Lock()
    home = Path(tempfile.mkdtemp(prefix="bench-bambu-"))
    container = None
    apply: Any = None
    if sink_kind == "queue":
        from entrypoints.bootstrap import bootstrap
        from entrypoints.settings import load_settings

        (home / "printers.yaml").write_text("printers:\n" + "".join(
            f"  - name: {names[s]}\n" for s in serials))
        settings = load_settings({"PRINTCORE_HOME": str(home)}, env_file=None)
        container = bootstrap(settings)
        apply = container.queue.printer_reported

    class Sink:
        def printer_reported(self, report: PrinterReport) -> None:
            if apply is not None:
                apply(report)
            done = time.time()
            if report.kind == "progress" and report.live.layer is not None:
                with lock:
                    arrivals[(by_name[report.printer], report.live.layer)] = done

    targets = [WatchTarget(printer=WatchedPrinter(name=names[s], serial=s, host=args.host,
                                                   port=args.port, tls=False),
                           access_code="bench") for s in serials]
    watcher = Watcher(targets, Sink(), WatchSettings(offline_after=60, debounce=5)).start()
    out = home / "published.json"
    child = subprocess.Popen([sys.executable, __file__, "--publish", "--serials",
                              ",".join(serials), "--seconds", str(args.seconds), "--host",
                              args.host, "--port", str(args.port), "--out", str(out)])
    time.sleep(WARMUP_S + 0.7)
    r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    time.sleep(args.seconds)
    r1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    child.wait(timeout=args.seconds + 60)
    time.sleep(0.5)
    watcher.stop()
    if container is not None:
        container.close()
    published = json.loads(out.read_text())
    latencies = []
    missing = 0
    for serial, layer, stamp in published:
        if layer <= 1:
            continue  # the first report is "started", not progress
        got = arrivals.get((serial, layer))
        if got is None:
            missing += 1
        else:
            latencies.append((got - stamp) * 1000)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    wall = w1 - w0
    rate = len(latencies) / (WARMUP_S + args.seconds) if latencies else 0.0
    return {
        "sink": sink_kind, "printers": args.printers, "seconds": args.seconds,
        "published": len(published), "matched": len(latencies), "missing": missing,
        "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99), "max_ms": max(latencies, default=float("nan")),
        "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
        "cpu_seconds": cpu, "wall_seconds": wall, "cpu_share_of_one_core": cpu / wall,
        "cpu_ms_per_report": cpu * 1000 / max(1.0, rate * wall),
        "sink_errors": watcher.sink_errors, "goal_p99_met": percentile(latencies, 99)
        < GOAL_P99_MS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sink", choices=["queue", "recording", "both"], default="both")
    parser.add_argument("--printers", type=int, default=30)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serials", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        return publish(args)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("loopback only")
    results = [run(kind, args) for kind in
               (["recording", "queue"] if args.sink == "both" else [args.sink])]
    print(f"{'sink':10} {'reports':>8} {'miss':>5} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'CPU %core':>9} {'CPU ms/report':>13}")
    for r in results:
        print(f"{r['sink']:10} {r['matched']:8d} {r['missing']:5d} {r['p50_ms']:7.1f} "
              f"{r['p95_ms']:7.1f} {r['p99_ms']:7.1f} {r['max_ms']:7.1f} "
              f"{100 * r['cpu_share_of_one_core']:9.1f} {r['cpu_ms_per_report']:13.2f}"
              + ("" if r["goal_p99_met"] else "   p99 goal (<200 ms) NOT met"))
    folder = ROOT / "bench" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bambu.json").write_text(json.dumps({
        "results": results, "machine": {"python": platform.python_version(),
                                        "cpus": os.cpu_count(),
                                        "platform": platform.platform()}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
