"""Finding jobs (issue 12): one contract for ``JobRepository.search`` on every backend —
the in-memory fake, SQLite (plain LIKE) and PostgreSQL (LIKE on the pg_trgm index) —
plus ``JobQuery``'s validation and the migration's backfill and index."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from adapters.sql import make_engine, upgrade
from printcore.errors import ValidationError
from printcore.requests.job import Job, JobFile
from printcore.requests.ports import RequestsUnitOfWork
from printcore.requests.search import JobQuery, matches, search_text

Factory = Callable[[], RequestsUnitOfWork]
T0 = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)


def job(
    name: str,
    email: str,
    *,
    minutes: int = 0,
    status: str = "uploaded",
    method: str = "filament",
    color: str = "Red",
    printer: str = "",
    discipline: str = "Engineering",
    original: str | None = None,
    stored: str | None = None,
) -> Job:
    at = T0 + timedelta(minutes=minutes)
    j = Job(name, email, discipline, "ENGR 101", method, color, at, updated_at=at,
            preferred_printer=printer, status=status)
    if original or stored:
        j.files.append(JobFile(stored or "x.stl", original or "x.stl", "original", 1,
                               "a" * 64, at))
    return j


def add_all(factory: Factory, *jobs: Job) -> list[Job]:
    with factory() as uow:
        for j in jobs:
            uow.jobs.add(j)
        uow.commit()
    return list(jobs)


def search(factory: Factory, **kwargs: object) -> tuple[list[int], int]:
    with factory() as uow:
        found, total = uow.jobs.search(JobQuery(**kwargs))  # type: ignore[arg-type]
    return [j.id or 0 for j in found], total


@pytest.fixture
def lab(uow_factory: Factory) -> list[Job]:
    """Five jobs in several states, with files, printers and disciplines."""
    return add_all(
        uow_factory,
        job("Ada Lovelace", "Ada.L@Example.edu", minutes=0, original="Engine Part.STL",
            stored="AdaLovelace_filament_Red_1_original.stl"),
        job("Charles Babbage", "cb@example.edu", minutes=1, status="printing",
            method="resin", color="Grey", printer="Form 3", discipline="Mathematics",
            original="difference_engine.3mf", stored="CharlesBabbage_resin_Grey_2.3mf"),
        job("Grace Hopper", "grace@navy.example", minutes=2, status="paid_picked_up",
            original="cobol bug 100%.obj", stored="GraceHopper_filament_Red_3.obj"),
        job("Alan Turing", "alan@example.edu", minutes=3, status="rejected", color="red",
            printer="X1C-1", original="bombe_v2.stl", stored="AlanTuring_filament_red_4.stl"),
        job("Émilie du Châtelet", "emilie@example.fr", minutes=4, status="ready_to_print",
            color="Blue", discipline="Physics", original="Straße.stl",
            stored="EmilieduChatelet_filament_Blue_5.stl"),
    )


# --- q --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "ids"),
    [
        ("lovelace", [1]),
        ("ADA LOVE", [1]),
        ("a.l@example", [1]),  # email, case-insensitive
        ("EXAMPLE.EDU", [1, 2, 4]),
        ("engine", [1, 2]),  # original file names of two jobs
        ("difference_engine", [2]),
        ("charlesbabbage_resin", [2]),  # stored file name
        (".obj", [3]),
        ("bombe", [4]),
        ("châtelet", [5]),  # unicode, lower case
        ("CHÂTELET", [5]),  # unicode, upper case
        ("strasse", [5]),  # case folding: ß → ss
        ("emilie du chatelet", [5]),  # accents are ignored
        ("ÉMILIE", [5]),
        ("nobody at all", []),
    ],
)
def test_q_matches_name_email_and_file_names_across_states(
    uow_factory: Factory, lab: list[Job], q: str, ids: list[int]
) -> None:
    assert search(uow_factory, q=q) == (ids, len(ids))


def test_an_id_matches_exactly_with_or_without_hash(uow_factory: Factory, lab: list[Job]) -> None:
    assert search(uow_factory, q="#3") == ([3], 1)
    # "3" is job 3's id and also part of job 2's ".3mf": both count.
    assert search(uow_factory, q="3") == ([2, 3], 2)
    assert search(uow_factory, q="# 4") == ([4], 1)
    assert search(uow_factory, q="#99") == ([], 0)
    assert search(uow_factory, q="99999999999") == ([], 0)  # beyond any id: no overflow


def test_sql_wildcards_in_q_are_literal(uow_factory: Factory, lab: list[Job]) -> None:
    assert search(uow_factory, q="100%") == ([3], 1)
    assert search(uow_factory, q="%") == ([3], 1)
    assert search(uow_factory, q="_") == ([1, 2, 3, 4, 5], 5)  # every stored name has one
    assert search(uow_factory, q="e_engine") == ([2], 1)
    assert search(uow_factory, q="a_l") == ([], 0)  # "_" is not "any character"
    assert search(uow_factory, q="100\\") == ([], 0)
    assert search(uow_factory, q="bug%") == ([], 0)


def test_q_never_matches_across_two_fields(uow_factory: Factory, lab: list[Job]) -> None:
    assert search(uow_factory, q="lovelace ada") == ([], 0)
    assert search(uow_factory, q="ada.l@example.edu engine") == ([], 0)


# --- filters, status, sort, paging ----------------------------------------------------


def test_filters_compare_exactly_without_regard_to_case(
    uow_factory: Factory, lab: list[Job]
) -> None:
    assert search(uow_factory, print_method="resin") == ([2], 1)
    assert search(uow_factory, color="red") == ([1, 3, 4], 3)
    assert search(uow_factory, color="RED", q="example.edu") == ([1, 4], 2)
    assert search(uow_factory, preferred_printer="x1c-1") == ([4], 1)
    assert search(uow_factory, discipline="Physics") == ([5], 1)
    assert search(uow_factory, discipline="Phys") == ([], 0)  # not a substring
    assert search(uow_factory, status="printing") == ([2], 1)
    assert search(uow_factory, status="printing", q="ada") == ([], 0)
    assert search(uow_factory, status="deleted") == ([], 0)
    assert search(uow_factory, color="  ", print_method="") == ([1, 2, 3, 4, 5], 5)


def test_sort_by_age_is_oldest_first_and_by_name_alphabetical(
    uow_factory: Factory, lab: list[Job]
) -> None:
    assert search(uow_factory)[0] == [1, 2, 3, 4, 5]
    assert search(uow_factory, sort="name")[0] == [1, 4, 2, 5, 3]  # ada alan charles émilie grace
    add_all(uow_factory, job("ada lovelace", "zz@example.edu", minutes=-5))
    assert search(uow_factory, q="lovelace", sort="name")[0] == [1, 6]  # ties: by email
    assert search(uow_factory, q="lovelace", sort="age")[0] == [6, 1]


def test_paging_and_total(uow_factory: Factory) -> None:
    add_all(uow_factory, *(job(f"Student {n:02}", f"s{n}@example.edu", minutes=n)
                           for n in range(23)))
    assert search(uow_factory, q="student", limit=10) == (list(range(1, 11)), 23)
    assert search(uow_factory, q="student", limit=10, offset=20) == ([21, 22, 23], 23)
    assert search(uow_factory, q="student", limit=10, offset=40) == ([], 23)
    assert search(uow_factory, q="student 1", sort="name", limit=3) == ([11, 12, 13], 10)


def test_search_text_is_kept_up_to_date_on_update(uow_factory: Factory) -> None:
    (j,) = add_all(uow_factory, job("Ada", "ada@example.edu"))
    assert search(uow_factory, q="bracket") == ([], 0)
    with uow_factory() as uow:
        stored = uow.jobs.get(1)
        stored.files.append(JobFile("Ada_filament_Red_1_sliced_1.gcode", "Bracket v3.gcode",
                                    "sliced", 1, "b" * 64, T0))
        uow.jobs.update(stored)
        uow.commit()
    assert search(uow_factory, q="bracket v3") == ([1], 1)
    assert search(uow_factory, q="sliced_1.gcode") == ([1], 1)


def test_matches_is_the_rule_of_the_memory_fake() -> None:
    j = job("Ada", "ada@example.edu", original="Part.STL", stored="Ada_1.stl")
    j.id = 7
    assert matches(j, JobQuery(q="#7")) and matches(j, JobQuery(q="part.stl"))
    assert not matches(j, JobQuery(q="#8")) and not matches(j, JobQuery(q="ada ada"))
    assert search_text(j) == "ada\nada@example.edu\npart.stl\nada_1.stl"
    k = job("Zoë Ñandú", "z@example.edu")
    assert search_text(k) == "zoe nandu\nz@example.edu"


# --- JobQuery validation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"q": "x" * 201}, "q"),
        ({"q": "a\x00b"}, "q"),
        ({"sort": "newest"}, "sort"),
        ({"status": "nope"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"color": "c" * 201}, "color"),
    ],
)
def test_job_query_names_the_field_it_refuses(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        JobQuery(**kwargs)  # type: ignore[arg-type]
    assert field in caught.value.fields


def test_job_query_accepts_200_characters_and_trims() -> None:
    assert JobQuery(q="x" * 200).q == "x" * 200
    assert JobQuery(q="  ada ").q == "ada"
    with pytest.raises(ValidationError):
        JobQuery(q=" " + "x" * 200)  # the limit counts what was sent
    assert JobQuery(color=" ").color is None
    assert not JobQuery().is_search and JobQuery(q="a").is_search


# --- the migration --------------------------------------------------------------------


def _backfill_check(engine: Engine) -> None:
    upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO jobs (status, version, student_name, email, discipline, class_number,"
            " print_method, color, preferred_printer, notes, created_at, failed_attempts,"
            " files, rejection_reasons, payments) VALUES ('uploaded', 1, 'Old Ädä', "
            "'OLD@example.edu', 'Art', 'ART 1', 'filament', 'red', '', '', :at, 0, :files, "
            "'[]', '[]')"), {"at": T0, "files": '[{"stored_name": "OldAda_1.stl", '
                             '"original_name": "Vase.STL", "role": "original", '
                             '"size_bytes": 1, "sha256": "a", "uploaded_at": '
                             '"2026-09-01T15:00:00+00:00", "estimate": null}]'})
    upgrade(engine)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT search_text FROM jobs")).scalar_one()
    assert stored == "old ada\nold@example.edu\nvase.stl\noldada_1.stl"


def test_migration_backfills_search_text_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        _backfill_check(engine)
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_migration_backfills_and_indexes_on_postgresql(pg_empty_engine: Engine) -> None:
    _backfill_check(pg_empty_engine)
    with pg_empty_engine.connect() as conn:
        index = conn.execute(text(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_jobs_search_text' "
            "AND schemaname = current_schema()"
        )).scalar_one()
        assert "gin" in index and "gin_trgm_ops" in index
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.execute(text(
            "EXPLAIN SELECT id FROM jobs WHERE search_text LIKE '%vase%'")))
        assert "ix_jobs_search_text" in plan
