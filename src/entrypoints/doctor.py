"""``printcore doctor``: the readiness checks (:mod:`adapters.health`) for a terminal.

One line per check, ``✓`` or ``✗``, the finding, and for a failure what to do. Exit code
0 when every check passes, 1 otherwise (2, as for every command, when the settings
themselves cannot be used). Opens the database without migrating it, so a database
behind this version's migrations is reported, not silently upgraded.
"""

from __future__ import annotations

import argparse
from typing import Any

from adapters.health import Readiness
from adapters.sql import make_engine
from entrypoints.settings import Settings

__all__ = ["add_parsers", "cmd_doctor"]


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    engine = make_engine(settings.database_url)
    try:
        report = Readiness(engine, settings.storage_root, redis_url=settings.redis_url).run()
    finally:
        engine.dispose()
    for check in report.checks:
        print(f"{'✓' if check.ok else '✗'} {check.name:9} {check.detail}")
        if not check.ok and check.action:
            print(f"  {'':9} → {check.action}")
    if report.ok:
        print("All checks pass.")
        return 0
    print(f"{len(report.failing)} check(s) failing: {', '.join(report.failing)}.")
    return 1


def add_parsers(sub: Any) -> None:
    doctor = sub.add_parser("doctor", help="check database, storage, Redis and the outbox")
    doctor.set_defaults(func=cmd_doctor)
