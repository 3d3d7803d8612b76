"""``fault_home``: an empty printcore home per database kind, ``sqlite`` (the embedded
default) and ``postgresql`` (a fresh schema in the ``test`` database, dropped afterwards;
fails under CI=true when PostgreSQL is missing, skips elsewhere)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from _live import PG_DSN
from _support import service_missing


@pytest.fixture(params=["sqlite", "postgresql"])
def fault_home(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a printcore home (``PRINTCORE_HOME``, ``DATABASE_URL``...)."""
    home = tmp_path / "home"
    env = {**os.environ, "PRINTCORE_HOME": str(home), "PRINTCORE_SECRET_KEY": "fault-secret"}
    env.pop("PRINTCORE_STORAGE", None)
    env.pop("REDIS_URL", None)
    schema = None
    if request.param == "postgresql":
        schema = f"pc_fault_{uuid.uuid4().hex[:10]}"
        try:
            with psycopg.connect(PG_DSN, connect_timeout=3, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
        except psycopg.OperationalError as err:
            service_missing(f"PostgreSQL at {PG_DSN}: {err}")
        env["DATABASE_URL"] = (PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
                               + f"?options=-csearch_path%3D{schema}")
    else:
        env["DATABASE_URL"] = f"sqlite:///{home / 'printcore.db'}"
    yield env
    if schema is not None:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
