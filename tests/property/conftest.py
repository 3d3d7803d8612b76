"""Shared pieces of the property tests: a lab on the in-memory fakes, built fresh for every
hypothesis example (hence a session-scoped *factory*, not a function-scoped fixture), and
a way to bring a job to any state of the lifecycle through the service."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from printcore import REJECTION_REASONS, Actor, Job, PrintRequests, StaffDirectory, Submission
from printcore.memory import FixedClock, MemoryOutboxStore, MemorySigner, PlainHasher
from printcore.ports import Notice
from printcore.requests.memory import MemoryDatabase, MemoryFileStore, MemoryUnitOfWork

STAFF = Actor.staff("Ana Lee", "front-desk")

#: How to reach each state from ``uploaded`` (a sliced file is always added first).
PATHS: dict[str, tuple[str, ...]] = {
    "uploaded": (),
    "pending": ("approve",),
    "rejected": ("reject",),
    "deleted": ("delete",),
    "ready_to_print": ("approve", "confirm"),
    "printing": ("approve", "confirm", "start_print"),
    "completed": ("approve", "confirm", "start_print", "complete"),
    "paid_picked_up": ("approve", "confirm", "start_print", "complete", "pick_up"),
}


@attrs.frozen
class Snapshot:
    job: Job | None
    events: list[Any]
    files: dict[str, bytes]
    metadata: dict[str, Any]
    sent: list[Notice]


@attrs.define
class Lab:
    db: MemoryDatabase = attrs.Factory(MemoryDatabase)
    files: MemoryFileStore = attrs.Factory(MemoryFileStore)
    signer: MemorySigner = attrs.Factory(MemorySigner)
    clock: FixedClock = attrs.Factory(FixedClock)
    requests: PrintRequests = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.requests = PrintRequests(
            uow=self.uow, files=self.files, signer=self.signer, clock=self.clock
        )
        StaffDirectory(uow=self.uow, hasher=PlainHasher(), clock=self.clock).add(STAFF.name)

    def uow(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.db)

    @property
    def outbox(self) -> MemoryOutboxStore:
        """Committed outbox rows; ``outbox.sent`` lists their email notices."""
        return self.db.outbox

    def new_job(self) -> int:
        """A submitted job with one sliced file, in ``uploaded``."""
        submission = Submission(
            "Jane van Doe", "jane@university.edu", "Design", "DES 300", "filament", "black"
        )
        job = self.requests.submit(submission, self.files.stage("part.stl", b"solid", ".stl"))
        assert job.id is not None
        self.requests.add_sliced_file(
            job.id, STAFF, self.files.stage("part.gcode.3mf", b"G1 X0", ".gcode.3mf"), None
        )
        return job.id

    def job_in(self, state: str) -> int:
        job_id = self.new_job()
        for event in PATHS[state]:
            self.fire(job_id, event)
        return job_id

    def confirm_token(self, job_id: int) -> str:
        """The newest confirmation link sent for the job, or a well-signed one with no nonce."""
        for notice in reversed(self.outbox.sent):
            if notice.kind == "approved" and notice.job_id == job_id:
                token: str = notice.context["confirm_token"]
                return token
        return self.signer.dumps("confirm", {"job": job_id, "nonce": None, "exp": 2**40})

    def sliced_name(self, job_id: int) -> str:
        sliced = [
            e for e in self.db.events if e.subject_id == job_id and e.kind == "add_sliced_file"
        ]
        name: str = sliced[0].details["stored_name"]
        return name

    def fire(self, job_id: int, event: str) -> Job:
        """``event`` through the service, with valid arguments."""
        svc = self.requests
        actions: dict[str, Callable[[], Job]] = {
            "approve": lambda: svc.approve(job_id, STAFF, 10.48, 0.9, self.sliced_name(job_id)),
            "reject": lambda: svc.reject(job_id, STAFF, reasons=[REJECTION_REASONS[1]]),
            "confirm": lambda: svc.confirm(self.confirm_token(job_id)),
            "force_confirm": lambda: svc.force_confirm(job_id, STAFF, "Agreed in person."),
            "start_print": lambda: svc.start_print(job_id, STAFF, printer="Prusa MK4 #1"),
            "fail_print": lambda: svc.fail_print(job_id, STAFF, "Warped corner."),
            "complete": lambda: svc.complete(job_id, STAFF),
            "pick_up": lambda: svc.pick_up(job_id, STAFF, 11.0, "TXN-7", "Jane van Doe"),
            "revert_completion": lambda: svc.revert_completion(job_id, STAFF, "Not done yet."),
            "revert_pickup": lambda: svc.revert_pickup(job_id, STAFF, "Wrong receipt."),
            "delete": lambda: svc.delete(job_id, STAFF, "A duplicate request."),
        }
        return actions[event]()

    def snapshot(self, job_id: int) -> Snapshot:
        return Snapshot(
            job=copy.deepcopy(self.db.jobs.get(job_id)),
            events=list(self.db.events),
            files=dict(self.files.files),
            metadata=copy.deepcopy(self.files.metadata),
            sent=list(self.outbox.sent),
        )


@pytest.fixture(scope="session")
def new_lab() -> Callable[[], Lab]:
    """Call it inside a hypothesis test for a fresh, empty lab per example."""
    return Lab
