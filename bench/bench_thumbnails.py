"""Benchmark of model thumbnails (issue 12): Original3DBenchy.3mf and a 1 M-face STL.

Measured, each ``--runs`` times (default 5) after one unmeasured warm-up:

* ``benchy``: ``make_thumbnail`` on ``../shared/fixtures/models/Original3DBenchy.3mf``
  (225,154 triangles, 3.3 MB): its own ``Metadata/plate_1.png`` is used, and the mesh
  is read all the same for the model's size;
* ``benchy drawn``: ``render_thumbnail`` on the same file (its mesh drawn, picture
  ignored), for the renderer on a real model;
* ``1M STL``: ``make_thumbnail`` on a binary STL of 1,000,000 triangles made here (a
  wavy 100 × 100 mm grid, 50 MB), so 400,000 sampled triangles are drawn;
* the same two through ``Inspector.thumbnail`` (the spawned worker process, warm: the
  way the web app makes them), and the first, cold call that spawns the worker.

Goal (checked here, never in tests): < 2 s each.

Run: ``.venv/bin/python bench/bench_thumbnails.py [--runs N]``. Prints a table and writes
the samples to ``bench/results/thumbnails.json`` (git-ignored). The generated STL is
made in a temporary folder and removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from adapters.meshes.thumbnails import (  # noqa: E402
    MAX_RENDER_FACES,
    make_thumbnail,
    render_thumbnail,
)
from adapters.web.inspection import Inspector  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures" / "models"
GOAL_SECONDS = 2.0


def one_million_face_stl(path: Path) -> Path:
    """1,000,000 triangles: a 500 × 1000 grid of quads, two triangles each."""
    nx, ny = 500, 1000
    x, y = np.meshgrid(np.linspace(0, 100, nx + 1, dtype=np.float32),
                       np.linspace(0, 100, ny + 1, dtype=np.float32))
    z = (5 * np.sin(x / 8) * np.cos(y / 11)).astype(np.float32)
    p = np.stack([x, y, z], axis=-1)
    a, b = p[:-1, :-1].reshape(-1, 3), p[:-1, 1:].reshape(-1, 3)
    c, d = p[1:, :-1].reshape(-1, 3), p[1:, 1:].reshape(-1, 3)
    triangles = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    record = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])
    records = np.zeros(len(triangles), record)
    records["vertices"] = triangles
    with path.open("wb") as handle:
        handle.write(b"bench".ljust(80, b" ") + struct.pack("<I", len(records)))
        records.tofile(handle)
    return path


def measure(func: Callable[[], Any], runs: int) -> list[float]:
    func()  # warm-up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    benchy = FIXTURES / "Original3DBenchy.3mf"
    results: dict[str, list[float]] = {}
    facts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as temp:
        stl = one_million_face_stl(Path(temp) / "one_million.stl")
        made = make_thumbnail(benchy, ".3mf")
        facts["benchy"] = {"source": made.source, "faces": made.faces, "size_mm": made.size_mm}
        made = make_thumbnail(stl, ".stl")
        facts["1M STL"] = {"source": made.source, "faces": made.faces,
                           "faces_drawn": made.faces_drawn, "size_mm": made.size_mm,
                           "bytes": stl.stat().st_size}
        results["benchy (plate picture + size)"] = measure(
            lambda: make_thumbnail(benchy, ".3mf"), args.runs)
        results["benchy drawn from its mesh"] = measure(
            lambda: render_thumbnail(benchy, ".3mf"), args.runs)
        results["1M-face STL drawn"] = measure(lambda: make_thumbnail(stl, ".stl"), args.runs)

        async def through_inspector() -> None:
            inspector = Inspector(isolated=True)
            try:
                started = time.perf_counter()
                await inspector.thumbnail(benchy, ".3mf")
                results["inspector, cold (spawn) + benchy"] = [time.perf_counter() - started]
                for label, path, extension in (("inspector, warm: benchy", benchy, ".3mf"),
                                               ("inspector, warm: 1M-face STL", stl, ".stl")):
                    samples = []
                    for _ in range(args.runs):
                        started = time.perf_counter()
                        await inspector.thumbnail(path, extension)
                        samples.append(time.perf_counter() - started)
                    results[label] = samples
            finally:
                inspector.close_thumbnails()
                inspector.close()

        asyncio.run(through_inspector())

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}, max_faces {MAX_RENDER_FACES:,}")
    print(f"{'case':<38} {'median':>8} {'min':>8} {'max':>8}  goal < {GOAL_SECONDS:g} s")
    for label, samples in results.items():
        median = statistics.median(samples)
        verdict = "met" if median < GOAL_SECONDS else "NOT met"
        print(f"{label:<38} {median:8.3f} {min(samples):8.3f} {max(samples):8.3f}  {verdict}")
    print(json.dumps(facts))
    out = ROOT / "bench" / "results" / "thumbnails.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"samples": results, "facts": facts,
                               "cpus": os.cpu_count(), "load": os.getloadavg()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
