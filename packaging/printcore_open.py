"""PyInstaller's entry script for the one-file ``printcore-open`` (see printcore-open.spec)."""

from entrypoints.slicer_opener import main

raise SystemExit(main())
