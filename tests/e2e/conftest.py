"""``live_server``: a real server per database kind, ``sqlite`` (the embedded default)
and ``postgresql`` (a fresh schema in the ``test`` database, dropped afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from _live import PG_DSN, LiveServer, start_server, stop_server
from _support import service_missing


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    extra: dict[str, str] = {}
    schema = None
    if request.param == "postgresql":
        schema = f"pc_e2e_{uuid.uuid4().hex[:10]}"
        try:
            with psycopg.connect(PG_DSN, connect_timeout=3, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
        except psycopg.OperationalError as err:
            service_missing(f"PostgreSQL at {PG_DSN}: {err}")
        extra["DATABASE_URL"] = (
            PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
            + f"?options=-csearch_path%3D{schema}"
        )
    server = start_server(home, extra, request.param)
    yield server
    stop_server(server)
    if schema is not None:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
