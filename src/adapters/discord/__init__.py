"""The Discord adapter (discord.py 2.x): the queue's slash commands, offers and expiries
posted in the lab channel and sent as DMs, and the bot process with its sweep loop.

Entry points: :func:`run_bot` (``printcore bot``) and :func:`describe_commands`
(``printcore bot --show-commands``). Importing this package connects to nothing.
"""

from __future__ import annotations

from adapters.discord.bot import BotStartError, PrintcoreBot, describe_commands, run_bot
from adapters.discord.commands import QueueCommands
from adapters.discord.notifier import DiscordNotifier
from adapters.discord.tree import COMMAND_NAMES, build_commands

__all__ = [
    "COMMAND_NAMES",
    "BotStartError",
    "DiscordNotifier",
    "PrintcoreBot",
    "QueueCommands",
    "build_commands",
    "describe_commands",
    "run_bot",
]
