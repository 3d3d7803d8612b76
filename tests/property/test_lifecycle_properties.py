"""Every state × every event (CONVENTIONS #9), and the pricing properties.

Each move either reaches the state DESIGN.md's table names and appends exactly one event,
or is refused with printcore's error and changes nothing: not the stored job, not the
event log, not the files, not the outbox. Final states (rejected, deleted) never move.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from printcore import (
    EVENTS,
    Actor,
    InvalidTransitionError,
    Job,
    JobFile,
    JobLifecycle,
    JobStatus,
    NotFoundError,
    Pricing,
    PrintcoreError,
    TokenUsedError,
    ValidationError,
    allowed_events,
    fire,
    round_up_to_half_hour,
)
from printcore.requests.pricing import MAX_GRAMS

if TYPE_CHECKING:
    from conftest import Lab

NewLab = Callable[[], "Lab"]

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
STATES: tuple[str, ...] = tuple(s.value for s in JobStatus)
FINAL_STATES = ("rejected", "deleted")
PAIRS = [(state, event) for state in STATES for event in EVENTS]

STAFF = Actor.staff("Ana Lee", "front-desk")
NOW = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)
SLICED = "JaneVanDoe_Filament_Black_1_sliced.gcode.3mf"

#: Valid arguments for every event at once; each event's callbacks take what they need.
FIRE_ARGS: dict[str, Any] = {
    "weight_g": 10.48,
    "time_hours": 0.9,
    "authoritative_file": SLICED,
    "pricing": Pricing(),
    "nonce": "nonce-1",
    "expires_at": NOW,
    "reasons": ["Walls or details are too thin to print."],
    "reason": "Because.",
    "printer": "Prusa MK4 #1",
    "grams": 11.0,
    "txn_no": "TXN-7",
    "picked_up_by": "Jane van Doe",
    "staff_name": "Ana Lee",
    "now": NOW,
}


def refusal_for(state: str, event: str) -> type[PrintcoreError]:
    """The error the service raises for a move that is not allowed.

    A deleted job is gone (NotFoundError). A confirmation link for a job that is no longer
    pending is reported to the student as already used (TokenUsedError).
    """
    if state == "deleted":
        return NotFoundError
    if event == "confirm":
        return TokenUsedError
    return InvalidTransitionError


def a_job(status: str) -> Job:
    """A bare job in ``status`` that meets every event's preconditions."""
    return Job(
        "Jane van Doe",
        "jane@university.edu",
        "Design",
        "DES 300",
        "filament",
        "black",
        NOW,
        id=1,
        status=status,
        files=[JobFile(SLICED, "part.gcode.3mf", "sliced", 5, "0" * 64, NOW)],
    )


# --- the machine alone ------------------------------------------------------------------


def test_the_machine_has_the_designed_states_and_events() -> None:
    assert {s.value for s in JobLifecycle.states} == set(STATES)
    assert {str(e.id) for e in JobLifecycle.events} == set(EVENTS)
    assert {s.value for s in JobLifecycle.states if s.final} == set(FINAL_STATES)


@pytest.mark.parametrize(("state", "event"), PAIRS)
def test_lifecycle_fire_every_state_and_event(state: str, event: str) -> None:
    job = a_job(state)
    before = copy.deepcopy(job)
    target = TABLE.get((state, event))
    if target is None:
        with pytest.raises(InvalidTransitionError) as info:
            fire(job, event, **FIRE_ARGS)
        assert (info.value.event, info.value.state) == (event, state)
        assert job == before
    else:
        fire(job, event, **FIRE_ARGS)
        assert job.status == target


@pytest.mark.parametrize("state", STATES)
def test_allowed_events_follow_the_table(state: str) -> None:
    expected = [e for e in EVENTS if (state, e) in TABLE]
    assert sorted(allowed_events(a_job(state))) == sorted(expected)


def test_an_unknown_event_is_refused() -> None:
    job = a_job("uploaded")
    with pytest.raises(InvalidTransitionError):
        fire(job, "teleport")
    assert job == a_job("uploaded")


# --- through the service: every state × every event -------------------------------------


def check_move(lab: Lab, job_id: int, state: str, event: str) -> str:
    """Fire ``event`` at the job (in ``state``) and check the outcome; return the new state."""
    before = lab.snapshot(job_id)
    target = TABLE.get((state, event))
    if target is None:
        with pytest.raises(refusal_for(state, event)):
            lab.fire(job_id, event)
        after = lab.snapshot(job_id)
        assert after == before, f"{event} in {state} was refused but changed something"
        return state

    job = lab.fire(job_id, event)
    assert job.status == target
    new_events = lab.db.events[len(before.events) :]
    assert len(new_events) == 1, f"{event} appended {len(new_events)} events"
    assert (new_events[0].kind, new_events[0].from_status, new_events[0].to_status) == (
        event,
        state,
        target,
    )
    assert new_events[0].subject_id == job_id
    stored = lab.db.jobs.get(job_id)
    if target == "deleted":
        assert stored is None
        assert not any(f"_{job_id}/" in key for key in lab.files.files)
    else:
        assert stored is not None and stored.status == target
        assert before.job is not None and stored.version == before.job.version + 1
        assert lab.files.folders_of(stored) == {JobStatus(target).folder}
    return target


@pytest.mark.parametrize(("state", "event"), PAIRS)
def test_service_every_state_and_event(new_lab: NewLab, state: str, event: str) -> None:
    lab = new_lab()
    job_id = lab.job_in(state)
    check_move(lab, job_id, state, event)


@pytest.mark.parametrize("state", FINAL_STATES)
@settings(max_examples=15, deadline=None)
@given(events=st.lists(st.sampled_from(EVENTS), min_size=1, max_size=8))
def test_final_states_never_move(new_lab: NewLab, state: str, events: list[str]) -> None:
    lab = new_lab()
    job_id = lab.job_in(state)
    before = lab.snapshot(job_id)
    for event in events:
        with pytest.raises(refusal_for(state, event)):
            lab.fire(job_id, event)
    assert lab.snapshot(job_id) == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=st.lists(st.sampled_from(EVENTS), max_size=25))
def test_random_walks_follow_the_table(new_lab: NewLab, events: list[str]) -> None:
    """Any sequence of events from a new job: each step obeys the table, and the event log
    holds exactly one entry per allowed step."""
    lab = new_lab()
    job_id = lab.new_job()
    state = "uploaded"
    allowed_steps = 0
    base = len(lab.db.events)
    for event in events:
        allowed_steps += (state, event) in TABLE
        state = check_move(lab, job_id, state, event)
    assert len(lab.db.events) == base + allowed_steps
    if state != "deleted":
        stored = lab.db.jobs[job_id]
        assert stored.status == state
        assert stored.failed_attempts == sum(
            1 for e in lab.db.events if e.subject_id == job_id and e.kind == "fail_print"
        )
        assert len([p for p in stored.payments if p.voided_at is None]) <= 1


# --- pricing properties -----------------------------------------------------------------

GRAMS = st.floats(min_value=0, max_value=MAX_GRAMS, exclude_min=True, allow_subnormal=True)
METHODS = st.sampled_from(["filament", "resin"])
PRICINGS = st.builds(
    Pricing,
    filament_cents_per_gram=st.decimals(min_value=0, max_value=1000, places=3),
    resin_cents_per_gram=st.decimals(min_value=0, max_value=1000, places=3),
    minimum_cents=st.integers(min_value=0, max_value=100_000),
)


@settings(max_examples=300)
@given(pricing=st.one_of(st.just(Pricing()), PRICINGS), method=METHODS, a=GRAMS, b=GRAMS)
def test_cost_is_never_below_the_minimum_and_grows_with_grams(
    pricing: Pricing, method: str, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    cost_low, cost_high = pricing.cost_cents(method, low), pricing.cost_cents(method, high)
    assert isinstance(cost_low, int) and isinstance(cost_high, int)
    assert pricing.minimum_cents <= cost_low <= cost_high
    exact = Decimal(str(high)) * pricing.rate(method)
    assert abs(max(Decimal(pricing.minimum_cents), exact) - cost_high) <= Decimal("0.5")


@settings(max_examples=300)
@given(hours=st.floats(min_value=0, max_value=720, exclude_min=True, allow_subnormal=True))
def test_time_rounds_up_to_a_half_hour_and_by_less_than_one(hours: float) -> None:
    rounded = round_up_to_half_hour(hours)
    assert (Fraction(rounded) * 2).denominator == 1, "not a multiple of 0.5"
    assert Fraction(rounded) >= Fraction(hours)
    assert Fraction(rounded) < Fraction(hours) + Fraction(1, 2)


@given(hours=st.floats(min_value=720, exclude_min=True) | st.just(1e300))
def test_time_beyond_30_days_is_refused(hours: float) -> None:
    """A print time over 720 h (30 days), e.g. the typo 1e300, is refused naming the field."""
    try:
        round_up_to_half_hour(hours)
    except ValidationError as err:
        assert "720" in err.fields["time_hours"]
    else:
        raise AssertionError(f"{hours} h was accepted")


# --- invalid approvals ------------------------------------------------------------------

NOT_POSITIVE = st.one_of(
    st.floats(max_value=0),
    st.sampled_from([math.nan, -math.nan, math.inf, -math.inf, 0, -1]),
    st.integers(max_value=0),
)
NOT_NUMBERS = st.one_of(st.text(max_size=10), st.none(), st.booleans(), st.just([1.0]))
BAD_WEIGHT = st.one_of(NOT_POSITIVE, NOT_NUMBERS, st.floats(min_value=MAX_GRAMS, exclude_min=True))
BAD_HOURS = st.one_of(NOT_POSITIVE, NOT_NUMBERS)
GOOD_WEIGHT = st.floats(min_value=0.01, max_value=MAX_GRAMS)
GOOD_HOURS = st.floats(min_value=0.01, max_value=720)


@settings(max_examples=100, deadline=None)
@given(
    weight=st.one_of(GOOD_WEIGHT, BAD_WEIGHT),
    hours=st.one_of(GOOD_HOURS, BAD_HOURS),
    bad_file=st.booleans(),
)
def test_invalid_approvals_are_refused_and_change_nothing(
    new_lab: NewLab, weight: Any, hours: Any, bad_file: bool
) -> None:
    def valid(value: Any, limit: float) -> bool:
        return type(value) in (int, float) and math.isfinite(value) and 0 < value <= limit

    weight_ok, hours_ok = valid(weight, MAX_GRAMS), valid(hours, math.inf)
    assume(not (weight_ok and hours_ok and not bad_file))
    lab = new_lab()
    job_id = lab.new_job()
    name = "someone_elses_file.gcode" if bad_file else lab.sliced_name(job_id)
    before = lab.snapshot(job_id)
    with pytest.raises(ValidationError) as info:
        lab.requests.approve(job_id, STAFF, weight, hours, name)
    expected = {
        field
        for field, ok in (
            ("weight_g", weight_ok),
            ("time_hours", hours_ok),
            ("authoritative_file", not bad_file),
        )
        if not ok
    }
    assert set(info.value.fields) == expected
    assert lab.snapshot(job_id) == before


@settings(max_examples=100, deadline=None)
@given(weight=GOOD_WEIGHT, hours=GOOD_HOURS)
def test_valid_approvals_price_and_round(new_lab: NewLab, weight: float, hours: float) -> None:
    lab = new_lab()
    job_id = lab.new_job()
    job = lab.requests.approve(job_id, STAFF, weight, hours, lab.sliced_name(job_id))
    assert job.status == "pending"
    assert job.cost_cents == Pricing().cost_cents("filament", weight)
    assert job.time_hours == round_up_to_half_hour(hours)


# --- pickup against the confirmed quote (issue 12) ---------------------------------------

POLICY_PRICINGS = st.builds(
    Pricing,
    filament_cents_per_gram=st.decimals(min_value=0, max_value=1000, places=3),
    resin_cents_per_gram=st.decimals(min_value=0, max_value=1000, places=3),
    minimum_cents=st.integers(min_value=0, max_value=100_000),
    pickup_policy=st.sampled_from(["weighed", "quote", "lower"]),
)
OVERRIDES = st.one_of(st.none(), st.sampled_from(["", "  ", "\t", "Asked for a bigger print."]))


@settings(max_examples=300)
@given(pricing=POLICY_PRICINGS, method=METHODS, quote=st.integers(min_value=0, max_value=10**7),
       grams=GOOD_WEIGHT, reason=OVERRIDES, charge_quote=st.booleans())
def test_no_payment_is_ever_above_the_quote_without_a_reason(
    pricing: Pricing, method: str, quote: int, grams: float, reason: str | None,
    charge_quote: bool,
) -> None:
    """Whatever the rates, policy, weight and quote: a pickup either records a payment that
    is at most the confirmed quote or carries the override reason, or it is refused on
    ``override_reason`` alone and the job is unchanged. Only ``weighed`` can ever need the
    override; ``quote``, ``lower`` and "charge the quote" never do."""
    job = a_job("completed")
    job.print_method, job.cost_cents, job.weight_g = method, quote, 10.0
    before = copy.deepcopy(job)
    weighed = pricing.cost_cents(method, grams)
    policy = "quote" if charge_quote else pricing.pickup_policy
    expected = {"weighed": weighed, "quote": quote, "lower": min(weighed, quote)}[policy]
    args = {**FIRE_ARGS, "pricing": pricing, "grams": grams, "override_reason": reason,
            "charge_quote": charge_quote}
    try:
        fire(job, "pick_up", **args)
    except ValidationError as err:
        assert set(err.fields) == {"override_reason"}
        assert policy == "weighed" and weighed > quote and not (reason or "").strip()
        assert job == before
        return
    paid = job.active_payment
    assert paid is not None and job.status == "paid_picked_up"
    assert paid.amount_cents == expected and paid.quoted_cents == quote
    assert paid.amount_cents <= quote or paid.override_reason
    assert paid.override_reason == ((reason or "").strip() if expected > quote else None)
