"""``printcore doctor``: the readiness checks (:mod:`adapters.health`) for a terminal.

One line per check, ``✓`` or ``✗``, the finding, and for a failure what to do. Exit code
0 when every check passes, 1 otherwise (2, as for every command, when the settings
themselves cannot be used, and for a ``--check NAME`` that these settings do not have).
``--check NAME`` (repeatable) prints and judges only those checks, for a container's or
a process's own health check (``--check worker``). Opens the database without migrating it, so a database
behind this version's migrations is reported, not silently upgraded.

:func:`readiness_for` builds the checks from the settings (thresholds, Redis, Discord):
the one place that does, for ``printcore doctor`` and the web process alike.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a check runs, not when the parser is built
    from sqlalchemy import Engine

    from adapters.health import Readiness
    from entrypoints.settings import Settings

__all__ = ["add_parsers", "cmd_doctor", "readiness_for"]


def readiness_for(settings: Settings, engine: Engine,
                  now: Callable[[], datetime] | None = None) -> Readiness:
    """The readiness checks these settings call for: Redis and the worker's heartbeat
    with ``REDIS_URL``, the bot's heartbeat with ``DISCORD_TOKEN``; the thresholds
    ``PRINTCORE_OUTBOX_ALERT_SECONDS`` (s), ``PRINTCORE_STORAGE_MIN_FREE_MB`` (MB of
    10^6 bytes) and ``PRINTCORE_HEARTBEAT_MAX_AGE_SECONDS`` (s). ``now``: the UTC clock."""
    from adapters.health import Readiness

    return Readiness(engine, settings.storage_root, redis_url=settings.redis_url, now=now,
                     outbox_max_age_seconds=settings.outbox_alert_seconds,
                     min_free_bytes=settings.storage_min_free_mb * 1_000_000,
                     discord=bool(settings.discord_token),
                     heartbeat_max_age_seconds=settings.heartbeat_max_age_seconds,
                     watched_printers=_watched_printers(settings))


def _watched_printers(settings: Settings) -> list[str]:
    """The printers file's watched printers (``serial`` and ``host`` set); none when the
    file is missing or cannot be read (the web app's start reports a bad file)."""
    from adapters.printers_file import PrintersFileError, read_watch_config

    try:
        config = read_watch_config(settings.printers_file)
    except (PrintersFileError, OSError):
        return []
    return [printer.name for printer in config.watched]


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.sql import make_engine

    engine = make_engine(settings.database_url)
    try:
        report = readiness_for(settings, engine).run()
    finally:
        engine.dispose()
    checks = report.checks
    wanted = list(dict.fromkeys(getattr(args, "check", None) or []))
    if wanted:
        known = [check.name for check in checks]
        unknown = [name for name in wanted if name not in known]
        if unknown:
            print(f"printcore doctor: no check called {', '.join(unknown)} with these "
                  f"settings; the checks here are: {', '.join(known)}.", file=sys.stderr)
            return 2
        checks = tuple(check for check in checks if check.name in wanted)
    for check in checks:
        print(f"{'✓' if check.ok else '✗'} {check.name:9} {check.detail}")
        if not check.ok and check.action:
            print(f"  {'':9} → {check.action}")
    failing = [check.name for check in checks if not check.ok]
    if not failing:
        print("All checks pass.")
        return 0
    print(f"{len(failing)} check(s) failing: {', '.join(failing)}.")
    return 1


def add_parsers(sub: Any) -> None:
    doctor = sub.add_parser("doctor", help="check database, storage, Redis, the worker's "
                            "and bot's heartbeats, and the outbox")
    doctor.add_argument("--check", action="append", metavar="NAME",
                        help="only this check (repeatable): database, storage, redis, "
                             "worker, bot, outbox; e.g. a container health check")
    doctor.set_defaults(func=cmd_doctor)
