"""Pricing policy: integer cents from grams, and approved time rounded up to 0.5 h."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import attrs

from printcore.errors import ValidationError

__all__ = ["MAX_GRAMS", "MAX_HOURS", "PICKUP_POLICIES", "PickupCharge", "Pricing",
           "round_up_to_half_hour"]

#: The heaviest weight accepted, in grams (100 kg): anything above is a typo such as 1e30,
#: which would otherwise overflow the Decimal context and a 64-bit cents column.
MAX_GRAMS = 100_000
#: The longest print time accepted, in hours (30 days): no printer in a lab runs longer, and
#: a typo such as ``1e300`` would otherwise be stored and shown as a real estimate.
MAX_HOURS = 720


def _positive_finite(value: object) -> bool:
    """A real number (not a bool), finite and greater than 0."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


#: What is charged at pickup (``PRINTCORE_PICKUP_CHARGE``), see :meth:`Pricing.pickup_charge`.
PICKUP_POLICIES: tuple[str, ...] = ("weighed", "quote", "lower")


@attrs.frozen
class PickupCharge:
    """The money side of one pickup, in integer cents.

    ``weighed_cents``: the price of the weighed grams; ``quoted_cents``: the cost the
    student confirmed (``Job.cost_cents``; None only for a job never approved);
    ``amount_cents``: what is charged under the policy; ``policy``: the policy applied
    (``weighed``, ``quote``, ``lower``, or ``quote`` when staff chose to charge the quote).
    """

    weighed_cents: int
    quoted_cents: int | None
    amount_cents: int
    policy: str

    @property
    def above_quote(self) -> bool:
        """Whether the charge exceeds the confirmed quote: allowed only with an override
        reason (:meth:`printcore.requests.lifecycle.JobLifecycle.check_pick_up`)."""
        return self.quoted_cents is not None and self.amount_cents > self.quoted_cents


@attrs.frozen
class Pricing:
    """Rates in cents per gram (Decimal, so ``6.5`` is $0.065/g) and a minimum in cents.

    Defaults (DESIGN.md): filament $0.10/g, resin $0.20/g, minimum charge $3.00.
    ``pickup_policy`` is one of :data:`PICKUP_POLICIES` (see :meth:`pickup_charge`).
    """

    filament_cents_per_gram: Decimal = Decimal("10")
    resin_cents_per_gram: Decimal = Decimal("20")
    minimum_cents: int = 300
    pickup_policy: str = attrs.field(default="weighed",
                                     validator=attrs.validators.in_(PICKUP_POLICIES))

    def rate(self, print_method: str) -> Decimal:
        if print_method == "filament":
            return self.filament_cents_per_gram
        if print_method == "resin":
            return self.resin_cents_per_gram
        raise ValidationError(
            f"Unknown print method {print_method!r}; use filament or resin.",
            {"print_method": "Choose filament or resin."},
        )

    def material_cents(self, print_method: str, grams: float) -> int:
        """Cost of ``grams`` of material before the minimum, rounded half up to a cent."""
        raw = Decimal(str(grams)) * self.rate(print_method)
        return int(raw.quantize(Decimal("1"), rounding=ROUND_HALF_UP))

    def cost_cents(self, print_method: str, grams: float) -> int:
        """What the student pays for ``grams`` of material: at least ``minimum_cents``.

        Raises ValidationError for a weight that is not a positive finite number of at
        most ``MAX_GRAMS``.
        """
        if not (_positive_finite(grams) and grams <= MAX_GRAMS):
            raise ValidationError(
                "Weight must be a positive number of grams.",
                {"weight_g": f"Enter the weight in grams, greater than 0 and at most {MAX_GRAMS}."},
            )
        return max(self.minimum_cents, self.material_cents(print_method, grams))

    def pickup_charge(self, print_method: str, grams: float, quoted_cents: int | None,
                      charge_quote: bool = False) -> PickupCharge:
        """What to charge at pickup for ``grams`` weighed, given the confirmed quote.

        ``pickup_policy``: ``weighed`` (default) charges the weighed grams' price, which
        may exceed the quote (then the pickup needs an override reason); ``quote`` always
        charges the quote; ``lower`` charges the lower of the two (never above the quote).
        ``charge_quote=True`` charges the quote this once, whatever the policy. Without a
        quote (``quoted_cents`` None) the weighed price is charged.

        Raises ValidationError (field ``weight_g``) for a weight that is not a positive
        finite number of at most ``MAX_GRAMS``, as :meth:`cost_cents`.
        """
        weighed = self.cost_cents(print_method, grams)
        policy = "quote" if charge_quote else self.pickup_policy
        if quoted_cents is None or policy == "weighed":
            amount = weighed
        elif policy == "quote":
            amount = quoted_cents
        else:
            amount = min(weighed, quoted_cents)
        return PickupCharge(weighed, quoted_cents, amount, policy)


def round_up_to_half_hour(hours: float) -> float:
    """Round a print time in hours up to the next half hour (0.9 → 1.0, 1.01 → 1.5).

    Raises ValidationError when ``hours`` is not a positive finite number of at most
    ``MAX_HOURS`` (720 h, 30 days).
    """
    if not (_positive_finite(hours) and hours <= MAX_HOURS):
        raise ValidationError(
            "Print time must be a positive number of hours, at most 720 (30 days).",
            {"time_hours": "Enter the print time in hours, greater than 0 and at most 720 "
                           "(30 days)."},
        )
    # Decimal avoids float noise such as 1.5000000001 rounding up to 2.0.
    halves = (Decimal(str(hours)) * 2).to_integral_value(rounding="ROUND_CEILING")
    return float(halves / 2)


def format_cents(cents: int) -> str:
    """``300`` → ``"$3.00"``."""
    return f"${cents // 100:,}.{cents % 100:02d}"


def per_gram(cents_per_gram: Decimal) -> str:
    """A rate in cents per gram as dollars: ``Decimal("10")`` → ``"$0.10"``, 6.5 → ``"$0.065"``."""
    dollars = (cents_per_gram / 100).normalize()
    text = format(dollars, "f")
    if "." not in text:
        text += ".00"
    elif len(text.split(".")[1]) < 2:
        text += "0"
    return f"${text}"
