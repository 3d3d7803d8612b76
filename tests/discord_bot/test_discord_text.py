"""The Discord entry point's text check: a slash command whose text options break
printcore's text rule (lone surrogates, NUL, ESC, DEL, C1 controls, line breaks in a
one-line option) is answered with an ephemeral reply naming the option, and the command
does not run (nothing queued).

Bad inputs tried: ``"a\\x00b"``, ``"\\udfff"``, ``"\\x1b[31m"``, ``"\\x7f"``, ``"\\x85"``,
``"two\\nlines"`` in ``/join job``; a bad value nested in a subcommand's options.
"""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from _discord_fakes import FakeInteraction, FakeUser, make_lab

from adapters.discord import PrintcoreBot
from adapters.discord.commands import option_text_problem


def _interaction(options: list[dict[str, Any]]) -> FakeInteraction:
    interaction = FakeInteraction(FakeUser(1001, "Ann"))
    interaction.type = discord.InteractionType.application_command  # type: ignore[attr-defined]
    interaction.data = {"name": "join", "options": options}  # type: ignore[attr-defined]
    return interaction


@pytest.mark.parametrize("bad", ["a\x00b", "\udfff", "\x1b[31m", "\x7f", "\x85", "two\nlines"])
def test_a_bad_text_option_is_refused_and_nothing_is_queued(backend: Any, bad: str) -> None:
    lab = make_lab(backend)
    bot = PrintcoreBot(lab.service, guild_id=None, channel_id=None)
    interaction = _interaction([{"name": "job", "type": 3, "value": bad},
                                {"name": "est_time", "type": 3, "value": "1h"}])
    allowed = asyncio.run(bot.tree.interaction_check(interaction))  # type: ignore[arg-type]
    assert allowed is False
    assert interaction.answer.ephemeral
    assert interaction.text.startswith("`job`:") and "Nothing was changed" in interaction.text
    assert lab.service.status()[1] == []


def test_good_options_pass_and_nested_ones_are_checked(backend: Any) -> None:
    lab = make_lab(backend)
    bot = PrintcoreBot(lab.service, guild_id=None, channel_id=None)
    good = _interaction([{"name": "job", "type": 3, "value": "Bracket, v2 — ünïcode ✓"}])
    assert asyncio.run(bot.tree.interaction_check(good)) is True  # type: ignore[arg-type]
    assert good.sent == []
    nested = {"options": [{"name": "report", "type": 1,
                           "options": [{"name": "note", "type": 3, "value": "x\x00"}]}]}
    assert "`note`" in (option_text_problem(nested) or "")
