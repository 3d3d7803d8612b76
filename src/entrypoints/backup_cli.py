"""``printcore backup PATH`` and ``printcore restore PATH`` (adapters.backup).

    printcore backup PATH     one archive of the database (SQLite, or PostgreSQL through
                              pg_dump) and the storage root (refuses a PATH that
                              exists); the server may keep running
    printcore restore PATH    into an empty home (PRINTCORE_HOME, DATABASE_URL: an empty
                              SQLite file or PostgreSQL database, PRINTCORE_STORAGE);
                              every checksum verified first

Refusals exit 1 with a sentence saying what to do; nothing is written then. A PostgreSQL
database that cannot be reached exits 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: main() loads the settings
    from entrypoints.settings import Settings

__all__ = ["add_parsers"]


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.backup import backup

    result = backup(settings.database_url, settings.storage_root, settings.home,
                    Path(args.path).absolute())
    print(f"backup written to {result.path}: {result.jobs} job(s), {result.files} storage "
          f"file(s), {result.bytes} bytes, migration revision {result.revision}"
          + (f" (taken {result.attempts} times: storage moved meanwhile)"
             if result.attempts > 1 else "")
          + (f"; {result.left_out} job folder(s) newer than the database snapshot left out"
             if result.left_out else ""))
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.backup import restore

    result = restore(Path(args.path).absolute(), settings.database_url, settings.storage_root,
                     settings.home)
    if settings.sqlite_path is not None:
        where = str(settings.sqlite_path)
    else:
        from sqlalchemy.engine import make_url

        url = make_url(settings.database_url)
        where = f"PostgreSQL {url.host or 'localhost'}:{url.port or 5432}/{url.database}"
    print(f"restored the backup of {result.created_at}: {result.jobs} job(s), {result.files} "
          f"storage file(s), migration revision {result.revision}; into database "
          f"{where} and storage {settings.storage_root}")
    if not result.at_head:
        print("`printcore serve` (or `printcore db upgrade`) upgrades the database: this "
              "printcore is newer than the backup")
    return 0


def add_parsers(sub: Any) -> None:
    """Add ``backup`` and ``restore`` to the ``printcore`` subcommands."""
    b = sub.add_parser("backup", help="write one archive of the database and storage")
    b.add_argument("path", help="the archive to write (.tar); must not exist")
    b.set_defaults(func=cmd_backup)
    r = sub.add_parser("restore", help="restore a backup archive into an empty home")
    r.add_argument("path", help="an archive written by `printcore backup`")
    r.set_defaults(func=cmd_restore)
