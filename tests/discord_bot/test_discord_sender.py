"""DiscordSender: the outbox's ``discord`` rows posted in the lab channel with a mention
and sent as DMs, run on the bot's loop from the delivery thread; what counts as sent, as
a temporary failure (tried again later) and as a permanent one (the row is failed).

Bad inputs tried: a member whose DMs are closed (discord.Forbidden), a member Discord
does not know (404), a channel that does not exist (404) or is down (503), a DM that
fails after the channel post, no channel configured, a member id that is not a Discord
id (the CLI's names), a row that holds no notice, a send before the bot runs, on the
bot's own loop, and one Discord never answers, and a job name / display name trying to
mention @everyone.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import discord
import pytest
import structlog
from _discord_fakes import T0, FakeChannel, FakeClient, FakeUser, http_response

from adapters.discord.sender import DiscordSender
from printcore.memory import FixedClock
from printcore.outbox import DeliveryError, OutboxMessage, OutboxService, RetryPolicy
from printcore.queue.memory import MemoryQueueDatabase, MemoryQueueUnitOfWork
from printcore.queue.ports import QueueNotice, queue_notice_message

CHANNEL = 555
DEADLINE = datetime(2026, 9, 7, 15, 10, tzinfo=UTC)
OFFER = QueueNotice("offered", "1001", "Alice", 7, "X1C-1", DEADLINE)
STAMP = int(DEADLINE.timestamp())
OFFER_TEXT = f"**X1C-1** is yours: `/claim X1C-1` before <t:{STAMP}:t> (<t:{STAMP}:R>)."


@pytest.fixture
def bot_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The bot's event loop, running in its own thread (as under ``discord.Client``)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="bot-loop", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def sender_for(loop: asyncio.AbstractEventLoop, channel: FakeChannel | None,
               *users: FakeUser, channel_id: int | None = CHANNEL,
               timeout: float = 5.0) -> DiscordSender:
    client = FakeClient(channel, {u.id: u for u in users})
    return DiscordSender(client, channel_id, loop, timeout=timeout)  # type: ignore[arg-type]


def row(notice: QueueNotice = OFFER) -> OutboxMessage:
    return queue_notice_message(notice, T0)


def deliver_through_the_outbox(sender: DiscordSender, notice: QueueNotice = OFFER
                               ) -> tuple[str, OutboxMessage]:
    """Commit the notice's row, deliver it with OutboxService; the outcome and the row."""
    db, clock = MemoryQueueDatabase(), FixedClock(T0)
    with MemoryQueueUnitOfWork(db) as uow:
        message_id = uow.outbox.add(row(notice))
        uow.commit()
    service = OutboxService(uow=lambda: MemoryQueueUnitOfWork(db), clock=clock,
                            senders={"discord": sender}, policy=RetryPolicy())
    outcome = service.deliver(message_id)
    return outcome, service.get(message_id)


# --- what goes out ------------------------------------------------------------------------


def test_an_offer_is_posted_with_a_mention_and_sent_as_a_dm(
        bot_loop: asyncio.AbstractEventLoop) -> None:
    channel, alice = FakeChannel(CHANNEL), FakeUser(1001, "Alice")
    outcome, stored = deliver_through_the_outbox(sender_for(bot_loop, channel, alice))
    assert outcome == "sent" and stored.status == "sent" and stored.attempts == 1
    (text, mentions), = channel.posts
    assert text == f"<@1001>, {OFFER_TEXT}"
    assert mentions.everyone is False and mentions.roles is False and mentions.users is True
    assert alice.dms == [OFFER_TEXT]
    assert [t.name for t in channel.threads] == ["bot-loop"]  # sent on the bot's loop


def test_closed_dms_still_count_as_sent_once_the_channel_ping_is_out(
        bot_loop: asyncio.AbstractEventLoop) -> None:
    channel = FakeChannel(CHANNEL)
    closed = FakeUser(1001, "Alice", dms_closed=True)
    with structlog.testing.capture_logs() as logs:
        outcome, stored = deliver_through_the_outbox(sender_for(bot_loop, channel, closed))
    assert outcome == "sent" and stored.last_error is None
    assert channel.posts[0][0].startswith("<@1001>, **X1C-1** is yours")
    assert closed.dms == []
    refused = [e for e in logs if "closed DMs" in e["event"]]
    assert refused and refused[0]["member"] == "1001"


def test_a_failed_dm_after_the_channel_post_is_logged_not_retried(
        bot_loop: asyncio.AbstractEventLoop) -> None:
    """A retry would post in the channel twice; the mention already reached the member."""
    channel = FakeChannel(CHANNEL)
    down = FakeUser(1001, "Alice", fail=discord.DiscordServerError(http_response(503), "x"))
    with structlog.testing.capture_logs() as logs:
        outcome, _ = deliver_through_the_outbox(sender_for(bot_loop, channel, down))
    assert outcome == "sent" and len(channel.posts) == 1
    assert any(e["event"] == "discord DM failed; the channel post stands" for e in logs)
    # An unknown user: the channel post is out, so the same.
    outcome, _ = deliver_through_the_outbox(sender_for(bot_loop, channel))
    assert outcome == "sent" and len(channel.posts) == 2


def test_without_a_channel_only_dms_are_sent(bot_loop: asyncio.AbstractEventLoop) -> None:
    alice = FakeUser(1001, "Alice")
    outcome, _ = deliver_through_the_outbox(sender_for(bot_loop, None, alice, channel_id=None))
    assert outcome == "sent" and alice.dms == [OFFER_TEXT]


def test_cli_members_are_named_not_mentioned_and_names_cannot_ping(
        bot_loop: asyncio.AbstractEventLoop) -> None:
    channel = FakeChannel(CHANNEL)
    notice = QueueNotice("expired", "alice", "@everyone", 3, "X1C-1")
    outcome, _ = deliver_through_the_outbox(sender_for(bot_loop, channel), notice)
    assert outcome == "sent"
    (text, _), = channel.posts
    assert text.startswith("@\u200beveryone, your ticket #3 expired")
    assert "<@" not in text


# --- permanent and temporary failures --------------------------------------------------------


def test_an_unknown_channel_is_permanent(bot_loop: asyncio.AbstractEventLoop) -> None:
    alice = FakeUser(1001, "Alice")
    outcome, stored = deliver_through_the_outbox(sender_for(bot_loop, None, alice))
    assert outcome == "failed" and stored.status == "failed"
    assert "lab channel 555" in (stored.last_error or "") and "404" in (stored.last_error or "")
    assert alice.dms == []  # nothing half-sent


def test_a_channel_the_bot_may_not_post_in_is_permanent(
        bot_loop: asyncio.AbstractEventLoop) -> None:
    channel = FakeChannel(CHANNEL, fail=discord.Forbidden(http_response(403), "Missing Access"))
    outcome, stored = deliver_through_the_outbox(sender_for(bot_loop, channel))
    assert outcome == "failed" and "403" in (stored.last_error or "")


def test_a_discord_outage_is_temporary_and_retried_later(
        bot_loop: asyncio.AbstractEventLoop) -> None:
    channel = FakeChannel(CHANNEL, fail=discord.DiscordServerError(http_response(503),
                                                                   "Service Unavailable"))
    alice = FakeUser(1001, "Alice")
    outcome, stored = deliver_through_the_outbox(sender_for(bot_loop, channel, alice))
    assert outcome == "retry" and stored.status == "pending" and stored.attempts == 1
    assert stored.next_attempt_at == T0 + RetryPolicy().backoff(1)
    assert "503" in (stored.last_error or "") and alice.dms == [] and channel.posts == []


@pytest.mark.parametrize("user, permanent, says", [
    (None, True, "404"),
    (FakeUser(1001, "Alice", dms_closed=True), True, "does not take DMs"),
    (FakeUser(1001, "Alice", fail=discord.DiscordServerError(http_response(502), "x")),
     False, "502"),
    (FakeUser(1001, "Alice", fail=ConnectionResetError("reset by peer")), False,
     "could not reach Discord"),
])
def test_dm_only_failures(bot_loop: asyncio.AbstractEventLoop, user: FakeUser | None,
                          permanent: bool, says: str) -> None:
    users = [user] if user is not None else []
    sender = sender_for(bot_loop, None, *users, channel_id=None)
    with pytest.raises(DeliveryError, match=says) as caught:
        sender.send(row())
    assert caught.value.permanent is permanent


def test_no_channel_and_no_discord_user_is_permanent(
        bot_loop: asyncio.AbstractEventLoop) -> None:
    sender = sender_for(bot_loop, None, channel_id=None)
    with pytest.raises(DeliveryError, match="not a Discord user") as caught:
        sender.send(row(QueueNotice("missed", "alice", "Alice", 3, "X1C-1")))
    assert caught.value.permanent


def test_a_row_without_a_notice_is_permanent(bot_loop: asyncio.AbstractEventLoop) -> None:
    broken = row()
    broken.payload = {"deadline": 5}
    with pytest.raises(DeliveryError, match="does not hold a queue notice") as caught:
        sender_for(bot_loop, FakeChannel(CHANNEL)).send(broken)
    assert caught.value.permanent


def test_before_the_bot_runs_or_after_it_stopped_the_row_waits() -> None:
    channel = FakeChannel(CHANNEL)
    sender = DiscordSender(FakeClient(channel, {}), CHANNEL)  # type: ignore[arg-type]
    with pytest.raises(DeliveryError, match="not connected") as caught:
        sender.send(row())
    assert not caught.value.permanent
    loop = asyncio.new_event_loop()
    loop.close()
    sender.attach(loop)
    outcome, stored = deliver_through_the_outbox(sender)
    assert outcome == "retry" and stored.status == "pending" and channel.posts == []


def test_discord_not_answering_in_time_is_temporary(
        bot_loop: asyncio.AbstractEventLoop) -> None:
    channel = FakeChannel(CHANNEL, hang=5.0)
    sender = sender_for(bot_loop, channel, timeout=0.2)
    with pytest.raises(DeliveryError, match="did not answer within 0.2 s") as caught:
        sender.send(row())
    assert not caught.value.permanent


def test_sending_on_the_bots_own_loop_is_refused_not_deadlocked() -> None:
    sender = DiscordSender(FakeClient(FakeChannel(CHANNEL), {}), CHANNEL)  # type: ignore[arg-type]

    async def main() -> None:
        sender.attach(asyncio.get_running_loop())
        with pytest.raises(RuntimeError, match="worker thread"):
            sender.send(row())
        await asyncio.to_thread(sender.send, row())  # the right way

    asyncio.run(main())


def test_a_retried_row_goes_out_once_discord_is_back(
        bot_loop: asyncio.AbstractEventLoop) -> None:
    channel = FakeChannel(CHANNEL, fail=discord.DiscordServerError(http_response(503), "x"))
    sender = sender_for(bot_loop, channel)
    db, clock = MemoryQueueDatabase(), FixedClock(T0)
    with MemoryQueueUnitOfWork(db) as uow:
        uow.outbox.add(row())
        uow.commit()
    service = OutboxService(uow=lambda: MemoryQueueUnitOfWork(db), clock=clock,
                            senders={"discord": sender}, policy=RetryPolicy())
    assert service.deliver_due().retry == 1
    channel.fail = None
    assert service.deliver_due().total == 0  # not due yet
    clock.advance(seconds=RetryPolicy().backoff(1).total_seconds())
    assert service.deliver_due().sent == 1
    assert service.deliver_due().total == 0
    assert len(channel.posts) == 1
    assert [m.status for m in db.outbox.messages()] == ["sent"]
