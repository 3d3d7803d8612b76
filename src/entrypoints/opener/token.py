"""The signed ``print3d://`` link shared by the server (which makes it) and the slicer
opener (which checks it). Standard library only, so both sides can import it and the
opener stays small and fast.

A link names one file of one job and carries an expiry, a one-time nonce, the
workstation that asked for it and an HMAC-SHA256 signature::

    print3d://open?v=1&job=42&file=ReadyToPrint%2FJaneDoe_Filament_Red_42%2F
        JaneDoe_Filament_Red_42_sliced.gcode.3mf&exp=1767225600&n=Q2x1c3Rlcg&ws=Front%20desk
        &sig=<43 characters, base64url>

* ``job``: the job id (a whole number ≥ 1).
* ``file``: the file's path relative to the storage root, ``/``-separated
  (``<status folder>/<job folder>/<stored name>``), as the server saw it.
* ``exp``: expiry, UTC seconds since the epoch.
* ``n``: a random nonce (8-64 base64url characters); the server accepts one
  "opened in slicer" report per nonce.
* ``ws``: the workstation label of the staff session that rendered the link.
* ``sig``: base64url (no padding) of HMAC-SHA256 over the canonical JSON array
  ``["print3d-open/1", job, file, exp, n, ws]`` keyed with the shared opener secret
  (``PRINTCORE_OPENER_SECRET`` on the server, ``secret`` in the opener's INI file).

The scheme is ``print3d``: a URL scheme must begin with a letter (RFC 3986), so the
``3dprint://`` of earlier plans would be read by browsers as a relative path.

Everything that is refused raises :class:`Refused`, whose ``code`` is one of
:data:`REFUSAL_CODES` and whose message says what to do instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

__all__ = [
    "MAX_URL_CHARS",
    "MIN_SECRET_CHARS",
    "REFUSAL_CODES",
    "SCHEME",
    "OpenLink",
    "Refused",
    "check_secret",
    "make_link",
    "parse_link",
    "sign",
    "verify",
]

SCHEME = "print3d"
MAX_URL_CHARS = 4096
MIN_SECRET_CHARS = 16
_PURPOSE = "print3d-open/1"
_FIELDS = ("v", "job", "file", "exp", "n", "ws", "sig")

#: ``code`` → what it means. Stable names: logs, tests and the API use them.
REFUSAL_CODES: dict[str, str] = {
    "malformed": "the link is not a print3d://open link made by printcore",
    "bad_signature": "the link's signature does not match the shared secret",
    "expired": "the link is past its expiry",
    "bad_name": "the file part is not a storage path printcore makes",
    "wrong_job": "the file does not belong to the job the link names",
    "outside_root": "the file resolves outside the configured storage root",
    "extension": "the file's extension is not one a slicer opens",
    "missing": "the file does not exist under the storage root",
    "no_slicer": "no slicer is configured or installed for this kind of file",
    "config": "the opener's configuration is missing or wrong",
    "launch_failed": "the slicer could not be started",
}

_JOB = re.compile(r"[1-9][0-9]{0,17}")
_EXP = re.compile(r"[0-9]{1,12}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_SIG = re.compile(r"[A-Za-z0-9_-]{43}")
_CONTROL = re.compile(r"[\x00-\x20\x7f-\x9f]")


class Refused(ValueError):
    """A link (or the opener's set-up) that must not open anything.

    ``code`` is a key of :data:`REFUSAL_CODES`; ``message`` is for people. A ValueError,
    so code that sees links only through a protocol can catch it without importing this.
    """

    def __init__(self, code: str, message: str) -> None:
        assert code in REFUSAL_CODES, code
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class OpenLink:
    """A parsed (not yet verified) link. ``expires`` in UTC epoch seconds."""

    job_id: int
    file: str
    expires: int
    nonce: str
    workstation: str
    signature: str


def check_secret(secret: str | None, where: str) -> str:
    """The secret, stripped. Raises ValueError naming ``where`` when it is shorter than
    :data:`MIN_SECRET_CHARS` characters."""
    text = (secret or "").strip()
    if len(text) < MIN_SECRET_CHARS:
        raise ValueError(
            f"{where} must be at least {MIN_SECRET_CHARS} characters "
            "(make one with: python -c \"import secrets; print(secrets.token_urlsafe(32))\")."
        )
    return text


def sign(secret: str, job_id: int, file: str, expires: int, nonce: str, workstation: str) -> str:
    """The link signature: base64url (no padding) of HMAC-SHA256, 43 characters."""
    message = json.dumps(
        [_PURPOSE, job_id, file, expires, nonce, workstation],
        ensure_ascii=True,
        separators=(",", ":"),
    ).encode("ascii")
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_link(
    secret: str,
    job_id: int,
    file: str,
    expires: int,
    workstation: str = "",
    nonce: str | None = None,
) -> str:
    """A signed ``print3d://open?...`` URL for ``file`` (``/``-separated, relative to the
    storage root) of job ``job_id``, valid until ``expires`` (UTC epoch seconds)."""
    nonce = nonce or secrets.token_urlsafe(12)
    query = urlencode(
        {
            "v": "1",
            "job": str(job_id),
            "file": file,
            "exp": str(expires),
            "n": nonce,
            "ws": workstation,
            "sig": sign(secret, job_id, file, expires, nonce, workstation),
        },
        quote_via=quote,
        safe="",
    )
    return f"{SCHEME}://open?{query}"


def parse_link(url: object) -> OpenLink:
    """Parse a ``print3d://open?...`` URL. Checks its shape only (not the signature).

    Raises Refused(``malformed``) for anything but exactly the seven fields of a link
    made by :func:`make_link`, each once, within :data:`MAX_URL_CHARS` characters.
    """
    if not isinstance(url, str) or not url:
        raise Refused("malformed", "No link was given.")
    if len(url) > MAX_URL_CHARS:
        raise Refused("malformed", f"The link is longer than {MAX_URL_CHARS} characters.")
    if _CONTROL.search(url):
        raise Refused("malformed", "The link contains spaces or control characters.")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise Refused("malformed", "The link is not a valid URL.") from None
    if parts.scheme.lower() != SCHEME or parts.netloc.lower() != "open":
        raise Refused("malformed", f"Only {SCHEME}://open?... links are opened.")
    if parts.path not in ("", "/") or parts.fragment:
        raise Refused("malformed", f"Only {SCHEME}://open?... links are opened.")
    try:
        pairs = parse_qsl(
            parts.query, keep_blank_values=True, strict_parsing=True,
            errors="strict", max_num_fields=len(_FIELDS),
        )
    except (ValueError, UnicodeDecodeError):
        raise Refused("malformed", "The link's parameters cannot be read.") from None
    keys = [k for k, _ in pairs]
    if sorted(keys) != sorted(_FIELDS):
        raise Refused("malformed", "The link must have v, job, file, exp, n, ws and sig, once each.")
    fields = dict(pairs)
    if fields["v"] != "1":
        raise Refused("malformed", "This link was made for another version of the opener.")
    for name, pattern in (("job", _JOB), ("exp", _EXP), ("n", _NONCE), ("sig", _SIG)):
        if not pattern.fullmatch(fields[name]):
            raise Refused("malformed", f"The link's {name} is not valid.")
    workstation = fields["ws"]
    if len(workstation) > 120 or not workstation.isprintable():
        raise Refused("malformed", "The link's workstation is not valid.")
    return OpenLink(
        job_id=int(fields["job"]),
        file=fields["file"],
        expires=int(fields["exp"]),
        nonce=fields["n"],
        workstation=workstation,
        signature=fields["sig"],
    )


def verify(link: OpenLink, secret: str, now: float, grace_seconds: float = 0) -> None:
    """Check the signature (constant time), then the expiry against ``now`` (UTC epoch
    seconds) with ``grace_seconds`` of slack. Raises Refused(``bad_signature``) or
    Refused(``expired``)."""
    expected = sign(secret, link.job_id, link.file, link.expires, link.nonce, link.workstation)
    if not hmac.compare_digest(expected, link.signature):
        raise Refused(
            "bad_signature",
            "The link's signature does not match: it was changed, or this workstation's "
            "secret differs from the server's PRINTCORE_OPENER_SECRET.",
        )
    if now > link.expires + grace_seconds:
        raise Refused("expired", "The link has expired: reload the job page and click it again.")
