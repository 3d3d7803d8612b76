"""DiscordNotifier: offers, missed windows and expiries posted in the lab channel with a
mention and sent as DMs, scheduled onto the bot's loop from worker threads.

Bad inputs tried: a member whose DMs are closed (discord.Forbidden), a member Discord
does not know (NotFound), a channel that cannot be fetched, no channel configured, a
member id that is not a Discord id (the CLI's names), notices before the bot runs, and
a job name / display name trying to mention @everyone. None of them raises into the
service.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import attrs
import structlog
from _discord_fakes import FakeChannel, FakeClient, FakeInteraction, FakeUser, Notices, make_lab

from adapters.discord.notifier import DiscordNotifier
from printcore.queue.ports import QueueNotice

CHANNEL = 555
DEADLINE = datetime(2026, 9, 7, 15, 10, tzinfo=UTC)
OFFER = QueueNotice("offered", "1001", "Alice", 7, "X1C-1", DEADLINE)


def deliver(notifier: DiscordNotifier, notices: list[QueueNotice]) -> None:
    asyncio.run(notifier.deliver(notices))


def test_an_offer_is_posted_with_a_mention_and_sent_as_a_dm() -> None:
    channel = FakeChannel(CHANNEL)
    alice = FakeUser(1001, "Alice")
    notifier = DiscordNotifier(FakeClient(channel, {1001: alice}), CHANNEL)  # type: ignore[arg-type]
    deliver(notifier, [OFFER])
    (text, mentions), = channel.posts
    stamp = int(DEADLINE.timestamp())
    assert text == (f"<@1001>, **X1C-1** is yours: `/claim X1C-1` before <t:{stamp}:t> "
                    f"(<t:{stamp}:R>).")
    assert mentions.everyone is False and mentions.roles is False and mentions.users is True
    assert alice.dms == [f"**X1C-1** is yours: `/claim X1C-1` before <t:{stamp}:t> "
                         f"(<t:{stamp}:R>)."]


def test_closed_dms_still_get_the_channel_ping_and_are_logged() -> None:
    channel = FakeChannel(CHANNEL)
    closed = FakeUser(1001, "Alice", dms_closed=True)
    bob = FakeUser(1002, "Bob")
    notifier = DiscordNotifier(FakeClient(channel, {1001: closed, 1002: bob}), CHANNEL)  # type: ignore[arg-type]
    missed = QueueNotice("missed", "1002", "Bob", 8, "X1C-2")
    with structlog.testing.capture_logs() as logs:
        deliver(notifier, [OFFER, missed])
    posted = [text for text, _ in channel.posts]
    assert posted[0].startswith("<@1001>, **X1C-1** is yours")
    assert posted[1].startswith("<@1002>, you missed your window on **X1C-2** (ticket #8)")
    assert closed.dms == [] and bob.dms[0].startswith("You missed your window")
    refused = [e for e in logs if "closed DMs" in e["event"]]
    assert refused and refused[0]["member"] == "1001"


def test_unknown_users_and_a_missing_channel_are_logged_not_raised() -> None:
    notifier = DiscordNotifier(FakeClient(None, {}), CHANNEL)  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs:
        deliver(notifier, [OFFER, QueueNotice("expired", "1001", "Alice", 7, "X1C-1")])
    events = [e["event"] for e in logs]
    assert events.count("discord channel post failed") == 2
    assert events.count("discord DM failed") == 2


def test_without_a_channel_only_dms_are_sent() -> None:
    alice = FakeUser(1001, "Alice")
    deliver(DiscordNotifier(FakeClient(None, {1001: alice}), None), [OFFER])  # type: ignore[arg-type]
    assert len(alice.dms) == 1


def test_cli_members_are_named_not_mentioned_and_names_cannot_ping() -> None:
    channel = FakeChannel(CHANNEL)
    notifier = DiscordNotifier(FakeClient(channel, {}), CHANNEL)  # type: ignore[arg-type]
    deliver(notifier, [QueueNotice("expired", "alice", "@everyone", 3, "X1C-1")])
    (text, _), = channel.posts
    assert text.startswith("@\u200beveryone, your ticket #3 expired")
    assert "<@" not in text


def test_notify_from_a_worker_thread_is_scheduled_on_the_loop() -> None:
    channel = FakeChannel(CHANNEL)
    notifier = DiscordNotifier(FakeClient(channel, {1001: FakeUser(1001, "A")}), CHANNEL)  # type: ignore[arg-type]

    async def main() -> None:
        notifier.attach(asyncio.get_running_loop())
        await asyncio.to_thread(notifier.notify, [OFFER])  # returns without waiting
        for _ in range(200):
            if channel.posts:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    assert len(channel.posts) == 1
    assert channel.threads == [threading.main_thread()]  # sent on the loop, not the worker


def test_notify_on_the_loop_thread_creates_a_task() -> None:
    channel = FakeChannel(CHANNEL)
    notifier = DiscordNotifier(FakeClient(channel, {}), CHANNEL)  # type: ignore[arg-type]

    async def main() -> None:
        notifier.attach(asyncio.get_running_loop())
        notifier.notify([OFFER])
        assert channel.posts == []  # scheduled, not awaited inline
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert len(channel.posts) == 1


def test_notify_before_the_bot_runs_or_after_it_stopped_never_raises() -> None:
    notifier = DiscordNotifier(FakeClient(FakeChannel(CHANNEL), {}), CHANNEL)  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs:
        notifier.notify([OFFER])
        loop = asyncio.new_event_loop()
        loop.close()
        notifier.attach(loop)
        notifier.notify([OFFER])
        notifier.notify([])
    assert [e["event"] for e in logs] == ["discord notice dropped: the bot is not running"] * 2


def test_the_service_offer_reaches_the_channel_through_a_command(backend: Any) -> None:
    """End to end: /join → QueueService commits an offer → notify (worker thread) → post."""
    channel = FakeChannel(CHANNEL)
    alice = FakeUser(1001, "Alice", dms_closed=True)
    notifier = DiscordNotifier(FakeClient(channel, {1001: alice}), CHANNEL)  # type: ignore[arg-type]
    lab = make_lab(backend)
    lab.handler.service = attrs.evolve(lab.service, notifier=notifier)
    join = lab.commands["join"].callback

    async def main() -> None:
        notifier.attach(asyncio.get_running_loop())
        await join(FakeInteraction(alice), job="bracket", est_time="1h")
        for _ in range(200):
            if channel.posts:
                break
            await asyncio.sleep(0.01)

    asyncio.run(main())
    (text, _), = channel.posts
    assert text.startswith("<@1001>, **X1C-1** is yours: `/claim X1C-1` before <t:")
    assert isinstance(lab.notices, Notices) and lab.notices.sent == []  # went to Discord only
