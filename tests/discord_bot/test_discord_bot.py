"""The bot process: wiring (the outbox's discord channel goes to a DiscordSender), command
sync to the guild or globally, the sweep loop, the delivery loop (rows committed by any
process, delivered once even by two bots), and clear start failures.

Bad inputs tried: an empty token, a junk token (these machines cannot reach Discord, so
it fails on the network; with network it fails as a rejected token — either way a
BotStartError naming the cause, within seconds), a zero sweep period, a guild that
refuses the command sync, a sweep that raises (the loop logs it and goes on).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import attrs
import discord
import pytest
import structlog
from _discord_fakes import http_response, make_lab

from adapters.discord import BotStartError, DiscordSender, PrintcoreBot, run_bot
from adapters.discord.bot import (
    DISCORD_RETRY,
    SWEEP_CONFLICT_TRIES,
    sweep_forever,
    sweep_once,
)
from adapters.discord.tree import COMMAND_NAMES
from printcore.errors import ConcurrentChangeError
from printcore.queue.service import SweepReport


def test_the_bot_delivers_discord_rows_and_registers_the_commands(backend: Any) -> None:
    lab = make_lab(backend)
    bot = PrintcoreBot(lab.service, guild_id=42, channel_id=555)
    assert isinstance(bot.sender, DiscordSender) and bot.sender.channel_id == 555
    assert bot.sender.client is bot
    assert dict(bot.outbox.senders) == {"discord": bot.sender}
    assert bot.outbox.uow is lab.service.uow and bot.outbox.clock is lab.service.clock
    assert bot.outbox.policy == DISCORD_RETRY
    assert sorted(c.name for c in bot.tree.get_commands()) == sorted(COMMAND_NAMES)
    assert bot.commands.service is bot.service is lab.service


@pytest.mark.parametrize("guild_id", [42, None])
def test_setup_hook_syncs_to_the_guild_when_given_else_globally(
        backend: Any, guild_id: int | None) -> None:
    bot = PrintcoreBot(make_lab(backend).service, guild_id=guild_id, channel_id=None)
    synced: list[Any] = []

    async def fake_sync(*, guild: Any = None) -> list[Any]:
        synced.append(guild)
        return []

    async def main() -> None:
        bot.tree.sync = fake_sync  # type: ignore[method-assign]
        await bot.setup_hook()
        assert bot._sweeper is not None and bot._deliverer is not None
        bot._sweeper.cancel()
        bot._deliverer.cancel()

    asyncio.run(main())
    if guild_id is None:
        assert synced == [None]
    else:
        assert [g.id for g in synced] == [42]
        assert sorted(c.name for c in bot.tree.get_commands(guild=synced[0])) == sorted(
            COMMAND_NAMES)


def test_a_refused_guild_sync_names_the_guild(backend: Any) -> None:
    bot = PrintcoreBot(make_lab(backend).service, guild_id=42, channel_id=None)

    async def refused(*, guild: Any = None) -> list[Any]:
        raise discord.Forbidden(http_response(403), "Missing Access")

    async def main() -> None:
        bot.tree.sync = refused  # type: ignore[method-assign]
        await bot.setup_hook()

    with pytest.raises(BotStartError, match="guild 42.*applications.commands"):
        asyncio.run(main())
    assert bot._sweeper is None


def test_sweep_once_reports_and_survives_errors(backend: Any) -> None:
    lab = make_lab(backend)
    assert asyncio.run(sweep_once(lab.service)) == SweepReport()

    def boom() -> Any:
        raise RuntimeError("database on fire")

    broken = attrs.evolve(lab.service, uow=boom)
    with structlog.testing.capture_logs() as logs:
        assert asyncio.run(sweep_once(broken)) is None
    assert [e["event"] for e in logs] == ["queue sweep failed"]


def test_a_sweep_that_loses_the_compare_and_set_is_swept_again_at_once() -> None:
    """Another change committed between the sweep's read and its write (a claim, a
    printer's report): the bot sweeps again straight away instead of logging a traceback
    and leaving the deadline unfired for a whole sweep period (issue 16)."""
    calls: list[int] = []

    class Contended:
        def sweep(self) -> SweepReport:
            calls.append(1)
            if len(calls) <= 2:
                raise ConcurrentChangeError("Printer X1C-1 was changed by someone else just now")
            return SweepReport(missed=1, offered=1)

    with structlog.testing.capture_logs() as logs:
        report = asyncio.run(sweep_once(Contended()))  # type: ignore[arg-type]
    assert report == SweepReport(missed=1, offered=1)
    assert len(calls) == 3
    assert not [e for e in logs if e["log_level"] in ("error", "exception")]

    class AlwaysContended:
        def sweep(self) -> SweepReport:
            calls.append(1)
            raise ConcurrentChangeError("changed by someone else")

    calls.clear()
    with structlog.testing.capture_logs() as logs:
        assert asyncio.run(sweep_once(AlwaysContended())) is None  # type: ignore[arg-type]
    assert len(calls) == SWEEP_CONFLICT_TRIES
    assert [e["event"] for e in logs] == [
        "queue sweep lost to other changes; trying at the next sweep"]


def test_the_sweep_loop_keeps_going_after_a_failure() -> None:
    calls: list[int] = []

    class Flaky:
        def sweep(self) -> SweepReport:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("first sweep fails")
            return SweepReport(offered=1)

    async def main() -> None:
        task = asyncio.create_task(sweep_forever(Flaky(), 0.01))  # type: ignore[arg-type]
        for _ in range(300):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.01)
        task.cancel()

    with structlog.testing.capture_logs() as logs:
        asyncio.run(main())
    assert len(calls) >= 3
    events = [e["event"] for e in logs]
    assert events[0] == "queue sweep failed" and "queue sweep" in events[1:]


def test_an_empty_token_or_sweep_period_is_refused_at_once(backend: Any) -> None:
    service = make_lab(backend).service
    with pytest.raises(BotStartError, match="DISCORD_TOKEN is empty"):
        run_bot(service, token="  ", guild_id=None, channel_id=None)
    with pytest.raises(BotStartError, match="sweep period"):
        run_bot(service, token="x", guild_id=None, channel_id=None, sweep_seconds=0)
    with pytest.raises(BotStartError, match="delivery period"):
        run_bot(service, token="x", guild_id=None, channel_id=None, deliver_seconds=-1)


def test_a_junk_token_fails_with_a_clear_message_within_seconds(backend: Any) -> None:
    service = make_lab(backend).service
    started = time.monotonic()
    with pytest.raises(BotStartError) as caught:
        run_bot(service, token="junk.token.value", guild_id=None, channel_id=None,
                login_timeout=10)
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert ("Could not reach Discord" in message and "network access" in message) or (
        "Discord rejected DISCORD_TOKEN" in message)
