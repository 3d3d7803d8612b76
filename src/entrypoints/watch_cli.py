"""``printcore watch`` (run the printer watcher) and ``printcore printers trust NAME``
(capture a printer's certificate fingerprint on first contact). Issue 15; see
docs/printers.md.

``printcore watch`` reads the watched printers from the printers file (those with
``serial`` and ``host``), their access codes from the environment
(``PRINTCORE_BAMBU_ACCESS_CODE_<NAME>``) or ``PRINTCORE_BAMBU_SECRETS_FILE``, and runs
one connection per printer until Ctrl-C (SIGINT) or SIGTERM, telling the queue
(``QueueService.printer_reported``). Its health is written every 15 s as the ``watcher``
heartbeat in the database (``adapters.heartbeat``), ``{"printers": Watcher.health()}``.

The bot runs the same watcher in its own process with :func:`start_watcher`.

Exit codes (as ``entrypoints.cli``): 0 stopped cleanly / trusted; 1 refused input (an
unknown or unwatched printer, a certificate that does not name the printer's serial, no
printer to watch); 2 configuration (a bad printers or secrets file) or the printer
cannot be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: nothing heavy at parse time
    from adapters.bambu.watcher import Watcher
    from entrypoints.settings import Settings
    from printcore.queue.printer_status import PrinterStatusSink

__all__ = ["add_parsers", "cmd_trust", "cmd_watch", "run_watch", "start_watcher",
           "trust_dir"]

Out = Callable[[str], None]


def trust_dir(settings: Settings) -> Any:
    """The folder of pinned printer certificates: ``$PRINTCORE_HOME/printer-certs``."""
    return settings.home / "printer-certs"


def start_watcher(settings: Settings, sink: PrinterStatusSink,
                  environ: Mapping[str, str] | None = None, **watch: Any) -> Watcher | None:
    """Start watching the printers file's watched printers, telling ``sink`` (in a
    deployment ``container.queue``); None when no printer has ``serial`` and ``host``.

    For ``printcore bot``: call it after bootstrap with the container's queue, keep the
    returned watcher, and call ``watcher.stop()`` on shutdown; ``watcher.health()`` and
    ``watcher.live_states()`` tell how the printers are. ``watch`` overrides
    :class:`adapters.bambu.watcher.WatchSettings` fields (tests: short timers).
    Raises PrintersFileError (bad printers file) or AccessCodeError (bad secrets file)."""
    from adapters.bambu.secrets import access_code
    from adapters.bambu.watcher import Watcher, WatchSettings, targets_for
    from adapters.printers_file import read_watch_config

    env = os.environ if environ is None else environ
    config = read_watch_config(settings.printers_file)
    if not config.watched:
        return None
    targets = targets_for(config, lambda name: access_code(name, env), trust_dir(settings))
    return Watcher(targets, sink, WatchSettings.from_config(config, **watch),
                   state_file=settings.home / "watcher-state.json").start()


def run_watch(settings: Settings, sink: PrinterStatusSink, stop: threading.Event,
              out: Out = print, environ: Mapping[str, str] | None = None,
              on_started: Callable[[Watcher], None] | None = None, **watch: Any) -> int:
    """Run the watcher until ``stop`` is set; what ``printcore watch`` does once the sink
    exists. Prints one line per printer (watched where, or member-reported, or why it is
    not watched). ``on_started`` gets the running watcher (heartbeats, tests)."""
    from adapters.bambu.certs import pretty
    from adapters.printers_file import read_watch_config

    config = read_watch_config(settings.printers_file)
    watcher = start_watcher(settings, sink, environ, **watch)
    if watcher is None:
        out(f"printcore watch: no printer in {settings.printers_file} has 'serial' and "
            "'host', so every printer is member-reported; see docs/printers.md.")
        return 1
    health = watcher.health()
    for printer in config.watched:
        how = (f"TLS, pinned {pretty(printer.fingerprint)[:23]}…" if printer.tls
               and printer.fingerprint else "TLS" if printer.tls else "plain MQTT (tls: false)")
        problem = health[printer.name]["last_error"]
        out(f"  {printer.name}: {printer.host}:{printer.port} serial {printer.serial}, {how}"
            + (f" — NOT WATCHED: {problem}" if problem else ""))
    for name in config.member_reported:
        out(f"  {name}: member-reported (no serial/host)")
    out(f"printcore watch: watching {len(config.watched)} printer(s); offline after "
        f"{config.offline_after_seconds:g} s, debounce {config.debounce_seconds:g} s; "
        "Ctrl-C stops.")
    if on_started is not None:
        on_started(watcher)
    watcher.wait(stop)
    out(f"printcore watch: stopped ({watcher.delivered} report(s) applied, "
        f"{watcher.sink_errors} failed).")
    return 0


def cmd_watch(settings: Settings, args: argparse.Namespace) -> int:
    import signal

    from adapters.bambu.secrets import AccessCodeError
    from adapters.heartbeat import DatabaseHeartbeats, HeartbeatThread
    from entrypoints.bootstrap import bootstrap

    container = bootstrap(settings)
    beats: list[HeartbeatThread] = []
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        sink = container.queue
        if not callable(getattr(sink, "printer_reported", None)):
            print("printcore watch: this build's queue cannot take printer reports yet "
                  "(QueueService.printer_reported is missing).", file=sys.stderr)
            return 2

        def beat(watcher: Watcher) -> None:
            beats.append(HeartbeatThread(DatabaseHeartbeats(container.engine), "watcher",
                                         data=lambda: {"printers": watcher.health()}).start())

        try:
            return run_watch(settings, sink, stop,
                             out=lambda line: print(line, flush=True), on_started=beat)
        except AccessCodeError as err:
            print(f"printcore: {err}", file=sys.stderr)
            return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for heartbeat in beats:
            heartbeat.stop()
        container.close()


def cmd_trust(settings: Settings, args: argparse.Namespace, out: Out = print) -> int:
    """Fetch printer NAME's certificate, show it, pin it (PEM in the trust folder,
    fingerprint in the printers file)."""
    import ssl

    from adapters.bambu.certs import (
        fetch_certificate,
        inspect_pinned,
        pem_fingerprint,
        pretty,
        trust_path,
    )
    from adapters.printers_file import read_watch_config, set_fingerprint

    def err(line: str) -> None:
        print(f"printcore printers trust: {line}", file=sys.stderr)

    config = read_watch_config(settings.printers_file)
    printer = config.printer(args.name)
    if printer is None:
        known = "member-reported" if any(n.lower() == args.name.lower()
                                         for n in config.member_reported) else "not listed"
        err(f"{args.name} is {known} in {settings.printers_file}; give it 'serial' and "
            "'host' first (docs/printers.md).")
        return 1
    if not printer.tls:
        err(f"{printer.name} has 'tls: false' (a plain broker): there is no certificate "
            "to trust.")
        return 1
    where = f"{printer.host}:{printer.port}"
    try:
        pem = fetch_certificate(printer.host, printer.port, timeout=args.timeout)
        fp = pem_fingerprint(pem)
        info = inspect_pinned(printer.host, printer.port, pem, timeout=args.timeout)
    except ssl.SSLError as exc:
        err(f"{where} does not complete a TLS handshake with its own certificate: {exc}.")
        return 2
    except (OSError, ValueError) as exc:
        err(f"cannot reach {where}: {exc}. Is the printer on, in LAN mode, and is this "
            "its address?")
        return 2
    if info.fingerprint != fp:
        err(f"{where} presented two different certificates ({pretty(fp)} then "
            f"{pretty(info.fingerprint)}); something between us and the printer is "
            "changing them. Nothing was trusted.")
        return 1
    out(f"{printer.name} at {where} presents:")
    out(f"  subject CN: {info.subject_cn}   issuer CN: {info.issuer_cn}")
    out(f"  valid until: {info.not_after}")
    out(f"  SHA-256: {pretty(fp)}")
    if info.subject_cn != printer.serial and not args.ignore_serial:
        err(f"the certificate names {info.subject_cn!r}, not the serial {printer.serial} "
            "in the printers file: another device may answer at this address. Check the "
            "serial on the printer's screen; --ignore-serial trusts it anyway.")
        return 1
    if printer.fingerprint and printer.fingerprint != fp and not args.replace:
        err(f"{printer.name} already trusts {pretty(printer.fingerprint)}; the printer now "
            "presents another certificate. If it was replaced or reset, run again with "
            "--replace.")
        return 1
    folder = trust_dir(settings)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = trust_path(folder, printer.name)
    tmp = target.with_suffix(".pem.tmp")
    tmp.write_text(pem, encoding="ascii")
    os.replace(tmp, target)
    set_fingerprint(settings.printers_file, printer.name, fp)
    out(f"trusted: {target} and the fingerprint in {settings.printers_file}. "
        "Restart `printcore watch` (or the bot) to use it.")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``watch`` and ``printers`` on the top-level parser."""
    watch = sub.add_parser("watch", help="watch the Bambu Lab printers on the LAN and "
                                         "tell the queue (docs/printers.md)")
    watch.set_defaults(func=cmd_watch)
    printers = sub.add_parser("printers", help="the watched printers (docs/printers.md)")
    printers_sub = printers.add_subparsers(dest="printers_command", required=True)
    trust = printers_sub.add_parser(
        "trust", help="pin a printer's TLS certificate (fetch it, show its SHA-256, "
                      "write it into the printers file)")
    trust.add_argument("name", help="the printer's name in the printers file")
    trust.add_argument("--replace", action="store_true",
                       help="replace a certificate trusted before (printer replaced/reset)")
    trust.add_argument("--ignore-serial", action="store_true",
                       help="trust a certificate that does not name the printer's serial")
    trust.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                       help="how long to wait for the printer (default 10)")
    trust.set_defaults(func=cmd_trust)
