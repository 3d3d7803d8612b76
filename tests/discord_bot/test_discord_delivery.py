"""The bot's delivery loop: queue notices committed as outbox rows by any process (the web
app, ``printcore queue``, a cron sweep, the bot itself) reach Discord once, every few
seconds or at once after a command; two bots on one database never send a row twice.

Bad inputs tried: rows written by another process on its own connection, two bots
delivering the same rows at once, a delivery round that fails (the database away), a
period so long that only the wake-up after a command can deliver.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
import structlog
from _discord_fakes import (
    PRINTERS,
    T0,
    FakeChannel,
    FakeClient,
    FakeInteraction,
    FakeUser,
    Notices,
)
from sqlalchemy import Engine

from adapters.discord import PrintcoreBot
from adapters.discord.bot import deliver_forever, deliver_once, sweep_forever
from adapters.sql import SqlUnitOfWork, make_engine, upgrade
from printcore.memory import FixedClock
from printcore.outbox import OutboxService
from printcore.queue.service import QueueService, SweepReport

CHANNEL = 555
H1 = timedelta(hours=1)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Callable[[], Engine]]:
    """Engines on one migrated SQLite file: each call is another process's connection."""
    url = "sqlite:///" + str(tmp_path / "printcore.db")
    engines: list[Engine] = []

    def connect() -> Engine:
        engine = make_engine(url)
        engines.append(engine)
        return engine

    upgrade(connect())
    yield connect
    for engine in engines:
        engine.dispose()


def queue_on(engine: Engine, clock: FixedClock) -> QueueService:
    return QueueService(uow=lambda: SqlUnitOfWork(engine), clock=clock)


def bot_on(service: QueueService, client: FakeClient, deliver_seconds: float = 0.05
           ) -> PrintcoreBot:
    bot = PrintcoreBot(service, guild_id=None, channel_id=CHANNEL,
                       deliver_seconds=deliver_seconds, reply_timeout=5.0)
    bot.sender.client = client  # type: ignore[assignment]
    return bot


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting")


def test_rows_from_another_process_are_delivered_once_by_two_bots(
        database: Callable[[], Engine]) -> None:
    clock = FixedClock(T0)
    web = queue_on(database(), clock)  # the other process: the web app or the CLI
    web.sync_printers(PRINTERS)
    channel = FakeChannel(CHANNEL)
    users = {i: FakeUser(i, name) for i, name in ((1001, "Ann"), (1002, "Bob"), (1003, "Cy"))}
    bots = [bot_on(queue_on(database(), clock), FakeClient(channel, users)) for _ in range(2)]
    notices = Notices(web.uow)

    def the_other_process() -> None:
        for user in users.values():
            web.join(str(user.id), user.display_name, "part", H1)  # two offers
        clock.advance(minutes=10)
        web.sweep()  # both windows lapse: two misses, two offers

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for bot in bots:
            bot.sender.attach(loop)
        tasks = [asyncio.create_task(deliver_forever(bot.outbox, 0.02, bot.wake))
                 for bot in bots]
        await asyncio.to_thread(the_other_process)
        await until(lambda: len(channel.posts) >= 6)
        await asyncio.sleep(0.3)  # more rounds of both bots: nothing more goes out
        for task in tasks:
            task.cancel()

    asyncio.run(main())
    rows = notices.messages()
    # Windows lapsing together lapse in queue order, each followed by its offer (issue 14).
    assert [m.kind for m in rows] == ["offered", "offered", "missed", "offered", "missed",
                                      "offered"]
    assert [m.status for m in rows] == ["sent"] * 6 and {m.attempts for m in rows} == {1}
    posted = Counter(text for text, _ in channel.posts)
    assert len(channel.posts) == 6 and max(posted.values()) == 1
    assert Counter(m.recipient for m in rows) == Counter(
        text.split(">")[0].removeprefix("<@") for text, _ in channel.posts)
    assert sum(len(u.dms) for u in users.values()) == 6


def test_a_command_wakes_the_delivery_at_once(database: Callable[[], Engine]) -> None:
    clock = FixedClock(T0)
    service = queue_on(database(), clock)
    service.sync_printers(PRINTERS)
    channel, alice = FakeChannel(CHANNEL), FakeUser(1001, "Alice")
    bot = bot_on(service, FakeClient(channel, {1001: alice}), deliver_seconds=3600)
    join: Any = bot.tree.get_command("join")

    async def main() -> None:
        bot.sender.attach(asyncio.get_running_loop())
        task = asyncio.create_task(deliver_forever(bot.outbox, bot.deliver_seconds, bot.wake))
        await asyncio.sleep(0.1)  # the first round found nothing; the next is an hour away
        interaction = FakeInteraction(alice)
        await join.callback(interaction, job="bracket", est_time="1h")
        assert "X1C-1" in interaction.text
        await until(lambda: bool(channel.posts), seconds=5)
        task.cancel()

    asyncio.run(main())
    (text, _), = channel.posts
    assert text.startswith("<@1001>, **X1C-1** is yours")
    assert len(alice.dms) == 1


def test_a_failed_delivery_round_is_logged_and_the_loop_goes_on() -> None:
    calls: list[int] = []

    def broken_uow() -> Any:
        calls.append(1)
        raise RuntimeError("database away")

    outbox = OutboxService(uow=broken_uow, clock=FixedClock(T0), senders={"discord": None})  # type: ignore[dict-item]

    async def main() -> None:
        assert await deliver_once(outbox) is None
        task = asyncio.create_task(deliver_forever(outbox, 0.01))
        await until(lambda: len(calls) >= 4)
        task.cancel()

    with structlog.testing.capture_logs() as logs:
        asyncio.run(main())
    assert {e["event"] for e in logs} == {"outbox delivery failed"}


def test_a_sweep_that_changed_something_wakes_the_delivery() -> None:
    reports = [SweepReport(), SweepReport(missed=1, offered=1)]
    woken: list[int] = []

    @attrs.define
    class Sweeps:
        def sweep(self) -> SweepReport:
            return reports.pop(0) if reports else SweepReport()

    async def main() -> None:
        task = asyncio.create_task(sweep_forever(Sweeps(), 0.01,  # type: ignore[arg-type]
                                                 after=lambda: woken.append(1)))
        await until(lambda: not reports)
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(main())
    assert woken == [1]
