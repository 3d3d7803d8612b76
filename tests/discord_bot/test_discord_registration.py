"""The command tree Discord would receive: exactly the issue's commands, every name,
description and option within Discord's limits, checked on the real discord.py objects
and on the JSON payloads ``describe_commands()`` prints for ``printcore bot
--show-commands``.

Limits (Discord API, "Application Commands"): names match ``^[-_a-z0-9]{1,32}$`` for
chat-input commands and options (lowercase), descriptions are 1-100 characters, at most
25 options per command or subcommand, at most 25 choices.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import discord
import pytest
from discord import app_commands

from adapters.discord import COMMAND_NAMES, QueueCommands, build_commands, describe_commands

NAME = re.compile(r"^[-_a-z0-9]{1,32}$")

#: The tree the issue asks for: command → option names (``report`` → its subcommand).
EXPECTED = {
    "join": ["job", "est_time", "sliced_file"],
    "claim": ["printer"],
    "close": ["printer", "outcome", "photo", "finished_at", "took"],
    "report": ["started"],
    "notdone": ["remaining"],
    "cancel": [],
    "update_time": ["est_time"],
    "status": [],
    "myjobs": [],
    "predict": ["est_time"],
    "history": [],
}


def _walk(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield payload
    for option in payload.get("options", []):
        yield from _walk(option)


@pytest.fixture(scope="module")
def payloads() -> list[dict[str, Any]]:
    return describe_commands()


def test_the_tree_is_exactly_the_issues_commands(payloads: list[dict[str, Any]]) -> None:
    assert [p["name"] for p in payloads] == list(COMMAND_NAMES) == list(EXPECTED)
    for payload in payloads:
        assert [o["name"] for o in payload["options"]] == EXPECTED[payload["name"]]


def test_every_name_description_and_option_is_within_discords_limits(
        payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        for item in _walk(payload):
            assert NAME.fullmatch(item["name"]), item["name"]
            assert 1 <= len(item["description"]) <= 100, item["name"]
            assert len(item.get("options", [])) <= 25, item["name"]
            assert len(item.get("choices", [])) <= 25, item["name"]
            for choice in item.get("choices", []):
                assert 1 <= len(choice["name"]) <= 100


def test_payloads_are_json_and_carry_the_option_details(
        payloads: list[dict[str, Any]]) -> None:
    assert json.loads(json.dumps(payloads)) == payloads
    by_name = {p["name"]: {o["name"]: o for o in p["options"]} for p in payloads}
    string, attachment, subcommand = 3, 11, 1
    join = by_name["join"]
    assert (join["job"]["type"], join["job"]["required"]) == (string, True)
    assert join["est_time"]["required"] is False  # optional when a sliced file is attached
    assert (join["sliced_file"]["type"], join["sliced_file"]["required"]) == (attachment, False)
    assert by_name["claim"]["printer"]["autocomplete"] is True
    close = by_name["close"]
    assert close["printer"]["autocomplete"] is True
    assert [c["value"] for c in close["outcome"]["choices"]] == ["finished", "failed"]
    assert (close["photo"]["type"], close["photo"]["required"]) == (attachment, False)
    assert by_name["report"]["started"]["type"] == subcommand
    assert by_name["update_time"]["est_time"]["required"] is True
    assert by_name["notdone"]["remaining"]["required"] is False
    assert by_name["predict"]["est_time"]["required"] is False


def test_the_discord_py_objects_agree() -> None:
    commands = build_commands(QueueCommands(object()))  # type: ignore[arg-type]
    for command in commands:
        assert NAME.fullmatch(command.name)
        assert 1 <= len(command.description) <= 100
        if isinstance(command, app_commands.Group):
            children = command.commands
            assert [c.name for c in children] == EXPECTED[command.name]
            for child in children:
                assert isinstance(child, app_commands.Command)
                assert 1 <= len(child.description) <= 100 and not child.parameters
        else:
            assert [p.name for p in command.parameters] == EXPECTED[command.name]
            for parameter in command.parameters:
                assert NAME.fullmatch(parameter.name)
                assert 1 <= len(parameter.description) <= 100
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents.default()))
    for command in commands:
        tree.add_command(command)
    assert sorted(c.name for c in tree.get_commands()) == sorted(EXPECTED)
