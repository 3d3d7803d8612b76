"""The process the fault test kills: print requests moved between status folders through
the real service (``PrintRequests`` from ``entrypoints.bootstrap``) on the real database
and storage root, as fast as it can, until it is killed; now and then a colour
correction (the folder renamed) or new staff notes (metadata.json rewritten after the
commit).

``python _mover.py SEED JOB_ID,JOB_ID,...`` with the home in the environment
(``PRINTCORE_HOME``, ``DATABASE_URL``). Prints ``ready`` once wired, then one line per
committed change. A printcore error other than a refused transition (e.g. a StorageError:
a job's files not where the database says) ends it with exit code 3, which the test
reports as a bug found.
"""

from __future__ import annotations

import os
import random
import sys

from entrypoints.bootstrap import bootstrap
from entrypoints.settings import load_settings
from printcore import Actor
from printcore.errors import ConcurrentChangeError, InvalidTransitionError, PrintcoreError

ADA = Actor.staff("Ada", "Fault desk")
COLORS = ("Red", "Blue", "Green")


def step(svc, rng: random.Random, job_id: int) -> str:  # type: ignore[no-untyped-def]
    job = svc.get(job_id)
    status = job.status
    dice = rng.random()
    if dice < 0.1:  # a corrected colour renames the folder (copy → commit → delete)
        color = rng.choice([c for c in COLORS if c != job.color])
        svc.edit_details(job_id, ADA, {"color": color})
        return f"edit {job_id} color={color}"
    if dice < 0.2:  # staff notes: commit, then metadata.json rewritten in place
        svc.set_staff_notes(job_id, ADA, f"note {rng.randrange(10**6)}")
        return f"notes {job_id}"
    if status == "uploaded":
        svc.approve(job_id, ADA, 12.5, 1.0, job.authoritative_file
                    or next(f.stored_name for f in job.files if f.role == "sliced"))
    elif status == "pending":
        svc.force_confirm(job_id, ADA, "confirmed at the desk")
    elif status == "ready_to_print":
        svc.start_print(job_id, ADA, None)
    elif status == "printing":
        if rng.random() < 0.3:
            svc.fail_print(job_id, ADA, "spaghetti")
        else:
            svc.complete(job_id, ADA)
    elif status == "completed":
        if rng.random() < 0.3:
            svc.revert_completion(job_id, ADA, "not actually done")
        else:
            svc.pick_up(job_id, ADA, 12.5, f"T{rng.randrange(10**6)}", "Jane", charge_quote=True)
    elif status == "paid_picked_up":
        svc.revert_pickup(job_id, ADA, "wrong job handed over")
    return f"{status} {job_id} -> {svc.get(job_id).status}"


def main() -> int:
    seed = int(sys.argv[1])
    ids = [int(x) for x in sys.argv[2].split(",")]
    rng = random.Random(seed)
    container = bootstrap(load_settings(os.environ, env_file=None), migrate=False)
    svc = container.requests
    print("ready", flush=True)
    while True:
        job_id = rng.choice(ids)
        try:
            print(step(svc, rng, job_id), flush=True)
        except (InvalidTransitionError, ConcurrentChangeError):
            continue
        except PrintcoreError as err:
            print(f"error {job_id}: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
            return 3


if __name__ == "__main__":
    sys.exit(main())
