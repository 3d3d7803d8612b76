"""The Discord bot process: the queue's slash commands, the sweep loop, and the delivery
of the outbox's ``discord`` channel.

``run_bot`` blocks until the bot stops. Commands sync to one guild when
``DISCORD_GUILD_ID`` is given (they appear at once), else globally (Discord may take up
to an hour to show changes). The bot needs no privileged intent. The sweep
(``QueueService.sweep``) runs in a worker thread every ``sweep_seconds`` (15 s), the
first time as soon as the bot is connected; an error in one sweep is logged and the
next one runs anyway.

Queue notices are outbox rows (channel ``discord``) committed with the change that causes
them, by this process or any other (the web app, ``printcore queue``, a cron sweep). The
delivery loop hands every due row to a :class:`~adapters.discord.sender.DiscordSender`
through ``printcore.outbox.OutboxService.deliver_due`` in a worker thread: every
``deliver_seconds`` (2 s), and at once after each slash command and each sweep. The
outbox's lease makes a row go out once even with two bots running.

Heartbeat: once connected, the bot writes a beat every ``heartbeat_seconds`` (15 s) to
the store it is given (the database's ``settings`` table, see :mod:`adapters.heartbeat`),
carrying the durations of its sweeps (:class:`~adapters.heartbeat.SweepTimings`) for
``/metrics``; the readiness check fails when the beat is missing or old.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiohttp
import discord
import structlog
from discord import app_commands

from adapters.discord.commands import QueueCommands, option_text_problem
from adapters.discord.replies import UNEXPECTED
from adapters.discord.sender import DiscordSender
from adapters.discord.tree import build_commands
from adapters.heartbeat import HeartbeatStore, SweepTimings, beat_forever
from printcore.errors import ConcurrentChangeError
from printcore.outbox import DeliveryReport, OutboxService, RetryPolicy
from printcore.queue.service import QueueService, SweepReport

__all__ = [
    "DISCORD_RETRY",
    "BotStartError",
    "PrintcoreBot",
    "deliver_forever",
    "deliver_once",
    "describe_commands",
    "run_bot",
    "sweep_forever",
    "sweep_once",
]

_log = structlog.get_logger("printcore.discord")

#: Retries for Discord: an offer's claim window is 10 minutes, so wait 5 s, 10 s, 20 s…
#: (at most 5 min) and give up after 12 tries; a send takes at most 30 s (the lease is 2).
DISCORD_RETRY = RetryPolicy(base=timedelta(seconds=5), cap=timedelta(minutes=5),
                            max_attempts=12, lease=timedelta(minutes=2))


class BotStartError(Exception):
    """The bot could not start; the message names the cause and what to check."""


class _Tree(app_commands.CommandTree[discord.Client]):
    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Refuses a command whose text options break printcore's text rule, with an
        ephemeral reply that says which option; the command does not run."""
        if interaction.type is not discord.InteractionType.application_command:
            return True
        problem = option_text_problem(interaction.data)
        if problem is None:
            return True
        try:
            await interaction.response.send_message(problem, ephemeral=True)
        except discord.HTTPException:
            pass
        return False

    async def on_error(self, interaction: discord.Interaction,
                       error: app_commands.AppCommandError) -> None:
        """Errors the callbacks did not answer (option conversion, a bug): log, reply."""
        _log.error("discord command error",
                   command=interaction.command.name if interaction.command else None,
                   error=repr(error), exc_info=error)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(UNEXPECTED, ephemeral=True)
            else:
                await interaction.response.send_message(UNEXPECTED, ephemeral=True)
        except discord.HTTPException:
            pass


class PrintcoreBot(discord.Client):
    """A ``discord.Client`` with the queue's command tree.

    ``service``: the queue (its ``uow`` and ``clock`` also serve the outbox).
    ``guild_id``: sync the commands there (fast) instead of globally. ``channel_id``: where
    notices are posted. ``sweep_seconds``: sweep period; ``deliver_seconds``: how often
    the outbox is read for due notices. ``reply_timeout``: seconds before a slow command
    is deferred; ``max_file_bytes``: the largest sliced file /join downloads.
    ``retry``: the backoff for notices Discord did not take (:data:`DISCORD_RETRY`).
    ``heartbeats``: where the bot's beat goes every ``heartbeat_seconds`` (None: no beat).
    """

    def __init__(self, service: QueueService, *, guild_id: int | None,
                 channel_id: int | None, sweep_seconds: float = 15.0,
                 deliver_seconds: float = 2.0, reply_timeout: float = 2.0,
                 max_file_bytes: int = 200_000_000,
                 retry: RetryPolicy = DISCORD_RETRY,
                 heartbeats: HeartbeatStore | None = None,
                 heartbeat_seconds: float = 15.0) -> None:
        super().__init__(intents=discord.Intents.default())
        self.guild_id = guild_id
        self.sweep_seconds = sweep_seconds
        self.deliver_seconds = deliver_seconds
        self.service = service
        self.sender = DiscordSender(self, channel_id)
        self.outbox = OutboxService(uow=service.uow, clock=service.clock,
                                    senders={"discord": self.sender}, policy=retry)
        self.wake = asyncio.Event()
        self.commands = QueueCommands(self.service, reply_timeout=reply_timeout,
                                      max_file_bytes=max_file_bytes,
                                      after_command=self.wake.set)
        self.tree = _Tree(self)
        for command in build_commands(self.commands):
            self.tree.add_command(command)
        self._sweeper: asyncio.Task[None] | None = None
        self._deliverer: asyncio.Task[None] | None = None
        self.heartbeats = heartbeats
        self.heartbeat_seconds = heartbeat_seconds
        self.timings = SweepTimings()
        self._beater: asyncio.Task[None] | None = None

    async def setup_hook(self) -> None:
        """Runs inside ``login()``: attach the sender to this loop, sync the commands,
        start the sweep and delivery loops. Raises BotStartError when Discord refuses the
        sync."""
        self.sender.attach(asyncio.get_running_loop())
        try:
            if self.guild_id is not None:
                guild = discord.Object(id=self.guild_id)
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
            else:
                synced = await self.tree.sync()
        except discord.Forbidden as err:
            where = f"guild {self.guild_id}" if self.guild_id is not None else "Discord"
            raise BotStartError(
                f"Discord refused to sync the commands to {where} ({err}); check "
                "DISCORD_GUILD_ID and that the bot was invited there with the "
                "applications.commands scope.") from err
        _log.info("discord commands synced", guild=self.guild_id,
                  commands=[c.name for c in synced])
        self._sweeper = asyncio.create_task(self._sweep_when_ready())
        self._deliverer = asyncio.create_task(self._deliver_when_ready())
        if self.heartbeats is not None:
            self._beater = asyncio.create_task(self._beat_when_ready(self.heartbeats))

    async def _sweep_when_ready(self) -> None:
        await self.wait_until_ready()
        await sweep_forever(self.service, self.sweep_seconds, after=self.wake.set,
                            timings=self.timings)

    async def _beat_when_ready(self, store: HeartbeatStore) -> None:
        await self.wait_until_ready()
        await beat_forever(store, "bot", self.heartbeat_seconds,
                           data=lambda: {"sweep": self.timings.snapshot(),
                                         "guilds": len(self.guilds)})

    async def _deliver_when_ready(self) -> None:
        await self.wait_until_ready()
        await deliver_forever(self.outbox, self.deliver_seconds, self.wake)

    async def close(self) -> None:
        for task in (self._sweeper, self._deliverer, self._beater):
            if task is not None:
                task.cancel()
        await super().close()


#: Sweeps tried in a row when each loses the compare-and-set to another change.
SWEEP_CONFLICT_TRIES = 5


async def sweep_once(service: QueueService,
                     timings: SweepTimings | None = None) -> SweepReport | None:
    """One sweep in a worker thread; the report, or None after logging an error.
    ``timings`` records how long it took (seconds, failed sweeps included).

    A sweep that loses the compare-and-set (a claim, a printer's report or another
    sweeper committed between its read and its write) changed nothing: it is swept
    again at once on the new rows, up to ``SWEEP_CONFLICT_TRIES`` times, rather than
    waiting a whole sweep period with the deadline unfired."""
    for attempt in range(1, SWEEP_CONFLICT_TRIES + 1):
        started = time.perf_counter()
        try:
            report = await asyncio.to_thread(service.sweep)
        except ConcurrentChangeError:
            if attempt == SWEEP_CONFLICT_TRIES:
                _log.warning("queue sweep lost to other changes; trying at the next sweep",
                             tries=attempt)
                return None
            await asyncio.sleep(0.05 * attempt)
            continue
        except Exception:
            _log.exception("queue sweep failed")
            return None
        finally:
            if timings is not None:
                timings.observe(time.perf_counter() - started)
        break
    if report.offered or report.missed or report.expired:
        _log.info("queue sweep", offered=report.offered, missed=report.missed,
                  expired=report.expired)
    return report


async def sweep_forever(service: QueueService, seconds: float,
                        after: Callable[[], None] | None = None,
                        timings: SweepTimings | None = None) -> None:
    """Sweep now, then every ``seconds``, until cancelled; survives failed sweeps.
    ``after`` is called after each sweep that changed something (to deliver its notices
    at once); ``timings`` records each sweep's duration."""
    while True:
        report = await sweep_once(service, timings)
        if after is not None and report is not None and (
                report.offered or report.missed or report.expired):
            after()
        await asyncio.sleep(seconds)


async def deliver_once(outbox: OutboxService) -> DeliveryReport | None:
    """Deliver every due row of the outbox's channels in a worker thread; the report, or
    None after logging an error (the database unreachable, say)."""
    try:
        report = await asyncio.to_thread(outbox.deliver_due)
    except Exception:
        _log.exception("outbox delivery failed")
        return None
    if report.sent or report.retry or report.failed:
        _log.info("discord notices delivered", sent=report.sent, retry=report.retry,
                  failed=report.failed, skipped=report.skipped)
    return report


async def deliver_forever(outbox: OutboxService, seconds: float,
                          wake: asyncio.Event | None = None) -> None:
    """Deliver due rows now, then every ``seconds`` or as soon as ``wake`` is set, until
    cancelled; survives failed rounds. One round at a time."""
    wake = wake or asyncio.Event()
    while True:
        wake.clear()
        await deliver_once(outbox)
        try:
            await asyncio.wait_for(wake.wait(), seconds)
        except TimeoutError:
            pass


def describe_commands() -> list[dict[str, Any]]:
    """The JSON payloads the bot syncs to Discord (one per top-level command), built
    without a token or a connection: for ``printcore bot --show-commands``."""
    client = discord.Client(intents=discord.Intents.default())
    tree = app_commands.CommandTree(client)
    for command in build_commands(QueueCommands(_DESCRIBE_ONLY)):  # type: ignore[arg-type]
        tree.add_command(command)
    payloads = [command.to_dict(tree) for command in tree.get_commands()]
    return json.loads(json.dumps(payloads))  # type: ignore[no-any-return]


class _DescribeOnly:
    """Stands in for the service while only the command payloads are wanted."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("describe_commands() builds the commands only; they cannot run")


_DESCRIBE_ONLY = _DescribeOnly()


def run_bot(service: QueueService, *, token: str, guild_id: int | None,
            channel_id: int | None, sweep_seconds: float = 15.0,
            login_timeout: float = 30.0, max_file_bytes: int = 200_000_000,
            deliver_seconds: float = 2.0, heartbeats: HeartbeatStore | None = None) -> None:
    """Run the bot until it is stopped (Ctrl-C returns normally).

    ``token``: DISCORD_TOKEN; ``guild_id``: DISCORD_GUILD_ID (None: global commands);
    ``channel_id``: DISCORD_CHANNEL_ID for notices (None: DMs only); ``sweep_seconds``:
    the sweep period; ``deliver_seconds``: how often the outbox is read for notices
    (besides right after each command and sweep); ``login_timeout``: seconds allowed to reach Discord, log in and sync
    the commands; ``max_file_bytes``: the largest sliced file /join accepts (e.g. the
    settings' ``max_upload_bytes``); ``heartbeats``: where the bot beats every 15 s once
    connected (:class:`adapters.heartbeat.DatabaseHeartbeats`; None: no beat).

    Raises BotStartError when the token is empty or rejected (``discord.LoginFailure``),
    Discord cannot be reached (DNS, connection, timeout), or Discord refuses the command
    sync (wrong DISCORD_GUILD_ID) or the bot.
    """
    if not token or not token.strip():
        raise BotStartError("DISCORD_TOKEN is empty: set it to the bot token from the "
                            "Discord developer portal (Bot → Reset Token).")
    if sweep_seconds <= 0:
        raise BotStartError(f"The sweep period must be positive seconds, not {sweep_seconds}.")
    if deliver_seconds <= 0:
        raise BotStartError(f"The delivery period must be positive seconds, not "
                            f"{deliver_seconds}.")
    bot = PrintcoreBot(service, guild_id=guild_id, channel_id=channel_id,
                       sweep_seconds=sweep_seconds, deliver_seconds=deliver_seconds,
                       max_file_bytes=max_file_bytes, heartbeats=heartbeats)

    async def main() -> None:
        async with bot:
            try:
                await asyncio.wait_for(bot.login(token.strip()), login_timeout)
            except TimeoutError as err:
                raise BotStartError(f"Could not reach Discord within {login_timeout:g} s; "
                                    "check this machine's network access to discord.com."
                                    ) from err
            await bot.connect(reconnect=True)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return
    except discord.LoginFailure as err:
        raise BotStartError(f"Discord rejected DISCORD_TOKEN ({err}); copy the bot token "
                            "again from the Discord developer portal.") from err
    except discord.PrivilegedIntentsRequired as err:
        raise BotStartError(f"Discord refused the bot's intents: {err}") from err
    except (aiohttp.ClientError, OSError, discord.GatewayNotFound) as err:
        raise BotStartError(f"Could not reach Discord ({err}); check this machine's "
                            "network access to discord.com.") from err
    except discord.HTTPException as err:
        raise BotStartError(f"Discord refused to start the bot: {err}") from err
