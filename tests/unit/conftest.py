"""Shared fixtures for printcore's unit tests: the lab built on the in-memory fakes.

Time moves only with ``lab.clock.advance(...)``; nothing is patched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import pytest

from printcore import Actor, Job, JobFile, PrintRequests, StaffDirectory, Submission
from printcore.memory import FixedClock, MemoryOutboxStore, MemorySigner, PlainHasher
from printcore.ports import Notice
from printcore.requests.memory import MemoryDatabase, MemoryFileStore, MemoryUnitOfWork
from printcore.requests.ports import StagedFile
from printcore.slicing import SliceEstimate

ANA = Actor.staff("Ana Lee", "front-desk")
BEN = Actor.staff("Ben Okafor", "back-room")


def a_submission(**overrides: Any) -> Submission:
    """A valid upload form; override any field."""
    values: dict[str, Any] = {
        "student_name": "Jane van Doe",
        "email": "jane.doe@university.edu",
        "discipline": "Mechanical Engineering",
        "class_number": "ME 101",
        "print_method": "filament",
        "color": "light blue",
        "preferred_printer": "",
        "notes": "",
    }
    values.update(overrides)
    return Submission(**values)


@attrs.define
class Snapshot:
    """Everything a refused action must leave exactly as it was."""

    job: Job | None
    events: list[Any]
    files: dict[str, bytes]
    metadata: dict[str, Any]
    sent: list[Notice]


@attrs.define
class Lab:
    """The print request service on fakes, with two staff members (Ana and Ben)."""

    ana: ClassVar[Actor] = ANA
    ben: ClassVar[Actor] = BEN

    db: MemoryDatabase = attrs.Factory(MemoryDatabase)
    files: MemoryFileStore = attrs.Factory(MemoryFileStore)
    signer: MemorySigner = attrs.Factory(MemorySigner)
    clock: FixedClock = attrs.Factory(FixedClock)

    def uow(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.db)

    @property
    def outbox(self) -> MemoryOutboxStore:
        """Committed outbox rows; ``outbox.sent`` lists their email notices."""
        return self.db.outbox

    @property
    def requests(self) -> PrintRequests:
        return PrintRequests(
            uow=self.uow, files=self.files, signer=self.signer, clock=self.clock
        )

    @property
    def staff(self) -> StaffDirectory:
        return StaffDirectory(uow=self.uow, hasher=PlainHasher(), clock=self.clock)

    # --- building jobs --------------------------------------------------------------

    def stage_model(
        self, name: str = "bracket.stl", content: bytes = b"solid bracket"
    ) -> StagedFile:
        return self.files.stage(name, content, ".stl")

    def stage_sliced(
        self, name: str = "bracket.gcode.3mf", content: bytes = b"; sliced gcode"
    ) -> StagedFile:
        return self.files.stage(name, content, ".gcode.3mf")

    def submit(self, **overrides: Any) -> Job:
        return self.requests.submit(a_submission(**overrides), self.stage_model())

    def add_sliced(self, job_id: int, actor: Actor = ANA) -> JobFile:
        estimate = SliceEstimate(seconds=3240, grams=10.48, slicer="BambuStudio 01.09.07.52")
        return self.requests.add_sliced_file(job_id, actor, self.stage_sliced(), estimate)

    def approved(self, **overrides: Any) -> Job:
        job = self.submit(**overrides)
        assert job.id is not None
        sliced = self.add_sliced(job.id)
        return self.requests.approve(job.id, ANA, 10.48, 0.9, sliced.stored_name)

    def confirm_token(self, job_id: int) -> str:
        """The link token of the newest ``approved`` notice for the job."""
        notices = [n for n in self.outbox.sent if n.kind == "approved" and n.job_id == job_id]
        assert notices, f"no approved notice for job {job_id}"
        token: str = notices[-1].context["confirm_token"]
        return token

    def job_in(self, status: str) -> Job:
        """A job brought to ``status`` through the service, the way staff would."""
        svc = self.requests
        if status == "rejected":
            job = self.submit()
            assert job.id is not None
            return svc.reject(job.id, ANA, reasons=["Walls or details are too thin to print."])
        job = self.submit()
        assert job.id is not None
        if status == "uploaded":
            return job
        sliced = self.add_sliced(job.id)
        job = svc.approve(job.id, ANA, 10.48, 0.9, sliced.stored_name)
        if status == "pending":
            return job
        job = svc.confirm(self.confirm_token(job.id))
        if status == "ready_to_print":
            return job
        job = svc.start_print(job.id, ANA, printer="Prusa MK4 #2")
        if status == "printing":
            return job
        job = svc.complete(job.id, ANA)
        if status == "completed":
            return job
        job = svc.pick_up(job.id, BEN, 11.2, "TXN-0042", "Jane van Doe")
        if status == "paid_picked_up":
            return job
        raise ValueError(status)

    # --- looking -------------------------------------------------------------------

    def stored(self, job_id: int) -> Job | None:
        """The committed job, or None."""
        return copy.deepcopy(self.db.jobs.get(job_id))

    def snapshot(self, job_id: int) -> Snapshot:
        return Snapshot(
            job=self.stored(job_id),
            events=list(self.db.events),
            files=dict(self.files.files),
            metadata=copy.deepcopy(self.files.metadata),
            sent=list(self.outbox.sent),
        )

    def events_of(self, job_id: int) -> list[Any]:
        return self.requests.history(job_id)


@pytest.fixture
def make_submission() -> Callable[..., Submission]:
    return a_submission


@pytest.fixture
def lab() -> Lab:
    lab = Lab()
    lab.staff.add(ANA.name)
    lab.staff.add(BEN.name)
    return lab
