"""Fakes for the Discord adapter's tests: interactions, users, attachments, channels, a
client; and ``make_lab``, a real ``QueueService`` with two printers behind the real
discord.py command callbacks, whose notices are read back from the committed outbox."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import discord

from adapters.discord.commands import QueueCommands
from adapters.discord.tree import build_commands
from printcore.memory import FixedClock
from printcore.outbox import OutboxMessage
from printcore.queue.ports import QueueNotice, queue_notice_of
from printcore.queue.service import QueueService

T0 = datetime(2026, 9, 7, 15, 0, tzinfo=UTC)  # a Monday, 10:00 in Chicago
PRINTERS = [("X1C-1", "Bambu X1C, bench 1"), ("X1C-2", "Bambu X1C, bench 2")]


# --- Discord fakes ----------------------------------------------------------------------


@attrs.define
class Sent:
    """One thing the bot did with an interaction: ``kind`` is message, defer or followup."""

    kind: str
    content: str | None
    ephemeral: bool | None


@attrs.define
class FakeUser:
    id: int
    display_name: str
    dms_closed: bool = False
    dms: list[str] = attrs.Factory(list)
    fail: BaseException | None = None

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    async def send(self, content: str, **_: Any) -> None:
        if self.dms_closed:
            raise discord.Forbidden(http_response(403), "Cannot send messages to this user")
        if self.fail is not None:
            raise self.fail
        self.dms.append(content)


def http_response(status: int) -> Any:
    """What discord.HTTPException reads from an aiohttp response."""
    return SimpleNamespace(status=status, reason="fake")


class FakeResponse:
    def __init__(self, log: list[Sent]) -> None:
        self._log = log
        self._done = False

    def is_done(self) -> bool:
        return self._done

    async def send_message(self, content: str, *, ephemeral: bool = False, **_: Any) -> None:
        assert not self._done, "answered twice"
        self._done = True
        self._log.append(Sent("message", content, ephemeral))

    async def defer(self, *, ephemeral: bool = False, thinking: bool = False) -> None:
        assert not self._done, "deferred after answering"
        self._done = True
        self._log.append(Sent("defer", None, ephemeral))


class FakeFollowup:
    def __init__(self, log: list[Sent]) -> None:
        self._log = log

    async def send(self, content: str, *, ephemeral: bool = False, **_: Any) -> None:
        self._log.append(Sent("followup", content, ephemeral))


class FakeInteraction:
    """Just what the command callbacks use of a ``discord.Interaction``."""

    def __init__(self, user: FakeUser) -> None:
        self.user = user
        self.sent: list[Sent] = []
        self.response = FakeResponse(self.sent)
        self.followup = FakeFollowup(self.sent)

    @property
    def answer(self) -> Sent:
        """The member-visible answer (the message, or the followup after a defer)."""
        answers = [s for s in self.sent if s.kind != "defer"]
        assert len(answers) == 1, self.sent
        return answers[0]

    @property
    def text(self) -> str:
        return self.answer.content or ""


@attrs.define
class FakeAttachment:
    """A ``discord.Attachment`` serving ``data`` (e.g. a fixture file's bytes)."""

    filename: str
    data: bytes = b""
    content_type: str | None = None
    url: str = "https://cdn.discordapp.com/attachments/1/2/file"
    declared_size: int | None = None
    saves: int = 0

    @property
    def size(self) -> int:
        return len(self.data) if self.declared_size is None else self.declared_size

    async def save(self, fp: Any, **_: Any) -> int:
        self.saves += 1
        Path(fp).write_bytes(self.data)
        return len(self.data)

    async def read(self, **_: Any) -> bytes:
        return self.data


@attrs.define
class FakeChannel:
    """A text channel; ``posts`` are (content, allowed_mentions), ``threads`` who sent.
    ``fail``: raised by the next sends instead of posting (e.g. a 503); ``hang``: seconds
    each send sleeps first."""

    id: int
    posts: list[tuple[str, Any]] = attrs.Factory(list)
    threads: list[threading.Thread] = attrs.Factory(list)
    fail: BaseException | None = None
    hang: float = 0.0

    async def send(self, content: str, *, allowed_mentions: Any = None, **_: Any) -> None:
        if self.hang:
            await asyncio.sleep(self.hang)
        if self.fail is not None:
            raise self.fail
        self.posts.append((content, allowed_mentions))
        self.threads.append(threading.current_thread())


@attrs.define
class FakeClient:
    """What DiscordSender uses of a ``discord.Client``."""

    channel: FakeChannel | None
    users: dict[int, FakeUser] = attrs.Factory(dict)

    def get_channel(self, channel_id: int) -> FakeChannel | None:
        return self.channel if self.channel and self.channel.id == channel_id else None

    async def fetch_channel(self, channel_id: int) -> FakeChannel:
        raise discord.NotFound(http_response(404), "Unknown Channel")

    def get_user(self, user_id: int) -> FakeUser | None:
        return None

    async def fetch_user(self, user_id: int) -> FakeUser:
        if user_id not in self.users:
            raise discord.NotFound(http_response(404), "Unknown User")
        return self.users[user_id]


# --- the queue --------------------------------------------------------------------------


@attrs.define
class Notices:
    """What the queue told members: its committed ``discord`` outbox rows."""

    uow: Any

    def messages(self) -> list[OutboxMessage]:
        with self.uow() as uow:
            rows = uow.outbox.list(subject="ticket", limit=10_000)
        return [m for m in reversed(rows) if m.channel == "discord"]

    @property
    def sent(self) -> list[QueueNotice]:
        return [queue_notice_of(m) for m in self.messages()]


@attrs.define
class Lab:
    """A real QueueService with two printers, and handy members."""

    service: QueueService
    clock: FixedClock
    notices: Notices
    handler: QueueCommands
    commands: dict[str, Any]

    def ask(self, user: FakeUser, command: str, **options: Any) -> FakeInteraction:
        """Run one slash command's real discord.py callback with a fake interaction."""
        interaction = FakeInteraction(user)
        if command == "report started":
            callback = self.commands["report"].get_command("started").callback
        else:
            callback = self.commands[command].callback
        asyncio.run(callback(interaction, **options))
        return interaction

    def tickets(self, user: FakeUser) -> list[Any]:
        return self.service.myjobs(str(user.id))


def make_lab(factory: Any, reply_timeout: float = 5.0) -> Lab:
    clock = FixedClock(T0)
    notices = Notices(factory)
    service = QueueService(uow=factory, clock=clock)
    service.sync_printers(PRINTERS)
    handler = QueueCommands(service, reply_timeout=reply_timeout, max_file_bytes=5_000_000)
    commands = {c.name: c for c in build_commands(handler)}
    return Lab(service, clock, notices, handler, commands)
