"""The Discord bot process: the queue's slash commands, the notifier, and the sweep loop.

``run_bot`` blocks until the bot stops. Commands sync to one guild when
``DISCORD_GUILD_ID`` is given (they appear at once), else globally (Discord may take up
to an hour to show changes). The bot needs no privileged intent. The sweep
(``QueueService.sweep``) runs in a worker thread every ``sweep_seconds`` (15 s), the
first time as soon as the bot is connected; an error in one sweep is logged and the
next one runs anyway.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import attrs
import structlog

import discord
from adapters.discord.commands import QueueCommands
from adapters.discord.notifier import DiscordNotifier
from adapters.discord.replies import UNEXPECTED
from adapters.discord.tree import build_commands
from discord import app_commands
from printcore.queue.service import QueueService, SweepReport

__all__ = [
    "BotStartError",
    "PrintcoreBot",
    "describe_commands",
    "run_bot",
    "sweep_forever",
    "sweep_once",
]

_log = structlog.get_logger("printcore.discord")


class BotStartError(Exception):
    """The bot could not start; the message names the cause and what to check."""


class _Tree(app_commands.CommandTree[discord.Client]):
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

    ``service`` is rebuilt with a :class:`DiscordNotifier` (``attrs.evolve``) so offers
    and expiries go to Discord. ``guild_id``: sync the commands there (fast) instead of
    globally. ``channel_id``: where notices are posted. ``sweep_seconds``: sweep period.
    ``reply_timeout``: seconds before a slow command is deferred; ``max_file_bytes``: the
    largest sliced file /join downloads.
    """

    def __init__(self, service: QueueService, *, guild_id: int | None,
                 channel_id: int | None, sweep_seconds: float = 15.0,
                 reply_timeout: float = 2.0, max_file_bytes: int = 200_000_000) -> None:
        super().__init__(intents=discord.Intents.default())
        self.guild_id = guild_id
        self.sweep_seconds = sweep_seconds
        self.notifier = DiscordNotifier(self, channel_id)
        self.service = attrs.evolve(service, notifier=self.notifier)
        self.commands = QueueCommands(self.service, reply_timeout=reply_timeout,
                                      max_file_bytes=max_file_bytes)
        self.tree = _Tree(self)
        for command in build_commands(self.commands):
            self.tree.add_command(command)
        self._sweeper: asyncio.Task[None] | None = None

    async def setup_hook(self) -> None:
        """Runs inside ``login()``: attach the notifier to this loop, sync the commands,
        start the sweep loop. Raises BotStartError when Discord refuses the sync."""
        self.notifier.attach(asyncio.get_running_loop())
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

    async def _sweep_when_ready(self) -> None:
        await self.wait_until_ready()
        await sweep_forever(self.service, self.sweep_seconds)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await super().close()


async def sweep_once(service: QueueService) -> SweepReport | None:
    """One sweep in a worker thread; the report, or None after logging an error."""
    try:
        report = await asyncio.to_thread(service.sweep)
    except Exception:
        _log.exception("queue sweep failed")
        return None
    if report.offered or report.missed or report.expired:
        _log.info("queue sweep", offered=report.offered, missed=report.missed,
                  expired=report.expired)
    return report


async def sweep_forever(service: QueueService, seconds: float) -> None:
    """Sweep now, then every ``seconds``, until cancelled; survives failed sweeps."""
    while True:
        await sweep_once(service)
        await asyncio.sleep(seconds)


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
            login_timeout: float = 30.0, max_file_bytes: int = 200_000_000) -> None:
    """Run the bot until it is stopped (Ctrl-C returns normally).

    ``token``: DISCORD_TOKEN; ``guild_id``: DISCORD_GUILD_ID (None: global commands);
    ``channel_id``: DISCORD_CHANNEL_ID for notices (None: DMs only); ``sweep_seconds``:
    the sweep period; ``login_timeout``: seconds allowed to reach Discord, log in and sync
    the commands; ``max_file_bytes``: the largest sliced file /join accepts (e.g. the
    settings' ``max_upload_bytes``).

    Raises BotStartError when the token is empty or rejected (``discord.LoginFailure``),
    Discord cannot be reached (DNS, connection, timeout), or Discord refuses the command
    sync (wrong DISCORD_GUILD_ID) or the bot.
    """
    if not token or not token.strip():
        raise BotStartError("DISCORD_TOKEN is empty: set it to the bot token from the "
                            "Discord developer portal (Bot → Reset Token).")
    if sweep_seconds <= 0:
        raise BotStartError(f"The sweep period must be positive seconds, not {sweep_seconds}.")
    bot = PrintcoreBot(service, guild_id=guild_id, channel_id=channel_id,
                       sweep_seconds=sweep_seconds, max_file_bytes=max_file_bytes)

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
