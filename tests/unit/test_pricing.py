"""Pricing: integer cents from grams (DESIGN.md "Pricing") and time rounded up to 0.5 h."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from printcore import Pricing, ValidationError, format_cents, round_up_to_half_hour

BAD_NUMBERS = [0, 0.0, -1, -0.01, math.nan, math.inf, -math.inf, True]


def test_the_fixture_worked_example() -> None:
    """10.48 g of filament is 105 c of material, so the $3.00 minimum is charged."""
    pricing = Pricing()
    assert pricing.material_cents("filament", 10.48) == 105
    assert pricing.cost_cents("filament", 10.48) == 300
    assert format_cents(pricing.cost_cents("filament", 10.48)) == "$3.00"


@pytest.mark.parametrize(
    ("method", "grams", "cents"),
    [
        ("filament", 30, 300),  # exactly the minimum
        ("filament", 30.01, 300),
        ("filament", 30.05, 301),  # half a cent rounds up
        ("filament", 45.5, 455),
        ("filament", 250, 2500),
        ("resin", 15, 300),
        ("resin", 15.03, 301),
        ("resin", 42.25, 845),
        ("resin", 1, 300),
    ],
)
def test_cost_is_rate_times_grams_in_cents_with_a_minimum(
    method: str, grams: float, cents: int
) -> None:
    cost = Pricing().cost_cents(method, grams)
    assert cost == cents
    assert isinstance(cost, int)


def test_rates_and_minimum_are_configurable() -> None:
    pricing = Pricing(
        filament_cents_per_gram=Decimal("6.5"), resin_cents_per_gram=Decimal(25), minimum_cents=150
    )
    assert pricing.cost_cents("filament", 100) == 650
    assert pricing.cost_cents("filament", 1) == 150
    assert pricing.cost_cents("resin", 10) == 250


@pytest.mark.parametrize("grams", BAD_NUMBERS)
def test_weights_that_are_not_positive_finite_numbers_are_refused(grams: float) -> None:
    with pytest.raises(ValidationError) as info:
        Pricing().cost_cents("filament", grams)
    assert "weight_g" in info.value.fields


def test_an_absurd_weight_is_refused_not_crashed_on() -> None:
    """A typo like 1e30 g must be a ValidationError, not a decimal.InvalidOperation."""
    with pytest.raises(ValidationError) as info:
        Pricing().cost_cents("filament", 1e30)
    assert "weight_g" in info.value.fields


def test_an_unknown_print_method_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        Pricing().cost_cents("laser", 10)
    assert "print_method" in info.value.fields


@pytest.mark.parametrize(
    ("entered", "approved"),
    [
        (0.9, 1.0),
        (1.0, 1.0),
        (1.01, 1.5),
        (1.5, 1.5),
        (0.01, 0.5),
        (2.49, 2.5),
        (2.51, 3.0),
        (7, 7.0),
    ],
)
def test_time_rounds_up_to_the_next_half_hour(entered: float, approved: float) -> None:
    assert round_up_to_half_hour(entered) == approved


@pytest.mark.parametrize("hours", BAD_NUMBERS)
def test_times_that_are_not_positive_finite_numbers_are_refused(hours: float) -> None:
    with pytest.raises(ValidationError) as info:
        round_up_to_half_hour(hours)
    assert "time_hours" in info.value.fields


@pytest.mark.parametrize(
    ("cents", "text"), [(0, "$0.00"), (5, "$0.05"), (300, "$3.00"), (1234567, "$12,345.67")]
)
def test_format_cents(cents: int, text: str) -> None:
    assert format_cents(cents) == text
