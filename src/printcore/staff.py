"""Staff members and the shared staff password (one per lab, used at every workstation)."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from printcore.errors import AuthenticationError, NotFoundError, ValidationError
from printcore.ports import Clock, PasswordHasher, StaffMember, UnitOfWork

__all__ = ["PASSWORD_KEY", "StaffDirectory"]

PASSWORD_KEY = "staff_password_hash"
MIN_PASSWORD_LENGTH = 8


@attrs.define
class StaffDirectory:
    """Who may act as staff, and the shared password check."""

    uow: Callable[[], UnitOfWork]
    hasher: PasswordHasher
    clock: Clock

    def add(self, name: str) -> StaffMember:
        """Add (or reactivate) a staff member. Raises ValidationError for an empty/long name."""
        name = " ".join(name.split())
        if not name or len(name) > 80:
            raise ValidationError(
                "A staff name is 1 to 80 characters.", {"name": "Enter the staff member's name."}
            )
        member = StaffMember(name=name, active=True, added_at=self.clock.now())
        with self.uow() as uow:
            uow.staff.add(member)
            uow.commit()
        return member

    def list(self, active_only: bool = True) -> list[StaffMember]:
        with self.uow() as uow:
            return uow.staff.list(active_only=active_only)

    def deactivate(self, name: str) -> None:
        """Raises NotFoundError for an unknown name."""
        with self.uow() as uow:
            if uow.staff.get(name) is None:
                raise NotFoundError(f"No staff member called {name!r}; see `printcore staff list`.")
            uow.staff.set_active(name, False)
            uow.commit()

    def set_password(self, password: str) -> None:
        """Set the shared staff password (stored as an argon2 hash by the adapter)."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValidationError(
                f"The staff password needs at least {MIN_PASSWORD_LENGTH} characters.",
                {"password": f"Use at least {MIN_PASSWORD_LENGTH} characters."},
            )
        with self.uow() as uow:
            uow.settings.set(PASSWORD_KEY, self.hasher.hash(password))
            uow.commit()

    def has_password(self) -> bool:
        with self.uow() as uow:
            return uow.settings.get(PASSWORD_KEY) is not None

    def check_password(self, password: str) -> None:
        """Raises AuthenticationError when no password is set or it does not match."""
        with self.uow() as uow:
            hashed = uow.settings.get(PASSWORD_KEY)
        if hashed is None:
            raise AuthenticationError(
                "No staff password is set yet; run `printcore set-password` on the server."
            )
        if not self.hasher.verify(hashed, password):
            raise AuthenticationError("Wrong password.")
