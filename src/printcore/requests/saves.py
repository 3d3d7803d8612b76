"""The sliced files the approval dialog offers, and which one it recommends.

Staff open the student's model from the job's folder on the shared storage (the
``print3d://`` link) and save the sliced plate next to it from their slicer (Bambu
Studio: *File > Export > Export plate sliced file* writes ``<name>.gcode.3mf``; PrusaSlicer
and OrcaSlicer write ``.gcode``; a saved project is a ``.3mf``). The dialog offers those
saves beside the sliced files already uploaded (``job.sliced_files``), ranked by
:func:`rank`: extension priority (``.gcode.3mf`` > ``.3mf`` > ``.gcode``), then recency
(newest first), then name. The first is the recommended one.

Which names can be a slicer's save is a rule here too (:func:`save_name_problem`,
:func:`is_ignored_name`); what lies on the disk (size, links, a file still being written)
is the file store's to check (:meth:`printcore.requests.ports.FileStore.scan_saves`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

import attrs

from printcore.errors import ValidationError
from printcore.requests.job import Job
from printcore.requests.pricing import round_up_to_half_hour
from printcore.slicing import SliceEstimate

__all__ = [
    "SAVE_CHOICE_PREFIX",
    "SAVE_EXTENSIONS",
    "SavesScan",
    "SkippedSave",
    "SlicedCandidate",
    "SlicerSave",
    "candidates",
    "estimate_prefill",
    "extension_rank",
    "is_ignored_name",
    "prefill_agrees",
    "rank",
    "save_extension",
    "save_name_problem",
]

#: Sliced-file extensions in priority order: a sliced 3MF carries the G-code, the plate
#: preview and the slicer's own estimate; a project 3MF may; bare G-code only comments.
SAVE_EXTENSIONS: tuple[str, ...] = (".gcode.3mf", ".3mf", ".gcode")

#: A form value naming a slicer's save (not yet a job file) rather than a stored file:
#: ``"saved:" + name``. Stored names are generated (``Base_sliced.gcode.3mf``) and never
#: start with it.
SAVE_CHOICE_PREFIX = "saved:"

#: Longest file name accepted (most file systems' limit, in characters).
MAX_NAME_LENGTH = 255

#: Endings of editors', browsers' and sync tools' temporary files.
_TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".download",
                  ".swp", ".bak", "~", "#")


def save_extension(name: str) -> str | None:
    """The normalised sliced extension of ``name`` (longest match, case-insensitive:
    ``"Plate.GCODE.3MF"`` → ``".gcode.3mf"``), or None. A bare ``".gcode"`` is not a name."""
    lowered = name.lower()
    for extension in sorted(SAVE_EXTENSIONS, key=len, reverse=True):
        if lowered.endswith(extension) and len(lowered) > len(extension):
            return extension
    return None


def extension_rank(extension: str) -> int:
    """0 for ``.gcode.3mf``, 1 for ``.3mf``, 2 for ``.gcode``; unknown extensions last."""
    try:
        return SAVE_EXTENSIONS.index(extension.lower())
    except ValueError:
        return len(SAVE_EXTENSIONS)


def is_ignored_name(name: str) -> bool:
    """Names the scan passes over without a word: hidden files (``.name``, LibreOffice's
    ``.~lock.name#``), Office's ``~$name``, temporary files (``*.tmp``, ``*.part``,
    ``*~``...), and anything without a sliced extension (the model, ``metadata.json``,
    ``thumbnail.png``)."""
    lowered = name.lower()
    if not name or name.startswith((".", "~")):
        return True
    if lowered.endswith(_TEMP_SUFFIXES):
        return True
    return save_extension(name) is None


def save_name_problem(name: str) -> str | None:
    """Why ``name`` (from a listing of the job's folder, or typed into a form) cannot name a
    slicer's save in that folder, or None when it can. Refused: empty, longer than 255
    characters, holding ``/``, ``\\``, ``..``, NUL or other control characters, or bytes
    that are not text (undecodable names come as surrogates), or a name the scan ignores
    (:func:`is_ignored_name`)."""
    if not name:
        return "No file was named."
    if len(name) > MAX_NAME_LENGTH:
        return f"The file name is longer than {MAX_NAME_LENGTH} characters; rename the file."
    if "/" in name or "\\" in name or ".." in name:
        return "Only a file directly in the job's folder can be chosen (no '/', '\\' or '..')."
    if any(not ch.isprintable() or 0xD800 <= ord(ch) <= 0xDFFF for ch in name):
        return "The file name holds characters that are not plain text; rename the file."
    if is_ignored_name(name):
        return ("Not a sliced file name: choose a .gcode.3mf, .3mf or .gcode file "
                "(hidden and temporary files are never offered).")
    return None


@attrs.frozen
class SlicerSave:
    """A file in the job's folder that a slicer saved and printcore does not know yet.

    ``name``: its name in the folder (one path component, checked by
    :func:`save_name_problem`); ``extension``: normalised (``.gcode.3mf``); ``size_bytes``:
    bytes; ``modified_at``: when it was last written (UTC, the file's mtime).
    """

    name: str
    extension: str
    size_bytes: int
    modified_at: datetime


@attrs.frozen
class SkippedSave:
    """A file that looks like a slicer's save but cannot be offered, and why (a sentence
    for staff, e.g. ``"empty"``, ``"still being written"``, ``"a link"``)."""

    name: str
    reason: str


@attrs.frozen
class SavesScan:
    """What a scan of the job's folder found: the saves it may offer and those it refused."""

    saves: tuple[SlicerSave, ...] = ()
    skipped: tuple[SkippedSave, ...] = ()


@attrs.frozen
class SlicedCandidate:
    """One file the approval dialog offers.

    ``name``: the stored name (``source == "uploaded"``) or the save's file name
    (``"slicer save"``); ``at``: when it was uploaded or last written (UTC);
    ``size_bytes``: bytes; ``estimate``: what its slicer said, known only once printcore
    has read it (uploaded files). ``choice`` is the form value that picks it.
    """

    name: str
    source: Literal["uploaded", "slicer save"]
    extension: str
    size_bytes: int
    at: datetime
    estimate: SliceEstimate | None = None

    @property
    def known(self) -> bool:
        return self.source == "uploaded"

    @property
    def choice(self) -> str:
        return self.name if self.known else SAVE_CHOICE_PREFIX + self.name


def _sort_key(candidate: SlicedCandidate) -> tuple[int, float, str, bool]:
    return (extension_rank(candidate.extension), -candidate.at.timestamp(), candidate.name,
            not candidate.known)


def rank(items: Iterable[SlicedCandidate]) -> list[SlicedCandidate]:
    """``items`` best first: extension priority (``.gcode.3mf`` > ``.3mf`` > ``.gcode``),
    then newest first, then by name (code-point order), an uploaded file before a save of
    the same name; names are unique within each source, so the order never depends on
    the order given."""
    return sorted(items, key=_sort_key)


def candidates(job: Job, saves: Sequence[SlicerSave] = ()) -> list[SlicedCandidate]:
    """The job's sliced files and the slicer's ``saves`` as one ranked list (recommended
    first). A save whose name is one of the job's files (its model, an adopted file) or
    fails :func:`save_name_problem` is left out."""
    known = {f.stored_name for f in job.files}
    items = [
        SlicedCandidate(f.stored_name, "uploaded", save_extension(f.stored_name) or "",
                        f.size_bytes, f.uploaded_at, f.estimate)
        for f in job.sliced_files
    ]
    items.extend(
        SlicedCandidate(s.name, "slicer save", s.extension, s.size_bytes, s.modified_at)
        for s in saves
        if s.name not in known and save_name_problem(s.name) is None
    )
    return rank(items)


def estimate_prefill(estimate: SliceEstimate | None) -> dict[str, float]:
    """The approval form's figures from a slicer estimate: ``weight_g`` (grams, when
    known and not zero) and ``time_hours`` (the estimate rounded up to the next half
    hour, when known and at most 720 h). Empty when nothing is known."""
    prefill: dict[str, float] = {}
    if estimate is None:
        return prefill
    if estimate.grams:
        prefill["weight_g"] = estimate.grams
    if estimate.seconds:
        try:
            prefill["time_hours"] = round_up_to_half_hour(estimate.seconds / 3600)
        except ValidationError:  # beyond 720 h: the slicer's figure is not believable
            pass
    return prefill


def prefill_agrees(estimate: SliceEstimate | None, weight_g: float | None,
                   time_hours: float | None) -> bool:
    """Whether the typed ``weight_g`` (grams) and ``time_hours`` (hours) may stand for a file
    with ``estimate``: both typed, and each figure the estimate knows equal to its
    :func:`estimate_prefill` (to 0.01). False tells the dialog to show the estimate's
    figures for staff to check before approving."""
    if weight_g is None or time_hours is None:
        return False
    prefill = estimate_prefill(estimate)
    typed = {"weight_g": weight_g, "time_hours": time_hours}
    return all(abs(typed[key] - value) < 0.005 for key, value in prefill.items())
