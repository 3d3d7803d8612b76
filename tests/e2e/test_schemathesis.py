"""Schemathesis against the real server: the OpenAPI document tells the truth.

A server per database kind (SQLite, the embedded default, and a fresh PostgreSQL schema)
is started with ``printcore serve``, seeded with real data (jobs in every state from a
real model and sliced file, their outbox messages, queue tickets) and fuzzed from its own
``/api/v1/openapi.json``, twice: without credentials and with a bearer token. The
seeded ids, names and file names are mixed into the generated values (Schemathesis
dictionaries), so requests get past 404 into the handlers' real logic.

Checked for every answer: no server error (5xx other than a documented 503), the status
code is documented for the operation, the content type is the documented one, and the
body (and the Retry-After header of a 429) matches the documented schema.

Bounded so the suite stays inside CI's time: a few examples per operation and phase
(coverage, fuzzing), and a wall-clock budget per run. The longer run is
``bench/fuzz.py`` (docs/fuzzing.md).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import psycopg
import pytest

from _live import (
    PG_DSN,
    STAFF,
    LiveServer,
    confirm_token,
    login,
    start_server,
    stop_server,
    submit,
    upload_sliced,
)
from _support import FIXTURES, service_missing

#: The fuzzer must not lock itself out (tests/_live.py sets these too, once it can).
FUZZ_ENV = {
    "PRINTCORE_LOGIN_FAILURES_PER_MINUTE": "100000",
    "PRINTCORE_SUBMISSIONS_PER_HOUR": "100000",
    "PRINTCORE_SUBMISSION_MAIL_PER_HOUR": "100000",
    "PRINTCORE_OPENER_SECRET": "schemathesis-opener-secret-0123456789",
}
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]
#: In-suite bounds (bench/fuzz.py raises them).
MAX_EXAMPLES = int(os.environ.get("PRINTCORE_FUZZ_EXAMPLES", "20"))
MAX_SECONDS = int(os.environ.get("PRINTCORE_FUZZ_SECONDS", "30"))

MODEL = FIXTURES / "models" / "Moon.stl"
SLICED = FIXTURES / "sliced" / "wormdrive.gcode.3mf"


@attrs.define
class Seeded:
    """What the fuzzer gets to aim at: real ids and names on the server."""

    token: str
    jobs: dict[str, list[int]]
    sliced_files: list[str]
    messages: list[int]
    tickets: list[int]
    printers: list[str]

    @property
    def job_ids(self) -> list[int]:
        return sorted({i for ids in self.jobs.values() for i in ids})


# --- servers -------------------------------------------------------------------------


@contextlib.contextmanager
def fuzz_server(kind: str, home: Path) -> Iterator[LiveServer]:
    """A real server on ``kind`` (``sqlite`` or ``postgresql``: a fresh schema in the
    ``test`` database, dropped afterwards) with the fuzzing settings."""
    extra = dict(FUZZ_ENV)
    schema = None
    if kind == "postgresql":
        schema = f"pc_fuzz_{uuid.uuid4().hex[:10]}"
        try:
            with psycopg.connect(PG_DSN, connect_timeout=3, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
        except psycopg.OperationalError as err:
            service_missing(f"PostgreSQL at {PG_DSN}: {err}")
        extra["DATABASE_URL"] = (
            PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
            + f"?options=-csearch_path%3D{schema}"
        )
    server = start_server(home, extra, kind)
    _SERVER_ENV[server.url] = extra
    try:
        yield server
    finally:
        _SERVER_ENV.pop(server.url, None)
        stop_server(server)
        if schema is not None:
            with psycopg.connect(PG_DSN, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


#: The extra environment of each running fuzz server (by URL), for its command line.
_SERVER_ENV: dict[str, dict[str, str]] = {}


def _cli(server: LiveServer, *args: str) -> str:
    """``printcore ARGS`` on the server's home and database."""
    env = {**os.environ, "PRINTCORE_HOME": str(server.home), **_SERVER_ENV.get(server.url, {})}
    done = subprocess.run([sys.executable, "-m", "entrypoints.cli", *args], env=env,
                          check=True, capture_output=True, text=True, timeout=120)
    return done.stdout


def _ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.text}"
    data: dict[str, Any] = r.json()
    return data


def seed(server: LiveServer, per_state: int = 2) -> Seeded:
    """Jobs in every state (``per_state`` of each: the fuzzer moves and deletes some),
    their messages, and queue tickets."""
    jobs: dict[str, list[int]] = {s: [] for s in (
        "uploaded", "pending", "ready_to_print", "printing", "completed", "paid_picked_up",
        "rejected")}
    sliced: list[str] = []
    with server.api() as api:
        headers = login(api, "Schemathesis seed")
        staff = {"staff_name": STAFF}

        def post(job_id: int, action: str, **body: Any) -> None:
            _ok(api.post(f"/jobs/{job_id}/{action}", headers=headers,
                         json={**staff, **body}))

        for state in jobs:
            for _ in range(per_state):
                job_id = submit(api, MODEL)
                jobs[state].append(job_id)
                if state == "uploaded":
                    continue
                if state == "rejected":
                    post(job_id, "reject", reasons=["Too small to print"])
                    continue
                stored = _ok(upload_sliced(api, headers, job_id, SLICED), 201)["file"]
                sliced.append(stored["stored_name"])
                post(job_id, "approve", weight_g=10.48, time_hours=1.0,
                     authoritative_file=stored["stored_name"])
                if state == "pending":
                    continue
                token = confirm_token(server, job_id)
                _ok(api.post("/confirm", json={"token": token}))
                if state == "ready_to_print":
                    continue
                post(job_id, "mark-printing", printer="X1C-1")
                if state == "printing":
                    continue
                post(job_id, "mark-complete")
                if state == "completed":
                    continue
                post(job_id, "payment", grams=10.5, txn_no="TXN-1", picked_up_by="Jane Doe")
        messages: list[int] = []
        for job_id in jobs["pending"] + jobs["completed"]:
            rows = _ok(api.get(f"/jobs/{job_id}/messages", headers=headers))["messages"]
            messages.extend(int(m["id"]) for m in rows)
        for member in ("ann", "bob", "cid"):
            _cli(server, "queue", "join", member, "bracket", "1h", "--name", member.title())
        queue = _ok(api.get("/queue", headers=headers))
        tickets = [int(t["id"]) for t in queue["queue"]]
        printers = [str(p["name"]) for p in queue["printers"]]
        # The fuzzer gets its own token: it may log itself out.
        token = login(api, "Schemathesis")["Authorization"].split(" ", 1)[1]
    return Seeded(token, jobs, sliced, messages, tickets, printers)


# --- schemathesis --------------------------------------------------------------------


def schemathesis_config(seeded: Seeded, *, bearer: bool, max_examples: int,
                        seed_value: int | None = None) -> dict[str, Any]:
    """The Schemathesis configuration (the ``schemathesis.toml`` shape) of one run.

    No ``max-time`` here: with it, Schemathesis repeats fuzzing until the time is spent;
    :func:`run_schemathesis` stops the run instead."""
    config: dict[str, Any] = {
        "workers": 1,
        "generation": {"max-examples": max_examples, "mode": "all",
                       "database": "none"},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True},
                   "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
        "dictionaries": {
            "job_ids": {"values": seeded.job_ids},
            "message_ids": {"values": seeded.messages or [1]},
            "ticket_ids": {"values": seeded.tickets or [1]},
            "printers": {"values": seeded.printers or ["X1C-1"]},
            "staff": {"values": [STAFF]},
            "sliced": {"values": seeded.sliced_files or ["none.gcode.3mf"]},
        },
        "parameters": {
            "path.job_id": {"dictionary": "job_ids", "probability": 0.8},
            "path.message_id": {"dictionary": "message_ids", "probability": 0.8},
            "path.ticket_id": {"dictionary": "ticket_ids", "probability": 0.8},
            "path.name": {"dictionary": "printers", "probability": 0.8},
            "query.staff_name": {"dictionary": "staff", "probability": 0.7},
            "body.staff_name": {"dictionary": "staff", "probability": 0.7},
            "body.authoritative_file": {"dictionary": "sliced", "probability": 0.7},
        },
        "warnings": False,
        # Schemathesis leaves out the operation that serves the document unless asked.
        "operations": [{"include-name": "GET /openapi.json", "enabled": True}],
    }
    if seed_value is not None:
        config["seed"] = seed_value
    if bearer:
        config["headers"] = {"Authorization": f"Bearer {seeded.token}"}
        # Logging out would end the token for the rest of the run.
        config["operations"].append({"include-name": "POST /auth/logout", "enabled": False})
    return config


@attrs.define
class Finding:
    operation: str
    check: str
    message: str
    status: int | None
    reproduce: str

    def __str__(self) -> str:
        return (f"{self.operation}: {self.check} (answered {self.status})\n"
                f"    {self.message.strip()}\n    {self.reproduce}")


@attrs.define
class Report:
    """What one Schemathesis run did and found."""

    label: str
    cases: int = 0
    per_operation: dict[str, int] = attrs.Factory(dict)
    statuses: dict[int, int] = attrs.Factory(dict)
    findings: list[Finding] = attrs.Factory(list)
    errors: list[str] = attrs.Factory(list)
    seconds: float = 0.0
    stop_reason: str = ""

    def summary(self) -> str:
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(self.statuses.items()))
        return (f"{self.label}: {self.cases} requests over {len(self.per_operation)} "
                f"operations in {self.seconds:.1f} s ({self.stop_reason}); statuses {codes}; "
                f"{len(self.findings)} findings, {len(self.errors)} errors")


def run_schemathesis(base_url: str, config: dict[str, Any], label: str,
                     max_seconds: float | None = None) -> Report:
    """Runs Schemathesis's engine (what ``st run`` runs) against the server's own
    document with ``config``; returns every distinct finding. ``max_seconds`` stops the
    run (between two requests) when it is spent; ``report.stop_reason`` then says so."""
    import schemathesis
    from schemathesis.engine import events, from_schema

    schema = schemathesis.openapi.from_url(
        f"{base_url}/api/v1/openapi.json", config=schemathesis.Config.from_dict(config))
    report = Report(label)
    seen: set[tuple[str, str, str]] = set()
    started = time.monotonic()
    stream = from_schema(schema).execute()
    timer = threading.Timer(max_seconds, stream.stop) if max_seconds else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        for event in stream:
            _record(report, seen, event, events)
    finally:
        if timer is not None:
            timer.cancel()
    report.seconds = time.monotonic() - started
    return report


def _record(report: Report, seen: set[tuple[str, str, str]], event: Any, events: Any) -> None:
    """Adds one engine event's requests, statuses, findings and errors to ``report``."""
    if isinstance(event, events.ScenarioFinished):
        recorder = event.recorder
        for interaction in recorder.interactions.values():
            report.cases += 1
            report.per_operation[recorder.label] = report.per_operation.get(recorder.label, 0) + 1
            if interaction.response is not None:
                code = interaction.response.status_code
                report.statuses[code] = report.statuses.get(code, 0) + 1
        for case_id, checks in recorder.checks.items():
            for check in checks:
                if check.failure_info is None:
                    continue
                failure = check.failure_info.failure
                key = (recorder.label, failure.title, re.sub(r"\d+", "N", failure.message))
                if key in seen:
                    continue
                seen.add(key)
                interaction = recorder.interactions.get(case_id)
                response = interaction.response if interaction is not None else None
                report.findings.append(Finding(
                    recorder.label, failure.title, failure.message,
                    response.status_code if response is not None else None,
                    check.failure_info.code_sample))
    elif isinstance(event, events.NonFatalError):
        report.errors.append(f"{event.label}: {event.info.format()}")
    elif isinstance(event, events.FatalError):
        report.errors.append(f"fatal: {event.exception!r}")
    elif isinstance(event, events.EngineFinished):
        report.stop_reason = str(event.stop_reason)


# --- the test ------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def seeded_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, Seeded]]:
    with fuzz_server(request.param, tmp_path_factory.mktemp(f"fuzz-{request.param}")) as server:
        yield server, seed(server)


@pytest.mark.slow
@pytest.mark.parametrize("credentials", ["anonymous", "bearer"])
def test_the_api_answers_as_its_openapi_document_says(
    seeded_server: tuple[LiveServer, Seeded], credentials: str
) -> None:
    server, seeded = seeded_server
    seed_value = int(os.environ.get("PRINTCORE_FUZZ_SEED") or random.getrandbits(64))
    config = schemathesis_config(seeded, bearer=credentials == "bearer",
                                 max_examples=MAX_EXAMPLES, seed_value=seed_value)
    report = run_schemathesis(server.url, config, f"{server.kind}/{credentials}",
                              max_seconds=MAX_SECONDS)
    print(report.summary())
    problems = [str(f) for f in report.findings] + report.errors
    assert not problems, (
        f"{report.summary()} (PRINTCORE_FUZZ_SEED={seed_value} reproduces the run)\n\n"
        + "\n\n".join(problems) + f"\n\nserver log: {server.log.read_text()[-4000:]}")
    # Every operation was exercised, and past the 401/404 walls.
    document = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    operations = {f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item}
    if credentials == "bearer":
        operations.discard("POST /auth/logout")
    if report.stop_reason == "completed":
        missing = operations - set(report.per_operation)
        assert not missing, f"never called: {sorted(missing)}"
    else:
        warnings.warn(f"Schemathesis stopped after {MAX_SECONDS} s: {report.summary()}",
                      stacklevel=1)
    assert report.statuses.get(200, 0) + report.statuses.get(201, 0) > 0, report.summary()
    if credentials == "bearer":
        assert server.process.poll() is None, "the server died"
