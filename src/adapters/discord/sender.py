"""Queue notices on Discord, delivered from the outbox: a post in the lab's channel that
mentions the member, and the same message as a DM.

:class:`DiscordSender` is the ``printcore.outbox.MessageSender`` of the ``discord``
channel. ``OutboxService`` calls :meth:`DiscordSender.send` synchronously from a worker
thread (the bot's delivery loop runs it with ``asyncio.to_thread``); the sender runs the
sending on the bot's event loop and waits for it (``timeout`` seconds, 30).

How failures count (``printcore.outbox.DeliveryError``):

* the channel post is the delivery when a lab channel is configured: once it is out, a DM
  that fails (closed DMs, ``discord.Forbidden``, or anything else) is logged and the
  message counts as sent, since a retry would post in the channel twice;
* a Discord server error (5xx), a rate limit (429), a connection error or a timeout is
  temporary (tried again later);
* an unknown channel or user (404), a channel the bot may not post in (403), any other
  4xx, and a member with no way to reach them (closed DMs and no channel, or a CLI name
  and no channel) are permanent: the row is marked failed with the reason.

A member id that is not a Discord user id (a name typed in the ``printcore queue`` CLI)
is shown by name in the channel, with no mention and no DM.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

import aiohttp
import discord
import structlog

from adapters.discord import replies
from printcore.errors import ValidationError
from printcore.outbox import DeliveryError, OutboxMessage
from printcore.queue.ports import QueueNotice, queue_notice_of

__all__ = ["DiscordSender", "delivery_error"]

_log = structlog.get_logger("printcore.discord")


class DiscordSender:
    """``printcore.outbox.MessageSender`` for the ``discord`` channel.

    ``client``: the bot's ``discord.Client`` (anything with ``get_channel``,
    ``fetch_channel``, ``get_user``, ``fetch_user``). ``channel_id``: the lab channel for
    the posts, or None for DMs only. ``timeout``: seconds one message may take. Call
    :meth:`attach` with the bot's running loop (the bot does it in ``setup_hook``); until
    then :meth:`send` fails temporarily, so the rows wait in the outbox.
    """

    def __init__(self, client: discord.Client, channel_id: int | None,
                 loop: asyncio.AbstractEventLoop | None = None, timeout: float = 30.0) -> None:
        self.client = client
        self.channel_id = channel_id
        self.timeout = timeout
        self._loop = loop

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send on ``loop`` from now on (the loop the client runs on)."""
        self._loop = loop

    def send(self, message: OutboxMessage) -> None:
        """Deliver one outbox row; blocks until Discord answered. Call it from a worker
        thread, never on the bot's loop. Raises DeliveryError."""
        try:
            notice = queue_notice_of(message)
        except ValidationError as err:
            raise DeliveryError(str(err), permanent=True) from err
        loop = self._loop
        if loop is None or loop.is_closed():
            raise DeliveryError("The Discord bot is not connected; tried again later.")
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError("DiscordSender.send blocks: call it from a worker thread "
                               "(asyncio.to_thread), not on the bot's loop")
        future = asyncio.run_coroutine_threadsafe(self.deliver(notice), loop)
        try:
            future.result(self.timeout)
        except concurrent.futures.TimeoutError as err:
            future.cancel()
            raise DeliveryError(f"Discord did not answer within {self.timeout:g} s.") from err
        except concurrent.futures.CancelledError as err:
            raise DeliveryError("The Discord bot stopped while sending.") from err

    async def deliver(self, notice: QueueNotice) -> None:
        """Post the notice in the channel (with a mention) and DM it. Raises
        DeliveryError (see the module doc for which failures are permanent)."""
        body = replies.notice_body(notice)
        user_id = int(notice.member) if notice.member.isdigit() else None
        greeting = f"<@{user_id}>" if user_id is not None else replies.clean(notice.member_name)
        posted = False
        if self.channel_id is not None:
            await self._post(f"{greeting}, {body}")
            posted = True
        if user_id is not None:
            await self._dm(user_id, body[:1].upper() + body[1:], notice, posted)
        elif not posted:
            raise DeliveryError(
                f"Member {notice.member!r} is not a Discord user and no lab channel "
                "(DISCORD_CHANNEL_ID) is configured: there is no way to tell them.",
                permanent=True)

    async def _post(self, text: str) -> None:
        assert self.channel_id is not None
        where = f"lab channel {self.channel_id}"
        try:
            channel: Any = self.client.get_channel(self.channel_id)
            if channel is None:
                channel = await self.client.fetch_channel(self.channel_id)
            send = getattr(channel, "send", None)
            if send is None:
                raise DeliveryError(f"The {where} cannot take messages (is it a text "
                                    "channel?); check DISCORD_CHANNEL_ID.", permanent=True)
            mentions = discord.AllowedMentions(everyone=False, roles=False, users=True)
            await send(text[:replies.MAX_MESSAGE], allowed_mentions=mentions)
        except DeliveryError:
            raise
        except Exception as err:
            raise delivery_error(err, f"Posting in the {where}") from err

    async def _dm(self, user_id: int, text: str, notice: QueueNotice, posted: bool) -> None:
        try:
            user: Any = self.client.get_user(user_id) or await self.client.fetch_user(user_id)
            await user.send(text[:replies.MAX_MESSAGE])
        except Exception as err:
            if posted:
                closed = isinstance(err, discord.Forbidden)
                (_log.info if closed else _log.warning)(
                    "discord DM refused (closed DMs); the channel post stands" if closed
                    else "discord DM failed; the channel post stands",
                    member=notice.member, kind=notice.kind, ticket=notice.ticket_id,
                    error=repr(err))
                return
            if isinstance(err, discord.Forbidden):
                raise DeliveryError(
                    f"Member {notice.member} does not take DMs from the bot and no lab "
                    "channel (DISCORD_CHANNEL_ID) is configured.", permanent=True) from err
            raise delivery_error(err, f"Sending a DM to member {notice.member}") from err


def delivery_error(err: BaseException, doing: str) -> DeliveryError:
    """Translate a discord.py or network error into a DeliveryError: 404, 403 and other
    4xx are permanent; 5xx, 429, connection errors and timeouts are temporary."""
    if isinstance(err, discord.HTTPException):
        status = getattr(err, "status", 0) or 0
        what = f"{doing} failed: Discord answered {status} {err.text or ''}".rstrip()
        if isinstance(err, discord.NotFound):
            return DeliveryError(f"{what} (unknown channel or user; check the id).",
                                 permanent=True)
        if isinstance(err, discord.Forbidden):
            return DeliveryError(f"{what} (the bot lacks the permission).", permanent=True)
        permanent = 400 <= status < 500 and status != 429
        return DeliveryError(what + ".", permanent=permanent)
    if isinstance(err, (aiohttp.ClientError, OSError, TimeoutError)):
        return DeliveryError(f"{doing} failed: could not reach Discord ({err!r}).")
    return DeliveryError(f"{doing} failed: {err!r}.")
