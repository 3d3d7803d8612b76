"""The queue's slash commands: parse the options, call one ``QueueService`` method in a
worker thread, reply. No queue rule lives here (CONVENTIONS.md, "entry points only
translate").

Replies are ephemeral (only the member sees them); the shared news (offers, missed
windows, expiries) is written to the outbox by the service and goes to the lab channel
through :class:`~adapters.discord.sender.DiscordSender`; ``after_command`` (the bot's
"deliver now") is called once each command has answered.

Discord drops an interaction not answered within 3 s: a command whose service call has
not returned after ``reply_timeout`` seconds (2 s) is deferred ("printcore is
thinking…") and answered with a followup; a command with a file to download is deferred
at once. A printcore error is answered with its message, which says what to do instead;
any other exception is logged and answered with :data:`~adapters.discord.replies.UNEXPECTED`.

Member id = ``str(interaction.user.id)`` (the Discord user id), name =
``interaction.user.display_name``.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import discord
import structlog
from discord import app_commands

from adapters.discord import refusals, replies
from adapters.meshes.sliced import SLICED_EXTENSIONS, read_slice_estimate, sliced_extension
from printcore.errors import (
    FileTooLargeError,
    PrintcoreError,
    UnsupportedFileError,
    ValidationError,
)
from printcore.queue.durations import parse_duration
from printcore.queue.end_times import parse_end_time
from printcore.queue.entities import Printer
from printcore.queue.service import Placement, QueueService
from printcore.slicing import SliceEstimate
from printcore.text import text_problem

__all__ = ["QueueCommands", "option_text_problem"]

#: Most choices Discord shows for an autocompleted option.
MAX_CHOICES = 25

_log = structlog.get_logger("printcore.discord")


class QueueCommands:
    """What each slash command does, given a (real or fake) ``discord.Interaction``.

    ``reply_timeout``: seconds to wait for the service before deferring (keep it well
    under Discord's 3 s; a test sets 0 to force the deferred path).
    ``autocomplete_timeout``: seconds allowed to list printers for autocomplete (an
    autocomplete cannot be deferred; past it, no suggestions).
    ``max_file_bytes``: largest sliced file /join downloads (bytes).
    ``history_limit``: how many closed prints /history shows.
    ``after_command``: called (on the loop, never raising into the command) after each
    command answered, e.g. to deliver the notices it committed at once.
    """

    def __init__(self, service: QueueService, *, reply_timeout: float = 2.0,
                 autocomplete_timeout: float = 2.0, max_file_bytes: int = 200_000_000,
                 history_limit: int = 10,
                 after_command: Callable[[], None] | None = None) -> None:
        self.service = service
        self.after_command = after_command
        self.reply_timeout = reply_timeout
        self.autocomplete_timeout = autocomplete_timeout
        self.max_file_bytes = max_file_bytes
        self.history_limit = history_limit

    # --- commands -------------------------------------------------------------------------

    async def join(self, interaction: discord.Interaction, job: str, est_time: str | None,
                   sliced_file: discord.Attachment | None) -> None:
        """/join: queue a ticket. The estimate is ``est_time`` or, when a sliced file is
        attached (and no est_time given), the slicer's prediction rounded up to minutes."""
        member, name = _who(interaction)

        async def work() -> str:
            estimate = None
            if sliced_file is not None:
                estimate = await self._slice_estimate(sliced_file)
            typed = bool(est_time and est_time.strip())
            if typed:
                est = parse_duration(est_time or "", "est_time")
            elif estimate is not None and estimate.seconds is not None:
                est = timedelta(minutes=max(1, math.ceil(estimate.seconds / 60)))
            else:
                raise ValidationError(
                    "Give est_time (like 1h30m) or attach the sliced file (.gcode.3mf or "
                    ".gcode) your slicer exported.", {"est_time": "Required without a file."})

            def call() -> str:
                placement = self.service.join(member, name, job, est)
                printer = self._printer(placement.ticket.printer)
                return replies.joined(placement, printer, estimate, typed)

            return await asyncio.to_thread(call)

        await self._answer(interaction, "join", work, defer_first=sliced_file is not None)

    async def claim(self, interaction: discord.Interaction, printer: str) -> None:
        member, _ = _who(interaction)

        def call() -> str:
            ticket = self.service.claim(member, printer.strip())
            return replies.claimed(ticket, self._printer(ticket.printer))

        await self._answer(interaction, "claim", _threaded(call))

    async def close(self, interaction: discord.Interaction, printer: str, outcome: str,
                    photo: discord.Attachment | None, finished_at: str | None = None,
                    took: str | None = None) -> None:
        """/close: ``photo`` (an image attachment) is passed on as its Discord URL;
        ``finished_at`` (a lab-zone time, ``printcore.queue.end_times``) or ``took`` (a
        duration) makes the print's duration known."""
        member, _ = _who(interaction)

        def call() -> str:
            zone = self.service.access.timezone
            ended = (parse_end_time(finished_at, self.service.clock.now(), zone)
                     if finished_at else None)
            duration = parse_duration(took, "took") if took else None
            url = None
            if photo is not None:
                kind = photo.content_type or ""
                if kind and not kind.startswith("image/"):
                    raise ValidationError(
                        f"{photo.filename} is not a photo; attach a picture of the print.",
                        {"photo": "An image."})
                url = photo.url
            ticket = self.service.close(member, printer.strip(), outcome, url,
                                        finished_at=ended, took=duration)
            return replies.closed(ticket, printer.strip())

        await self._answer(interaction, "close", _threaded(call))

    async def report_started(self, interaction: discord.Interaction) -> None:
        member, _ = _who(interaction)
        await self._answer(interaction, "report started", _threaded(
            lambda: replies.started(self.service.report_started(member))))

    async def notdone(self, interaction: discord.Interaction, remaining: str | None) -> None:
        member, _ = _who(interaction)

        def call() -> str:
            left = parse_duration(remaining, "remaining") if remaining and remaining.strip() \
                else None
            self.service.notdone(member, left)
            return replies.notdone(self._placement(member))

        await self._answer(interaction, "notdone", _threaded(call))

    async def cancel(self, interaction: discord.Interaction) -> None:
        member, _ = _who(interaction)
        await self._answer(interaction, "cancel", _threaded(
            lambda: replies.cancelled(self.service.cancel(member))))

    async def update_time(self, interaction: discord.Interaction, est_time: str) -> None:
        member, _ = _who(interaction)

        def call() -> str:
            est = parse_duration(est_time, "est_time")
            return replies.time_updated(self.service.update_time(member, est))

        await self._answer(interaction, "update_time", _threaded(call))

    async def status(self, interaction: discord.Interaction) -> None:
        await self._answer(interaction, "status", _threaded(
            lambda: replies.status_page(self.service.status_page(replies.MAX_LINES))))

    async def myjobs(self, interaction: discord.Interaction) -> None:
        member, _ = _who(interaction)
        await self._answer(interaction, "myjobs", _threaded(
            lambda: replies.myjobs(self.service.myjobs(member))))

    async def predict(self, interaction: discord.Interaction, est_time: str | None) -> None:
        member, _ = _who(interaction)

        def call() -> str:
            est = parse_duration(est_time, "est_time") if est_time and est_time.strip() \
                else None
            return replies.prediction(self.service.predict(member, est), est)

        await self._answer(interaction, "predict", _threaded(call))

    async def history(self, interaction: discord.Interaction) -> None:
        await self._answer(interaction, "history", _threaded(
            lambda: replies.history(self.service.history(self.history_limit))))

    async def printer_choices(self, current: str) -> list[app_commands.Choice[str]]:
        """Autocomplete for printer names: configured printers whose name or label contains
        what was typed (case-insensitive), names starting with it first; at most 25.
        Never raises (an empty list on any failure)."""
        try:
            printers, _ = await asyncio.wait_for(
                asyncio.to_thread(self.service.status), self.autocomplete_timeout)
        except Exception:
            _log.exception("printer autocomplete failed")
            return []
        typed = current.strip().casefold()
        found = [p for p in printers
                 if typed in p.name.casefold() or typed in p.label.casefold()]
        found.sort(key=lambda p: (not p.name.casefold().startswith(typed), p.name))
        return [app_commands.Choice(name=_choice_name(p), value=p.name)
                for p in found[:MAX_CHOICES]]

    # --- translation helpers -------------------------------------------------------------

    def _printer(self, name: str | None) -> Printer | None:
        if name is None:
            return None
        return next((p for p in self.service.printers() if p.name == name), None)

    def _placement(self, member: str) -> Placement | None:
        try:
            return self.service.placement(member)
        except PrintcoreError:
            return None

    async def _slice_estimate(self, attachment: discord.Attachment) -> SliceEstimate:
        """Download a sliced file into a temporary folder and read the slicer's estimate.
        Raises UnsupportedFileError (not a sliced file, no estimate), FileTooLargeError,
        PrintcoreError (the download failed)."""
        accepted = " or ".join(SLICED_EXTENSIONS)
        extension = sliced_extension(attachment.filename)
        if extension is None:
            raise UnsupportedFileError(
                f"{attachment.filename} is not a sliced file: attach the file your slicer "
                f"exports ({accepted}), or leave the file out and give est_time.",
                "sliced_file")
        if attachment.size > self.max_file_bytes:
            raise FileTooLargeError(self.max_file_bytes, "sliced_file")
        with tempfile.TemporaryDirectory(prefix="printcore-discord-") as folder:
            path = Path(folder) / f"sliced{extension}"
            try:
                await attachment.save(path)
            except (discord.HTTPException, OSError) as err:
                _log.warning("sliced file download failed", filename=attachment.filename,
                             error=repr(err))
                raise PrintcoreError(
                    "Could not download your file from Discord; try /join again.") from err
            if path.stat().st_size > self.max_file_bytes:
                raise FileTooLargeError(self.max_file_bytes, "sliced_file")
            estimate = await asyncio.to_thread(read_slice_estimate, path, extension)
        if estimate.seconds is None:
            raise UnsupportedFileError(
                f"{attachment.filename} has no print-time estimate in it: give est_time, or "
                "slice the model again and attach the .gcode.3mf or .gcode the slicer "
                "exports.", "sliced_file")
        return estimate

    async def _answer(self, interaction: discord.Interaction, command: str,
                      work: Callable[[], Awaitable[str]], *, defer_first: bool = False) -> None:
        """Run ``work`` and send its text; defer first, or after ``reply_timeout`` seconds.
        Never raises."""
        task = asyncio.ensure_future(work())
        if not defer_first:
            await asyncio.wait({task}, timeout=self.reply_timeout)
        if defer_first or not task.done():
            try:
                await interaction.response.defer(ephemeral=True, thinking=True)
            except discord.HTTPException as err:
                _log.warning("could not defer", command=command, error=repr(err))
        try:
            text = await task
        except PrintcoreError as err:
            text = refusals.refusal(err, self.service.access.timezone)
        except Exception:
            _log.exception("discord command failed", command=command,
                           member=str(interaction.user.id))
            text = replies.UNEXPECTED
        await _send(interaction, command, text)
        if self.after_command is not None:
            try:
                self.after_command()
            except Exception:
                _log.exception("after_command failed", command=command)


async def _send(interaction: discord.Interaction, command: str, text: str) -> None:
    """An ephemeral reply, or a followup once the interaction was deferred."""
    text = text[:replies.MAX_MESSAGE]
    none = discord.AllowedMentions.none()
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=none)
        else:
            await interaction.response.send_message(text, ephemeral=True,
                                                    allowed_mentions=none)
    except discord.HTTPException as err:
        _log.warning("could not reply", command=command, error=repr(err))


def option_text_problem(data: Any) -> str | None:
    """The Discord entry point's one text check (printcore.text's rule) over an
    interaction's options (``interaction.data["options"]``, nested for subcommands): the
    reply to send when a text option cannot be stored, or None when all are fine."""
    pending = list((data or {}).get("options") or [])
    while pending:
        option = pending.pop()
        if not isinstance(option, dict):
            continue
        pending.extend(option.get("options") or [])
        value = option.get("value")
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                return f"`{option.get('name', 'option')}`: {problem} Nothing was changed."
    return None


def _who(interaction: discord.Interaction) -> tuple[str, str]:
    user = interaction.user
    return str(user.id), user.display_name


def _threaded(call: Callable[[], str]) -> Callable[[], Awaitable[str]]:
    """``call`` (blocking: the service does database work) run in a worker thread."""
    return lambda: asyncio.to_thread(call)


def _choice_name(printer: Printer) -> str:
    label = f" ({printer.label})" if printer.label else ""
    return f"{printer.name}{label}: {printer.status.replace('_', ' ')}"[:100]
