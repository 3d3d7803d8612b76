"""``print3d://`` links on the staff job page (issue 5), signed for the slicer opener.

One link per file of the job (the student's model and each sliced file), each naming
``<status folder>/<job folder>/<stored name>`` relative to the storage root, the job,
the workstation of the staff session, a one-time nonce and an expiry
(:data:`LINK_TTL_SECONDS` from now), signed with ``PRINTCORE_OPENER_SECRET``.

The signing itself lives in the web wiring (``entrypoints.web.LinkSigner``, built on
``entrypoints.opener.token``, the same code the opener checks links with) and reaches
this adapter through the :class:`OpenerLinks` protocol in ``WebContext.opener_links``,
wired by ``entrypoints.web``: adapters never import entrypoints.

The opener secret is not the server's ``PRINTCORE_SECRET_KEY``: it is copied to every
staff computer's ``opener.ini``, and whoever holds it can only make links (which the
opener still confines to the storage root) and post "opened in slicer" events, never
sign in or sign sessions, confirmation links or API tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from adapters.files import LocalFileStore
from printcore.requests.job import Job

__all__ = ["LINK_TTL_SECONDS", "CheckedLink", "OpenerLinks", "SlicerLink", "slicer_link_context"]

#: How long a rendered link stays valid: 2 hours (reload the job page after that).
LINK_TTL_SECONDS = 2 * 3600


class CheckedLink(Protocol):
    """A link whose signature and expiry were checked. ``expires``: UTC epoch seconds."""

    job_id: int
    file: str
    expires: int
    nonce: str
    workstation: str


@runtime_checkable
class OpenerLinks(Protocol):
    """Makes and checks print3d:// links (``entrypoints.web.LinkSigner``)."""

    def make(self, job_id: int, file: str, expires: int, workstation: str) -> str:
        """A signed link to ``file`` of job ``job_id`` until ``expires`` (UTC epoch s)."""
        ...

    def check(self, url: object, now: float, grace_seconds: float = 0) -> CheckedLink:
        """The checked link; raises ValueError (with a message for people) otherwise."""
        ...

    def opens(self, name: str) -> bool:
        """Whether a slicer opens a file called ``name``."""
        ...


@dataclass(frozen=True)
class SlicerLink:
    """One link: ``role`` is ``original`` or ``sliced``; ``url`` the ``print3d://`` URL."""

    stored_name: str
    role: str
    url: str


def slicer_link_context(links: OpenerLinks | None, files: LocalFileStore, now: datetime,
                        job: Job, workstation: str) -> dict[str, Any]:
    """What ``staff/_slicer_links.html`` needs: ``slicer_links`` (a list of
    :class:`SlicerLink`, empty when the opener is not set up — ``links`` None — or the job
    has no file a slicer opens) and ``slicer_links_enabled`` (``PRINTCORE_OPENER_SECRET``
    is set). ``now`` (UTC) starts the links' lifetime."""
    if links is None or job.id is None:
        return {"slicer_links": [], "slicer_links_enabled": False}
    folder = files.folder(job).relative_to(files.root).as_posix()
    expires = int(now.timestamp()) + LINK_TTL_SECONDS
    return {
        "slicer_links": [
            SlicerLink(f.stored_name, f.role,
                       links.make(job.id, f"{folder}/{f.stored_name}", expires, workstation))
            for f in job.files
            if links.opens(f.stored_name)
        ],
        "slicer_links_enabled": True,
    }
