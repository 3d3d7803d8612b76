"""Turning a link's ``file`` into a real path under the storage root, or refusing.

The link's ``file`` is ``<status folder>/<job folder>/<stored name>``, ``/``-separated
(``adapters.files.store`` makes that layout; printcore names are ASCII letters, digits,
``_``, ``-`` and ``.``). Checked in this order, each failure a
:class:`~entrypoints.opener.token.Refused`:

1. ``bad_name``: exactly three segments, each 1-200 characters of ``[A-Za-z0-9._-]``
   starting with a letter or digit (so no ``..``, ``/`` or ``\\``, drive letter, UNC
   prefix, NUL, percent sign or space can get through), the first one a status folder,
   at most 600 characters in all;
2. ``wrong_job``: the job folder ends in ``_<job id>``;
3. ``extension``: the name ends in one of the allowed extensions;
4. ``outside_root`` / ``missing``: the path with every symlink followed
   (``os.path.realpath``) lies inside the real storage root and is a regular file.
   A file no longer in the folder the link names (the job moved on since the page was
   shown) is looked for in the other status folders, with the same checks.

Standard library only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from entrypoints.opener.token import Refused

__all__ = ["DEFAULT_EXTENSIONS", "STATUS_FOLDERS", "extension_of", "resolve_job_file"]

#: The storage's status folders (``printcore.job.JobStatus.folder``; a test keeps them equal).
STATUS_FOLDERS = (
    "Uploaded", "Pending", "Rejected", "ReadyToPrint", "Printing", "Completed", "PaidPickedUp",
)

#: What a slicer opens, longest first so ``.gcode.3mf`` wins over ``.3mf``.
DEFAULT_EXTENSIONS = (".gcode.3mf", ".3mf", ".stl", ".obj", ".gcode")

MAX_SEGMENT = 200
MAX_PATH = 600
_SEGMENT = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_SEGMENT - 1}}}")


def extension_of(name: str, extensions: Iterable[str] = DEFAULT_EXTENSIONS) -> str | None:
    """The longest of ``extensions`` that ``name`` ends with (case-insensitive), or None."""
    lower = name.lower()
    for ext in sorted(extensions, key=len, reverse=True):
        if lower.endswith(ext) and len(lower) > len(ext):
            return ext
    return None


def _segments(file: str) -> list[str]:
    if len(file) > MAX_PATH:
        raise Refused("bad_name", f"The file path is longer than {MAX_PATH} characters.")
    parts = file.split("/")
    if len(parts) != 3:
        raise Refused(
            "bad_name", "The file must be <status folder>/<job folder>/<file name>.")
    for part in parts:
        if len(part) > MAX_SEGMENT:
            raise Refused("bad_name", f"A file or folder name is over {MAX_SEGMENT} characters.")
        if not _SEGMENT.fullmatch(part):
            raise Refused(
                "bad_name",
                f"{part[:60]!r} is not a name printcore gives to a folder or file.",
            )
    if parts[0] not in STATUS_FOLDERS:
        raise Refused("bad_name", f"{parts[0]!r} is not a status folder of the storage.")
    return parts


def _inside(root: Path, candidate: Path) -> Path | None:
    """``candidate`` with symlinks followed, when it is a regular file inside ``root``.
    Raises Refused(outside_root) when it resolves outside; None when it does not exist."""
    real = Path(os.path.realpath(candidate))
    if not real.is_relative_to(root):
        raise Refused(
            "outside_root",
            f"{candidate} leads outside the storage root {root} (a symbolic link?).",
        )
    return real if real.is_file() else None


def resolve_job_file(
    root: Path, job_id: int, file: str, extensions: Iterable[str] = DEFAULT_EXTENSIONS
) -> Path:
    """The real path of job ``job_id``'s ``file`` under storage ``root``.

    Raises Refused (``bad_name``, ``wrong_job``, ``extension``, ``outside_root``,
    ``missing``; see the module docstring). The returned path has every symlink
    resolved and lies inside the real ``root``.
    """
    status, folder, name = _segments(file)
    if not folder.endswith(f"_{job_id}"):
        raise Refused("wrong_job", f"The folder {folder!r} is not job {job_id}'s.")
    if extension_of(name, extensions) is None:
        raise Refused(
            "extension",
            f"{name!r} is not a file a slicer opens here (allowed: {', '.join(extensions)}).",
        )
    real_root = Path(os.path.realpath(root))
    if not real_root.is_dir():
        raise Refused(
            "config",
            f"The storage root {root} is not a folder on this workstation: check that the "
            "shared storage is mounted or the drive is mapped, and storage_root in the "
            "opener's configuration.",
        )
    for candidate_status in (status, *[s for s in STATUS_FOLDERS if s != status]):
        found = _inside(real_root, real_root / candidate_status / folder / name)
        if found is not None:
            return found
    raise Refused("missing", f"{file} does not exist under the storage root {real_root}.")
