"""Staff members, the shared staff password (one per lab, used at every workstation),
and the workstation sessions that a login starts (server side, so they can be ended).

Admin actions (the admin area, ``/staff/admin``) pass the acting ``actor``: the change
and its lab event (:func:`printcore.lab_events.lab_event`, kinds ``staff_added``,
``staff_renamed``, ``staff_deactivated``, ``staff_reactivated``, ``password_changed``,
``session_ended``) are written in one unit of work. Called without an actor (the command
line, setup scripts) the change is made and no event is written.
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Callable
from datetime import timedelta

import attrs

from printcore.errors import (
    AuthenticationError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
)
from printcore.events import Actor, Event
from printcore.lab_events import LAB_ID, LAB_SUBJECT, lab_event
from printcore.ports import Clock, PasswordHasher, StaffMember, UnitOfWork, WorkstationSession

__all__ = ["MIN_PASSWORD_LENGTH", "PASSWORD_KEY", "StaffDirectory", "StaffStateError"]

PASSWORD_KEY = "staff_password_hash"
MIN_PASSWORD_LENGTH = 8
MAX_NAME_LENGTH = 80


class StaffStateError(InvalidTransitionError):
    """A staff change that conflicts with what is stored (HTTP 409): a name already in use
    (``state="in_use"``), or reactivating an active / deactivating an inactive member.
    ``fields`` names the form field, like ValidationError's."""

    code = "staff_conflict"

    def __init__(self, event: str, state: str, message: str, field: str = "name") -> None:
        super().__init__(event, state, message)
        self.fields: dict[str, str] = {field: message}


def _clean_name(name: str, field: str = "name") -> str:
    """``name`` with runs of whitespace made one space. Raises ValidationError for an empty
    name or one over 80 characters."""
    cleaned = " ".join(str(name).split())
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"A staff name is 1 to {MAX_NAME_LENGTH} characters.",
            {field: f"Enter the staff member's name (1 to {MAX_NAME_LENGTH} characters)."})
    return cleaned


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

    @staticmethod
    def _check_actor(uow: UnitOfWork, actor: Actor) -> None:
        """A staff actor must be active staff (a system actor is the command line)."""
        if actor.kind == "system":
            return
        member = uow.staff.get(actor.name) if actor.kind == "staff" else None
        if member is None or not member.active:
            raise ValidationError(
                f"Choose your name from the staff list: {actor.name!r} is not active staff.",
                {"staff_name": "Choose your name from the staff list."})

    @staticmethod
    def _name_taken(uow: UnitOfWork, name: str, besides: str | None = None) -> StaffMember | None:
        """The member whose name equals ``name`` ignoring case (``besides`` excluded)."""
        folded = name.casefold()
        for member in uow.staff.list(active_only=False):
            if member.name.casefold() == folded and member.name != besides:
                return member
        return None

    def add(self, name: str, actor: Actor | None = None, *,
            refuse_existing: bool = False) -> StaffMember:
        """Add a staff member (active, ``added_at`` now, UTC); returns it.

        Without ``refuse_existing`` an existing name is reactivated (the command line's
        ``printcore staff add``). With it (the admin page), a name already on the list,
        active or not, compared ignoring case, raises StaffStateError (409).
        Raises ValidationError for an empty or over-80-character name, or an ``actor``
        who is not active staff.
        """
        name = _clean_name(name)
        member = StaffMember(name=name, active=True, added_at=self.clock.now())
        with self.uow() as uow:
            if actor is not None:
                self._check_actor(uow, actor)
            if refuse_existing:
                taken = self._name_taken(uow, name)
                if taken is not None:
                    how = ("is already on the staff list" if taken.active else
                           "was deactivated: reactivate them instead of adding them again")
                    raise StaffStateError("add", "in_use", f"{taken.name!r} {how}.")
            uow.staff.add(member)
            if actor is not None:
                uow.events.append(lab_event("staff_added", actor, self.clock.now(), name=name))
            uow.commit()
        return member

    def list(self, active_only: bool = True) -> list[StaffMember]:
        """Members sorted by name; only the active ones unless ``active_only=False``."""
        with self.uow() as uow:
            return uow.staff.list(active_only=active_only)

    def rename(self, old: str, new: str, actor: Actor | None = None) -> StaffMember:
        """Rename a member (keeping active/added_at); returns the renamed member. Events
        already logged keep the old name: the log is never rewritten.

        Raises NotFoundError for an unknown ``old``; ValidationError (field ``new_name``)
        for an empty/long new name or one equal to the old; StaffStateError (409) when
        another member already has the new name (ignoring case); ValidationError for an
        ``actor`` who is not active staff.
        """
        new = _clean_name(new, "new_name")
        with self.uow() as uow:
            if actor is not None:
                self._check_actor(uow, actor)
            member = uow.staff.get(old)
            if member is None:
                raise NotFoundError(f"No staff member called {old!r}; see the staff list.")
            if new == old:
                raise ValidationError(f"{old!r} already has that name; type the new name.",
                                      {"new_name": "Type a different name."})
            taken = self._name_taken(uow, new, besides=old)
            if taken is not None:
                raise StaffStateError(
                    "rename", "in_use",
                    f"{taken.name!r} is already on the staff list; choose another name.",
                    "new_name")
            uow.staff.rename(old, new)
            if actor is not None:
                uow.events.append(lab_event("staff_renamed", actor, self.clock.now(),
                                            old=old, new=new))
            uow.commit()
        return attrs.evolve(member, name=new)

    def deactivate(self, name: str, actor: Actor | None = None) -> None:
        """Take a member off the active list (kept, so past events still name them).

        Raises NotFoundError for an unknown name; StaffStateError (409) when already
        inactive; ValidationError when they are the last active member (nobody could act
        as staff any more: add someone first).
        """
        with self.uow() as uow:
            if actor is not None:
                self._check_actor(uow, actor)
            member = uow.staff.get(name)
            if member is None:
                raise NotFoundError(f"No staff member called {name!r}; see `printcore staff list`.")
            if not member.active:
                raise StaffStateError("deactivate", "inactive",
                                      f"{name!r} is already deactivated.")
            if [m.name for m in uow.staff.list(active_only=True)] == [name]:
                raise ValidationError(
                    f"{name!r} is the last active staff member; add someone else first, "
                    "or nobody could act as staff.", {"name": "The last active member stays."})
            uow.staff.set_active(name, False)
            if actor is not None:
                uow.events.append(lab_event("staff_deactivated", actor, self.clock.now(),
                                            name=name))
            uow.commit()

    def reactivate(self, name: str, actor: Actor | None = None) -> None:
        """Put a deactivated member back on the active list.

        Raises NotFoundError for an unknown name; StaffStateError (409) when already
        active; ValidationError for an ``actor`` who is not active staff.
        """
        with self.uow() as uow:
            if actor is not None:
                self._check_actor(uow, actor)
            member = uow.staff.get(name)
            if member is None:
                raise NotFoundError(f"No staff member called {name!r}; see the staff list.")
            if member.active:
                raise StaffStateError("reactivate", "active", f"{name!r} is already active.")
            uow.staff.set_active(name, True)
            if actor is not None:
                uow.events.append(lab_event("staff_reactivated", actor, self.clock.now(),
                                            name=name))
            uow.commit()

    @staticmethod
    def _check_new_password(password: str, again: str | None = None) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValidationError(
                f"The staff password needs at least {MIN_PASSWORD_LENGTH} characters.",
                {"password": f"Use at least {MIN_PASSWORD_LENGTH} characters."},
            )
        if again is not None and again != password:
            raise ValidationError("The two new passwords differ; type the same one twice.",
                                  {"password_again": "Type the same new password again."})

    def set_password(self, password: str) -> None:
        """Set the shared staff password (stored as an argon2 hash by the adapter) and end
        every workstation session: old cookies and bearer tokens stop working at once.
        Raises ValidationError (field ``password``) under 8 characters."""
        self._check_new_password(password)
        with self.uow() as uow:
            uow.settings.set(PASSWORD_KEY, self.hasher.hash(password))
            uow.sessions.end_all(self.clock.now(), "password changed")
            uow.commit()

    def change_password(self, password: str, again: str, actor: Actor,
                        workstation: str) -> WorkstationSession:
        """The admin page's change: the new password (twice) replaces the shared one, every
        workstation session ends, and a fresh session starts for ``workstation`` (the one
        making the change, which stays signed in); returns that session. The caller has
        already asked for the current password. One ``password_changed`` event records
        who, when and how many sessions ended (never the password).

        Raises ValidationError: under 8 characters (``password``), the two differ
        (``password_again``), or an ``actor`` who is not active staff.
        """
        self._check_new_password(password, again)
        now = self.clock.now()
        session = WorkstationSession(id=secrets.token_hex(16), workstation=workstation,
                                     started_at=now, last_seen_at=now)
        with self.uow() as uow:
            self._check_actor(uow, actor)
            uow.settings.set(PASSWORD_KEY, self.hasher.hash(password))
            ended = uow.sessions.end_all(now, f"password changed by {actor.name}")
            uow.sessions.add(session)
            uow.events.append(lab_event("password_changed", actor, now,
                                        sessions_ended=ended, workstation=workstation))
            uow.commit()
        return session

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

    def end_session(self, session_id: str, by: str = "logged out",
                    actor: Actor | None = None) -> WorkstationSession:
        """End one session. With an ``actor`` (the admin page) a ``session_ended`` event
        records who ended which workstation's login. Raises NotFoundError when there is
        no active session with that id (see ``printcore sessions list``); ValidationError
        for an ``actor`` who is not active staff."""
        with self.uow() as uow:
            if actor is not None:
                self._check_actor(uow, actor)
            before = uow.sessions.get(session_id)
            if not uow.sessions.end(session_id, self.clock.now(), by):
                raise NotFoundError(
                    f"No signed-in workstation with session id {session_id!r}; see "
                    "`printcore sessions list`.")
            if actor is not None and before is not None:
                uow.events.append(lab_event(
                    "session_ended", actor, self.clock.now(), workstation=before.workstation,
                    started_at=before.started_at.isoformat()))
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

    # The lab's admin log ---------------------------------------------------------------

    def lab_history(self, limit: int = 50) -> builtins.list[Event]:
        """The latest ``limit`` lab events (admin actions, repairs, retention runs),
        newest first."""
        with self.uow() as uow:
            found = uow.events.for_subject(LAB_SUBJECT, LAB_ID)
        return builtins.list(reversed(found))[:limit]
