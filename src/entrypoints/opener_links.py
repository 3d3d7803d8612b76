"""``LinkSigner``: the server's side of the print3d:// links, wired into the web adapter
by :mod:`entrypoints.web` (the adapter sees it only as its ``OpenerLinks`` protocol, so
adapters never import entrypoints). Standard library only, like the opener."""

from __future__ import annotations

from entrypoints.opener_paths import extension_of
from entrypoints.opener_token import OpenLink, check_secret, make_link, parse_link, verify

__all__ = ["LinkSigner"]


class LinkSigner:
    """Makes and checks print3d:// links with one secret (``PRINTCORE_OPENER_SECRET``).

    Raises ValueError at construction for a secret under 16 characters.
    """

    def __init__(self, secret: str) -> None:
        self._secret = check_secret(secret, "PRINTCORE_OPENER_SECRET")

    def make(self, job_id: int, file: str, expires: int, workstation: str) -> str:
        """A signed link to ``file`` (``/``-separated, relative to the storage root) of
        job ``job_id``, valid until ``expires`` (UTC epoch seconds)."""
        return make_link(self._secret, job_id, file, expires, workstation)

    def check(self, url: object, now: float, grace_seconds: float = 0) -> OpenLink:
        """The link, when well formed, signed with this secret and not expired at ``now``
        (UTC epoch seconds, with ``grace_seconds`` of slack). Raises
        ``entrypoints.opener_token.Refused`` (a ValueError) otherwise."""
        link = parse_link(url)
        verify(link, self._secret, now, grace_seconds)
        return link

    def opens(self, name: str) -> bool:
        """Whether a slicer opens a file called ``name`` (by its extension)."""
        return extension_of(name) is not None
