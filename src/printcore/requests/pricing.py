"""Pricing policy: integer cents from grams, and approved time rounded up to 0.5 h."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import attrs

from printcore.errors import ValidationError

__all__ = ["MAX_GRAMS", "MAX_HOURS", "Pricing", "round_up_to_half_hour"]

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


@attrs.frozen
class Pricing:
    """Rates in cents per gram (Decimal, so ``6.5`` is $0.065/g) and a minimum in cents.

    Defaults (DESIGN.md): filament $0.10/g, resin $0.20/g, minimum charge $3.00.
    """

    filament_cents_per_gram: Decimal = Decimal("10")
    resin_cents_per_gram: Decimal = Decimal("20")
    minimum_cents: int = 300

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
