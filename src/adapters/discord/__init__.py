"""The Discord adapter (discord.py 2.x): the queue's slash commands, offers and expiries
posted in the lab channel and sent as DMs (delivered from the outbox), and the bot process
with its sweep and delivery loops.

Entry points: :func:`run_bot` (``printcore bot``) and :func:`describe_commands`
(``printcore bot --show-commands``). Importing this package connects to nothing.
"""

from __future__ import annotations

from adapters.discord.bot import BotStartError, PrintcoreBot, describe_commands, run_bot
from adapters.discord.commands import QueueCommands
from adapters.discord.sender import DiscordSender
from adapters.discord.tree import COMMAND_NAMES, build_commands

__all__ = [
    "COMMAND_NAMES",
    "BotStartError",
    "DiscordSender",
    "PrintcoreBot",
    "QueueCommands",
    "build_commands",
    "describe_commands",
    "run_bot",
]
