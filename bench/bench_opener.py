"""Benchmark of the slicer opener: time from starting it on a valid print3d:// link to the
slicer process being launched.

The "slicer" is a bash script that writes ``$EPOCHREALTIME`` (a bash builtin: no fork)
as its first act; the figure is that time minus the moment just before the opener was
started (``time.time()`` then ``subprocess.Popen``). Measured for:

* ``script``: the installed console script ``.venv/bin/printcore-open`` when present,
  else ``python -m entrypoints.opener`` (the table says which);
* ``frozen``: the PyInstaller one-file executable (built by ``packaging/build.py`` into
  the temporary folder, or the one given with ``--frozen``);
* baselines in the same run: the bash "slicer" started directly, and ``python -c pass``.

Each is run ``--runs`` times (default 20) after one unmeasured warm-up; the first,
cold start of the frozen file (one-file builds unpack into a temporary folder on every
start) is part of the samples. No server is contacted (``server_url`` is empty): the
report is sent after the launch and does not count towards this figure.

Goals (checked here, never in tests): median < 0.5 s for the script, < 1.5 s frozen.

Run: ``.venv/bin/python bench/bench_opener.py [--runs N] [--frozen PATH]``. Prints a
table and writes the samples to ``bench/results/opener.json`` (git-ignored). The
temporary folder is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from entrypoints.opener.token import make_link  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "opener.json"
SECRET = "bench-opener-secret-0123456789"
FILE = "ReadyToPrint/Jane_Filament_Red_7/Jane_Filament_Red_7_sliced.gcode.3mf"
GOALS = {"script": 0.5, "frozen": 1.5}


def _setup(tmp: Path) -> tuple[dict[str, str], Path, Path]:
    """(environment for the opener, the slicer's time file, the slicer program)."""
    target = tmp / "storage" / FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(b"PK\x03\x04bench")
    stamp = tmp / "launched.t"
    slicer = tmp / "slicer.sh"
    slicer.write_text(f"#!/bin/bash\nprintf '%s' \"$EPOCHREALTIME\" > '{stamp}'\n")
    slicer.chmod(0o755)
    home = tmp / "home"
    config = home / ".config" / "printcore" / "opener.ini"
    config.parent.mkdir(parents=True)
    config.write_text(f"[opener]\nstorage_root = {tmp / 'storage'}\nsecret = {SECRET}\n"
                      f"server_url =\n[slicers]\n.gcode.3mf = {slicer}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                "XDG_STATE_HOME": str(home / ".local/state"),
                "XDG_DATA_HOME": str(home / ".local/share")})
    return env, stamp, slicer


def _sample(argv: list[str], env: dict[str, str], stamp: Path) -> tuple[float, float]:
    """(seconds until the slicer ran, seconds until the opener exited)."""
    stamp.unlink(missing_ok=True)
    start = time.time()
    process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = process.communicate(timeout=60)
    exited = time.time() - start
    if process.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {process.returncode}: {err.decode()[-500:]}")
    deadline = time.monotonic() + 10
    while not (stamp.exists() and stamp.read_text()):
        if time.monotonic() > deadline:
            raise RuntimeError("the slicer was not started")
        time.sleep(0.001)
    return float(stamp.read_text()) - start, exited


def _measure(name: str, argv: list[str], env: dict[str, str], stamp: Path, runs: int,
             link: bool = True) -> dict[str, Any]:
    launched, exited = [], []
    for i in range(runs + 1):
        url = make_link(SECRET, 7, FILE, int(time.time()) + 600, "bench")
        a, b = _sample(argv + ([url] if link else []), env, stamp)
        if i:  # the first run warms the page cache
            launched.append(a)
            exited.append(b)
    return {
        "name": name, "argv": argv, "runs": runs, "launched": launched, "exited": exited,
        "median": statistics.median(launched),
        "p90": statistics.quantiles(launched, n=10)[-1] if runs >= 10 else max(launched),
        "max": max(launched), "min": min(launched),
        "exit_median": statistics.median(exited),
    }


def _frozen(tmp: Path, given: str | None) -> Path:
    if given:
        return Path(given).resolve()
    subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--dist",
                    str(tmp / "dist"), "--work", str(tmp / "work")], check=True,
                   capture_output=True, timeout=900)
    return tmp / "dist" / ("printcore-open.exe" if sys.platform == "win32" else "printcore-open")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--frozen", help="an already built printcore-open executable")
    parser.add_argument("--skip-frozen", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-opener-"))
    try:
        env, stamp, slicer = _setup(tmp)
        env["PYTHONPATH"] = str(ROOT / "src")
        script = Path(sys.executable).with_name("printcore-open")
        script_argv = ([str(script)] if script.is_file()
                       else [sys.executable, "-m", "entrypoints.opener"])
        rows = [
            _measure("baseline: the bash slicer started directly", [str(slicer)], env, stamp,
                     args.runs, link=False),
            _measure("baseline: python -c pass, then the slicer",
                     [sys.executable, "-c", f"import os; os.execv({str(slicer)!r}, ['s'])"],
                     env, stamp, args.runs, link=False),
            {**_measure("script", script_argv, env, stamp, args.runs),
             "how": "console script" if script.is_file() else "python -m"},
        ]
        if not args.skip_frozen:
            exe = _frozen(tmp, args.frozen)
            frozen_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
            rows.append({**_measure("frozen", [str(exe)], frozen_env, stamp, args.runs),
                         "size_bytes": exe.stat().st_size})
        print(f"{'':48} {'median':>8} {'p90':>8} {'max':>8} {'exit':>8}  goal")
        for row in rows:
            goal = GOALS.get(row["name"])
            verdict = "" if goal is None else (
                f"< {goal} s: {'met' if row['median'] < goal else 'NOT met'}")
            label = row["name"] + (f" ({row['how']})" if "how" in row else "")
            print(f"{label:48} {row['median']:8.3f} {row['p90']:8.3f} {row['max']:8.3f} "
                  f"{row['exit_median']:8.3f}  {verdict}")
        if not args.skip_frozen:
            print(f"frozen executable: {rows[-1]['size_bytes'] / 1e6:.1f} MB")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"python": sys.version, "platform": platform.platform(),
                        "cpus": os.cpu_count(), "load": os.getloadavg()},
            "rows": rows,
        }, indent=2))
        print(f"samples: {RESULTS}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
