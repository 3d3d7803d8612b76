"""printcore's processes: the CLI, the web server, and (later) worker, bot and opener.
Wiring lives here and only here (see ``entrypoints.bootstrap``)."""
