"""``python -m entrypoints.opener``: the same as ``printcore-open``."""

from entrypoints.opener.cli import main

raise SystemExit(main())
