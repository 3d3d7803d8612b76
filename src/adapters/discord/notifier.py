"""Queue notices on Discord: a post in the lab's channel that mentions the member, and
the same message as a DM.

``QueueService`` calls :meth:`DiscordNotifier.notify` synchronously after each commit,
usually from a worker thread (the bot runs service calls with ``asyncio.to_thread``).
The notifier only schedules the sending on the bot's event loop and returns at once; it
never raises into the service. A member who closed their DMs (``discord.Forbidden``) or
whose DM fails otherwise still gets the channel ping; every failure is logged.

A member id that is not a Discord user id (a name typed in the ``printcore queue`` CLI)
is shown by name in the channel, with no mention and no DM.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterable
from typing import Any

import structlog

import discord
from adapters.discord import replies
from printcore.queue.ports import QueueNotice

__all__ = ["DiscordNotifier"]

_log = structlog.get_logger("printcore.discord")


class DiscordNotifier:
    """``printcore.queue.ports.QueueNotifier`` for Discord.

    ``client``: the bot's ``discord.Client`` (anything with ``get_channel``,
    ``fetch_channel``, ``get_user``, ``fetch_user``). ``channel_id``: the lab channel for
    the posts, or None for DMs only. Call :meth:`attach` with the bot's running loop
    (the bot does it in ``setup_hook``); notices before that are logged and dropped.
    """

    def __init__(self, client: discord.Client, channel_id: int | None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.client = client
        self.channel_id = channel_id
        self._loop = loop
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send on ``loop`` from now on (the loop the client runs on)."""
        self._loop = loop

    def notify(self, notices: Iterable[QueueNotice]) -> None:
        """Schedule delivery and return; never raises."""
        try:
            batch = list(notices)
            if not batch:
                return
            loop = self._loop
            if loop is None or loop.is_closed():
                for notice in batch:
                    _log.warning("discord notice dropped: the bot is not running",
                                 kind=notice.kind, member=notice.member,
                                 ticket=notice.ticket_id)
                return
            try:
                running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                task = loop.create_task(self.deliver(batch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                future = asyncio.run_coroutine_threadsafe(self.deliver(batch), loop)
                future.add_done_callback(_log_failure)
        except Exception:
            _log.exception("discord notify failed")

    async def deliver(self, notices: Iterable[QueueNotice]) -> None:
        """Post each notice in the channel and DM it; never raises."""
        for notice in notices:
            try:
                await self._deliver_one(notice)
            except Exception:
                _log.exception("discord notice failed", kind=notice.kind,
                               member=notice.member, ticket=notice.ticket_id)

    async def _deliver_one(self, notice: QueueNotice) -> None:
        body = replies.notice_body(notice)
        user_id = int(notice.member) if notice.member.isdigit() else None
        greeting = f"<@{user_id}>" if user_id is not None else replies.clean(notice.member_name)
        await self._post(f"{greeting}, {body}", notice)
        if user_id is not None:
            await self._dm(user_id, body[:1].upper() + body[1:], notice)

    async def _post(self, text: str, notice: QueueNotice) -> None:
        if self.channel_id is None:
            return
        channel: Any = self.client.get_channel(self.channel_id)
        try:
            if channel is None:
                channel = await self.client.fetch_channel(self.channel_id)
            send = getattr(channel, "send", None)
            if send is None:
                _log.error("discord channel cannot take messages", channel=self.channel_id)
                return
            mentions = discord.AllowedMentions(everyone=False, roles=False, users=True)
            await send(text[:replies.MAX_MESSAGE], allowed_mentions=mentions)
        except discord.HTTPException as err:
            _log.error("discord channel post failed", channel=self.channel_id,
                       kind=notice.kind, member=notice.member, error=repr(err))

    async def _dm(self, user_id: int, text: str, notice: QueueNotice) -> None:
        try:
            user: Any = self.client.get_user(user_id) or await self.client.fetch_user(user_id)
            await user.send(text[:replies.MAX_MESSAGE])
        except discord.Forbidden:
            _log.info("discord DM refused (closed DMs); the channel post stands",
                      member=notice.member, kind=notice.kind)
        except discord.HTTPException as err:
            _log.warning("discord DM failed", member=notice.member, kind=notice.kind,
                         error=repr(err))


def _log_failure(future: concurrent.futures.Future[None]) -> None:
    if future.cancelled():
        _log.warning("discord notices cancelled (the bot is stopping)")
        return
    error = future.exception()
    if error is not None:
        _log.error("discord notices failed", error=repr(error))
