"""``printcore backup PATH`` and ``printcore restore PATH`` (adapters.backup).

    printcore backup PATH     one archive of the database and the storage root (refuses
                              a PATH that exists); the server may keep running
    printcore restore PATH    into an empty home (PRINTCORE_HOME, DATABASE_URL,
                              PRINTCORE_STORAGE); every checksum verified first

Refusals exit 1 with a sentence saying what to do; nothing is written then.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from entrypoints.settings import Settings

__all__ = ["add_parsers"]


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.backup import backup

    result = backup(settings.database_url, settings.storage_root, settings.home,
                    Path(args.path).absolute())
    print(f"backup written to {result.path}: {result.jobs} job(s), {result.files} storage "
          f"file(s), {result.bytes} bytes, migration revision {result.revision}"
          + (f" (taken {result.attempts} times: storage moved meanwhile)"
             if result.attempts > 1 else ""))
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.backup import restore

    result = restore(Path(args.path).absolute(), settings.database_url, settings.storage_root,
                     settings.home)
    print(f"restored the backup of {result.created_at}: {result.jobs} job(s), {result.files} "
          f"storage file(s), migration revision {result.revision}; into database "
          f"{settings.sqlite_path} and storage {settings.storage_root}")
    print("`printcore serve` upgrades the database if this printcore is newer than the backup")
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``backup`` and ``restore`` to the ``printcore`` subcommands."""
    b = sub.add_parser("backup", help="write one archive of the database and storage")
    b.add_argument("path", help="the archive to write (.tar); must not exist")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser("restore", help="restore a backup archive into an empty home")
    r.add_argument("path", help="an archive written by `printcore backup`")
    r.set_defaults(func=cmd_restore)
