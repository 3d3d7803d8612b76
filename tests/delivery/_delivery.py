"""Helpers for the delivery tests: real Redis, a real ``printcore worker`` process, and
state changes made in this process against the same database.

* :class:`RedisDb` claims an empty numbered database on the shared Redis
  (``PRINTCORE_TEST_REDIS_URL``, default ``redis://127.0.0.1:6379``) so that two test
  runs (or two tests) never consume each other's Dramatiq messages; it is flushed after.
* :class:`OwnRedis` is a ``redis-server`` subprocess of our own (no persistence) that a
  test can stop and start again on the same port.
* :class:`WorkerProcess` is ``python -m entrypoints.cli worker`` with a log file.
* :func:`settings_env` builds the environment shared by the test process, the worker and
  the server; :func:`open_container` bootstraps printcore in this process from it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import redis

from _live import free_port
from _smtp import SmtpServer
from _support import service_missing
from adapters.files import StagingArea
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.settings import load_settings
from printcore.outbox import OutboxMessage
from printcore.requests.job import Actor, Submission
from printcore.requests.ports import StagedFile
from printcore.slicing import SliceEstimate

REDIS_URL = os.environ.get("PRINTCORE_TEST_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
STAFF = "Ada Lovelace"
ADA = Actor.staff(STAFF, "delivery tests")
T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 20.0, interval: float = 0.05,
               what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- Redis -------------------------------------------------------------------------------


class RedisDb:
    """An empty numbered database on the shared Redis, claimed with a marker key."""

    CLAIM = "printcore-test:claimed-by"

    def __init__(self, base_url: str = REDIS_URL) -> None:
        self.base_url = base_url
        self.db: int | None = None
        self.url = ""

    def claim(self) -> RedisDb:
        try:
            redis.Redis.from_url(self.base_url + "/0", socket_connect_timeout=2).ping()
        except redis.RedisError as err:
            service_missing(f"Redis at {self.base_url}: {err}")
        me = uuid.uuid4().hex
        for db in range(15, 0, -1):
            client = redis.Redis.from_url(f"{self.base_url}/{db}")
            if client.dbsize() == 0 and client.set(self.CLAIM, me, nx=True, ex=900):
                if client.dbsize() == 1:  # nobody else was using it
                    self.db, self.url = db, f"{self.base_url}/{db}"
                    return self
                client.delete(self.CLAIM)
        raise AssertionError(f"no empty Redis database on {self.base_url} (1-15 all busy)")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def release(self) -> None:
        if self.db is not None:
            self.client().flushdb()
            self.db = None


class OwnRedis:
    """A private ``redis-server`` (no RDB, no AOF) that can be stopped and started again
    on the same port."""

    def __init__(self, folder: Path) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            service_missing("redis-server is not installed (needed to take Redis down)")
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.binary is not None
        log = open(self.folder / f"redis-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(up, 10, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        """Kill it (SIGKILL: Redis vanishes, as after a crash)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


# --- printcore: environment, in-process container, worker ---------------------------------


def settings_env(home: Path, smtp: SmtpServer | None = None, redis_url: str | None = None,
                 database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of one printcore installation (shared by this process, the worker
    and the server). Only PATH and the like are inherited, never a developer's settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRINTCORE_", "SMTP_", "REDIS_", "DATABASE_"))}
    env.update({
        "PRINTCORE_HOME": str(home),
        "PRINTCORE_SECRET_KEY": "delivery-tests-secret",
        "PRINTCORE_STAFF_PASSWORD": "correct horse battery",
        "PRINTCORE_LAB_NAME": "Test Fab Lab",
        "PRINTCORE_OUTBOX_RETRY_SECONDS": "1",
    })
    if smtp is not None:
        env.update(smtp.env)
    if redis_url:
        env["REDIS_URL"] = redis_url
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


@contextmanager
def open_container(env: dict[str, str]) -> Iterator[Container]:
    container = bootstrap(load_settings(env, env_file=None))
    container.staff.add(STAFF)  # adds or reactivates
    try:
        yield container
    finally:
        container.close()


class WorkerProcess:
    """``printcore worker`` as a subprocess, logging to ``home/worker-N.log``."""

    count = 0

    def __init__(self, env: dict[str, str], threads: int = 2) -> None:
        WorkerProcess.count += 1
        self.env = env
        self.threads = threads
        self.log = Path(env["PRINTCORE_HOME"]) / f"worker-{WorkerProcess.count}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> WorkerProcess:
        with open(self.log, "wb") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "entrypoints.cli", "worker", "--threads",
                 str(self.threads)],
                env=self.env, cwd=self.env["PRINTCORE_HOME"], stdout=handle,
                stderr=subprocess.STDOUT,
            )
        if wait:
            wait_until(self._started, 60, 0.05, what=f"the worker to start ({self.log})")
        return self

    def _started(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the worker exited ({self.process.returncode}):\n"
                                 f"{self.text()}")
        return "worker started" in self.text()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no clean-up at all."""
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


# --- state changes in this process --------------------------------------------------------


def stage(container: Container, content: bytes, name: str) -> StagedFile:
    upload = StagingArea(container.files.staging_dir).open(10_000_000)
    upload.write(content)
    digest = upload.finish()
    return StagedFile(upload.path, name, Path(name).suffix.lower(), len(content), digest)


def submit(container: Container, email: str = "jane.doe@university.edu",
           name: str = "Jane Doe") -> int:
    job = container.requests.submit(
        Submission(name, email, "Mechanical Engineering", "ME 101", "filament", "Red"),
        stage(container, b"solid x\nendsolid x\n", "part.stl"),
    )
    assert job.id is not None
    return job.id


def approve(container: Container, job_id: int) -> None:
    sliced = container.requests.add_sliced_file(
        job_id, ADA, stage(container, b"; gcode\nG1 X1\n", "part.gcode"),
        SliceEstimate(3600, 12.5),
    )
    container.requests.approve(job_id, ADA, 12.5, 1.0, sliced.stored_name)


def confirm_token(container: Container, job_id: int) -> str:
    """The confirmation token of the job's newest approval row (as the email carries)."""
    rows = [m for m in container.outbox.list(subject="job", subject_id=job_id)
            if m.kind == "approved"]
    return str(rows[0].payload["confirm_token"])


def whole_life(container: Container) -> int:
    """submit → approve → confirm → print → complete → pick up: five emails."""
    job_id = submit(container)
    approve(container, job_id)
    container.requests.confirm(confirm_token(container, job_id))
    container.requests.start_print(job_id, ADA, "X1C-1")
    container.requests.complete(job_id, ADA)
    container.requests.pick_up(job_id, ADA, 12.5, "TX-1", "Jane Doe")
    return job_id


def rows(container: Container, **filters: Any) -> list[OutboxMessage]:
    return container.outbox.list(limit=10_000, **filters)


def message_ids(smtp: SmtpServer) -> list[str]:
    return [str(r.message["Message-ID"]) for r in smtp.messages()]
