"""Kill -9 during moves between status folders, many times, on SQLite and PostgreSQL:
afterwards the storage audit's repairs bring its findings to 0 and no file or job is lost.

A child process (``_mover.py``) drives print requests through the real service on the
real database and storage root: approve, force-confirm, start, fail, complete, pick up
and the reverts (each a copy → commit → delete of the job's folder), colour corrections
(which rename the folder) and staff notes (metadata.json rewritten after the commit).
The test SIGKILLs it at a seeded random moment after it is wired, ``KILLS`` times.

After every ``REPAIR_EVERY`` kills: a dry run must find only leftovers (stale
duplicates, staging files, metadata.json), never an incomplete folder where the database
says; then the audit's repairs run in a process of their own (``_auditor.py``) that is
killed too, ``AUDIT_KILLS`` times (an interrupted repair must leave only what a repair
fixes); then the repairs run to the end (``settle_seconds=0``: nothing else runs on the
store, so no copy is a move in progress). Checked afterwards: a second audit finds
nothing; every job is still in the database, its status the one its last event moved it
to; its folder is in the status folder the database names and nowhere else, with every
recorded file and its SHA-256 and a ``metadata.json`` equal to the database's; every
uploaded file's bytes are still there; no temporary file is left. The kinds found are
printed, and must include leftovers of interrupted moves (else no kill hit a move).
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from adapters.files.audit import audit_storage
from adapters.files.staging import StagingArea
from entrypoints.bootstrap import Container, bootstrap
from entrypoints.settings import load_settings
from printcore import Actor, SliceEstimate, StagedFile, Submission
from printcore.requests.job import JobStatus

pytestmark = pytest.mark.slow

#: The only findings a kill of a move may leave.
LEFTOVERS = {"stale_duplicate", "staging_leftover", "metadata_mismatch"}

MOVER = Path(__file__).with_name("_mover.py")
AUDITOR = Path(__file__).with_name("_auditor.py")
ADA = Actor.staff("Ada", "Fault desk")
JOBS = 10
KILLS = 30
REPAIR_EVERY = 10
AUDIT_KILLS = 3  # audits with repairs killed before each repair that must finish
SEED = 20261201


def _stage(container: Container, content: bytes, name: str, ext: str) -> StagedFile:
    upload = StagingArea(container.files.staging_dir).open(50_000_000)
    upload.write(content)
    return StagedFile(upload.path, name, ext, len(content), upload.finish())


def _seed(container: Container, rng: random.Random) -> dict[int, set[str]]:
    """JOBS jobs in Uploaded with an original and a sliced file of 0.2-1.5 MB each;
    returns each job's uploaded files' SHA-256s."""
    container.staff.add("Ada")
    uploads: dict[int, set[str]] = {}
    for n in range(JOBS):
        model = rng.randbytes(rng.randrange(200_000, 1_500_000))
        sliced = rng.randbytes(rng.randrange(200_000, 1_500_000))
        job = container.requests.submit(
            Submission(f"Student {chr(65 + n)}lpha", f"s{n}@u.edu", "ME", "", "filament", "Red"),
            _stage(container, model, "part.stl", ".stl"))
        assert job.id is not None
        container.requests.add_sliced_file(job.id, ADA, _stage(container, sliced, "part.gcode",
                                                               ".gcode"),
                                           SliceEstimate(3600, 12.5))
        uploads[job.id] = {hashlib.sha256(model).hexdigest(), hashlib.sha256(sliced).hexdigest()}
    return uploads


def _run_and_kill(env: dict[str, str], ids: list[int], seed: int, delay: float,
                  log: Path) -> int:
    """Start the mover, SIGKILL it ``delay`` seconds after it is wired; returns how many
    changes it committed. Fails when it stopped by itself (a bug it ran into)."""
    with log.open("ab") as err:
        proc = subprocess.Popen([sys.executable, str(MOVER), str(seed), ",".join(map(str, ids))],
                                env=env, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == b"ready\n", (line, log.read_text())
        time.sleep(delay)
        alive = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        out = proc.stdout.read()
        proc.wait(timeout=30)
    assert alive, f"the mover stopped by itself: {log.read_text()}"
    return out.count(b"\n")


def _kill_an_audit(env: dict[str, str], delay: float) -> bool:
    """Run the audit's repairs in a process and SIGKILL it ``delay`` seconds after it is
    wired; True when it finished first."""
    proc = subprocess.Popen([sys.executable, str(AUDITOR)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n", proc.communicate()
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGKILL), err.decode()
    return out.startswith(b"done")


def _check_intact(container: Container, uploads: dict[int, set[str]]) -> None:
    store = container.files
    with container.requests.uow() as work:
        jobs = {j.id: j for s in JobStatus if s is not JobStatus.DELETED
                for j in work.jobs.list(s.value, limit=1000)}
        last = {job_id: [e.to_status for e in work.events.for_subject("job", job_id)
                         if e.to_status is not None][-1] for job_id in jobs if job_id}
    assert set(jobs) == set(uploads), "no job lost or added"
    everything = [p for p in store.root.rglob("*")]
    assert not [p for p in everything if p.name.endswith((".tmp", ".part"))], "temporary left"
    for job_id, job in jobs.items():
        assert job_id is not None
        assert job.status == last[job_id], f"job {job_id}: row and history disagree"
        folder = store.folder(job)
        same_job = [p for p in everything if p.is_dir() and p.name.endswith(f"_{job_id}")
                    and p.parent.parent == store.root]
        assert same_job == [folder], f"job {job_id}: folders {same_job}, expected {folder}"
        for f in job.files:
            data = (folder / f.stored_name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == f.sha256, f"job {job_id}: {f.stored_name}"
        assert uploads[job_id] <= {f.sha256 for f in job.files}, f"job {job_id}: upload lost"
        stored = json.loads((folder / "metadata.json").read_text("utf-8"))
        assert stored == json.loads(json.dumps(store.metadata_for(job, job.status)))


def test_sigkill_during_moves_loses_nothing(fault_home: dict[str, str], tmp_path: Path) -> None:
    rng = random.Random(SEED)
    container = bootstrap(load_settings(fault_home, env_file=None))
    log = tmp_path / "mover.log"
    try:
        uploads = _seed(container, rng)
        ids = sorted(uploads)
        repaired: Counter[str] = Counter()
        changes = 0
        audits_finished = 0
        seen: Counter[str] = Counter()
        started = time.monotonic()
        for kill in range(1, KILLS + 1):
            changes += _run_and_kill(fault_home, ids, rng.randrange(2**32),
                                     rng.uniform(0.02, 0.4), log)
            if kill % REPAIR_EVERY:
                continue
            found = audit_storage(container.files, container.requests.uow, settle_seconds=0)
            seen.update(f.kind for f in found.findings)
            # The move order (copy → commit → delete) keeps the folder the database names
            # complete at every instant: a kill only ever leaves extra copies behind.
            assert {f.kind for f in found.findings} <= LEFTOVERS, found.problems
            for _ in range(AUDIT_KILLS):
                audits_finished += _kill_an_audit(fault_home, rng.uniform(0.0, 0.15))
            before = audit_storage(container.files, container.requests.uow, settle_seconds=0)
            report = audit_storage(container.files, container.requests.uow, repair=True,
                                   actor=ADA, settle_seconds=0)
            assert report.ok, report.problems
            assert [r for r in report.repairs if not r.done] == []
            assert {f.kind for f in before.findings} == {f.kind for f in report.findings}
            repaired.update(f.kind for f in report.findings)
            after = audit_storage(container.files, container.requests.uow, settle_seconds=0)
            assert after.findings == [] and after.jobs_checked == JOBS
            _check_intact(container, uploads)
        elapsed = time.monotonic() - started
        print(f"\n{container.database_kind}: {KILLS} kills, {changes} committed changes, "
              f"{KILLS // REPAIR_EVERY * AUDIT_KILLS} audits killed ({audits_finished} had "
              f"finished); found {dict(seen)}, repaired after the killed audits {dict(repaired)}, "
              f"in {elapsed:.1f} s")
        assert changes > KILLS, "the mover made progress between kills"
        assert seen["stale_duplicate"] + seen["staging_leftover"] > 0, (
            "no kill landed inside a move: the test proved nothing")
        assert elapsed < 120
    finally:
        container.close()
