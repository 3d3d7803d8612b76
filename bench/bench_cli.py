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
Bytecode is cached as in an installed printcore (``PYTHONDONTWRITEBYTECODE`` removed,
``PYTHONPYCACHEPREFIX`` in the scratch folder, filled by the untimed first calls), so a
source file edited since its last compile is not recompiled at every call.

``--compare SRC`` also times the printcore commands with ``PYTHONPATH=SRC`` (e.g. an
older version's ``src`` from ``git archive COMMIT src | tar -x -C DIR``), in the same
interleaved rounds, on its own scratch home (its database at its own head).

Prints the median (and min) in milliseconds and each median as a multiple of
``python3 -c pass``'s (goal for ``queue status``: ≤ 12×).

Run: ``.venv/bin/python bench/bench_cli.py [--rounds 20] [--home PATH] [--compare SRC]
[--json PATH]``.
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


def _environment(home: Path, src: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "DISCORD_TOKEN", "PYTHONDONTWRITEBYTECODE",
                        "PYTHONPATH"}
           and not k.startswith("PRINTCORE_")}
    env["PRINTCORE_HOME"] = str(home)
    env["PYTHONPYCACHEPREFIX"] = str(home / ".pycache")
    if src is not None:
        env["PYTHONPATH"] = str(src)
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


def measure(rounds: int, home: Path, compare: Path | None = None) -> dict[str, list[float]]:
    """``{label: [seconds, …]}``, ``rounds`` calls of each, interleaved; with ``compare``
    the printcore commands again under ``PYTHONPATH=compare`` (labels ``… [SRC]``)."""
    plan: dict[str, tuple[list[str], dict[str, str], Path]] = {}
    env = _environment(home)
    for label, argv in COMMANDS.items():
        plan[label] = (argv, env, home)
    if compare is not None:
        other = home / "compare"
        other.mkdir(exist_ok=True)
        other_env = _environment(other, compare)
        for label, argv in COMMANDS.items():
            if label.startswith("printcore"):
                plan[f"{label} [{compare}]"] = (argv, other_env, other)
    for _ in range(2):  # warm-up: starter printers, migrations, bytecode cache
        for argv, run_env, cwd in plan.values():
            _run(argv, run_env, cwd)
    times: dict[str, list[float]] = {label: [] for label in plan}
    for n in range(rounds):
        labels = list(plan) if n % 2 == 0 else list(reversed(plan))
        for label in labels:
            argv, run_env, cwd = plan[label]
            times[label].append(_run(argv, run_env, cwd))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--compare", type=Path, default=None,
                        help="another printcore's src folder to time alongside")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    scratch = args.home is None
    home = Path(tempfile.mkdtemp(prefix="printcore-bench-cli-")) if scratch else args.home
    home.mkdir(parents=True, exist_ok=True)
    try:
        times = measure(args.rounds, home, args.compare)
    finally:
        if scratch:
            shutil.rmtree(home, ignore_errors=True)
    floor = statistics.median(times["python3 -c pass"])
    rows: list[dict[str, Any]] = []
    width = max(len(label) for label in times) + 1
    print(f"{'command':{width}} {'median ms':>10} {'min ms':>8} {'× pass':>7}")
    for label, values in times.items():
        median = statistics.median(values)
        rows.append({"command": label, "median_ms": round(median * 1000, 1),
                     "min_ms": round(min(values) * 1000, 1),
                     "ratio": round(median / floor, 1)})
        print(f"{label:{width}} {median * 1000:10.1f} {min(values) * 1000:8.1f} "
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
