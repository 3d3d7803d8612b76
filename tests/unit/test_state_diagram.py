"""docs/glossary.md runs: its state diagram is the one generated from ``JobLifecycle``, its
transition table matches the machine, and its Python example executes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from statemachine import State, StateMachine

from printcore.diagrams import mermaid
from printcore.requests.lifecycle import EVENTS, JobLifecycle

GLOSSARY = Path(__file__).resolve().parents[2] / "docs" / "glossary.md"


def _blocks(language: str) -> list[str]:
    text = GLOSSARY.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def test_the_glossary_diagram_is_generated_from_the_machine() -> None:
    expected = mermaid(JobLifecycle)
    blocks = _blocks("mermaid")
    assert len(blocks) == 1, "docs/glossary.md needs exactly one ```mermaid block"
    assert blocks[0] == expected, (
        "docs/glossary.md is stale; replace its ```mermaid block with:\n\n"
        f"```mermaid\n{expected}```\n"
    )


def test_the_diagram_shows_every_state_and_event() -> None:
    text = mermaid(JobLifecycle)
    assert text.startswith("stateDiagram-v2\n") and text.endswith("\n")
    for state in JobLifecycle.states:
        assert f"    {state.id}: {state.name}\n" in text
    for event in EVENTS:
        assert re.search(rf" --> \w+: {event}$", text, flags=re.MULTILINE), event
    assert "    [*] --> uploaded\n" in text
    assert "    rejected --> [*]\n" in text and "    deleted --> [*]\n" in text
    assert "paid_picked_up --> [*]" not in text


class TrafficLight(StateMachine):
    green = State("Go", initial=True)
    yellow = State("Slow")
    red = State("Stop")
    off = State("Off", final=True)

    cycle = green.to(yellow) | yellow.to(red) | red.to(green)
    shut_down = red.to(off)


def test_mermaid_of_another_machine() -> None:
    assert mermaid(TrafficLight) == (
        "stateDiagram-v2\n"
        "    direction LR\n"
        "    [*] --> green\n"
        "    green: Go\n"
        "    yellow: Slow\n"
        "    red: Stop\n"
        "    off: Off\n"
        "    green --> yellow: cycle\n"
        "    yellow --> red: cycle\n"
        "    red --> green: cycle\n"
        "    red --> off: shut_down\n"
        "    off --> [*]\n"
    )


def _table_transitions() -> set[tuple[str, str, str]]:
    rows = re.findall(
        r"^\| (\w+) \| ([\w ]+?) → ([\w()]+) \|", GLOSSARY.read_text(encoding="utf-8"), re.MULTILINE
    )
    found = set()
    for event, sources, target in rows:
        if event == "transition":  # the header row
            continue
        for source in sources.split(" or "):
            found.add((event, source.strip(), "deleted" if target == "(removed)" else target))
    return found


def test_the_glossary_transition_table_matches_the_machine() -> None:
    machine = {
        (str(event.id), t.source.id, target.id)
        for state in JobLifecycle.states
        for t in state.transitions
        for event in t.events
        for target in t.targets
    }
    assert _table_transitions() == machine


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_the_glossary_examples_run(index: int) -> None:
    code = _blocks("python")[index]
    # Running our own documentation is the point of this test.
    exec(compile(code, f"{GLOSSARY.name}[python {index}]", "exec"), {"__name__": "glossary"})


def test_allowed_events_table_matches_the_machine() -> None:
    """The lookup table behind allowed_events() agrees with a live machine in every state."""
    from datetime import UTC, datetime

    from printcore.requests.job import Job
    from printcore.requests.lifecycle import JobLifecycle, allowed_events

    for state in JobLifecycle.states:
        job = Job("A B", "a@b.c", "ME", "", "filament", "Red", datetime.now(UTC),
                  status=state.value)
        machine = JobLifecycle(model=job, state_field="status")
        assert set(allowed_events(job)) == {e.id for e in machine.allowed_events}, state.value
