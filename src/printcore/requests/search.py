"""Finding print requests: what staff type in the search box, and what it matches.

``JobQuery`` is a validated search: ``q`` (free text), exact filters (print method,
colour, preferred printer, discipline; compared without regard to case) and an optional
status (``None``: every state), sorted by ``age`` (oldest first, as in the dashboard's
tabs) or ``name`` (the student's name, then the email), paged by ``limit``/``offset``.

``q`` matches a job when, compared without regard to case or accents (:func:`fold`), it is part
of the student's name, the email, or the original or stored name of one of its files,
all taken one at a time (a ``q`` never matches across two of them); ``12`` or ``#12``
also matches job 12 itself. :func:`search_text` is that text, one line per part: the SQL
adapter stores it in a column and matches it with ``LIKE``; :func:`matches` is the same
rule in Python (the in-memory fake).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Literal

import attrs

from printcore.errors import ValidationError
from printcore.requests.job import Job, JobStatus
from printcore.text import text_problem

__all__ = [
    "MAX_ID",
    "MAX_LIMIT",
    "MAX_Q_LENGTH",
    "SORTS",
    "JobQuery",
    "fold",
    "matches",
    "search_text",
    "search_text_of",
]

#: The longest ``q`` accepted, in characters.
MAX_Q_LENGTH = 200
#: The largest page.
MAX_LIMIT = 1000
#: The largest job id (the id column is a 32-bit integer); larger numbers match no id.
MAX_ID = 2**31 - 1
SORTS: tuple[str, ...] = ("age", "name")
_FILTER_LENGTH = 200
_ID = re.compile(r"#?\s*([0-9]{1,10})")


def fold(text: str) -> str:
    """``text`` as a search compares it: without regard to case (Unicode case folding,
    ``ß`` → ``ss``), accents (``é`` → ``e``) or compatibility forms (``ﬁ`` → ``fi``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search_text_of(student_name: str, email: str, file_names: Iterable[str]) -> str:
    """The folded text a search looks in: name, email and file names, one per line."""
    parts = [student_name, email, *file_names]
    return "\n".join(fold(p.replace("\n", " ")) for p in parts if p)


def search_text(job: Job) -> str:
    """:func:`search_text_of` for ``job`` (original and stored names of all its files)."""
    names: list[str] = []
    for f in job.files:
        names.extend((f.original_name, f.stored_name))
    return search_text_of(job.student_name, job.email, names)


def _optional(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


@attrs.frozen
class JobQuery:
    """A search for jobs; raises ValidationError (naming the field) when it cannot run.

    ``q`` may hold up to 200 characters as given, and is then trimmed; empty filters
    count as "not given". ``limit`` 1..1000, ``offset`` ≥ 0. ``status`` ``deleted`` is
    accepted and finds nothing (deleted jobs are gone).
    """

    q: str = ""
    print_method: str | None = attrs.field(default=None, converter=_optional)
    color: str | None = attrs.field(default=None, converter=_optional)
    preferred_printer: str | None = attrs.field(default=None, converter=_optional)
    discipline: str | None = attrs.field(default=None, converter=_optional)
    status: str | None = attrs.field(default=None, converter=_optional)
    sort: Literal["age", "name"] = "age"
    limit: int = 50
    offset: int = 0

    def __attrs_post_init__(self) -> None:
        problems: dict[str, str] = {}
        if not isinstance(self.q, str):
            raise ValidationError("q must be text.", {"q": "Must be text."})
        if len(self.q) > MAX_Q_LENGTH:
            problems["q"] = f"At most {MAX_Q_LENGTH} characters."
        elif (problem := text_problem(self.q)) is not None:
            problems["q"] = problem
        for name in ("print_method", "color", "preferred_printer", "discipline"):
            value = getattr(self, name)
            if value is None:
                continue
            if len(value) > _FILTER_LENGTH:
                problems[name] = f"At most {_FILTER_LENGTH} characters."
            elif (problem := text_problem(value)) is not None:
                problems[name] = problem
        statuses = [s.value for s in JobStatus]
        if self.status is not None and self.status not in statuses:
            problems["status"] = "Use one of: " + ", ".join(statuses) + "."
        if self.sort not in SORTS:
            problems["sort"] = "Use one of: " + ", ".join(SORTS) + "."
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not (
            1 <= self.limit <= MAX_LIMIT
        ):
            problems["limit"] = f"A whole number from 1 to {MAX_LIMIT}."
        if isinstance(self.offset, bool) or not isinstance(self.offset, int) or self.offset < 0:
            problems["offset"] = "A whole number from 0."
        if problems:
            first = next(iter(problems))
            raise ValidationError(f"{first}: {problems[first]}", problems)
        object.__setattr__(self, "q", self.q.strip())

    @property
    def needle(self) -> str:
        """``q`` folded, as it is looked for in :func:`search_text` ("" matches all)."""
        return fold(self.q)

    @property
    def job_id(self) -> int | None:
        """The job id ``q`` names (``12``, ``#12``), or None."""
        found = _ID.fullmatch(self.q)
        if found is None:
            return None
        number = int(found.group(1))
        return number if 1 <= number <= MAX_ID else None

    @property
    def filters(self) -> dict[str, str]:
        """The exact filters given (column name → value), without ``status``."""
        names = ("print_method", "color", "preferred_printer", "discipline")
        return {n: v for n in names if (v := getattr(self, n)) is not None}

    @property
    def is_search(self) -> bool:
        """True when the query narrows anything down (``q``, a filter or a status)."""
        return bool(self.q or self.filters or self.status)


def matches(job: Job, query: JobQuery) -> bool:
    """Whether ``job`` is one of ``query``'s results (paging and sorting aside)."""
    if query.status is not None and job.status != query.status:
        return False
    for name, value in query.filters.items():
        if str(getattr(job, name)).lower() != value.lower():
            return False
    if not query.q:
        return True
    if query.job_id is not None and job.id == query.job_id:
        return True
    return query.needle in search_text(job)
