"""The ``printcore`` command starts fast (issue 14): building the parser imports no
adapter technology, ``queue status`` on a database at the head imports no Alembic and
reads no YAML, the cheap head check agrees with Alembic, and the printers file is
synced only when it changed.

Each check runs a fresh interpreter (``sys.modules`` of the test process is full) on a
scratch ``PRINTCORE_HOME`` with the embedded SQLite database.

Bad inputs tried: a database at an unknown revision (``9999``: refused as Alembic
refuses it, nothing migrated), an empty ``alembic_version`` table, a database never
migrated, a broken printers file after a good sync (reported at every start, never
recorded as synced), an edited label (applied at the next start), ``--help`` of every
subcommand tree that has one here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: Nothing of these may be imported by ``import entrypoints.cli`` + ``build_parser()``.
HEAVY = frozenset({"sqlalchemy", "alembic", "jinja2", "dramatiq", "redis", "starlette",
                   "uvicorn", "discord", "psycopg", "yaml", "structlog", "argon2",
                   "itsdangerous", "adapters"})

_REPORT = "\nprint('MODULES=' + json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"


def _python(code: str, home: Path) -> tuple[str, set[str]]:
    """Run ``code`` in a fresh interpreter with PRINTCORE_HOME=home; (stdout, top-level
    modules loaded at the end)."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "DISCORD_TOKEN"}
           and not k.startswith("PRINTCORE_")}
    env["PRINTCORE_HOME"] = str(home)
    result = subprocess.run([sys.executable, "-c", "import json, sys\n" + code + _REPORT],
                            env=env, cwd=home, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    out, _, modules = result.stdout.rpartition("MODULES=")
    return out, set(json.loads(modules))


def test_building_the_parser_imports_no_adapter_technology(tmp_path: Path) -> None:
    _, loaded = _python("import entrypoints.cli\nentrypoints.cli.build_parser()", tmp_path)
    assert "entrypoints" in loaded
    assert loaded & HEAVY == set()


@pytest.mark.parametrize("argv", [["--help"], ["backup", "--help"], ["queue", "--help"],
                                  ["doctor", "--help"], ["db", "--help"],
                                  ["export", "--help"], ["outbox", "--help"]])
def test_help_imports_no_adapter_technology(tmp_path: Path, argv: list[str]) -> None:
    code = ("from entrypoints.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit as exit:\n"
            "    assert exit.code == 0, exit.code\n")
    out, loaded = _python(code, tmp_path)
    assert "usage: printcore" in out
    assert loaded & HEAVY == set()


def _main(argv: list[str]) -> str:
    return f"from entrypoints.cli import main\nassert main({argv!r}) == 0\n"


def test_queue_status_at_the_head_reads_no_alembic_and_no_yaml(tmp_path: Path) -> None:
    first, loaded_first = _python(_main(["queue", "status"]), tmp_path)  # migrates, syncs
    assert "X1C-1" in first and "X1C-3" in first
    assert {"alembic", "yaml"} <= loaded_first
    again, loaded = _python(_main(["queue", "status"]), tmp_path)
    assert again == first
    assert "sqlalchemy" in loaded  # it did read the database
    assert loaded & {"alembic", "yaml", "dramatiq", "redis", "starlette", "uvicorn",
                     "discord"} == set()


def test_the_cheap_head_is_alembics_head() -> None:
    from adapters.sql.migrate import head_revision, shipped_head

    assert shipped_head() is not None
    assert shipped_head() == head_revision()


def test_shipped_head_refuses_a_branch(tmp_path: Path) -> None:
    from adapters.sql.migrate import shipped_head

    for name, rev, down in (("a.py", "0001", "None"), ("b.py", "0002", '"0001"'),
                            ("c.py", "0003", '"0001"')):
        (tmp_path / name).write_text(f'revision: str = "{rev}"\ndown_revision = {down}\n')
    assert shipped_head(tmp_path) is None  # two heads: callers ask Alembic
    (tmp_path / "d.py").write_text('revision = "0004"\ndown_revision = ("0002", "0003")\n')
    assert shipped_head(tmp_path) == "0004"  # a merge revision closes the branch


DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database: a SQLite file, or a fresh schema on PostgreSQL
    (``PRINTCORE_TEST_PG_URL``; skipped when unreachable, failing under CI=true)."""
    from sqlalchemy import text

    from adapters.sql import check_connection, make_engine
    from printcore.errors import StorageError

    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'lab.sqlite3'}")
        yield engine
        engine.dispose()
        return
    url = os.environ.get("PRINTCORE_TEST_PG_URL", DEFAULT_PG_URL)
    admin = make_engine(url)
    try:
        check_connection(admin, "PRINTCORE_TEST_PG_URL")
    except StorageError as exc:
        admin.dispose()
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    schema = f"cli_head_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(f"{url}?options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _version(engine: Engine) -> list[str]:
    from sqlalchemy import text

    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]


def test_upgrade_if_behind_migrates_only_when_behind(fresh_engine: Engine) -> None:
    from sqlalchemy import text

    from adapters.sql.migrate import downgrade, shipped_head, upgrade_if_behind

    engine = fresh_engine
    assert upgrade_if_behind(engine) is True  # never migrated: Alembic runs
    assert _version(engine) == [shipped_head()]
    assert upgrade_if_behind(engine) is False  # at the head: one SELECT
    downgrade(engine, "0001")
    assert upgrade_if_behind(engine) is True
    assert _version(engine) == [shipped_head()]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    with pytest.raises(Exception):  # noqa: B017 - Alembic's own error, as before
        # an empty version table looks like a new database: creating tables that
        # exist fails, in one transaction that leaves the tables untouched
        upgrade_if_behind(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
    with pytest.raises(Exception, match="9999"):  # a newer printcore's database
        upgrade_if_behind(engine)
    assert _version(engine) == ["9999"]  # nothing migrated


def _labels(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT name, label FROM printers"))


def test_printers_file_is_synced_only_when_it_changed(tmp_path: Path) -> None:
    status = _main(["queue", "status"])
    _python(status, tmp_path)
    db = tmp_path / "printcore.db"
    printers = tmp_path / "printers.yaml"
    assert _labels(db)["X1C-1"] == "Bambu Lab X1 Carbon 1"
    with sqlite3.connect(db) as conn:  # the stored fingerprint names the file
        (stored,) = conn.execute(
            "SELECT value FROM settings WHERE key = 'printers_file_synced'").fetchone()
    assert stored.startswith(str(printers.resolve()) + "|")

    printers.write_text(printers.read_text().replace("Carbon 1", "Carbon, bench 1")
                        + "  - X1C-4\n")
    _, loaded = _python(status, tmp_path)
    assert "yaml" in loaded  # changed: read and synced
    labels = _labels(db)
    assert labels["X1C-1"] == "Bambu Lab X1 Carbon, bench 1" and "X1C-4" in labels

    good = printers.read_text()
    printers.write_text("printers: [\n")  # broken YAML after a good sync
    for _ in range(2):  # reported at every start, never recorded as synced
        result = subprocess.run(
            [sys.executable, "-m", "entrypoints.cli", "queue", "status"],
            env={**{k: v for k, v in os.environ.items() if not k.startswith("PRINTCORE_")
                    and k not in {"DATABASE_URL", "REDIS_URL", "DISCORD_TOKEN"}},
                 "PRINTCORE_HOME": str(tmp_path)},
            capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 2
        assert "not valid YAML" in result.stderr
    printers.write_text(good)
    _, loaded = _python(status, tmp_path)
    assert "yaml" in loaded  # the fingerprint changed with the mtime: synced again
    _, loaded = _python(status, tmp_path)
    assert "yaml" not in loaded
    assert _labels(db) == labels
