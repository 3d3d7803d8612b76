"""The approval dialog's candidates (printcore.requests.saves): ranking as properties,
the name rules, and adopting a slicer's save through the service on the in-memory fakes.

Bad inputs tried: names with ``/``, ``\\``, ``..``, NUL, control characters, surrogates
(undecodable bytes), 256 characters, hidden and temporary names (``.~lock.x.3mf#``,
``~$x.3mf``, ``x.gcode.tmp``, ``x.3mf.part``), non-sliced names (``metadata.json``,
``thumbnail.png``, the model ``.stl``), an empty save, one over the size limit, one that
vanished before staging, a save named like a job file; an estimate beyond 720 h.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from printcore.errors import FileTooLargeError, NotFoundError, UnsupportedFileError, ValidationError
from printcore.requests.saves import (
    SAVE_CHOICE_PREFIX,
    SAVE_EXTENSIONS,
    SlicedCandidate,
    SlicerSave,
    candidates,
    estimate_prefill,
    extension_rank,
    is_ignored_name,
    prefill_agrees,
    rank,
    save_extension,
    save_name_problem,
)
from printcore.slicing import SliceEstimate

T0 = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)

names = st.text(string.ascii_letters + string.digits + "_- ", min_size=1, max_size=12)
candidate_items = st.builds(
    SlicedCandidate,
    name=st.builds(lambda stem, ext: stem + ext, names, st.sampled_from(SAVE_EXTENSIONS)),
    source=st.sampled_from(["uploaded", "slicer save"]),
    extension=st.sampled_from(SAVE_EXTENSIONS),
    size_bytes=st.integers(1, 10**9),
    at=st.integers(0, 10**6).map(lambda s: T0 + timedelta(seconds=s)),
)


# --- ranking ------------------------------------------------------------------------


@given(st.lists(candidate_items, max_size=12, unique_by=lambda c: (c.name, c.source)),
       st.randoms())
def test_ranking_ignores_the_order_given(items: list[SlicedCandidate], rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert rank(shuffled) == rank(items)
    assert rank(rank(items)) == rank(items)
    assert sorted(map(repr, rank(items))) == sorted(map(repr, items))  # nothing lost


@given(st.lists(candidate_items, min_size=1, max_size=12))
def test_extension_then_newest_then_name(items: list[SlicedCandidate]) -> None:
    ranked = rank(items)
    best = min(extension_rank(c.extension) for c in items)
    assert extension_rank(ranked[0].extension) == best  # the recommended has the best kind
    for a, b in zip(ranked, ranked[1:], strict=False):
        ra, rb = extension_rank(a.extension), extension_rank(b.extension)
        assert ra <= rb
        if ra == rb:
            assert a.at >= b.at
            if a.at == b.at:
                assert a.name <= b.name


def test_priority_is_gcode_3mf_then_3mf_then_gcode() -> None:
    old, new = T0, T0 + timedelta(hours=1)
    items = [SlicedCandidate("b.gcode", "uploaded", ".gcode", 1, new),
             SlicedCandidate("c.3mf", "slicer save", ".3mf", 1, new),
             SlicedCandidate("a.gcode.3mf", "slicer save", ".gcode.3mf", 1, old),
             SlicedCandidate("d.gcode.3mf", "uploaded", ".gcode.3mf", 1, new),
             SlicedCandidate("e.gcode.3mf", "uploaded", ".gcode.3mf", 1, new)]
    assert [c.name for c in rank(items)] == [
        "d.gcode.3mf", "e.gcode.3mf", "a.gcode.3mf", "c.3mf", "b.gcode"]
    assert extension_rank(".weird") == len(SAVE_EXTENSIONS)


# --- names --------------------------------------------------------------------------


@pytest.mark.parametrize("name, extension", [
    ("Plate.GCODE.3MF", ".gcode.3mf"), ("a.3mf", ".3mf"), ("x.gcode", ".gcode"),
    (".gcode", None), ("model.stl", None), ("metadata.json", None), ("thumbnail.png", None),
])
def test_save_extension(name: str, extension: str | None) -> None:
    assert save_extension(name) == extension


@pytest.mark.parametrize("name", [
    "", ".hidden.gcode.3mf", ".~lock.plate.3mf#", "~$plate.3mf", "plate.gcode.tmp",
    "plate.3mf.part", "plate.gcode~", "metadata.json", "thumbnail.png", "Jane_42.stl",
])
def test_ignored_names(name: str) -> None:
    assert is_ignored_name(name)
    assert save_name_problem(name) is not None


@pytest.mark.parametrize("name", [
    "../escape.gcode", "sub/plate.gcode", "sub\\plate.gcode", "a..b.gcode", "nul\x00.gcode",
    "tab\there.gcode", "bad\udcff.gcode", "x" * 250 + ".gcode",
])
def test_bad_names_are_refused_with_a_reason(name: str) -> None:
    problem = save_name_problem(name)
    assert problem is not None and len(problem) > 10


def test_good_names() -> None:
    for name in ("plate_1.gcode.3mf", "Élodie plate.3mf", "ring (2).gcode"):
        assert save_name_problem(name) is None


# --- candidates and the prefill -----------------------------------------------------


def test_candidates_mix_uploaded_and_saves_and_leave_out_job_files(lab) -> None:  # type: ignore[no-untyped-def]
    job = lab.submit()
    uploaded = lab.add_sliced(job.id)
    job = lab.requests.get(job.id)
    saves = [SlicerSave("plate.gcode", ".gcode", 10, T0),
             SlicerSave("plate.gcode.3mf", ".gcode.3mf", 10, T0 - timedelta(days=1)),
             SlicerSave(job.original.stored_name, ".3mf", 10, T0),  # the model: not a save
             SlicerSave(uploaded.stored_name, ".gcode.3mf", 10, T0),  # already known
             SlicerSave("../x.gcode", ".gcode", 10, T0)]
    found = candidates(job, saves)
    assert [(c.name, c.source) for c in found] == [
        (uploaded.stored_name, "uploaded"),  # lab.clock is later than T0 - 1 day
        ("plate.gcode.3mf", "slicer save"), ("plate.gcode", "slicer save")]
    assert found[0].choice == uploaded.stored_name and found[0].estimate is not None
    assert found[1].choice == SAVE_CHOICE_PREFIX + "plate.gcode.3mf" and not found[1].known


def test_prefill_follows_the_estimate() -> None:
    wormdrive = SliceEstimate(seconds=3256, grams=10.48)  # the fixture's figures
    assert estimate_prefill(wormdrive) == {"weight_g": 10.48, "time_hours": 1.0}
    assert estimate_prefill(SliceEstimate(seconds=34, grams=None)) == {"time_hours": 0.5}
    assert estimate_prefill(SliceEstimate(seconds=10**9, grams=0.0)) == {}  # > 720 h, 0 g
    assert estimate_prefill(None) == {}
    assert prefill_agrees(wormdrive, 10.48, 1.0)
    assert not prefill_agrees(wormdrive, 12.0, 1.0)
    assert not prefill_agrees(wormdrive, None, 1.0)
    assert prefill_agrees(None, 5.0, 2.0)  # nothing to disagree with
    assert not prefill_agrees(None, None, None)


# --- the memory store's scan and the service's adoption -----------------------------


def test_memory_scan_offers_saves_and_says_what_it_skipped(lab) -> None:  # type: ignore[no-untyped-def]
    job = lab.submit()
    lab.files.put_save(job, "plate.gcode.3mf", b"PK sliced", T0)
    lab.files.put_save(job, "empty.gcode", b"", T0)
    lab.files.put_save(job, "huge.gcode", b"x" * 101, T0)
    lab.files.put_save(job, ".~lock.plate.3mf#", b"lock", T0)
    scan = lab.files.scan_saves(job, max_bytes=100)
    assert [s.name for s in scan.saves] == ["plate.gcode.3mf"]
    assert {s.name: s.reason for s in scan.skipped} == {
        "empty.gcode": "empty", "huge.gcode": "larger than the 0.0001 MB upload limit"}


def test_adopting_a_save_is_one_event_and_moves_the_file(lab) -> None:  # type: ignore[no-untyped-def]
    job = lab.submit()
    lab.files.put_save(job, "plate.gcode.3mf", b"PK sliced", T0)
    staged = lab.files.stage_save(job, "plate.gcode.3mf", 100)
    estimate = SliceEstimate(seconds=3256, grams=10.48)
    before = len(lab.events_of(job.id))
    stored = lab.requests.add_sliced_file(job.id, lab.ana, staged, estimate, job.version,
                                          save_name="plate.gcode.3mf")
    events = lab.events_of(job.id)
    assert len(events) == before + 1
    assert events[-1].kind == "add_sliced_file"
    assert events[-1].actor.name == lab.ana.name
    assert events[-1].details["source"] == "slicer save"
    assert events[-1].details["saved_as"] == "plate.gcode.3mf"
    job = lab.requests.get(job.id)
    assert stored.stored_name.endswith("_sliced.gcode.3mf") and job.file(stored.stored_name)
    assert lab.files.exists(job, stored.stored_name)
    assert lab.files.scan_saves(job, 100).saves == ()  # the slicer's file was moved
    assert not lab.files.staged


def test_a_newer_save_under_the_same_name_is_kept(lab) -> None:  # type: ignore[no-untyped-def]
    job = lab.submit()
    lab.files.put_save(job, "plate.gcode", b"; first", T0)
    staged = lab.files.stage_save(job, "plate.gcode", 100)
    lab.files.put_save(job, "plate.gcode", b"; second, saved meanwhile", T0)
    lab.requests.add_sliced_file(job.id, lab.ana, staged, None, save_name="plate.gcode")
    job = lab.requests.get(job.id)
    assert [s.name for s in lab.files.scan_saves(job, 100).saves] == ["plate.gcode"]


def test_bad_saves_change_nothing(lab) -> None:  # type: ignore[no-untyped-def]
    job = lab.submit()
    lab.files.put_save(job, "empty.gcode", b"", T0)
    lab.files.put_save(job, "big.gcode", b"x" * 200, T0)
    before = lab.snapshot(job.id)
    with pytest.raises(ValidationError) as bad:
        lab.files.stage_save(job, "../../etc/passwd.gcode", 100)
    assert "authoritative_file" in bad.value.fields
    with pytest.raises(ValidationError):
        lab.files.stage_save(job, job.original.stored_name, 100)
    with pytest.raises(NotFoundError):
        lab.files.stage_save(job, "vanished.gcode", 100)
    with pytest.raises(UnsupportedFileError):
        lab.files.stage_save(job, "empty.gcode", 100)
    with pytest.raises(FileTooLargeError):
        lab.files.stage_save(job, "big.gcode", 100)
    assert lab.snapshot(job.id) == before
