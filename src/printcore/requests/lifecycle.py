"""The print request lifecycle as a python-statemachine ``StateMachine`` bound to ``Job.status``.

States and transitions are those of DESIGN.md ("Print request (Job) lifecycle"). Guards
are validators that raise :class:`~printcore.errors.ValidationError` with per-field
messages; an event not allowed in the current state raises
:class:`~printcore.errors.InvalidTransitionError`. Validators run before anything on the
job changes, so a refused event leaves the job exactly as it was.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import attrs
from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

from printcore.errors import InvalidTransitionError, ValidationError
from printcore.requests.job import Job, Payment
from printcore.requests.pricing import (
    MAX_GRAMS,
    MAX_HOURS,
    PickupCharge,
    Pricing,
    format_cents,
    round_up_to_half_hour,
)

__all__ = [
    "EVENTS",
    "MAX_OVERRIDE_REASON",
    "MAX_QUOTE_CENTS",
    "OVERRIDES",
    "REQUOTE_STATES",
    "JobLifecycle",
    "Quote",
    "allowed_overrides",
    "check_requote",
    "fire",
]


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _grams(value: Any) -> bool:
    return _positive(value) and value <= MAX_GRAMS


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


class JobLifecycle(StateMachine):
    """Bind with ``JobLifecycle(model=job, state_field="status")``; the job's stored status
    is the machine's state (never pass ``start_value``: it would re-run entry actions).

    ``paid_picked_up`` ends the workflow but stays revertible (``revert_pickup``), so it is
    not a library "final" state, and the library's final-reachability check is turned off.
    """

    validate_final_reachability = False

    uploaded = State("Uploaded", initial=True, value="uploaded")
    pending = State("Pending confirmation", value="pending")
    rejected = State("Rejected", final=True, value="rejected")
    ready_to_print = State("Ready to print", value="ready_to_print")
    printing = State("Printing", value="printing")
    completed = State("Completed", value="completed")
    paid_picked_up = State("Paid & picked up", value="paid_picked_up")
    deleted = State("Deleted", final=True, value="deleted")

    approve = uploaded.to(pending, validators="check_approve")
    reject = uploaded.to(rejected, validators="check_reject")
    confirm = pending.to(ready_to_print)
    force_confirm = pending.to(ready_to_print, validators="check_reason")
    start_print = ready_to_print.to(printing)
    fail_print = printing.to(ready_to_print, validators="check_reason")
    complete = printing.to(completed)
    pick_up = completed.to(paid_picked_up, validators="check_pick_up")
    revert_completion = completed.to(printing, validators="check_reason")
    revert_pickup = paid_picked_up.to(completed, validators="check_reason")
    delete = uploaded.to(deleted, validators="check_reason") | pending.to(
        deleted, validators="check_reason")

    # --- guards -----------------------------------------------------------------------

    def check_approve(
        self, weight_g: Any = None, time_hours: Any = None, authoritative_file: Any = None
    ) -> None:
        job: Job = self.model
        fields: dict[str, str] = {}
        if not _grams(weight_g):
            fields["weight_g"] = (
                f"Enter the weight in grams, greater than 0 and at most {MAX_GRAMS}."
            )
        if not (_positive(time_hours) and time_hours <= MAX_HOURS):
            fields["time_hours"] = (
                f"Enter the print time in hours, greater than 0 and at most {MAX_HOURS} "
                "(30 days)."
            )
        if not _text(authoritative_file):
            fields["authoritative_file"] = "Choose the sliced file that will be printed."
        elif (chosen := job.file(authoritative_file)) is None:
            fields["authoritative_file"] = (
                f"{authoritative_file!r} is not one of this job's files; upload the sliced "
                "file first."
            )
        elif chosen.role != "sliced":
            fields["authoritative_file"] = (
                "The file to print must be a sliced file (DESIGN.md), not the student's "
                "model; upload the sliced file first."
            )
        if fields:
            raise ValidationError("The approval is incomplete.", fields)

    def check_reject(self, reasons: Any = None) -> None:
        if not reasons or not all(_text(r) for r in reasons):
            raise ValidationError(
                "Give at least one reason for the rejection.",
                {"reasons": "Pick a listed reason or write one."},
            )

    def check_reason(self, reason: Any = None) -> None:
        _check_reason(reason)

    def check_pick_up(
        self,
        grams: Any = None,
        txn_no: Any = None,
        picked_up_by: Any = None,
        override_reason: Any = None,
        charge_quote: Any = False,
        pricing: Pricing | None = None,
    ) -> None:
        """The pickup rule (the only place it is decided): grams, a transaction number and
        who picked it up are required; a charge above the confirmed quote (see
        :meth:`Pricing.pickup_charge`) also needs ``override_reason``, text of at most
        :data:`MAX_OVERRIDE_REASON` characters. Raises ValidationError naming the fields."""
        job: Job = self.model
        fields: dict[str, str] = {}
        if not _grams(grams):
            fields["grams"] = f"Enter the weighed grams, greater than 0 and at most {MAX_GRAMS}."
        if not _text(txn_no):
            fields["txn_no"] = "Enter the payment's transaction number."
        if not _text(picked_up_by):
            fields["picked_up_by"] = "Enter who picked the print up."
        if override_reason is not None and not isinstance(override_reason, str):
            fields["override_reason"] = "The override reason must be text."
        elif isinstance(override_reason, str) and len(override_reason.strip()) > \
                MAX_OVERRIDE_REASON:
            fields["override_reason"] = f"At most {MAX_OVERRIDE_REASON} characters."
        elif "grams" not in fields:
            charge = (pricing or Pricing()).pickup_charge(
                job.print_method, float(grams), job.cost_cents, charge_quote is True)
            if charge.above_quote and not _text(override_reason):
                fields["override_reason"] = _above_quote_message(float(grams), charge)
        if fields:
            message = ("The charge is above the confirmed quote." if list(fields) ==
                       ["override_reason"] else "The payment record is incomplete.")
            raise ValidationError(message, fields)

    # --- effects ----------------------------------------------------------------------

    def on_approve(
        self,
        weight_g: float,
        time_hours: float,
        authoritative_file: str,
        pricing: Pricing,
        nonce: str,
        expires_at: datetime,
    ) -> None:
        job: Job = self.model
        # Compute first, assign after: a refusal here must leave the job untouched.
        hours = round_up_to_half_hour(float(time_hours))
        cost = pricing.cost_cents(job.print_method, float(weight_g))
        job.weight_g = float(weight_g)
        job.time_hours = hours
        job.cost_cents = cost
        job.authoritative_file = authoritative_file
        job.confirmation_nonce = nonce
        job.confirmation_expires_at = expires_at

    def on_reject(self, reasons: list[str]) -> None:
        self.model.rejection_reasons = [r.strip() for r in reasons]

    def on_confirm(self) -> None:
        self.model.confirmation_nonce = None

    def on_force_confirm(self) -> None:
        self.model.confirmation_nonce = None

    def on_start_print(self, printer: str | None = None) -> None:
        self.model.printer = printer or None

    def on_fail_print(self) -> None:
        self.model.failed_attempts += 1

    def on_pick_up(
        self,
        grams: float,
        txn_no: str,
        picked_up_by: str,
        pricing: Pricing,
        staff_name: str,
        now: datetime,
        override_reason: str | None = None,
        charge_quote: bool = False,
    ) -> None:
        job: Job = self.model
        charge = pricing.pickup_charge(job.print_method, float(grams), job.cost_cents,
                                       charge_quote is True)
        reason = override_reason.strip() if charge.above_quote and override_reason else None
        job.payments.append(
            Payment(
                grams=float(grams),
                amount_cents=charge.amount_cents,
                txn_no=txn_no.strip(),
                picked_up_by=picked_up_by.strip(),
                recorded_by=staff_name,
                recorded_at=now,
                quoted_cents=charge.quoted_cents,
                override_reason=reason,
            )
        )

    def on_revert_pickup(self, reason: str, now: datetime) -> None:
        job: Job = self.model
        job.payments = [
            p if p.voided_at is not None else _void(p, now, reason) for p in job.payments
        ]


#: The longest override reason accepted (pickup above the quote, a requote), in characters.
MAX_OVERRIDE_REASON = 500

#: The highest quote staff may set by hand in a requote, in cents ($100,000).
MAX_QUOTE_CENTS = 10_000_000


def _check_reason(reason: Any) -> None:
    """An override's reason: text, not blank. Raises ValidationError on ``reason``."""
    if not _text(reason):
        raise ValidationError("Say why.", {"reason": "A reason is required."})


def _above_quote_message(grams: float, charge: PickupCharge) -> str:
    """What staff read when a pickup would charge more than the student confirmed."""
    quote = format_cents(charge.quoted_cents or 0)
    return (
        f"The weighed {grams:g} g come to {format_cents(charge.amount_cents)}, above the "
        f"confirmed quote of {quote}. Charge the quote ({quote}) instead, or give the "
        "reason for charging more (for example: the student asked for a larger or extra "
        "print)."
    )


def _void(payment: Payment, now: datetime, reason: str) -> Payment:
    return attrs.evolve(payment, voided_at=now, void_reason=reason.strip())


#: Every event name of the lifecycle, in DESIGN.md order.
EVENTS: tuple[str, ...] = (
    "approve",
    "reject",
    "confirm",
    "force_confirm",
    "start_print",
    "fail_print",
    "complete",
    "pick_up",
    "revert_completion",
    "revert_pickup",
    "delete",
)


@attrs.frozen
class Quote:
    """What the student is asked to confirm: ``weight_g`` grams, ``time_hours`` hours
    (rounded up to 0.5 h) and ``cost_cents`` cents."""

    weight_g: float
    time_hours: float
    cost_cents: int

    @classmethod
    def of(cls, job: Job) -> Quote:
        """The job's current quote (an approved job's: weight, time and cost are set)."""
        return cls(float(job.weight_g or 0), float(job.time_hours or 0), int(job.cost_cents or 0))

    def as_dict(self) -> dict[str, Any]:
        return {"weight_g": self.weight_g, "time_hours": self.time_hours,
                "cost_cents": self.cost_cents}


#: The states a requote (correcting an approved job's weight, time and cost) is allowed
#: in: after the approval, before the student confirms.
REQUOTE_STATES: frozenset[str] = frozenset({"pending"})


def check_requote(
    job: Job,
    weight_g: Any,
    time_hours: Any,
    reason: Any,
    cost_cents: Any = None,
    pricing: Pricing | None = None,
) -> Quote:
    """The corrected quote for a pending job (the rule; :meth:`PrintRequests.requote`
    applies it). ``weight_g`` grams and ``time_hours`` hours as for ``approve`` (the time
    rounds up to 0.5 h); the cost is ``pricing``'s for that weight unless ``cost_cents``
    (an int, 0 to :data:`MAX_QUOTE_CENTS`) is given, which the required ``reason`` (text,
    at most :data:`MAX_OVERRIDE_REASON` characters) then also explains.

    Raises InvalidTransitionError (the job is not pending; the message says what to do
    instead) and ValidationError naming the fields (bad numbers, no reason, or a quote
    equal to the current one). Changes nothing.
    """
    if job.status not in REQUOTE_STATES:
        raise InvalidTransitionError("requote", job.status, _requote_refusal(job.status))
    fields: dict[str, str] = {}
    if not _grams(weight_g):
        fields["weight_g"] = f"Enter the weight in grams, greater than 0 and at most {MAX_GRAMS}."
    if not (_positive(time_hours) and time_hours <= MAX_HOURS):
        fields["time_hours"] = (
            f"Enter the print time in hours, greater than 0 and at most {MAX_HOURS} (30 days)."
        )
    if not _text(reason):
        fields["reason"] = ("Say why the quote changes (for example: re-sliced with less "
                            "infill); the student reads it.")
    elif len(reason.strip()) > MAX_OVERRIDE_REASON:
        fields["reason"] = f"At most {MAX_OVERRIDE_REASON} characters."
    if cost_cents is not None and not (
        isinstance(cost_cents, int) and not isinstance(cost_cents, bool)
        and 0 <= cost_cents <= MAX_QUOTE_CENTS
    ):
        fields["cost_cents"] = (
            f"Enter the cost in whole cents, 0 to {MAX_QUOTE_CENTS}, or leave it empty to "
            "use the price list."
        )
    if fields:
        raise ValidationError("The corrected quote is incomplete.", fields)
    hours = round_up_to_half_hour(float(time_hours))
    cost = (cost_cents if cost_cents is not None
            else (pricing or Pricing()).cost_cents(job.print_method, float(weight_g)))
    quote = Quote(float(weight_g), hours, cost)
    if quote == Quote.of(job):
        raise ValidationError(
            "The quote is unchanged: same weight, time and cost.",
            {"weight_g": "Change the weight, time or cost; to email the same quote again "
                         "use “Resend confirmation link” instead."})
    return quote


def _requote_refusal(status: str) -> str:
    if status == "uploaded":
        return "This job is not approved yet: approve it with the weight and time instead."
    if status in ("rejected", "deleted"):
        return f"This job is {status}; there is no quote to correct."
    return ("The student has already confirmed this quote, so it can no longer be "
            "corrected. At pickup, charge the weighed grams (with a reason if above the "
            "quote) instead.")


#: The staff overrides of issue 13 (each needs a reason): lifecycle events, plus
#: ``requote`` (not a state change, see :func:`check_requote`).
OVERRIDES: tuple[str, ...] = (
    "force_confirm", "fail_print", "revert_completion", "revert_pickup", "delete", "requote",
)


def allowed_overrides(job: Job) -> list[str]:
    """The overrides of :data:`OVERRIDES` allowed in the job's state, in that order."""
    allowed = set(allowed_events(job))
    if job.status in REQUOTE_STATES:
        allowed.add("requote")
    return [name for name in OVERRIDES if name in allowed]


def _allowed_by_state() -> dict[str, tuple[str, ...]]:
    """State value → events leaving it, read once from the machine's own definition (the
    machine has no conditions, only validators, so this equals its ``allowed_events``)."""
    table: dict[str, tuple[str, ...]] = {}
    for state in JobLifecycle.states:
        leaving = {str(t.event) for t in state.transitions}
        table[str(state.value)] = tuple(e for e in EVENTS if e in leaving)
    return table


_ALLOWED = _allowed_by_state()


def allowed_events(job: Job) -> list[str]:
    """The lifecycle events allowed in the job's current state, in DESIGN.md order.

    A table lookup: building a machine per job costs ~0.6 ms, too much for a list of jobs.
    """
    return list(_ALLOWED.get(job.status, ()))


def fire(job: Job, event: str, **kwargs: Any) -> None:
    """Apply ``event`` to ``job`` in place.

    Raises InvalidTransitionError when the event is not allowed in the job's state, and
    ValidationError when a guard refuses the given values; in both cases ``job`` is unchanged.
    """
    if event not in EVENTS:
        raise InvalidTransitionError(event, job.status, f"Unknown action {event!r}.")
    machine = JobLifecycle(model=job, state_field="status")
    try:
        machine.send(event, **kwargs)
    except TransitionNotAllowed:
        raise InvalidTransitionError(event, job.status) from None
