"""Events about the lab itself rather than one job or printer: admin actions (staff
added, password changed, a workstation signed out, settings, outbox retries), integrity
repairs that concern no single job, and retention runs.

They go to the one event log with ``subject="lab"`` and ``subject_id=0``, so they are
read back with ``EventLog.for_subject(LAB_SUBJECT, LAB_ID)``. ``kind`` names the action
(``staff_added``, ``password_changed``, ``audit_repaired`` ...); ``details`` is JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from printcore.events import Actor, Event

__all__ = ["LAB_ID", "LAB_SUBJECT", "lab_event"]

LAB_SUBJECT = "lab"
LAB_ID = 0


def lab_event(kind: str, actor: Actor, at: datetime, **details: Any) -> Event:
    """An event about the lab (``at`` is UTC); append it in the same unit of work as the
    change it records."""
    return Event(subject=LAB_SUBJECT, subject_id=LAB_ID, kind=kind, actor=actor, at=at,
                 details=dict(details))
