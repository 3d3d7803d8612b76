"""State diagrams generated from the state machines themselves, so docs cannot go stale."""

from __future__ import annotations

from typing import Any

__all__ = ["mermaid"]


def mermaid(machine_cls: Any) -> str:
    """A Mermaid ``stateDiagram-v2`` of a python-statemachine class, e.g. ``JobLifecycle``.

    Reads only the class's declared ``states`` (in declaration order; each with ``id``,
    ``name``, ``initial``, ``final`` and ``transitions``) and each transition's ``source``,
    ``targets`` and ``events``. Returns the diagram text (no code fence), one statement per
    line, ending with a newline: ``[*] --> initial``, a label per state, an edge per
    transition labelled with its event names, and ``final --> [*]`` for final states.
    Deterministic, so a doc can embed it and a test can compare it.
    """
    lines = ["stateDiagram-v2", "    direction LR"]
    states = list(machine_cls.states)
    lines += [f"    [*] --> {s.id}" for s in states if s.initial]
    lines += [f"    {s.id}: {s.name}" for s in states]
    for state in states:
        for transition in state.transitions:
            label = ", ".join(str(event.id) for event in transition.events)
            for target in transition.targets:
                lines.append(f"    {transition.source.id} --> {target.id}: {label}")
    lines += [f"    {s.id} --> [*]" for s in states if s.final]
    return "\n".join(lines) + "\n"
