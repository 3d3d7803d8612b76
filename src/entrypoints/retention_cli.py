"""``printcore retention --older-than DAYS [--archive DIR] [--apply] [--staff NAME]``
(issue 13; see docs/retention.md).

Without ``--apply`` it is the preview: counts and folder bytes of the rejected and
paid-and-picked-up jobs whose last state change is more than DAYS days ago, and their
ids; nothing is changed. With ``--apply`` those jobs are archived into one zip in DIR
(``--archive DIR``; written and verified before anything is removed) or, without
``--archive``, pruned (removed with no zip). Either way the event log keeps a tombstone
per job and a ``retention_applied`` lab event for the run, attributed to ``--staff NAME``
(active staff) or to the command line.

Exit codes (as ``entrypoints.cli``): 0 done or previewed; 1 refused input (a bad DAYS,
an unknown staff name, an archive folder that is missing or cannot be written: nothing
is removed then); 2 configuration or database unreachable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from printcore.errors import StorageError, ValidationError
from printcore.requests.retention import RetentionMode, RetentionPlan

if TYPE_CHECKING:  # annotations only: main() loads the settings
    from entrypoints.settings import Settings

__all__ = ["add_parsers", "cmd_retention", "format_plan"]


def _size(n: int) -> str:
    from adapters.web.render import filesize

    return f"{n} bytes ({filesize(n)})" if n >= 1000 else f"{n} bytes"


def format_plan(plan: RetentionPlan) -> list[str]:
    """The preview's lines: the cutoff, counts and bytes per state, the ids."""
    counts, sizes = plan.counts(), plan.bytes_by_status()
    lines = [f"jobs finished before {plan.cutoff.isoformat(timespec='seconds')} "
             f"(older than {plan.older_than_days} days, by their last state change):",
             f"  rejected:        {counts['rejected']} job(s), {_size(sizes['rejected'])}",
             f"  paid_picked_up:  {counts['paid_picked_up']} job(s), "
             f"{_size(sizes['paid_picked_up'])}",
             f"  total:           {plan.count} job(s), {_size(plan.bytes)}"]
    if plan.jobs:
        lines.append("  job ids: " + " ".join(str(i) for i in plan.job_ids))
    return lines


def cmd_retention(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.retention import StorageFolders, ZipArchiver
    from adapters.sql import SqlUnitOfWork
    from adapters.sql.retention import SqlRetentionStore
    from entrypoints.bootstrap import bootstrap
    from printcore.events import Actor
    from printcore.requests.retention import Retention, parse_days

    try:
        days = parse_days(args.older_than)
    except ValidationError as err:
        print(f"printcore: {err.message} Nothing was changed.", file=sys.stderr)
        return 1
    archive_dir = Path(args.archive).absolute() if args.archive else None
    if args.apply and archive_dir is not None and not archive_dir.is_dir():
        print(f"printcore: the archive folder {archive_dir} does not exist; create it or "
              "choose another --archive. Nothing was removed.", file=sys.stderr)
        return 1
    container = bootstrap(settings)
    try:
        engine = container.engine
        retention = Retention(
            SqlRetentionStore(lambda: SqlUnitOfWork(engine)), StorageFolders(container.files),
            container.clock,
            ZipArchiver(archive_dir, container.files, container.clock.now)
            if archive_dir is not None else None,
            active_staff=lambda: {m.name for m in container.staff.list()})
        if not args.apply:
            plan = retention.preview(days)
            print("\n".join(format_plan(plan)))
            print("preview only: nothing was changed; add --apply to "
                  + (f"archive into {archive_dir}" if archive_dir else
                     "prune (no archive; give --archive DIR to keep a zip)"))
            return 0
        who = (Actor.staff(args.staff, "command line") if args.staff
               else Actor.system("command line"))
        mode = RetentionMode.ARCHIVE if archive_dir is not None else RetentionMode.PRUNE
        try:
            result = retention.apply(days, mode, who)
        except StorageError as err:
            print(f"printcore: {err.message}", file=sys.stderr)
            return 1
    finally:
        container.close()
    print("\n".join(format_plan(result.plan)))
    verb = "archived" if mode is RetentionMode.ARCHIVE else "pruned"
    print(f"{verb} {len(result.removed)} job(s), {_size(result.bytes_removed)} of storage "
          "freed" + (f"; skipped {len(result.skipped)} changed meanwhile: "
                     + " ".join(map(str, result.skipped)) if result.skipped else ""))
    for message in result.errors:
        print(f"printcore: {message}", file=sys.stderr)
    if result.archive is not None:
        print(f"archive: {result.archive.path} ({result.archive.bytes} bytes, "
              f"{result.archive.entries} entries, verified; sha256 {result.archive.sha256})")
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``retention`` to the top-level subparsers ``sub``."""
    p = sub.add_parser("retention", help="archive or prune jobs finished long ago "
                                         "(preview unless --apply)")
    p.add_argument("--older-than", required=True, metavar="DAYS",
                   help="jobs rejected or picked up more than DAYS days ago (1 to 36500)")
    p.add_argument("--archive", metavar="DIR", default=None,
                   help="write a verified zip into DIR before removing (else prune)")
    p.add_argument("--apply", action="store_true",
                   help="do it (without: preview only, nothing changes)")
    p.add_argument("--staff", default=None, metavar="NAME",
                   help="the staff member applying it (default: the command line)")
    p.set_defaults(func=cmd_retention)
