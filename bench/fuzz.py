"""A longer Schemathesis run against real servers than the suite's (docs/fuzzing.md).

For each database kind (SQLite, the embedded default, and a fresh PostgreSQL schema in
the ``test`` database) it starts ``printcore serve``, seeds it with jobs in every state,
their messages and queue tickets (as ``tests/e2e/test_schemathesis.py`` does), and runs
Schemathesis from the server's own ``/api/v1/openapi.json``: without credentials, then
with a bearer token. Checks: no server error, documented status codes, content types,
response schemas and headers.

Run: ``.venv/bin/python bench/fuzz.py`` (``--help`` for flags; defaults: 200 examples per
operation and phase, at most 600 s per run). It prints a summary per run and every
distinct finding with a curl command to reproduce it, writes them to
``bench/results/fuzz.json`` (git-ignored), and exits 1 when anything was found.
Only 127.0.0.1 is used; servers, temporary folders and the PostgreSQL schema are removed
at the end, also after an error.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import attrs  # noqa: E402
import pytest  # noqa: E402
from test_schemathesis import (  # noqa: E402
    CHECKS,
    Report,
    fuzz_server,
    run_schemathesis,
    schemathesis_config,
    seed,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200,
                        help="examples per operation in the fuzzing phase (default 200)")
    parser.add_argument("--seconds", type=float, default=600,
                        help="time limit per run (database x credentials), default 600")
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--credentials", default="anonymous,bearer",
                        help="comma-separated: anonymous, bearer")
    parser.add_argument("--phases", default="coverage,fuzzing",
                        help="comma-separated Schemathesis phases: coverage, fuzzing, "
                             "stateful (default coverage,fuzzing)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (reproducible)")
    parser.add_argument("--per-state", type=int, default=3,
                        help="seeded jobs per state (default 3)")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "fuzz.json")
    args = parser.parse_args(argv)
    seed_value = args.seed if args.seed is not None else random.getrandbits(64)
    phases = set(args.phases.split(","))
    print(f"Schemathesis: {args.examples} examples, at most {args.seconds:.0f} s per run, "
          f"phases {sorted(phases)}, checks {', '.join(CHECKS)}, seed {seed_value}")

    reports: list[Report] = []
    skipped: list[str] = []
    started = time.monotonic()
    for kind in args.databases.split(","):
        with tempfile.TemporaryDirectory(prefix=f"printcore-fuzz-{kind}-") as tmp:
            try:
                with fuzz_server(kind, Path(tmp)) as server:
                    seeded = seed(server, per_state=args.per_state)
                    print(f"{kind}: {server.url}, {len(seeded.job_ids)} jobs, "
                          f"{len(seeded.messages)} messages, {len(seeded.tickets)} tickets")
                    for credentials in args.credentials.split(","):
                        config = schemathesis_config(
                            seeded, bearer=credentials == "bearer",
                            max_examples=args.examples, seed_value=seed_value)
                        for name in ("coverage", "fuzzing", "stateful"):
                            config["phases"][name]["enabled"] = name in phases
                        report = run_schemathesis(server.url, config,
                                                  f"{kind}/{credentials}",
                                                  max_seconds=args.seconds)
                        reports.append(report)
                        print(report.summary(), flush=True)
                        if server.process.poll() is not None:
                            print(f"{kind}: the server died; log:\n{server.log.read_text()}")
                            break
            except pytest.skip.Exception as missing:  # PostgreSQL not running
                skipped.append(f"{kind}: {missing}")
                print(f"{kind}: skipped ({missing})")

    print(f"\n{'run':<24} {'requests':>8} {'seconds':>8} {'stopped':>10} {'findings':>8}")
    for r in reports:
        print(f"{r.label:<24} {r.cases:>8} {r.seconds:>8.1f} {r.stop_reason:>10} "
              f"{len(r.findings) + len(r.errors):>8}")
    for r in reports:
        for finding in r.findings:
            print(f"\n[{r.label}] {finding}")
        for error in r.errors:
            print(f"\n[{r.label}] error: {error}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "seed": seed_value, "examples": args.examples, "seconds_limit": args.seconds,
        "phases": sorted(phases), "total_seconds": time.monotonic() - started,
        "skipped": skipped, "runs": [attrs.asdict(r) for r in reports]}
    args.output.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwritten to {args.output}; total {result['total_seconds']:.0f} s")
    return 1 if any(r.findings or r.errors for r in reports) or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
