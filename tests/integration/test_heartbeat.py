"""Heartbeats (:mod:`adapters.heartbeat`) and the readiness checks that read them, against
real Redis, a real ``printcore worker`` process and SQLite / PostgreSQL.

Tried: the worker never started (no key: "No heartbeat"), started (the check passes),
SIGKILLed (fails once the beat is older than the max age), a worker thread beating every
0.2 s (passes across several max ages, fails after it stops); the bot's beat in the
database missing, fresh, then stale; a garbled beat row (read as no beat, not a crash);
Redis at a closed port (the worker check fails "Not checked", never raises); and a cron
``printcore sweep --once`` twice, whose durations add up in its beat.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, insert

from _support import service_missing
from adapters.health import Readiness
from adapters.heartbeat import (
    DatabaseHeartbeats,
    HeartbeatThread,
    RedisHeartbeats,
    SweepTimings,
    beat_forever,
)
from adapters.sql.tables import settings

REDIS_BASE = os.environ.get("PRINTCORE_TEST_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
CLAIM = "printcore-test:claimed-by"  # the same claim as tests/delivery's RedisDb


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_engine(request: pytest.FixtureRequest) -> Engine:
    name = "pg_engine" if request.param == "postgresql" else "sqlite_engine"
    engine: Engine = request.getfixturevalue(name)
    return engine


@pytest.fixture
def redis_url() -> Iterator[str]:
    """An empty numbered Redis database of our own (claimed, flushed after)."""
    try:
        redis.Redis.from_url(REDIS_BASE + "/0", socket_connect_timeout=2).ping()
    except redis.RedisError as err:
        service_missing(f"Redis at {REDIS_BASE}: {err}")
    me = uuid.uuid4().hex
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{REDIS_BASE}/{db}")
        if client.dbsize() == 0 and client.set(CLAIM, me, nx=True, ex=900):
            if client.dbsize() == 1:
                try:
                    yield f"{REDIS_BASE}/{db}"
                finally:
                    client.flushdb()
                return
            client.delete(CLAIM)
    raise AssertionError("no empty Redis database (1-15 all busy)")


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _checks(readiness: Readiness) -> dict[str, Any]:
    return {check.name: check for check in readiness.run().checks}


def _env(home: Path, engine: Engine, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PRINTCORE_", "SMTP_", "REDIS_", "DATABASE_", "DISCORD_"))}
    env.update({"PRINTCORE_HOME": str(home), "PRINTCORE_SECRET_KEY": "heartbeat-secret",
                "DATABASE_URL": engine.url.render_as_string(hide_password=False), **extra})
    return env


def test_worker_process_beats_and_stops(db_engine: Engine, redis_url: str,
                                        tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    readiness = Readiness(db_engine, home / "storage", redis_url=redis_url,
                          heartbeat_max_age_seconds=2)
    never = _checks(readiness)["worker"]
    assert not never.ok and never.detail.startswith("No heartbeat from `printcore worker`")
    assert "Start `printcore worker`" in (never.action or "")

    log = tmp_path / "worker.log"
    with log.open("wb") as handle:
        worker = subprocess.Popen([sys.executable, "-m", "entrypoints.cli", "worker",
                                   "--threads", "1"],
                                  env=_env(home, db_engine, REDIS_URL=redis_url), cwd=home,
                                  stdout=handle, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: worker.poll() is not None or _checks(readiness)["worker"].ok,
                   60, f"the worker's first beat ({log})")
        assert worker.poll() is None, log.read_text()
        check = _checks(readiness)["worker"]
        assert check.data["pid"] == worker.pid and check.data["age_seconds"] <= 2
        assert check.data["host"] == socket.gethostname()
    finally:
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGKILL)  # no clean-up: the key stays, and ages
        worker.wait(10)
    time.sleep(3)
    stale = _checks(readiness)["worker"]
    assert not stale.ok and "more than 2 s): it stopped or hangs" in stale.detail
    assert stale.data["age_seconds"] >= 3
    assert readiness.run().failing == ["worker"]
    ttl = redis.Redis.from_url(redis_url).ttl("printcore:heartbeat:worker")
    assert 0 < ttl <= 3600


def test_worker_thread_keeps_beating(db_engine: Engine, redis_url: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``run_worker`` itself (the Dramatiq worker and relay), in a thread, beating every
    0.2 s: the check stays green over 3 s with a 1 s max age, then fails after stop."""
    from adapters.delivery.broker import run_worker
    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings

    env = _env(tmp_path / "home", db_engine, REDIS_URL=redis_url)
    container = bootstrap(load_settings(env, env_file=None), engine=db_engine)
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(container.outbox, redis_url),
                              kwargs={"threads": 1, "stop": stop, "heartbeat_seconds": 0.2},
                              daemon=True)
    readiness = Readiness(db_engine, container.files.root, redis_url=redis_url,
                          heartbeat_max_age_seconds=1)
    thread.start()
    try:
        wait_until(lambda: _checks(readiness)["worker"].ok, 30, "the first beat")
        seen = set()
        for _ in range(6):
            time.sleep(0.5)
            check = _checks(readiness)["worker"]
            assert check.ok, check.detail
            seen.add(check.data["at"])
        assert len(seen) >= 4  # new beats, not one old key
        assert check.data["pid"] == os.getpid()
    finally:
        stop.set()
        thread.join(20)
        container.close()
    assert not thread.is_alive()
    time.sleep(2.1)
    assert not _checks(readiness)["worker"].ok


def test_redis_down_worker_not_checked(db_engine: Engine, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    readiness = Readiness(db_engine, tmp_path, redis_url=f"redis://127.0.0.1:{port}/0")
    worker = readiness.worker(redis_ok=True)  # even when asked directly: no exception
    assert not worker.ok and worker.action == "Fix the redis check first."


def test_bot_heartbeat_in_database(db_engine: Engine, tmp_path: Path) -> None:
    readiness = Readiness(db_engine, tmp_path, discord=True, heartbeat_max_age_seconds=1)
    never = _checks(readiness)["bot"]
    assert not never.ok and never.detail.startswith("No heartbeat from `printcore bot`")
    assert "Start `printcore bot`" in (never.action or "")
    assert "bot" not in _checks(Readiness(db_engine, tmp_path))  # no Discord: no check

    store = DatabaseHeartbeats(db_engine)
    timings = SweepTimings()
    timings.observe(0.02)

    async def beat_for(seconds: float) -> None:
        task = asyncio.create_task(beat_forever(store, "bot", 0.1,
                                                data=lambda: {"sweep": timings.snapshot()}))
        await asyncio.sleep(seconds)
        task.cancel()

    asyncio.run(beat_for(1.5))  # longer than the max age: only fresh beats keep it green
    fresh = _checks(readiness)["bot"]
    assert fresh.ok, fresh.detail
    assert fresh.data["pid"] == os.getpid() and fresh.data["age_seconds"] <= 1
    beat = store.last("bot")
    assert beat is not None and beat.data["sweep"]["count"] == 1
    time.sleep(2.1)
    stale = _checks(readiness)["bot"]
    assert not stale.ok and "it stopped or hangs" in stale.detail

    with db_engine.begin() as conn:  # a row that is not a beat reads as none
        conn.execute(insert(settings).values(key="heartbeat:garbled", value="{not json"))
    assert store.last("garbled") is None


def test_heartbeat_thread_survives_a_failing_store() -> None:
    calls: list[int] = []

    class Failing:
        def beat(self, component: str, data: dict[str, Any] | None = None) -> Any:
            calls.append(1)
            raise redis.ConnectionError("down")

        def last(self, component: str) -> None:
            return None

    beats = HeartbeatThread(Failing(), "worker", 0.05).start()
    wait_until(lambda: len(calls) >= 3, 5, "three tries")
    beats.stop()
    with pytest.raises(ValueError, match="positive seconds"):
        HeartbeatThread(Failing(), "worker", 0)


def test_redis_beat_round_trip(redis_url: str) -> None:
    store = RedisHeartbeats(redis_url, ttl_seconds=30)
    try:
        assert store.last("worker") is None
        written = store.beat("worker", {"threads": 3})
        read = store.last("worker")
        assert read == written and read.data == {"threads": 3}
        assert 0 < redis.Redis.from_url(redis_url).ttl("printcore:heartbeat:worker") <= 30
    finally:
        store.close()


def test_cron_sweep_adds_up_its_durations(db_engine: Engine, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from entrypoints.cli import main

    env = _env(tmp_path / "home", db_engine)
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith(("PRINTCORE_", "REDIS_", "DATABASE_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for _ in range(2):
        with redirect_stdout(io.StringIO()) as out:
            assert main(["sweep", "--once"]) == 0
        assert out.getvalue().startswith("sweep: 0 offered")
    beat = DatabaseHeartbeats(db_engine).last("sweeper")
    assert beat is not None
    sweep = beat.data["sweep"]
    assert sweep["count"] == 2 and sweep["sum"] > 0
    assert sweep["buckets"][-1][1] <= 2 and [b for b, _ in sweep["buckets"]][0] == 0.005


def test_sweep_timings_snapshot() -> None:
    timings = SweepTimings()
    for seconds in (0.001, 0.02, 0.02, 3.0, 100.0, -1.0):
        timings.observe(seconds)
    snap = timings.snapshot()
    cumulative = dict((b, c) for b, c in snap["buckets"])
    assert cumulative[0.005] == 2  # 0.001 and the negative one (counted as 0)
    assert cumulative[0.025] == 4 and cumulative[5.0] == 5 and cumulative[30.0] == 5
    assert snap["count"] == 6 and snap["sum"] == pytest.approx(103.041)
    again = SweepTimings.from_snapshot(snap)
    again.observe(0.3)
    assert again.snapshot()["count"] == 7
    assert SweepTimings.from_snapshot({"buckets": "x"}).snapshot()["count"] == 0
    assert SweepTimings.from_snapshot(None).snapshot()["count"] == 0


def test_bot_beats_with_its_sweep_durations(db_engine: Engine, tmp_path: Path) -> None:
    """The bot's own loops (``PrintcoreBot``: sweep and heartbeat, as started once it is
    connected) on a real queue and database. Discord itself cannot be reached here, so
    only "connected" is stood in for (``wait_until_ready`` returns at once)."""
    from adapters.discord import PrintcoreBot
    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings

    container = bootstrap(load_settings(_env(tmp_path / "home", db_engine), env_file=None),
                          engine=db_engine)
    store = DatabaseHeartbeats(db_engine)

    async def run() -> None:
        bot = PrintcoreBot(container.queue, guild_id=None, channel_id=None,
                           sweep_seconds=0.1, heartbeats=store, heartbeat_seconds=0.1)

        async def connected() -> None:
            return None

        bot.wait_until_ready = connected  # type: ignore[method-assign]
        tasks = [asyncio.create_task(bot._sweep_when_ready()),
                 asyncio.create_task(bot._beat_when_ready(store))]
        await asyncio.sleep(1.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        asyncio.run(run())
    finally:
        container.close()
    beat = store.last("bot")
    assert beat is not None and beat.pid == os.getpid()
    sweep = beat.data["sweep"]
    assert sweep["count"] >= 3 and sweep["sum"] > 0  # every 0.1 s for 1 s
    check = Readiness(db_engine, tmp_path, discord=True).bot()
    assert check.ok, check.detail
