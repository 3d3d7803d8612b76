"""Pickup that cannot surprise (issue 12): the charge at pickup against the confirmed quote.

On the in-memory fakes with the fixed clock. A job confirmed at $10.00 (100 g of filament)
is weighed at pickup: 130 g ($13.00) is refused without an override reason and changes
nothing; with one it is charged and the payment, the event and the receipt carry the
quote, the charge and the reason; 80 g ($8.00) is charged without one; "charge the quote"
charges $10.00 whatever the weight; the ``quote`` and ``lower`` policies never need the
override. ``amount_due_cents`` follows the job through its states; payments stored before
these fields load with them empty; the setting is read and checked.

Bad inputs tried: no override reason, a blank one ("   "), one that is not text (42), one
over 500 characters, bad grams together with a reason (only the grams are blamed), an
unknown policy in Pricing and in PRINTCORE_PICKUP_CHARGE.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from adapters.sql.convert import converter
from entrypoints.settings import SettingsError, load_settings
from printcore import Actor, PrintRequests, ValidationError
from printcore.requests.job import Job, Payment
from printcore.requests.pricing import PickupCharge, Pricing

if TYPE_CHECKING:  # the ``lab`` fixture's type, from tests/unit/conftest.py
    from conftest import Lab

#: The staff of tests/unit/conftest.py's lab (its staff list has both). Defined here, not
#: imported from ``conftest``: which ``conftest`` module that name finds depends on which
#: test folders a run collects.
ANA = Actor.staff("Ana Lee", "front-desk")
BEN = Actor.staff("Ben Okafor", "back-room")


def completed_at_ten_dollars(lab: Lab, svc: PrintRequests | None = None) -> int:
    """A filament job approved at 100 g ($10.00), confirmed, printed and completed."""
    svc = svc or lab.requests
    job = lab.submit()
    assert job.id is not None
    sliced = lab.add_sliced(job.id)
    job = svc.approve(job.id, ANA, 100, 2.0, sliced.stored_name)
    assert job.cost_cents == 1000
    svc.confirm(lab.confirm_token(job.id))
    svc.start_print(job.id, ANA, "Prusa MK4 #1")
    svc.complete(job.id, ANA)
    return job.id


def with_policy(lab: Lab, policy: str) -> PrintRequests:
    return PrintRequests(uow=lab.uow, files=lab.files, signer=lab.signer, clock=lab.clock,
                         pricing=Pricing(pickup_policy=policy))


def receipt(lab: Lab, job_id: int) -> dict[str, Any]:
    [notice] = [n for n in lab.outbox.sent if n.kind == "payment_receipt" and n.job_id == job_id]
    return notice.context


def test_above_the_quote_without_a_reason_is_refused_and_changes_nothing(lab: Lab) -> None:
    job_id = completed_at_ten_dollars(lab)
    before = lab.snapshot(job_id)
    for reason in (None, "", "   "):
        with pytest.raises(ValidationError) as err:
            lab.requests.pick_up(job_id, BEN, 130, "TXN-1", "Jane van Doe",
                                 override_reason=reason)
        assert set(err.value.fields) == {"override_reason"}
        message = err.value.fields["override_reason"]
        assert "130 g" in message and "$13.00" in message and "$10.00" in message
        assert "Charge the quote" in message and "reason" in message
        assert lab.snapshot(job_id) == before


def test_above_the_quote_with_a_reason_is_charged_and_recorded(lab: Lab) -> None:
    job_id = completed_at_ten_dollars(lab)
    lab.clock.advance(days=3, minutes=12)
    job = lab.requests.pick_up(job_id, BEN, 130, " TXN-9 ", "Jane van Doe",
                               override_reason="  Student asked for a thicker wall.  ")
    assert job.status == "paid_picked_up" and job.amount_due_cents == 1300
    paid = job.active_payment
    assert paid == Payment(grams=130.0, amount_cents=1300, txn_no="TXN-9",
                           picked_up_by="Jane van Doe", recorded_by=BEN.name,
                           recorded_at=lab.clock.now(), quoted_cents=1000,
                           override_reason="Student asked for a thicker wall.")
    event = lab.events_of(job_id)[-1]
    assert event.kind == "pick_up" and event.at == lab.clock.now()
    assert event.details == {"grams": 130, "txn_no": " TXN-9 ", "picked_up_by": "Jane van Doe",
                             "amount_cents": 1300, "quoted_cents": 1000, "weighed_cents": 1300,
                             "policy": "weighed",
                             "override_reason": "Student asked for a thicker wall."}
    context = receipt(lab, job_id)
    assert (context["amount_cents"], context["quoted_cents"], context["override_reason"]) == (
        1300, 1000, "Student asked for a thicker wall.")


def test_at_or_below_the_quote_needs_no_reason_and_records_none(lab: Lab) -> None:
    job_id = completed_at_ten_dollars(lab)
    job = lab.requests.pick_up(job_id, BEN, 80, "TXN-2", "Jane van Doe",
                               override_reason="typed by habit")
    paid = job.active_payment
    assert paid is not None and (paid.amount_cents, paid.quoted_cents) == (800, 1000)
    assert paid.override_reason is None
    assert receipt(lab, job_id)["override_reason"] is None
    # exactly the quote is not above it
    other = completed_at_ten_dollars(lab)
    assert lab.requests.pick_up(other, BEN, 100, "TXN-3", "Jane").amount_due_cents == 1000


def test_charging_the_quote_instead_needs_no_reason(lab: Lab) -> None:
    job_id = completed_at_ten_dollars(lab)
    job = lab.requests.pick_up(job_id, BEN, 130, "TXN-4", "Jane van Doe", charge_quote=True)
    paid = job.active_payment
    assert paid is not None and (paid.amount_cents, paid.override_reason) == (1000, None)
    assert lab.events_of(job_id)[-1].details["policy"] == "quote"
    assert lab.events_of(job_id)[-1].details["weighed_cents"] == 1300


@pytest.mark.parametrize(("policy", "grams", "charged"), [
    ("quote", 130, 1000), ("quote", 80, 1000), ("lower", 130, 1000), ("lower", 80, 800)])
def test_the_quote_and_lower_policies_never_need_the_override(
    lab: Lab, policy: str, grams: float, charged: int
) -> None:
    svc = with_policy(lab, policy)
    job_id = completed_at_ten_dollars(lab, svc)
    job = svc.pick_up(job_id, BEN, grams, "TXN-5", "Jane van Doe")
    assert job.active_payment is not None and job.active_payment.amount_cents == charged
    assert lab.events_of(job_id)[-1].details["policy"] == policy


@pytest.mark.parametrize(("reason", "problem"), [(42, "must be text"),
                                                ("x" * 501, "At most 500")])
def test_an_override_reason_that_is_not_usable_text_is_refused(
    lab: Lab, reason: Any, problem: str
) -> None:
    job_id = completed_at_ten_dollars(lab)
    before = lab.snapshot(job_id)
    with pytest.raises(ValidationError) as err:
        lab.requests.pick_up(job_id, BEN, 130, "TXN-6", "Jane", override_reason=reason)
    assert problem in err.value.fields["override_reason"]
    assert lab.snapshot(job_id) == before


def test_bad_grams_are_blamed_alone_even_with_a_reason(lab: Lab) -> None:
    job_id = completed_at_ten_dollars(lab)
    with pytest.raises(ValidationError) as err:
        lab.requests.pick_up(job_id, BEN, float("nan"), "TXN-7", "Jane",
                             override_reason="because")
    assert set(err.value.fields) == {"grams"}


def test_a_reverted_pickup_is_checked_against_the_quote_again(lab: Lab) -> None:
    job_id = completed_at_ten_dollars(lab)
    lab.requests.pick_up(job_id, BEN, 130, "TXN-8", "Jane", override_reason="Bigger.")
    lab.requests.revert_pickup(job_id, ANA, "Wrong transaction number.")
    assert lab.requests.get(job_id).amount_due_cents == 1000  # the quote again
    with pytest.raises(ValidationError):
        lab.requests.pick_up(job_id, BEN, 130, "TXN-8b", "Jane")
    job = lab.requests.pick_up(job_id, BEN, 130, "TXN-8b", "Jane", override_reason="Bigger.")
    assert [p.voided_at is None for p in job.payments] == [False, True]


def test_amount_due_follows_the_job(lab: Lab) -> None:
    expected = {"uploaded": None, "rejected": None, "pending": 300, "ready_to_print": 300,
                "printing": 300, "completed": 300, "paid_picked_up": 300}
    for status, due in expected.items():
        assert lab.job_in(status).amount_due_cents == due, status


def test_pickup_charge_figures() -> None:
    assert Pricing().pickup_charge("filament", 130, 1000) == PickupCharge(1300, 1000, 1300,
                                                                          "weighed")
    assert Pricing().pickup_charge("filament", 130, 1000).above_quote
    assert not Pricing().pickup_charge("filament", 130, None).above_quote  # no quote known
    assert Pricing(pickup_policy="lower").pickup_charge("resin", 10, 150).amount_cents == 150
    with pytest.raises(ValueError):
        Pricing(pickup_policy="whatever")


def test_payments_stored_before_the_override_load_with_it_empty() -> None:
    old = {"grams": 11.2, "amount_cents": 300, "txn_no": "T", "picked_up_by": "J",
           "recorded_by": "Ana Lee", "recorded_at": "2026-09-01T15:00:00+00:00",
           "voided_at": None, "void_reason": None}
    payment = converter.structure(old, Payment)
    assert (payment.quoted_cents, payment.override_reason) == (None, None)
    job = Job("J", "j@x.edu", "D", "C", "filament", "red", payment.recorded_at,
              status="paid_picked_up", cost_cents=250, payments=[payment])
    assert job.amount_due_cents == 300


def test_the_setting(tmp_path: Any) -> None:
    env = {"PRINTCORE_HOME": str(tmp_path)}
    assert load_settings(env, env_file=None).pickup_charge == "weighed"
    for value in ("quote", "LOWER ", "weighed"):
        got = load_settings({**env, "PRINTCORE_PICKUP_CHARGE": value}, env_file=None)
        assert got.pickup_charge == value.strip().lower()
    with pytest.raises(SettingsError, match="PRINTCORE_PICKUP_CHARGE"):
        load_settings({**env, "PRINTCORE_PICKUP_CHARGE": "highest"}, env_file=None)
