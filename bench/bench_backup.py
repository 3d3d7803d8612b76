"""Benchmark of ``printcore backup`` against ``tar -cf`` of the same storage (issue 13).

A lab home is generated once under ``--dir`` (default /tmp/printcore-bench-backup, reused
while its parameters match): a migrated SQLite database with one ``jobs`` row per job
folder, and ``--gb`` (1) GB of storage in job folders named as printcore names them
(``Uploaded/Student17_Filament_Red_17/``…), each with a model (``.stl``/``.3mf``), a
sliced file (``.gcode.3mf``) and ``metadata.json``. Sizes are mixed like a lab's uploads
(mostly 0.2–8 MB, one in ten 15–60 MB); 90 % of the bytes are random (incompressible,
like 3MF zips and binary STL), 10 % ASCII STL text.

Timed, each ``--rounds`` (3) times in alternating order, writing to the same disk
(``--dir``/out) and deleting the output between rounds:

* ``printcore backup OUT.tar`` (a subprocess, as a lab runs it): SQLite online backup,
  every storage file streamed through sha256 into one tar, manifest, fsync;
* ``tar -cf OUT.tar -C HOME storage`` (GNU tar, no compression, no fsync);
* ``tar -cf`` followed by ``sync`` of that file, for comparison with backup's fsync.

The page cache is warm for both (one untimed run of each first). Prints the medians and
the ratio tar / backup (goal ≥ 0.5: backup at least half as fast as tar).

Run: ``.venv/bin/python bench/bench_backup.py [--gb 1] [--rounds 3] [--dir PATH]
[--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
GOALS = {"tar_over_backup_min": 0.5}
SEED = 13
MB = 1 << 20


def _sizes(total: int, rng: random.Random) -> list[int]:
    sizes: list[int] = []
    while sum(sizes) < total:
        if rng.random() < 0.1:
            sizes.append(rng.randint(15 * MB, 60 * MB))
        else:
            sizes.append(rng.randint(MB // 5, 8 * MB))
    return sizes


def _ascii_stl(size: int) -> bytes:
    facet = (b"facet normal 0 0 1\n outer loop\n  vertex 1.5 2.25 0\n  vertex 3.75 2.25 0\n"
             b"  vertex 1.5 4.125 0\n endloop\nendfacet\n")
    return (b"solid part\n" + facet * (size // len(facet) + 1))[:size]


def generate(home: Path, total_bytes: int) -> dict[str, Any]:
    """Make the lab home (see the module docstring); returns its description."""
    from sqlalchemy import insert

    from adapters.sql import make_engine, upgrade
    from adapters.sql.tables import jobs
    from printcore.requests.naming import job_basename

    stamp = home / ".bench-complete"
    wanted = {"bytes": total_bytes, "seed": SEED, "format": 1}
    if stamp.is_file() and json.loads(stamp.read_text()).get("params") == wanted:
        return dict(json.loads(stamp.read_text()))
    shutil.rmtree(home, ignore_errors=True)
    (home / "storage").mkdir(parents=True)
    rng = random.Random(SEED)
    engine = make_engine(f"sqlite:///{home / 'printcore.db'}")
    upgrade(engine)
    sizes = _sizes(total_bytes, rng)
    rows: list[dict[str, Any]] = []
    files = 0
    now = datetime.now(UTC)
    for job_id, start in enumerate(range(0, len(sizes), 2), start=1):
        name = f"Student {job_id}"
        folder = home / "storage" / "Uploaded" / job_basename(name, "filament", "Red", job_id)
        folder.mkdir(parents=True)
        base = folder.name
        for index, size in enumerate(sizes[start:start + 2]):
            ext = ("_sliced.gcode.3mf" if index else rng.choice([".stl", ".3mf"]))
            data = (_ascii_stl(size) if ext == ".stl" and rng.random() < 0.2
                    else rng.randbytes(size))
            (folder / f"{base}{ext}").write_bytes(data)
            files += 1
        (folder / "metadata.json").write_text(json.dumps({"job_id": job_id,
                                                          "status": "uploaded"}))
        files += 1
        rows.append({"id": job_id, "status": "uploaded", "version": 1, "student_name": name,
                     "email": f"s{job_id}@university.edu", "discipline": "ME",
                     "class_number": "ME 1", "print_method": "filament", "color": "Red",
                     "preferred_printer": "", "notes": "", "created_at": now,
                     "failed_attempts": 0, "files": [], "rejection_reasons": [],
                     "payments": [], "search_text": name.lower()})
    with engine.begin() as conn:
        conn.execute(insert(jobs), rows)
    engine.dispose()
    subprocess.run(["sync"], check=True)
    described = {"params": wanted, "jobs": len(rows), "files": files,
                 "storage_bytes": sum(sizes)}
    stamp.write_text(json.dumps(described))
    return described


def _timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/printcore-bench-backup"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    home = args.dir / "home"
    out = args.dir / "out"
    t0 = time.perf_counter()
    lab = generate(home, int(args.gb * 1024 * MB))
    print(f"lab: {lab['jobs']} jobs, {lab['files']} files, "
          f"{lab['storage_bytes'] / MB:.0f} MB of storage in {home} "
          f"(ready in {time.perf_counter() - t0:.1f} s)", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {**os.environ, "PRINTCORE_HOME": str(home), "PRINTCORE_SECRET_KEY": "bench"}
    for key in ("DATABASE_URL", "PRINTCORE_STORAGE"):
        env.pop(key, None)
    target = out / "lab.tar"
    backup_cmd = [sys.executable, "-m", "entrypoints.cli", "backup", str(target)]
    tar_cmd = ["tar", "-cf", str(target), "-C", str(home), "storage"]
    sync_cmd = ["sync", str(target)]

    def run(kind: str) -> float:
        target.unlink(missing_ok=True)
        subprocess.run(["sync"], check=True)
        if kind == "backup":
            seconds = _timed(backup_cmd, env)
        elif kind == "tar":
            seconds = _timed(tar_cmd, env)
        else:
            seconds = _timed(tar_cmd, env) + _timed(sync_cmd, env)
        return seconds

    kinds = ["backup", "tar", "tar+sync"]
    for kind in kinds:  # warm the page cache, untimed
        run(kind)
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for round_ in range(args.rounds):
        for kind in (kinds if round_ % 2 == 0 else kinds[::-1]):
            times[kind].append(run(kind))
            print(f"  round {round_ + 1}: {kind:<9} {times[kind][-1]:.2f} s", flush=True)
    size = target.stat().st_size if target.exists() else 0
    target.unlink(missing_ok=True)
    median = {k: statistics.median(v) for k, v in times.items()}
    ratio = median["tar"] / median["backup"]
    ratio_sync = median["tar+sync"] / median["backup"]
    print(f"backup  median {median['backup']:.2f} s "
          f"({lab['storage_bytes'] / MB / median['backup']:.0f} MB/s)")
    print(f"tar     median {median['tar']:.2f} s "
          f"({lab['storage_bytes'] / MB / median['tar']:.0f} MB/s)")
    print(f"tar+sync median {median['tar+sync']:.2f} s")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
          f"on {os.cpu_count()} CPUs (other work on the machine skews both)")
    verdict = "ok" if ratio >= GOALS["tar_over_backup_min"] else "BELOW GOAL"
    print(f"tar / backup = {ratio:.2f} (goal >= {GOALS['tar_over_backup_min']}: {verdict}); "
          f"tar+sync / backup = {ratio_sync:.2f}")
    if args.json:
        args.json.write_text(json.dumps({
            "lab": lab, "rounds": args.rounds, "seconds": times, "median_s": median,
            "tar_over_backup": ratio, "tar_sync_over_backup": ratio_sync,
            "last_archive_bytes": size, "goals": GOALS, "python": sys.version.split()[0],
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        }, indent=2))
    return 0 if ratio >= GOALS["tar_over_backup_min"] else 1


if __name__ == "__main__":
    sys.exit(main())
