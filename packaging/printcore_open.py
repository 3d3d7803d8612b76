"""PyInstaller's entry script for the one-file ``printcore-open`` (see printcore-open.spec)."""

from entrypoints.opener.cli import main

raise SystemExit(main())
