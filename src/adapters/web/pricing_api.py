"""Live cost figures for the staff pages' forms (issue 12): the approval form's cost
preview and the pickup form's amount due follow the typed grams through this endpoint
(``static/costs.js``); without JavaScript the server-rendered figure and the service's
own 422 still hold.

* ``GET /api/v1/pricing/quote?print_method=filament&grams=12.5[&quoted_cents=1000]`` →
  200 ``{"print_method", "grams", "cost_cents", "cost", "material_cents",
  "minimum_cents", "minimum_applies", "cents_per_gram", "policy", "quoted_cents",
  "charge_cents", "charge", "above_quote"}``: ``cost_cents`` is what ``grams`` cost (at
  least the minimum), ``cost`` the same as money text (``"$1.25"``), ``cents_per_gram``
  the rate as a decimal string (``"6.5"``). With ``quoted_cents`` (the quote the student
  confirmed), ``charge_cents`` (``charge`` as money text) is what a pickup of these grams
  charges under the lab's policy (``PRINTCORE_PICKUP_CHARGE``, named in ``policy``) and
  ``above_quote`` whether that needs an override reason; without it the three are null.
* 401 without a staff login (session cookie or bearer token); 422 naming the field for a
  ``print_method`` other than filament/resin, ``grams`` that are not a number greater than
  0 and at most 100,000, or ``quoted_cents`` that is not a whole number of cents from 0 to
  10^9.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.web.context import WebContext
from adapters.web.numbers import whole_number
from adapters.web.responses import JSONResponse, error_json
from adapters.web.security import workstation
from printcore.errors import PrintcoreError, ValidationError
from printcore.requests.job import Job
from printcore.requests.pricing import MAX_GRAMS, Pricing, format_cents

__all__ = ["MAX_QUOTED_CENTS", "pickup_preview", "pricing_api_routes", "quote_json"]

#: The largest ``quoted_cents`` accepted ($10,000,000): beyond any real print.
MAX_QUOTED_CENTS = 1_000_000_000
_GRAMS_HINT = f"Enter the grams, a number greater than 0 and at most {MAX_GRAMS:,}."


def parse_grams(raw: str | None, name: str = "grams") -> float:
    """Grams typed by a person (``"12.5"``, ``" 7 "``) as a float. Raises ValidationError
    naming ``name`` when empty, not a number, not finite, ≤ 0 or above ``MAX_GRAMS``."""
    text = (raw or "").strip()
    try:
        grams = float(text)
    except ValueError:
        raise ValidationError(f"{name} must be a number of grams.", {name: _GRAMS_HINT}) from None
    if not (math.isfinite(grams) and 0 < grams <= MAX_GRAMS):
        raise ValidationError(f"{name} must be greater than 0 and at most {MAX_GRAMS}.",
                              {name: _GRAMS_HINT})
    return grams


def quote_json(pricing: Pricing, print_method: str, grams: float,
               quoted_cents: int | None = None) -> dict[str, Any]:
    """The figures of ``GET /pricing/quote`` (shape in the module docstring). Raises
    ValidationError for an unknown print method (field ``print_method``) or bad grams."""
    rate = pricing.rate(print_method)
    cost = pricing.cost_cents(print_method, grams)
    material = pricing.material_cents(print_method, grams)
    data: dict[str, Any] = {
        "print_method": print_method, "grams": grams, "cost_cents": cost,
        "cost": format_cents(cost), "material_cents": material,
        "minimum_cents": pricing.minimum_cents, "minimum_applies": material < cost,
        "cents_per_gram": format(rate.normalize(), "f"), "policy": pricing.pickup_policy,
        "quoted_cents": quoted_cents, "charge_cents": None, "charge": None,
        "above_quote": None,
    }
    if quoted_cents is not None:
        charge = pricing.pickup_charge(print_method, grams, quoted_cents)
        data.update(charge_cents=charge.amount_cents, charge=format_cents(charge.amount_cents),
                    above_quote=charge.above_quote)
    return data


def pickup_preview(pricing: Pricing, job: Job, raw_grams: Any) -> dict[str, Any] | None:
    """For the pickup form (server-rendered): the figures of :func:`quote_json` for the
    typed grams against the job's confirmed quote, or None when the grams are not (yet) a
    valid weight. Never raises."""
    if raw_grams is None or raw_grams == "":
        return None
    try:
        grams = parse_grams(str(raw_grams))
        return quote_json(pricing, job.print_method, grams, job.cost_cents)
    except ValidationError:
        return None


def pricing_api_routes(ctx: WebContext) -> list[Route]:
    """``GET /api/v1/pricing/quote`` (full path: registered beside the ``/api/v1`` mount)."""
    pricing = ctx.requests.pricing

    async def pricing_quote(request: Request) -> Response:
        try:
            workstation(request, ctx, api=True)
            params = request.query_params
            method = str(params.get("print_method") or "").strip()
            if method not in ("filament", "resin"):
                raise ValidationError("print_method must be filament or resin.",
                                      {"print_method": "Choose filament or resin."})
            grams = parse_grams(params.get("grams"))
            raw_quote = params.get("quoted_cents")
            quoted = (None if raw_quote is None or not raw_quote.strip() else
                      whole_number(raw_quote, "quoted_cents", 0, 0, MAX_QUOTED_CENTS))
            return JSONResponse(quote_json(pricing, method, grams, quoted))
        except PrintcoreError as err:
            return error_json(err)

    return [Route("/api/v1/pricing/quote", pricing_quote)]
