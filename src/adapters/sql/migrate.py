"""Run the Alembic migrations from code (no alembic.ini needed at runtime).

The revision scripts live in ``adapters/sql/migrations`` inside the installed package.
Alembic is imported only by the functions that migrate or ask Alembic (it costs ~0.1-0.2 s
to import); ``upgrade_if_behind`` (every process start) first compares the database's
``alembic_version`` with the shipped head read from the revision files, in one query,
and calls Alembic only when they differ.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from adapters.sql.engine import make_engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "MIGRATIONS",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "shipped_head",
    "upgrade",
    "upgrade_if_behind",
]

#: The folder holding env.py, script.py.mako and versions/.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations, bound to ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def _run(engine_or_url: Engine | str, action: str, revision: str) -> None:
    from alembic import command

    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Processes starting together on a fresh database (web, worker and bot
                # under `docker compose up`) would each create the tables, and all but
                # one fail; they queue here instead, and Alembic, reading the version
                # after the lock, finds the work done. (SQLite's BEGIN IMMEDIATE queues.)
                conn.execute(text("SELECT pg_advisory_xact_lock("
                                  "hashtext('printcore.migrate:' || current_schema()))"))
            config = alembic_config(conn)
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` in one transaction (DDL is transactional
    on both SQLite and PostgreSQL, so a failed migration leaves nothing half-done).

    Raises StorageError for an unsupported URL; SQLAlchemy/Alembic errors otherwise.
    """
    _run(engine_or_url, "upgrade", revision)


def downgrade(engine_or_url: Engine | str, revision: str) -> None:
    """Migrate down to ``revision`` (``"base"`` drops every table printcore made)."""
    _run(engine_or_url, "downgrade", revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for a database never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
    return revision


def head_revision() -> str | None:
    """The newest revision shipped with this version of printcore (asked of Alembic)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def shipped_head(versions: Path = MIGRATIONS / "versions") -> str | None:
    """The head revision id read from the revision files' ``revision = "…"`` and
    ``down_revision = …`` lines, without importing Alembic: the one revision no other
    revises. None when the files do not give exactly one head (a branch, an unreadable
    file): callers then ask Alembic."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in versions.glob("*.py"):
        if path.name.startswith("_"):
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        found = _REVISION.findall(source)
        down = _DOWN_REVISION.findall(source)
        if len(found) != 1 or len(down) != 1:
            return None
        revisions.add(found[0])
        revised.update(_QUOTED.findall(down[0]))
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def _version_rows(engine: Engine) -> list[str] | None:
    """The ``alembic_version`` rows in one query, or None when there is no such table
    (a database never migrated) or it cannot be read."""
    try:
        with engine.connect() as conn:
            try:
                rows = [row[0] for row in conn.execute(text(
                    "SELECT version_num FROM alembic_version"))]
            finally:
                conn.rollback()
    except SQLAlchemyError:
        return None
    return rows


def upgrade_if_behind(engine: Engine) -> bool:
    """Migrate to the head unless the database is already there; True when Alembic ran.

    The check is one ``SELECT`` of ``alembic_version`` compared with :func:`shipped_head`;
    any other answer (no table, another revision, several rows, no single shipped head)
    runs :func:`upgrade` exactly as before, so its errors (e.g. a revision this version
    does not know) are raised as from ``upgrade``."""
    head = shipped_head()
    if head is not None and _version_rows(engine) == [head]:
        return False
    upgrade(engine)
    return True
