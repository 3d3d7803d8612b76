"""The queue's slash commands as discord.py objects: names, descriptions, options,
autocomplete and choices. Each callback hands its options to
:class:`~adapters.discord.commands.QueueCommands`, which does the translating.

Discord's limits (checked by tests/discord_bot): names ``^[-_a-z0-9]{1,32}$``, descriptions
1-100 characters, at most 25 options per command.
"""

from __future__ import annotations

from typing import Any, Literal

import discord
from discord import app_commands

from adapters.discord.commands import QueueCommands

__all__ = ["COMMAND_NAMES", "build_commands"]

#: The top-level commands, as the issue lists them (``report`` is a group: ``/report started``).
COMMAND_NAMES = (
    "join", "claim", "close", "report", "notdone", "cancel", "update_time", "status",
    "myjobs", "predict", "history",
)

Outcome = Literal["finished", "failed"]


def build_commands(
    handler: QueueCommands,
) -> list[app_commands.Command[Any, ..., Any] | app_commands.Group]:
    """The queue's slash commands, calling ``handler``; add each to a ``CommandTree``.

    Names and descriptions are within Discord's limits (name ``^[-_a-z0-9]{1,32}$``,
    description 1–100 characters, at most 25 options); ``printer`` options autocomplete
    from the configured printers, ``outcome`` offers finished / failed.
    """

    async def printer_autocomplete(interaction: discord.Interaction,
                                   current: str) -> list[app_commands.Choice[str]]:
        return await handler.printer_choices(current)

    @app_commands.command(name="join", description="Join the printer queue with a job and "
                          "its estimated print time (or its sliced file).")
    @app_commands.describe(
        job="What you are printing (a short name).",
        est_time="Estimated print time: 90m, 1h30m, 2:15, 150 (minutes) or 1.5h.",
        sliced_file="Your .gcode.3mf or .gcode: the estimate is read from it.")
    async def join(interaction: discord.Interaction, job: app_commands.Range[str, 1, 100],
                   est_time: app_commands.Range[str, 1, 40] | None = None,
                   sliced_file: discord.Attachment | None = None) -> None:
        await handler.join(interaction, job, est_time, sliced_file)

    @app_commands.command(name="claim", description="Claim the printer offered to you (or an "
                          "idle printer when you are first in the queue).")
    @app_commands.describe(printer="The printer's name, e.g. X1C-1.")
    @app_commands.autocomplete(printer=printer_autocomplete)
    async def claim(interaction: discord.Interaction,
                    printer: app_commands.Range[str, 1, 100]) -> None:
        await handler.claim(interaction, printer)

    @app_commands.command(name="close", description="Close the previous print on a printer: "
                          "finished, or failed with a photo.")
    @app_commands.describe(printer="The printer the print is on.",
                           outcome="How the print ended.",
                           photo="A photo of the print (required when it failed).",
                           finished_at="When it ended, lab time (e.g. 23:10), if you know.",
                           took="How long it took (e.g. 58m), if you know.")
    @app_commands.autocomplete(printer=printer_autocomplete)
    async def close(interaction: discord.Interaction, printer: app_commands.Range[str, 1, 100],
                    outcome: Outcome, photo: discord.Attachment | None = None,
                    finished_at: app_commands.Range[str, 1, 40] | None = None,
                    took: app_commands.Range[str, 1, 40] | None = None) -> None:
        await handler.close(interaction, printer, outcome, photo, finished_at, took)

    report = app_commands.Group(name="report", description="Tell the queue what happened at "
                                "the printer you claimed.")

    @report.command(name="started", description="Your print is running on the printer you "
                    "claimed.")
    async def report_started(interaction: discord.Interaction) -> None:
        await handler.report_started(interaction)

    @app_commands.command(name="notdone", description="The previous print on your claimed "
                          "printer is still running: release it, keep your place.")
    @app_commands.describe(remaining="About how long it still needs, e.g. 45m (default: the "
                           "lab's usual wait).")
    async def notdone(interaction: discord.Interaction,
                      remaining: app_commands.Range[str, 1, 40] | None = None) -> None:
        await handler.notdone(interaction, remaining)

    @app_commands.command(name="cancel", description="Leave the queue (or give back the "
                          "printer offered to or claimed by you).")
    async def cancel(interaction: discord.Interaction) -> None:
        await handler.cancel(interaction)

    @app_commands.command(name="update_time", description="Change the estimated print time "
                          "of your ticket.")
    @app_commands.describe(est_time="New estimate: 90m, 1h30m, 2:15, 150 (minutes) or 1.5h.")
    async def update_time(interaction: discord.Interaction,
                          est_time: app_commands.Range[str, 1, 40]) -> None:
        await handler.update_time(interaction, est_time)

    @app_commands.command(name="status", description="The printers and the queue, with "
                          "predicted start times.")
    async def status(interaction: discord.Interaction) -> None:
        await handler.status(interaction)

    @app_commands.command(name="myjobs", description="Your tickets, newest first.")
    async def myjobs(interaction: discord.Interaction) -> None:
        await handler.myjobs(interaction)

    @app_commands.command(name="predict", description="Suggest a print time from your past "
                          "prints and each printer's history.")
    @app_commands.describe(est_time="Your estimate (e.g. the slicer's), to get a suggestion.")
    async def predict(interaction: discord.Interaction,
                      est_time: app_commands.Range[str, 1, 40] | None = None) -> None:
        await handler.predict(interaction, est_time)

    @app_commands.command(name="history", description="Recently closed prints.")
    async def history(interaction: discord.Interaction) -> None:
        await handler.history(interaction)

    return [join, claim, close, report, notdone, cancel, update_time, status, myjobs,
            predict, history]
