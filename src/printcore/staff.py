"""Staff members, the shared staff password (one per lab, used at every workstation),
and the workstation sessions that a login starts (server side, so they can be ended)."""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Callable
from datetime import timedelta

import attrs

from printcore.errors import AuthenticationError, NotFoundError, ValidationError
from printcore.ports import Clock, PasswordHasher, StaffMember, UnitOfWork, WorkstationSession

__all__ = ["PASSWORD_KEY", "StaffDirectory"]

PASSWORD_KEY = "staff_password_hash"
MIN_PASSWORD_LENGTH = 8


@attrs.define
class StaffDirectory:
    """Who may act as staff, and the shared password check."""

    uow: Callable[[], UnitOfWork]
    hasher: PasswordHasher
    clock: Clock
    #: How long a login lasts without being ended.
    session_lifetime: timedelta = timedelta(hours=12)
    #: ``last_seen_at`` is written at most this often per session.
    touch_every: timedelta = timedelta(minutes=1)

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
        """Set the shared staff password (stored as an argon2 hash by the adapter) and end
        every workstation session: old cookies and bearer tokens stop working at once."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValidationError(
                f"The staff password needs at least {MIN_PASSWORD_LENGTH} characters.",
                {"password": f"Use at least {MIN_PASSWORD_LENGTH} characters."},
            )
        with self.uow() as uow:
            uow.settings.set(PASSWORD_KEY, self.hasher.hash(password))
            uow.sessions.end_all(self.clock.now(), "password changed")
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

    # Workstation sessions ------------------------------------------------------------

    def start_session(self, workstation: str) -> WorkstationSession:
        """A new session for a workstation that has just given the password."""
        now = self.clock.now()
        session = WorkstationSession(id=secrets.token_hex(16), workstation=workstation,
                                     started_at=now, last_seen_at=now)
        with self.uow() as uow:
            uow.sessions.add(session)
            uow.commit()
        return session

    def check_session(self, session_id: str) -> WorkstationSession:
        """The active session, its use recorded. Raises AuthenticationError when it is
        unknown, ended (logout, password change, ended by staff) or older than
        ``session_lifetime``."""
        now = self.clock.now()
        with self.uow() as uow:
            session = uow.sessions.get(session_id) if session_id else None
            if session is None:
                raise AuthenticationError("Log in as staff first.")
            if not session.active:
                raise AuthenticationError(
                    "This login was ended (" + (session.ended_by or "logged out")
                    + "); log in again.")
            if now - session.started_at > self.session_lifetime:
                raise AuthenticationError("This login has expired; log in again.")
            if now - session.last_seen_at >= self.touch_every:
                uow.sessions.touch(session_id, now)
                uow.commit()
        return session

    def end_session(self, session_id: str, by: str = "logged out") -> WorkstationSession:
        """End one session. Raises NotFoundError when there is no active session with
        that id (see ``printcore sessions list``)."""
        with self.uow() as uow:
            if not uow.sessions.end(session_id, self.clock.now(), by):
                raise NotFoundError(
                    f"No signed-in workstation with session id {session_id!r}; see "
                    "`printcore sessions list`.")
            uow.commit()
            ended = uow.sessions.get(session_id)
        assert ended is not None
        return ended

    def sessions(self, active_only: bool = True) -> builtins.list[WorkstationSession]:
        """Signed-in workstations, newest first (expired ones are left out)."""
        cutoff = self.clock.now() - self.session_lifetime
        with self.uow() as uow:
            found = uow.sessions.list(active_only=active_only)
        return [s for s in found if not active_only or s.started_at >= cutoff]
