"""The storage audit's repairs in a process of their own, for the fault test to kill:
``python _auditor.py`` with the home in the environment. Prints ``ready`` once wired,
then ``done N`` with the number of repairs done (if it lives that long)."""

from __future__ import annotations

import os
import sys

from adapters.files.audit import audit_storage
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import load_settings
from printcore import Actor


def main() -> int:
    container = bootstrap(load_settings(os.environ, env_file=None), migrate=False)
    print("ready", flush=True)
    report = audit_storage(container.files, container.requests.uow, repair=True,
                           actor=Actor.staff("Ada", "Fault desk"), settle_seconds=0)
    print(f"done {len(report.repaired)}", flush=True)
    container.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
