"""The shared staff password asked again before a destructive admin action (changing the
password, ending workstations, repairs, retention, deleting): a signed-in workstation
left open is not enough to do those."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.web.context import WebContext
from printcore.errors import AuthenticationError, ValidationError

__all__ = ["REPROMPT_FIELD", "require_password_again"]

#: The form field (or JSON key) that carries the password asked again.
REPROMPT_FIELD = "confirm_password"


def require_password_again(ctx: WebContext, form: Mapping[str, Any]) -> None:
    """Raises ValidationError (field ``confirm_password``) when the password is missing
    or wrong; nothing has been done then."""
    given = form.get(REPROMPT_FIELD)
    if not isinstance(given, str) or not given:
        raise ValidationError(
            "Enter the staff password again to do this.",
            {REPROMPT_FIELD: "This action needs the staff password again."})
    try:
        ctx.staff.check_password(given)
    except AuthenticationError:
        raise ValidationError(
            "The staff password was wrong; nothing was changed.",
            {REPROMPT_FIELD: "Wrong password; try again."}) from None
