"""Model-based stateful test of print requests (CONVENTIONS #10).

A hypothesis ``RuleBasedStateMachine`` drives the real ``PrintRequests`` service on a SQL
unit of work (a migrated SQLite file, and PostgreSQL) and the real ``LocalFileStore`` in a
temporary folder, side by side with a trivially correct model: per job its expected
status, version, events (what, from → to, who, when), notices, files (with their SHA-256),
approved figures, printer, rejection reasons, failed attempts and payments.

Each rule fires one action and predicts its outcome from the model and DESIGN.md's
transition table: the new status, or the printcore error (InvalidTransitionError,
ValidationError, ConcurrentChangeError, NotFoundError, a TokenError subclass). ``walk``
takes one job through many moves (poking it with every kind of event on the way), and
time passes so that confirmation links expire. After every step (and every move of a
walk) the database, the event log, the outbox and the storage folders must agree with the
model: refused actions change nothing, successful ones bump the version by exactly one and
append exactly one event; each live job's files lie in exactly one folder, the one of its
status, beside a ``metadata.json`` that says so; a deleted job has no row and no folder
but keeps its events; payments are voided, never deleted; the staging folder is empty.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError

from _support import service_missing
from adapters.files import LocalFileStore
from adapters.files.store import METADATA_NAME
from adapters.sql import SqlUnitOfWork, check_connection, make_engine, upgrade
from adapters.sql.engine import normalise_url
from adapters.sql.tables import events as events_table
from adapters.sql.tables import metadata as sql_metadata
from adapters.tokens import ItsdangerousSigner
from printcore import (
    REJECTION_REASONS,
    Actor,
    ConcurrentChangeError,
    InvalidTransitionError,
    Job,
    JobStatus,
    NotFoundError,
    Pricing,
    PrintcoreError,
    PrintRequests,
    SliceEstimate,
    StaffDirectory,
    StagedFile,
    Submission,
    TokenExpiredError,
    TokenTamperedError,
    TokenUsedError,
    ValidationError,
    job_basename,
)
from printcore.memory import FixedClock, PlainHasher
from printcore.ports import Notice
from printcore.requests.lifecycle import MAX_QUOTE_CENTS
from printcore.requests.pricing import MAX_GRAMS, MAX_HOURS, round_up_to_half_hour

#: DESIGN.md's transition table: (state, event) → target state. Everything else is refused.
TABLE: dict[tuple[str, str], str] = {
    ("uploaded", "approve"): "pending",
    ("uploaded", "reject"): "rejected",
    ("uploaded", "delete"): "deleted",
    ("pending", "confirm"): "ready_to_print",
    ("pending", "force_confirm"): "ready_to_print",
    ("pending", "delete"): "deleted",
    ("ready_to_print", "start_print"): "printing",
    ("printing", "fail_print"): "ready_to_print",
    ("printing", "complete"): "completed",
    ("completed", "pick_up"): "paid_picked_up",
    ("completed", "revert_completion"): "printing",
    ("paid_picked_up", "revert_pickup"): "completed",
}
#: Changes outside the lifecycle (issue 12): logged without from/to status, allowed in
#: every state of a live job.
NOT_MOVING = frozenset({"add_sliced_file", "review", "unreview", "notes", "edit"})
#: Correcting a pending job's quote (issue 13): pending only, logged without from/to
#: status, a new link emailed (the old one refused from then on).
REQUOTE = "requote"
LOGGED_WITHOUT_STATUS = NOT_MOVING | {REQUOTE}
#: Where a sliced file may still be added (the job is not printed yet).
SLICED_ALLOWED = ("uploaded", "pending", "ready_to_print")
#: The notice each successful action sends.
NOTICE_OF: dict[str, str] = {
    "submit": "submitted",
    "approve": "approved",
    "reject": "rejected",
    "confirm": "confirmed",
    "complete": "completed",
    "pick_up": "payment_receipt",
    "requote": "requoted",
}
#: Events staff fire by job id (``confirm`` goes through the student's link instead).
STAFF_EVENTS: tuple[str, ...] = tuple(sorted({e for _, e in TABLE} - {"confirm"})) + (
    "add_sliced_file", REQUOTE,
)
STATUS_FOLDERS = {s.folder for s in JobStatus if s is not JobStatus.DELETED}

CONFIRMATION_TTL = timedelta(days=2)
FINAL = ("rejected", "deleted")
SLICED_CONTENT = b"G1 X10 Y10 E0.5"
#: How to bring a new job to each state with good values, by way of every detour.
PATHS: dict[str, tuple[str, ...]] = {
    "uploaded": (),
    "rejected": ("reject",),
    "deleted": ("delete",),
    "pending": ("add_sliced_file", "approve"),
    "ready_to_print": ("add_sliced_file", "approve", "confirm"),
    "printing": (
        *("add_sliced_file", "approve", "force_confirm"),
        *("start_print", "fail_print", "start_print"),
    ),
    "completed": (
        *("add_sliced_file", "approve", "confirm", "start_print"),
        *("complete", "revert_completion", "complete"),
    ),
    "paid_picked_up": (
        *("add_sliced_file", "approve", "confirm", "start_print", "complete"),
        *("pick_up", "revert_pickup", "pick_up"),
    ),
}
#: The states ``first_jobs`` brings jobs to; the short-lived pending state twice as often.
START_STATES = (*PATHS, "pending")
#: The moves off the main path that ``walk`` takes when told to: staff stepping in,
#: going back.
DETOURS = ("force_confirm", "fail_print", "revert_completion", "revert_pickup")
#: Hours that pass after a job's move in ``walk`` and ``first_jobs`` (the confirmation
#: link lasts 48 h: at 48 h it still works, at 49 h it has expired).
WAITS = (0, 1, 24, 48, 49, 72)

ANA = Actor.staff("Ana Lee", "front-desk")
BEN = Actor.staff("Ben Okafor", "back-room")
FORMER = Actor.staff("Cy Former", "front-desk")  # on the staff list, deactivated
OUTSIDERS = (
    FORMER,
    Actor.staff("Nobody Known", "front-desk"),
    Actor.student("Ana Lee"),  # a staff name, but not acting as staff
    Actor.system(),
)

STUDENTS = ("Jane van Doe", "Zoë Ångström-Ōta", "李 小龙", "O'Brien, Pat")
COLORS = ("light blue", "black", "Red/Orange", "Ø")


# --- strategies: each value comes tagged with whether the service should accept it ------


def _tagged(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``(value, acceptable)``; three in four values are acceptable, so jobs move on."""
    ok = good.map(lambda v: (v, True))
    return st.one_of(ok, ok, ok, bad.map(lambda v: (v, False)))


GRAMS = _tagged(
    st.one_of(
        st.floats(min_value=0, max_value=MAX_GRAMS, exclude_min=True),
        st.integers(min_value=1, max_value=MAX_GRAMS),
    ),
    st.sampled_from(
        [0, 0.0, -1.5, math.nan, math.inf, -math.inf, MAX_GRAMS + 0.5, 10**9, True, None, "12"]
    ),
)
HOURS = _tagged(
    st.one_of(
        st.floats(min_value=0, max_value=MAX_HOURS, exclude_min=True),
        st.integers(min_value=1, max_value=500),
    ),
    st.sampled_from([0, -2.0, math.nan, math.inf, False, None, "1.5", MAX_HOURS + 0.5, 1e300]),
)
REASON = _tagged(
    st.sampled_from(["Agreed at the desk.", "Nozzle clog.", "  Wrong plate  ", "x"]),
    st.sampled_from(["", "   ", "\n\t"]),
)
COST = st.none() | _tagged(
    st.integers(min_value=0, max_value=MAX_QUOTE_CENTS),
    st.sampled_from([-1, MAX_QUOTE_CENTS + 1, True, 1.5, "300"]),
)
TEXT = _tagged(
    st.sampled_from(["TXN-0042", "Jane van Doe", " R-7 ", "a"]), st.sampled_from(["", "  "])
)
SLICED_EXTENSIONS = st.sampled_from([".gcode.3mf", ".gcode", ".3mf"])
ESTIMATES = st.none() | st.builds(
    SliceEstimate,
    seconds=st.none() | st.integers(min_value=1, max_value=10**6),
    grams=st.none() | st.floats(min_value=0.01, max_value=5000),
    slicer=st.none() | st.just("PrusaSlicer 2.8.1"),
)
CONTENT = st.binary(min_size=1, max_size=64)
SUBMISSION: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from(STUDENTS),
    "method": st.sampled_from(["filament", "resin"]),
    "color": st.sampled_from(COLORS),
    "extension": st.sampled_from([".stl", ".3mf", ".obj"]),
    "content": CONTENT,
}
STAFF = st.sampled_from([ANA, BEN])
#: One pick of ``walk``: the events to poke the job with first (and whether with good
#: values); whether to take the detour where there is one; whether the student clicks the
#: link a second too late; the hours that pass after the move.
PICK = st.fixed_dictionaries(
    {
        "pokes": st.lists(
            st.tuples(st.sampled_from((*STAFF_EVENTS, "confirm")), st.booleans()), max_size=3
        ),
        "detour": st.booleans(),
        "late": st.booleans(),
        "hours": st.sampled_from(WAITS),
    }
)
#: None: no expected_version; "current": the version the model holds (accepted).
VERSION_MODE = st.sampled_from([None, "current"])


#: For each event with values to get wrong: a call with values the service must refuse,
#: given the service, the job id, the actor and the job's newest sliced file.
BAD_VALUES: dict[str, Callable[[PrintRequests, int, Actor, str], Callable[[], Any]]] = {
    "approve": lambda svc, i, a, sliced: lambda: svc.approve(i, a, 0, 1.0, sliced),
    "reject": lambda svc, i, a, _: lambda: svc.reject(i, a, [" "], "  "),
    "force_confirm": lambda svc, i, a, _: lambda: svc.force_confirm(i, a, "  "),
    "fail_print": lambda svc, i, a, _: lambda: svc.fail_print(i, a, ""),
    "revert_completion": lambda svc, i, a, _: lambda: svc.revert_completion(i, a, "\t"),
    "revert_pickup": lambda svc, i, a, _: lambda: svc.revert_pickup(i, a, " "),
    "pick_up": lambda svc, i, a, _: lambda: svc.pick_up(i, a, 11.0, "TXN-2", "  "),
    "delete": lambda svc, i, a, _: lambda: svc.delete(i, a, "  "),
    "requote": lambda svc, i, a, _: lambda: svc.requote(i, a, 12.0, 1.0, " "),
}


# --- the model -------------------------------------------------------------------------

#: An event as the log must hold it: kind, from_status, to_status, actor kind, actor name,
#: workstation, time.
LoggedEvent = tuple[str, str | None, str | None, str, str, str | None, datetime]


@attrs.define
class ModelJob:
    job_id: int
    student_name: str
    folder_base: str
    print_method: str
    version: int
    status: str = "uploaded"
    events: list[LoggedEvent] = attrs.Factory(list)
    notices: list[str] = attrs.Factory(list)
    files: dict[str, str] = attrs.Factory(dict)  # stored name → sha256
    sliced: list[str] = attrs.Factory(list)
    authoritative_file: str | None = None
    failed_attempts: int = 0
    payments: int = 0
    voided: int = 0
    confirm_token: str | None = None
    confirm_expires_at: datetime | None = None
    weight_g: float | None = None
    time_hours: float | None = None
    cost_cents: int | None = None
    printer: str | None = None
    rejection_reasons: list[str] = attrs.Factory(list)
    email: str = "student@university.edu"
    discipline: str = "Design"
    class_number: str = "DES 300"
    color: str = ""
    reviewed_by: str | None = None
    staff_notes: str = ""
    stale_tokens: list[str] = attrs.Factory(list)  # links replaced by a requote

    def succeeded(self, event: str, target: str, actor: Actor, at: datetime) -> None:
        """One successful change: the version moves on by one and one event is logged."""
        moves = event not in LOGGED_WITHOUT_STATUS
        self.events.append(
            (
                event,
                self.status if moves else None,
                target if moves else None,
                actor.kind,
                actor.name,
                actor.workstation,
                at,
            )
        )
        self.status = target
        self.version += 1
        if event in NOTICE_OF:
            self.notices.append(NOTICE_OF[event])


Expected = str | type[PrintcoreError]


class JobMachine(RuleBasedStateMachine):
    """One example: empty database, empty storage, two active staff and a former one."""

    jobs = Bundle("jobs")

    def __init__(self, engine: Engine, scratch: Path) -> None:
        super().__init__()
        self.engine = engine
        _empty_tables(engine)
        self.root = Path(tempfile.mkdtemp(prefix="store-", dir=scratch))
        self.store = LocalFileStore(self.root)
        self.store.prepare()
        self.clock = FixedClock()
        self.signer = ItsdangerousSigner("stateful-test-secret")
        self.svc = PrintRequests(
            uow=self.uow,
            files=self.store,
            signer=self.signer,
            clock=self.clock,
            confirmation_ttl=CONFIRMATION_TTL,
        )
        staff = StaffDirectory(uow=self.uow, hasher=PlainHasher(), clock=self.clock)
        for actor in (ANA, BEN, FORMER):
            staff.add(actor.name)
        staff.deactivate(FORMER.name)
        self.model: dict[int, ModelJob] = {}

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)

    def sent_notices(self) -> list[Notice]:
        """The email notices of committed changes, oldest first (the SQL outbox)."""
        with self.uow() as uow:
            rows = uow.outbox.list(limit=1_000_000)
        return [m.notice() for m in reversed(rows) if m.channel == "email"]

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # --- helpers -----------------------------------------------------------------------

    def stage(self, content: bytes, original_name: str, extension: str) -> StagedFile:
        """What the upload adapter does: the bytes land in the store's staging folder."""
        path = self.store.staging_dir / f"{uuid.uuid4().hex}.part"
        path.write_bytes(content)
        return StagedFile(
            path, original_name, extension, len(content), hashlib.sha256(content).hexdigest()
        )

    def expect(
        self, m: ModelJob, event: str, *, version: int | None = None, bad: bool = False
    ) -> Expected:
        """The outcome the service must give, in its order of checks: staff, job, version,
        state, values."""
        if m.status == "deleted":
            return NotFoundError
        if version is not None and version != m.version:
            return ConcurrentChangeError
        if event == "add_sliced_file":
            return m.status if m.status in SLICED_ALLOWED else InvalidTransitionError
        if event in NOT_MOVING:
            return ValidationError if bad else m.status
        if event == REQUOTE:
            if m.status != "pending":
                return InvalidTransitionError
            return ValidationError if bad else m.status
        target = TABLE.get((m.status, event))
        if target is None:
            return InvalidTransitionError
        return ValidationError if bad else target

    @staticmethod
    def attempt(expected: Expected, call: Callable[[], Any]) -> Any:
        """Run ``call``; check it raised exactly ``expected`` or succeeded when a status
        was expected. Returns the result, or None when it raised."""
        try:
            result = call()
        except PrintcoreError as err:
            assert not isinstance(expected, str), f"expected success (→ {expected}), got {err!r}"
            assert type(err) is expected, f"expected {expected.__name__}, got {err!r}"
            return None
        assert isinstance(expected, str), f"expected {expected.__name__}, but it succeeded"
        return result

    def version_arg(self, m: ModelJob, mode: str | None) -> int | None:
        return m.version if mode == "current" else None

    def transition(
        self,
        job_id: int,
        event: str,
        actor: Actor,
        call: Callable[[], Job],
        *,
        version: int | None = None,
        bad: bool = False,
    ) -> Job | None:
        m = self.model[job_id]
        expected = self.expect(m, event, version=version, bad=bad)
        job = self.attempt(expected, call)
        if job is None:
            return None
        assert isinstance(expected, str)
        assert job.status == expected, (event, job.status, expected)
        m.succeeded(event, expected, actor, self.clock.now())
        if expected != "deleted":
            assert job.version == m.version
        return job  # type: ignore[no-any-return]

    def valid_call(
        self, job_id: int, event: str, actor: Actor, version: int | None
    ) -> Callable[[], Any]:
        """``event`` by ``actor`` with values the service accepts."""
        m, svc = self.model[job_id], self.svc
        sliced = m.sliced[-1] if m.sliced else ""
        calls: dict[str, Callable[[], Any]] = {
            "approve": lambda: svc.approve(job_id, actor, 10.48, 0.9, sliced, version),
            "reject": lambda: svc.reject(job_id, actor, [REJECTION_REASONS[0]], None, version),
            "force_confirm": lambda: svc.force_confirm(job_id, actor, "In person.", version),
            "start_print": lambda: svc.start_print(job_id, actor, "Prusa MK4 #1", version),
            "fail_print": lambda: svc.fail_print(job_id, actor, "Spaghetti.", version),
            "complete": lambda: svc.complete(job_id, actor, version),
            "pick_up": lambda: svc.pick_up(job_id, actor, 11.0, "TXN-1", "Jane", version),
            "revert_completion": lambda: svc.revert_completion(job_id, actor, "Oops.", version),
            "revert_pickup": lambda: svc.revert_pickup(job_id, actor, "Wrong job.", version),
            "delete": lambda: svc.delete(job_id, actor, "Duplicate.", version),
            REQUOTE: lambda: svc.requote(job_id, actor, 6.0 if m.weight_g == 5.0 else 5.0, 2.0,
                                         "Re-sliced with less infill.", None, version),
            "add_sliced_file": lambda: svc.add_sliced_file(
                job_id, actor, self.stage(SLICED_CONTENT, "s.gcode", ".gcode"), None, version
            ),
        }
        return calls[event]

    def after_approve(
        self, m: ModelJob, job: Job, weight: Any, hours: Any, authoritative_file: str
    ) -> None:
        """Check the figures (grams as given, hours rounded up to the half hour, cost by
        the pricing policy) and capture the confirmation link from the approval email."""
        assert job.weight_g == float(weight)
        assert job.time_hours is not None and (job.time_hours * 2).is_integer()
        assert Fraction(hours) <= Fraction(job.time_hours) < Fraction(hours) + Fraction(1, 2)
        assert job.cost_cents == Pricing().cost_cents(m.print_method, float(weight))
        m.weight_g, m.time_hours, m.cost_cents = job.weight_g, job.time_hours, job.cost_cents
        notice = self.sent_notices()[-1]
        assert (notice.kind, notice.job_id) == ("approved", m.job_id)
        m.confirm_token = notice.context["confirm_token"]
        m.confirm_expires_at = self.clock.now() + CONFIRMATION_TTL
        assert notice.context["expires_at"] == m.confirm_expires_at.isoformat()
        m.authoritative_file = authoritative_file

    def after_requote(self, m: ModelJob, job: Job, quote: tuple[float, float, int]) -> None:
        """The figures the model computed, the new link from the email (the old one goes
        stale) and its fresh expiry."""
        assert (job.weight_g, job.time_hours, job.cost_cents) == quote
        m.weight_g, m.time_hours, m.cost_cents = quote
        notice = self.sent_notices()[-1]
        assert (notice.kind, notice.job_id) == ("requoted", m.job_id)
        assert notice.context["old_cost_cents"] is not None
        if m.confirm_token is not None:
            m.stale_tokens.append(m.confirm_token)
        m.confirm_token = notice.context["confirm_token"]
        m.confirm_expires_at = self.clock.now() + CONFIRMATION_TTL
        assert notice.context["expires_at"] == m.confirm_expires_at.isoformat()

    def after_sliced(self, m: ModelJob, stored_name: str, content: bytes, actor: Actor) -> None:
        assert stored_name not in m.files, "a sliced file replaced an existing file"
        assert stored_name.startswith(f"{m.folder_base}_sliced")
        m.files[stored_name] = hashlib.sha256(content).hexdigest()
        m.sliced.append(stored_name)
        m.succeeded("add_sliced_file", m.status, actor, self.clock.now())

    # --- student side ------------------------------------------------------------------

    @initialize(
        target=jobs,
        starts=st.lists(
            st.tuples(
                st.sampled_from(START_STATES),
                st.fixed_dictionaries(SUBMISSION),
                st.sampled_from(WAITS),
            ),
            min_size=1,
            max_size=4,
        ),
    )
    def first_jobs(self, starts: list[tuple[str, dict[str, Any], int]]) -> MultipleResults[int]:
        """Every example starts with a few jobs brought through the service to any state
        (each move checked), some hours apart, so that the rules below meet every state
        (and expired links), whatever rules swarm testing turns off."""
        made = []
        for state, values, hours in starts:
            job_id = self.submit(**values)
            for event in PATHS[state]:
                self.fire_valid(job_id, event, ANA)
            assert self.model[job_id].status == state
            self.check_invariants_now()
            self.clock.advance(hours=hours)
            made.append(job_id)
        return multiple(*made)

    @rule(target=jobs, **SUBMISSION)
    def submit(self, name: str, method: str, color: str, extension: str, content: bytes) -> int:
        staged = self.stage(content, f"my part{extension}", extension)
        submission = Submission(name, "student@university.edu", "Design", "DES 300", method, color)
        job = self.svc.submit(submission, staged)
        assert job.id is not None and job.id not in self.model
        assert job.status == "uploaded"
        original = job.original
        assert original is not None
        m = ModelJob(
            job_id=job.id,
            student_name=name,
            folder_base=job_basename(name, method, color, job.id),
            print_method=method,
            version=job.version,
            color=color,
            events=[("submit", None, "uploaded", "student", name, None, self.clock.now())],
            notices=["submitted"],
            files={original.stored_name: hashlib.sha256(content).hexdigest()},
        )
        self.model[job.id] = m
        return job.id

    @rule(
        bad=st.sampled_from(
            [
                {"email": "no-at-sign"},
                {"student_name": "   "},
                {"print_method": "pla"},
                {"color": ""},
                {"notes": "x" * 2001},
            ]
        ),
        content=CONTENT,
    )
    def submit_invalid(self, bad: dict[str, str], content: bytes) -> None:
        values = {
            "student_name": "Jane van Doe",
            "email": "jane@university.edu",
            "discipline": "Design",
            "class_number": "DES 300",
            "print_method": "filament",
            "color": "black",
            **bad,
        }
        staged = self.stage(content, "part.stl", ".stl")
        self.attempt(ValidationError, lambda: self.svc.submit(Submission(**values), staged))

    @rule(
        job_id=jobs,
        which=st.sampled_from(["link", "link", "link", "link", "forged", "status_link",
                               "replaced_link"]),
    )
    def confirm(self, job_id: int, which: str) -> None:
        """The student clicks the link from the approval email (again, late, or after the
        job moved on), a forged link, the status-page link (signed for another use), or
        a link replaced by a corrected quote (refused as used, and named as replaced)."""
        m = self.model[job_id]
        token = m.confirm_token
        expected: Expected
        if which == "replaced_link" and m.stale_tokens:
            token = m.stale_tokens[-1]
            expected = NotFoundError if m.status == "deleted" else TokenUsedError
            self.attempt(expected, lambda: self.svc.confirm(token))
            if m.status == "pending":
                assert self.svc.replacing_requote(token) is not None
            return
        if which in ("forged", "replaced_link") or (which == "link" and token is None):
            forger = ItsdangerousSigner("not-the-lab-secret")
            token = forger.dumps("confirm", {"job": job_id, "nonce": "guess", "exp": 2**40})
            expected = TokenTamperedError
        elif which == "status_link":
            token = self.svc.status_token(job_id)  # signed, but for another purpose
            expected = TokenTamperedError
        elif m.status == "deleted":
            expected = NotFoundError
        elif m.status != "pending":
            expected = TokenUsedError  # used already, or the job moved on without it
        elif m.confirm_expires_at is not None and self.clock.now() > m.confirm_expires_at:
            expected = TokenExpiredError
        else:
            expected = "ready_to_print"
        assert token is not None
        job = self.attempt(expected, lambda: self.svc.confirm(token))
        if job is not None:
            assert isinstance(expected, str) and job.status == expected
            m.succeeded("confirm", expected, Actor.student(m.student_name), self.clock.now())
            assert job.version == m.version

    @rule(hours=st.integers(min_value=1, max_value=30), days=st.sampled_from([0, 0, 1, 2, 3]))
    def time_passes(self, hours: int, days: int) -> None:
        """Only the confirmation links care: they expire CONFIRMATION_TTL after approval."""
        self.clock.advance(days=days, hours=hours)

    @rule(job_id=jobs, seconds=st.sampled_from([-1, 0, 0, 1, 3600]))
    def click_link_around_expiry(self, job_id: int, seconds: int) -> None:
        """Time passes up to the job's link expiry (give or take), then the student clicks:
        at the expiry itself the link still works, a second later it does not."""
        m = self.model[job_id]
        if m.confirm_expires_at is not None:
            self.clock_to(m.confirm_expires_at + timedelta(seconds=seconds))
        self.confirm(job_id, "link")

    def clock_to(self, moment: datetime) -> None:
        """Let time pass until ``moment`` (time never goes back)."""
        if moment > self.clock.now():
            self.clock.advance(seconds=(moment - self.clock.now()).total_seconds())

    # --- staff side --------------------------------------------------------------------

    @rule(
        job_id=jobs,
        actor=STAFF,
        extension=SLICED_EXTENSIONS,
        estimate=ESTIMATES,
        content=CONTENT,
        mode=VERSION_MODE,
    )
    def add_sliced_file(
        self,
        job_id: int,
        actor: Actor,
        extension: str,
        estimate: SliceEstimate | None,
        content: bytes,
        mode: str | None,
    ) -> None:
        m = self.model[job_id]
        version = self.version_arg(m, mode)
        expected = self.expect(m, "add_sliced_file", version=version)
        staged = self.stage(content, f"plate{extension}", extension)
        stored = self.attempt(
            expected, lambda: self.svc.add_sliced_file(job_id, actor, staged, estimate, version)
        )
        if stored is not None:
            assert stored.estimate == estimate
            self.after_sliced(m, stored.stored_name, content, actor)

    @rule(
        job_id=jobs,
        actor=STAFF,
        weight=GRAMS,
        hours=HOURS,
        choice=st.sampled_from(["newest", "first", "newest", "other_job", "unknown", "blank"]),
        mode=VERSION_MODE,
    )
    def approve(
        self,
        job_id: int,
        actor: Actor,
        weight: tuple[Any, bool],
        hours: tuple[Any, bool],
        choice: str,
        mode: str | None,
    ) -> None:
        m = self.model[job_id]
        name, name_ok = self.pick_sliced(m, choice)
        bad = not (weight[1] and hours[1] and name_ok)
        job = self.transition(
            job_id,
            "approve",
            actor,
            lambda: self.svc.approve(
                job_id, actor, weight[0], hours[0], name, self.version_arg(m, mode)
            ),
            version=self.version_arg(m, mode),
            bad=bad,
        )
        if job is not None:
            self.after_approve(m, job, weight[0], hours[0], name)

    def pick_sliced(self, m: ModelJob, choice: str) -> tuple[str, bool]:
        """A name for the authoritative file, and whether it is one of the job's sliced files."""
        if choice == "newest" and m.sliced:
            return m.sliced[-1], True
        if choice == "first" and m.sliced:
            return m.sliced[0], True
        if choice == "other_job":
            others = [n for o in self.model.values() if o is not m for n in o.sliced]
            if others:
                return others[0], False
        if choice == "unknown":
            return f"{m.folder_base}_sliced9.gcode", False
        return "  " if choice == "blank" else "", False

    @rule(
        job_id=jobs,
        actor=STAFF,
        listed=st.lists(st.sampled_from(REJECTION_REASONS), max_size=2, unique=True),
        custom=st.sampled_from([None, "", "   ", "Too many parts for one plate."]),
        mode=VERSION_MODE,
    )
    def reject(
        self,
        job_id: int,
        actor: Actor,
        listed: list[str],
        custom: str | None,
        mode: str | None,
    ) -> None:
        m = self.model[job_id]
        version = self.version_arg(m, mode)
        reasons = listed + ([custom.strip()] if custom and custom.strip() else [])
        job = self.transition(
            job_id,
            "reject",
            actor,
            lambda: self.svc.reject(job_id, actor, listed, custom, version),
            version=version,
            bad=not reasons,
        )
        if job is not None:
            m.rejection_reasons = reasons

    @rule(
        job_id=jobs,
        actor=STAFF,
        printer=st.sampled_from([None, "", "Prusa MK4 #2", "  Bambu X1C  "]),
        mode=VERSION_MODE,
    )
    def start_print(self, job_id: int, actor: Actor, printer: str | None, mode: str | None) -> None:
        m = self.model[job_id]
        version = self.version_arg(m, mode)
        job = self.transition(
            job_id,
            "start_print",
            actor,
            lambda: self.svc.start_print(job_id, actor, printer, version),
            version=version,
        )
        if job is not None:
            m.printer = (printer or "").strip() or None
            assert job.printer == m.printer

    @rule(
        job_id=jobs,
        actor=STAFF,
        event=st.sampled_from(
            ["force_confirm", "fail_print", "revert_completion", "revert_pickup"]
        ),
        reason=REASON,
        mode=VERSION_MODE,
    )
    def with_reason(
        self, job_id: int, actor: Actor, event: str, reason: tuple[str, bool], mode: str | None
    ) -> None:
        """The staff moves that need a reason: staff confirming for the student, a failed
        print (counted), a completion or a pickup undone (the payment voided)."""
        m = self.model[job_id]
        version = self.version_arg(m, mode)
        action = getattr(self.svc, event)
        job = self.transition(
            job_id,
            event,
            actor,
            lambda: action(job_id, actor, reason[0], version),
            version=version,
            bad=not reason[1],
        )
        if job is not None:
            self.effects(m, event, job)

    @rule(job_id=jobs, actor=STAFF, mode=VERSION_MODE)
    def complete(self, job_id: int, actor: Actor, mode: str | None) -> None:
        version = self.version_arg(self.model[job_id], mode)
        self.transition(
            job_id,
            "complete",
            actor,
            lambda: self.svc.complete(job_id, actor, version),
            version=version,
        )

    @rule(job_id=jobs, actor=STAFF, grams=GRAMS, txn=TEXT, by=TEXT,
          override=st.none() | REASON, mode=VERSION_MODE)
    def pick_up(
        self,
        job_id: int,
        actor: Actor,
        grams: tuple[Any, bool],
        txn: tuple[str, bool],
        by: tuple[str, bool],
        override: tuple[str, bool] | None,
        mode: str | None,
    ) -> None:
        """Weighed grams priced by the default policy (``weighed``); above the confirmed
        quote only with an override reason (issue 12), which is recorded only then."""
        m = self.model[job_id]
        version = self.version_arg(m, mode)
        weighed = Pricing().cost_cents(m.print_method, float(grams[0])) if grams[1] else None
        above = weighed is not None and m.cost_cents is not None and weighed > m.cost_cents
        reason = override[0] if override is not None else None
        job = self.transition(
            job_id,
            "pick_up",
            actor,
            lambda: self.svc.pick_up(job_id, actor, grams[0], txn[0], by[0], version,
                                     override_reason=reason),
            version=version,
            bad=not (grams[1] and txn[1] and by[1])
            or (above and not (override is not None and override[1])),
        )
        if job is not None:
            self.effects(m, "pick_up", job)
            payment = job.active_payment
            assert payment is not None and payment.grams == float(grams[0])
            assert payment.recorded_by == actor.name
            assert payment.amount_cents == weighed
            assert payment.quoted_cents == m.cost_cents
            assert payment.override_reason == (reason.strip() if above and reason else None)

    @rule(job_id=jobs, actor=STAFF, mode=VERSION_MODE, reason=REASON)
    def delete(self, job_id: int, actor: Actor, mode: str | None,
               reason: tuple[str, bool]) -> None:
        """Deleting needs a reason too (issue 13); the job's row and folder go, its events
        stay (the invariants check both)."""
        version = self.version_arg(self.model[job_id], mode)
        self.transition(
            job_id,
            "delete",
            actor,
            lambda: self.svc.delete(job_id, actor, reason[0], version),
            version=version,
            bad=not reason[1],
        )

    @rule(job_id=jobs, actor=STAFF, mode=VERSION_MODE, weight=GRAMS, hours=HOURS,
          reason=REASON, cost=COST, same=st.booleans(), approve_first=st.booleans())
    def requote(self, job_id: int, actor: Actor, mode: str | None, weight: tuple[Any, bool],
                hours: tuple[Any, bool], reason: tuple[str, bool],
                cost: tuple[Any, bool] | None, same: bool, approve_first: bool) -> None:
        """Correct a pending job's quote (``approve_first``: an uploaded job with a sliced
        file is approved first, so that pending jobs are common): refused outside pending,
        with a bad weight, time, cost or no reason, and when nothing changes (``same``: the
        current figures); else the figures change (the cost by the price list unless
        given), a new link is emailed, and the old link is refused at once."""
        m = self.model[job_id]
        if approve_first and m.status == "uploaded" and m.sliced:
            self.fire_valid(job_id, "approve", actor)
        version = self.version_arg(m, mode)
        if same and m.weight_g is not None and m.time_hours is not None:
            weight, hours = (m.weight_g, True), (m.time_hours, True)
            cost = None if m.cost_cents == Pricing().cost_cents(
                m.print_method, m.weight_g) else (m.cost_cents, True)
        cents = None if cost is None else cost[0]
        bad = not (weight[1] and hours[1] and reason[1] and (cost is None or cost[1]))
        quote: tuple[float, float, int] | None = None
        if not bad:
            quote = (float(weight[0]), round_up_to_half_hour(float(hours[0])),
                     cents if cents is not None
                     else Pricing().cost_cents(m.print_method, float(weight[0])))
            bad = quote == (m.weight_g, m.time_hours, m.cost_cents)
        job = self.transition(
            job_id, REQUOTE, actor,
            lambda: self.svc.requote(job_id, actor, weight[0], hours[0], reason[0], cents,
                                     version),
            version=version, bad=bad,
        )
        if job is not None:
            assert quote is not None
            self.after_requote(m, job, quote)
        elif m.status == "pending":  # refused: then a good one, so that requotes happen
            self.fire_valid(job_id, REQUOTE, actor)
        if m.stale_tokens:
            self.confirm(job_id, "replaced_link")

    @rule(
        target=jobs,
        job_id=jobs,
        actor=STAFF,
        picks=st.lists(PICK, min_size=1, max_size=8),
        fresh=st.fixed_dictionaries(SUBMISSION),
    )
    def walk(
        self, job_id: int, actor: Actor, picks: list[dict[str, Any]], fresh: dict[str, Any]
    ) -> MultipleResults[int]:
        """Walk a job through the lifecycle, checking every invariant after each action.

        Each pick may first poke the job with a few events, with good or bad values (the
        model says what must happen, so along the way every state meets every event and
        every refusal), then takes the move allowed now along the main path or its detour
        (force_confirm, fail_print, the reverts), with good values, never reject or delete;
        then some hours pass. Once the job is done (paid and picked up, rejected or
        deleted), the next student submits one and the walk goes on with it.
        """
        new_jobs: list[int] = []
        m = self.model[job_id]
        for pick in picks:
            if m.status in FINAL or (m.status == "paid_picked_up" and not pick["detour"]):
                m = self.model[self.submit(**fresh)]
                new_jobs.append(m.job_id)
            for poke, good in pick["pokes"]:
                if good:
                    self.fire_valid(m.job_id, poke, actor)
                else:
                    self.fire_invalid(m.job_id, poke, actor)
            if pick["pokes"]:
                self.check_invariants_now()
            if m.status not in FINAL:
                self.move(m, actor, detour=pick["detour"], late=pick["late"])
                self.check_invariants_now()
            self.clock.advance(hours=pick["hours"])
        return multiple(*new_jobs)

    def move(self, m: ModelJob, actor: Actor, *, detour: bool, late: bool) -> None:
        if m.status == "uploaded" and not m.sliced:
            event = "add_sliced_file"
        else:
            moves = [e for (s, e) in TABLE if s == m.status and TABLE[s, e] not in FINAL]
            detours = [e for e in moves if e in DETOURS]
            ahead = [e for e in moves if e not in DETOURS]
            event = ((detours or ahead) if detour else (ahead or detours))[0]
        if event == "confirm" and m.confirm_token is not None:
            if late and m.confirm_expires_at is not None:
                self.clock_to(m.confirm_expires_at + timedelta(seconds=1))
            self.confirm(m.job_id, "link")
            if m.status == "ready_to_print":
                return
            self.check_invariants_now()  # the link had expired: refused, still pending
        if event == "confirm":
            event = "force_confirm"  # no link, or the student missed it: staff step in
        self.fire_valid(m.job_id, event, actor)

    def fire_valid(self, job_id: int, event: str, actor: Actor) -> None:
        """``event`` with good values (the confirmation link from the email for confirm);
        the outcome must be the model's."""
        m = self.model[job_id]
        if event == "confirm":
            self.confirm(job_id, "link")
            return
        call = self.valid_call(job_id, event, actor, None)
        if event == "add_sliced_file":
            stored = self.attempt(self.expect(m, event), call)
            if stored is not None:
                self.after_sliced(m, stored.stored_name, SLICED_CONTENT, actor)
            return
        bad = event == "approve" and not m.sliced  # no sliced file to name yet
        job = self.transition(job_id, event, actor, call, bad=bad)
        if job is None:
            return
        if event == "approve":
            self.after_approve(m, job, 10.48, 0.9, m.sliced[-1])
        elif event == REQUOTE:
            weight = 6.0 if m.weight_g == 5.0 else 5.0
            self.after_requote(m, job, (weight, 2.0, Pricing().cost_cents(m.print_method, weight)))
        elif event == "reject":
            m.rejection_reasons = [REJECTION_REASONS[0]]
        elif event == "start_print":
            m.printer = "Prusa MK4 #1"
        self.effects(m, event, job)

    @rule(job_id=jobs, actor=STAFF)
    def refusals(self, job_id: int, actor: Actor) -> None:
        """Every event the job's state does not allow, and every allowed one with bad
        values: all refused, nothing changes (CONVENTIONS #9 on the real adapters)."""
        m = self.model[job_id]
        before = (m.status, m.version)
        for event in (*STAFF_EVENTS, "confirm"):
            allowed = isinstance(self.expect(m, event), str)
            if event == "confirm":
                if m.status != "pending":
                    self.confirm(job_id, "link")
            elif not allowed:
                self.fire_valid(job_id, event, actor)
            elif event in BAD_VALUES:
                self.fire_invalid(job_id, event, actor)
        assert (m.status, m.version) == before

    def fire_invalid(self, job_id: int, event: str, actor: Actor) -> None:
        """``event`` with values the service must refuse (a ValidationError where the event
        is allowed, the usual refusal where it is not); events with no values to get
        wrong are fired with good ones."""
        m = self.model[job_id]
        if event in BAD_VALUES:
            call = BAD_VALUES[event](self.svc, job_id, actor, m.sliced[-1] if m.sliced else "")
            self.attempt(self.expect(m, event, bad=True), call)
        else:
            self.fire_valid(job_id, event, actor)

    @staticmethod
    def effects(m: ModelJob, event: str, job: Job) -> None:
        """What a move does besides the status: failed attempts, payments."""
        if event == "fail_print":
            m.failed_attempts += 1
        elif event == "pick_up":
            m.payments += 1
        elif event == "revert_pickup":
            m.voided = m.payments
            assert job.active_payment is None

    @rule(
        job_id=jobs,
        actor=STAFF,
        event=st.sampled_from(STAFF_EVENTS),
        delta=st.sampled_from([-3, -1, 1, 2]),
    )
    def stale_version(self, job_id: int, actor: Actor, event: str, delta: int) -> None:
        """A workstation acting on the job as it was (or as it never was): refused."""
        m = self.model[job_id]
        version = m.version + delta
        expected = NotFoundError if m.status == "deleted" else ConcurrentChangeError
        self.attempt(expected, self.valid_call(job_id, event, actor, version))

    @rule(job_id=jobs, event=st.sampled_from(STAFF_EVENTS))
    def outsiders_act(self, job_id: int, event: str) -> None:
        """Only active staff may act, whatever the job's state (even a deleted job): a
        former staff member, an unknown name, a student or the system are all refused."""
        for actor in OUTSIDERS:
            self.attempt(ValidationError, self.valid_call(job_id, event, actor, None))

    # --- outside the lifecycle: review, staff notes, corrections (issue 12) ------------

    @rule(job_id=jobs, actor=STAFF, mode=VERSION_MODE)
    def review_or_undo(self, job_id: int, actor: Actor, mode: str | None) -> None:
        """Mark reviewed when NEW, undo when reviewed; doing the same twice is refused."""
        m = self.model[job_id]
        version = self.version_arg(m, mode)
        undo = m.reviewed_by is not None
        event = "unreview" if undo else "review"
        call = (lambda: self.svc.unmark_reviewed(job_id, actor, version)) if undo else (
            lambda: self.svc.mark_reviewed(job_id, actor, version))
        if self.transition(job_id, event, actor, call, version=version) is not None:
            m.reviewed_by = None if undo else actor.name
        if m.status != "deleted":  # the same again: refused, nothing changes
            again = self.svc.mark_reviewed if not undo else self.svc.unmark_reviewed
            self.attempt(InvalidTransitionError, lambda: again(job_id, actor, None))

    @rule(job_id=jobs, actor=STAFF, mode=VERSION_MODE,
          notes=st.sampled_from(["", "Call before printing.", "Two lines\nof notes", "x" * 2000,
                                 "x" * 2001, "bell\x07", "same"]))
    def staff_notes(self, job_id: int, actor: Actor, mode: str | None, notes: str) -> None:
        m = self.model[job_id]
        if notes == "same":
            notes = m.staff_notes
        version = self.version_arg(m, mode)
        bad = len(notes) > 2000 or "\x07" in notes or notes == m.staff_notes
        job = self.transition(job_id, "notes", actor,
                              lambda: self.svc.set_staff_notes(job_id, actor, notes, version),
                              version=version, bad=bad)
        if job is not None:
            m.staff_notes = notes
            assert job.staff_notes_by == actor.name

    @rule(job_id=jobs, actor=STAFF, mode=VERSION_MODE,
          change=st.sampled_from([
              {"email": "jane.corrected@university.edu"},
              {"discipline": "Architecture", "class_number": "ARCH 210"},
              {"student_name": "Jane Renamed"},
              {"color": "forest green"},
              {"email": "no-at-sign"},
              {"print_method": "resin"},
              {"student_name": "   "},
              {},
          ]))
    def correct_details(self, job_id: int, actor: Actor, mode: str | None,
                        change: dict[str, str]) -> None:
        """A typo corrected; a new name or colour moves the job's folder (storage checks
        it), a bad value, an unknown field or nothing to change is refused."""
        m = self.model[job_id]
        version = self.version_arg(m, mode)
        current = {"email": m.email, "student_name": m.student_name, "color": m.color,
                   "discipline": m.discipline, "class_number": m.class_number}
        changed = {k: v for k, v in change.items() if current.get(k) != v}
        bad = (not changed or "print_method" in change or change.get("email") == "no-at-sign"
               or change.get("student_name", "x").strip() == "")
        job = self.transition(job_id, "edit", actor,
                              lambda: self.svc.edit_details(job_id, actor, change, version),
                              version=version, bad=bad)
        if job is not None:
            m.email = job.email
            m.student_name = job.student_name
            m.color = job.color
            m.discipline, m.class_number = job.discipline, job.class_number
            m.folder_base = job_basename(m.student_name, m.print_method, m.color, job_id)
            for name, value in change.items():
                assert getattr(job, name) == value

    # --- invariants --------------------------------------------------------------------

    def check_invariants_now(self) -> None:
        self.database_matches_model()
        self.event_log_matches_model()
        self.outbox_matches_model()
        self.storage_matches_model()

    @invariant()
    def database_matches_model(self) -> None:
        with self.uow() as uow:
            rows = {job.id: job for job in uow.jobs.list(limit=10_000)}
        live = {i: m for i, m in self.model.items() if m.status != "deleted"}
        assert set(rows) == set(live), "rows in the database are not the model's live jobs"
        for job_id, m in live.items():
            job = rows[job_id]
            assert job.status == m.status, (job_id, job.status, m.status)
            assert job.version == m.version, (job_id, job.version, m.version)
            assert job.failed_attempts == m.failed_attempts
            assert {f.stored_name for f in job.files} == set(m.files)
            assert job.authoritative_file == m.authoritative_file
            assert (job.weight_g, job.time_hours, job.cost_cents) == (
                m.weight_g,
                m.time_hours,
                m.cost_cents,
            )
            assert job.printer == m.printer
            assert job.rejection_reasons == m.rejection_reasons
            assert (job.email, job.student_name, job.color) == (m.email, m.student_name, m.color)
            assert (job.discipline, job.class_number) == (m.discipline, m.class_number)
            assert job.reviewed_by == m.reviewed_by
            assert job.staff_notes == m.staff_notes
            assert len(job.payments) == m.payments, "a payment was lost"
            voided = sum(p.voided_at is not None for p in job.payments)
            assert voided == m.voided
            active = m.payments - m.voided
            assert active == (1 if m.status == "paid_picked_up" else 0)

    @invariant()
    def event_log_matches_model(self) -> None:
        columns = (
            "kind",
            "from_status",
            "to_status",
            "actor_kind",
            "actor_name",
            "workstation",
            "at",
        )
        query = (
            select(events_table).where(events_table.c.subject == "job").order_by(events_table.c.id)
        )
        logged: dict[int, list[LoggedEvent]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                entry = tuple(row[c] for c in columns)  # "at" comes back UTC-aware
                logged.setdefault(row["subject_id"], []).append(entry)  # type: ignore[arg-type]
            total = conn.execute(select(func.count()).select_from(events_table)).scalar_one()
        expected = {i: m.events for i, m in self.model.items()}
        assert logged == expected
        assert total == sum(len(e) for e in expected.values()), "events about no job"

    @invariant()
    def outbox_matches_model(self) -> None:
        sent: dict[int, list[str]] = {}
        for notice in self.sent_notices():
            sent.setdefault(notice.job_id, []).append(notice.kind)
        assert sent == {i: m.notices for i, m in self.model.items()}

    @invariant()
    def storage_matches_model(self) -> None:
        assert not any(self.store.staging_dir.iterdir()), "the staging folder is not empty"
        expected = {
            (JobStatus(m.status).folder, m.folder_base): m
            for m in self.model.values()
            if m.status != "deleted"
        }
        found: set[tuple[str, str]] = set()
        for top in self.root.iterdir():
            if top == self.store.staging_dir:
                continue
            assert top.name in STATUS_FOLDERS, f"unexpected {top.name} in the storage root"
            found.update((top.name, entry.name) for entry in top.iterdir())
        assert found == set(expected), "job folders are not one per live job, in its status"
        for (folder, base), m in expected.items():
            path = self.root / folder / base
            on_disk = {p.name: p for p in path.iterdir()}
            assert set(on_disk) == {*m.files, METADATA_NAME}, (m.job_id, sorted(on_disk))
            for name, digest in m.files.items():
                assert hashlib.sha256(on_disk[name].read_bytes()).hexdigest() == digest
            meta = json.loads(on_disk[METADATA_NAME].read_text("utf-8"))
            assert meta["job_id"] == m.job_id
            assert meta["status"] == m.status
            assert {f["stored_name"] for f in meta["files"]} == set(m.files)
            assert meta["authoritative_file"] == m.authoritative_file
            assert (meta["weight_g"], meta["cost_cents"]) == (m.weight_g, m.cost_cents)


# --- databases -------------------------------------------------------------------------


def _empty_tables(engine: Engine) -> None:
    names = [table.name for table in sql_metadata.sorted_tables]
    if engine.dialect.name == "postgresql":
        # TRUNCATE takes every table's lock in turn; a connection of the previous example
        # still finishing can make PostgreSQL pick it as a deadlock victim: try again.
        for attempt in range(5):
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY"))
                return
            except OperationalError as err:
                if "deadlock detected" not in str(err) or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
    with engine.begin() as conn:
        for name in reversed(names):
            conn.execute(text(f'DELETE FROM "{name}"'))
        conn.execute(text("DELETE FROM sqlite_sequence"))


def _run(engine: Engine, scratch: Path, max_examples: int, steps: int) -> None:
    """The budgets of the two tests below keep this file under ~40 s on two cores."""
    run_state_machine_as_test(
        lambda: JobMachine(engine, scratch),
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'printcore.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """One migrated schema of this test in the ``test`` database, dropped afterwards (each
    example empties its tables); skipped when PostgreSQL is unreachable, failed under CI."""
    url = normalise_url(
        os.environ.get("PRINTCORE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ).update_query_dict({"connect_timeout": "3"})
    admin = make_engine(url.render_as_string(hide_password=False))
    try:
        check_connection(admin, "PRINTCORE_TEST_PG_URL")
    except PrintcoreError as err:
        admin.dispose()
        service_missing(f"PostgreSQL: {err}")
    schema = f"pc_stateful_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(
        url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    )
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def test_print_requests_against_a_model_on_sqlite(sqlite_engine: Engine, tmp_path: Path) -> None:
    _run(sqlite_engine, tmp_path, max_examples=30, steps=25)


@pytest.mark.postgres
def test_print_requests_against_a_model_on_postgresql(pg_engine: Engine, tmp_path: Path) -> None:
    _run(pg_engine, tmp_path, max_examples=15, steps=25)
