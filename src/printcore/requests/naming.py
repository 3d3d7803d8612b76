"""Standardized file names: ``FirstAndLastName_PrintMethod_Color_JobID.ext`` (DESIGN.md)."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["job_basename", "stored_file_name"]

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")


def _part(text: str, fallback: str, limit: int = 40) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = [w for w in _NOT_ALNUM.split(ascii_text) if w]
    joined = "".join(w[:1].upper() + w[1:] for w in words)[:limit]
    return joined or fallback


def job_basename(student_name: str, print_method: str, color: str, job_id: int) -> str:
    """``("Jane van Doe", "filament", "light blue", 42)`` → ``JaneVanDoe_Filament_LightBlue_42``.

    Only ASCII letters and digits survive, so the result is safe as a path component on
    every operating system; empty parts become ``Unknown``/``Any``.
    """
    return "_".join(
        (
            _part(student_name, "Unknown"),
            _part(print_method, "Unknown"),
            _part(color, "Any"),
            str(int(job_id)),
        )
    )


def stored_file_name(basename: str, role: str, extension: str, index: int = 1) -> str:
    """The on-disk name of a job's file.

    The original model is ``<basename><ext>``; sliced files are ``<basename>_sliced<ext>``,
    then ``_sliced2``, ``_sliced3``... ``extension`` is the normalised one, e.g. ``.gcode.3mf``.
    """
    if role == "original":
        return f"{basename}{extension}"
    suffix = "_sliced" if index <= 1 else f"_sliced{index}"
    return f"{basename}{suffix}{extension}"
