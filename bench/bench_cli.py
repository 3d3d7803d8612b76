"""Start-up time of the ``printcore`` command (issue 14, "Every CLI call takes ~0.6 s").

Times, as a lab runs them (a subprocess each, wall clock), in interleaved rounds so the
machine's load hits every command alike:

* ``python3 -c pass`` (this interpreter: the floor every command pays);
* ``printcore --help``;
* ``printcore backup --help``;
* ``printcore queue status`` (opens the database, checks the schema head, reads the
  printers file and the queue).

on a scratch ``PRINTCORE_HOME`` (``--home``, default a fresh temporary folder; the
embedded SQLite default, the starter printers written by one untimed first call).
``DATABASE_URL``, ``REDIS_URL`` and ``DISCORD_TOKEN`` are removed from the environment.
Prints the median (and min) in milliseconds and each median as a multiple of
``python3 -c pass``'s (goal for ``queue status``: ≤ 12×).

Run: ``.venv/bin/python bench/bench_cli.py [--rounds 20] [--home PATH] [--json PATH]``.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PRINTCORE = str(Path(sys.executable).with_name("printcore"))

COMMANDS: dict[str, list[str]] = {
    "python3 -c pass": [sys.executable, "-c", "pass"],
    "printcore --help": [PRINTCORE, "--help"],
    "printcore backup --help": [PRINTCORE, "backup", "--help"],
    "printcore queue status": [PRINTCORE, "queue", "status"],
}


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "DISCORD_TOKEN"}
           and not k.startswith("PRINTCORE_")}
    env["PRINTCORE_HOME"] = str(home)
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds of one call; raises when the command fails (a broken command is no figure)."""
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): "
                         f"{result.stderr.decode(errors='replace')}")
    return elapsed


def measure(rounds: int, home: Path) -> dict[str, list[float]]:
    """``{label: [seconds, …]}``, ``rounds`` calls of each, interleaved."""
    env = _environment(home)
    for argv in COMMANDS.values():  # warm-up: writes the starter printers, migrates
        _run(argv, env, home)
    times: dict[str, list[float]] = {label: [] for label in COMMANDS}
    for n in range(rounds):
        labels = list(COMMANDS) if n % 2 == 0 else list(reversed(COMMANDS))
        for label in labels:
            times[label].append(_run(COMMANDS[label], env, home))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    scratch = args.home is None
    home = Path(tempfile.mkdtemp(prefix="printcore-bench-cli-")) if scratch else args.home
    home.mkdir(parents=True, exist_ok=True)
    try:
        times = measure(args.rounds, home)
    finally:
        if scratch:
            shutil.rmtree(home, ignore_errors=True)
    floor = statistics.median(times["python3 -c pass"])
    rows: list[dict[str, Any]] = []
    print(f"{'command':28} {'median ms':>10} {'min ms':>8} {'× pass':>7}")
    for label, values in times.items():
        median = statistics.median(values)
        rows.append({"command": label, "median_ms": round(median * 1000, 1),
                     "min_ms": round(min(values) * 1000, 1),
                     "ratio": round(median / floor, 1)})
        print(f"{label:28} {median * 1000:10.1f} {min(values) * 1000:8.1f} "
              f"{median / floor:7.1f}")
    load = os.getloadavg()
    print(f"{args.rounds} rounds; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{platform.python_implementation()} {platform.python_version()}")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "rounds": args.rounds, "load": load, "rows": rows,
        }, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
