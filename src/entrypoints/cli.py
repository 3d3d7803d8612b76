"""``printcore``: the command line.

    printcore serve                 run the web app (uvicorn); prints address, database, storage
    printcore db upgrade            apply database migrations
    printcore config                show the effective settings (secrets masked)
    printcore staff add NAME        add (or reactivate) a staff member
    printcore staff list [--all]    list staff members
    printcore staff deactivate NAME | reactivate NAME | rename OLD NEW
    printcore set-password          set the shared staff password (prompted, or --stdin);
                                    ends every signed-in workstation's session
    printcore sessions list         signed-in workstations (session id, since, last seen)
    printcore sessions end ID|--all end one workstation's session (or all)
    printcore storage check [--repair]  compare storage folders with the database
    printcore queue …               the self-service queue (see entrypoints.queue_cli)
    printcore sweep [--once]        fire due queue offers and deadlines
    printcore bot [--show-commands] run the Discord bot (needs DISCORD_TOKEN) and the sweep
    printcore worker                deliver messages through Dramatiq (needs REDIS_URL)
    printcore outbox list|retry ID|deliver   outbound messages (see entrypoints.outbox_cli)
    printcore doctor                readiness checks (database, storage, Redis, outbox); exit 1
                                    when one fails (see entrypoints.doctor)
    printcore backup PATH | restore PATH     one archive of database and storage
                                    (see entrypoints.backup_cli)
    printcore export payments --from D --to D --format xlsx|csv --output PATH
                                    payments of a date range (see entrypoints.exports_cli)
    printcore retention --older-than DAYS [--archive DIR] [--apply] [--staff NAME]
                                    preview, archive or prune old finished jobs
                                    (see entrypoints.retention_cli)
    printcore db copy --to URL      copy this database into an empty PostgreSQL database
                                    (see entrypoints.db_cli)

Exit codes: 0 ok, 1 refused input, 2 configuration or database unreachable.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from printcore.errors import PrintcoreError, StorageError, ValidationError

if TYPE_CHECKING:  # main() imports the settings once the arguments parsed
    from entrypoints.settings import Settings

# Start-up time (issue 14): building the parser imports no adapter; each ``cmd_*``
# imports what it needs when it runs (tests/unit/test_cli_imports.py keeps it so).

__all__ = ["main"]


def _container(settings: Settings, migrate: bool = True):  # type: ignore[no-untyped-def]
    from entrypoints.bootstrap import bootstrap

    return bootstrap(settings, migrate=migrate)


def _describe_database(settings: Settings) -> str:
    if settings.sqlite_path is not None:
        return f"SQLite at {settings.sqlite_path}"
    return "PostgreSQL " + settings.describe()["database_url"]


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from entrypoints.web import app_from_container

    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    settings = settings.serving_at(host, port)  # emailed links follow the served address
    container = _container(settings)
    app = app_from_container(container)
    print(f"printcore serving at http://{host}:{port}/  (staff: http://{host}:{port}/staff)")
    print(f"  links:    {settings.base_url}/ in emails"
          + ("" if not settings.base_url_is_default
             else " (set PRINTCORE_BASE_URL to the public address)"))
    print(f"  database: {_describe_database(settings)}")
    print(f"  storage:  {settings.storage_root}")
    if settings.mail_backend == "smtp":
        print(f"  mail:     SMTP {settings.smtp_host}:{settings.smtp_port} ({settings.smtp_tls})")
    else:
        print(f"  mail:     .eml files in {settings.mail_dir}")
    if settings.redis_url:
        print(f"  delivery: Dramatiq on {settings.describe()['redis_url']} "
              "(run `printcore worker`)")
    else:
        print("  delivery: by this process (no REDIS_URL)")
    if not container.staff.has_password():
        print("  ! no staff password yet: run `printcore set-password` (or set "
              "PRINTCORE_STAFF_PASSWORD) before logging in")
    if not container.staff.list():
        print('  ! no staff members yet: run `printcore staff add "Your Name"`')
    sys.stdout.flush()
    trusted = ",".join(settings.trusted_proxies)
    if trusted:
        print(f"  proxies:  X-Forwarded-For believed from {trusted}")
    sys.stdout.flush()
    # X-Forwarded-For is believed only from PRINTCORE_TRUSTED_PROXIES (uvicorn's own
    # default would trust 127.0.0.1, letting any local process pick its address).
    uvicorn.run(app, host=host, port=port, log_level=args.log_level,
                proxy_headers=bool(trusted), forwarded_allow_ips=trusted or "")
    return 0


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.sql import check_connection, current_revision, make_engine, upgrade

    engine = make_engine(settings.database_url)
    check_connection(engine)
    upgrade(engine)
    print(f"database {_describe_database(settings)} is at revision {current_revision(engine)}")
    engine.dispose()
    return 0


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    for key, value in settings.describe().items():
        print(f"{key:24} {value}")
    return 0


def cmd_staff(settings: Settings, args: argparse.Namespace) -> int:
    from printcore.events import Actor

    by = Actor.system("command line")  # the lab's history names where the change came from
    container = _container(settings)
    try:
        if args.staff_command == "add":
            member = container.staff.add(args.name, by)
            print(f"added {member.name}")
        elif args.staff_command == "list":
            for member in container.staff.list(active_only=not args.all):
                print(member.name + ("" if member.active else "  (inactive)"))
        elif args.staff_command == "deactivate":
            container.staff.deactivate(args.name, by)
            print(f"deactivated {args.name}")
        elif args.staff_command == "reactivate":
            container.staff.reactivate(args.name, by)
            print(f"reactivated {args.name}")
        elif args.staff_command == "rename":
            member = container.staff.rename(args.old, args.new, by)
            print(f"renamed {args.old} to {member.name} (past events keep the old name)")
    finally:
        container.close()
    return 0


def cmd_storage_check(settings: Settings, args: argparse.Namespace) -> int:
    from adapters.files.audit import audit_storage
    from adapters.sql import SqlUnitOfWork

    container = _container(settings)
    try:
        report = audit_storage(container.files, lambda: SqlUnitOfWork(container.engine),
                               repair=args.repair)
    finally:
        container.close()
    for line in report.problems:
        print(f"problem: {line}")
    for line in report.repaired:
        print(f"repaired: {line}")
    print(f"{report.jobs_checked} job folder(s) checked, {len(report.problems)} problem(s), "
          f"{len(report.repaired)} repaired")
    return 0 if report.ok else 1


def cmd_set_password(settings: Settings, args: argparse.Namespace) -> int:
    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("New staff password: ")
        if getpass.getpass("Repeat it: ") != password:
            raise ValidationError("The two passwords differ; nothing was changed.")
    container = _container(settings)
    try:
        container.staff.set_password(password)
    finally:
        container.close()
    print("staff password set")
    return 0


def cmd_sessions(settings: Settings, args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    container = _container(settings)
    zone = ZoneInfo(settings.timezone)

    def local(moment) -> str:  # type: ignore[no-untyped-def]
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    try:
        if args.sessions_command == "list":
            sessions = container.staff.sessions()
            for s in sessions:
                print(f"{s.id}  {s.workstation:24}  since {local(s.started_at)}  "
                      f"last seen {local(s.last_seen_at)}")
            print(f"{len(sessions)} signed-in workstation(s)")
        elif args.all:
            ended = 0
            for s in container.staff.sessions():
                container.staff.end_session(s.id, "ended from the command line")
                ended += 1
            print(f"ended {ended} session(s)")
        elif args.id:
            ended_session = container.staff.end_session(args.id, "ended from the command line")
            print(f"ended the session of {ended_session.workstation}")
        else:
            raise ValidationError("Name a session id (see `printcore sessions list`) or --all.")
    finally:
        container.close()
    return 0


def cmd_bot(settings: Settings, args: argparse.Namespace) -> int:
    import json

    if args.show_commands:
        from adapters.discord import describe_commands

        print(json.dumps(describe_commands(), indent=2))
        return 0
    if not settings.discord_token:
        print("printcore bot: DISCORD_TOKEN is not set. Create a bot at "
              "https://discord.com/developers/applications, invite it with the "
              "applications.commands and bot scopes, and set DISCORD_TOKEN (and "
              "DISCORD_GUILD_ID, DISCORD_CHANNEL_ID) in the environment or .env. "
              "Without Discord, use `printcore queue …` and `printcore sweep`.",
              file=sys.stderr)
        return 2
    if settings.discord_channel_id is None:
        print("printcore bot: DISCORD_CHANNEL_ID is not set: offers go by DM only.",
              file=sys.stderr)
    from adapters.discord import BotStartError, run_bot
    from adapters.heartbeat import DatabaseHeartbeats

    container = _container(settings)
    # The printers that report for themselves (issue 15; docs/printers.md), watched from
    # this process when the printers file names any; `printcore watch` does it alone.
    from adapters.bambu.secrets import AccessCodeError
    from adapters.heartbeat import HeartbeatThread
    from adapters.printers_file import PrintersFileError
    from entrypoints.watch_cli import start_watcher

    try:
        watcher = start_watcher(settings, container.queue)
    except (PrintersFileError, AccessCodeError) as err:
        container.close()
        print(f"printcore bot: {err}", file=sys.stderr)
        return 2
    beats = None
    if watcher is not None:
        beats = HeartbeatThread(DatabaseHeartbeats(container.engine), "watcher",
                                data=lambda: {"printers": watcher.health()})
        beats.start()
        print(f"printcore bot: watching {len(watcher.health())} printer(s) over their LAN",
              flush=True)
    import gc

    gc.freeze()  # start-up's objects stay for the process: out of full GC passes
    print(f"printcore bot: database {_describe_database(settings)}; sweeping every "
          f"{settings.sweep_seconds} s; commands sync to "
          + (f"guild {settings.discord_guild_id}" if settings.discord_guild_id
             else "every guild (global; can take up to an hour to appear)"), flush=True)
    try:
        run_bot(container.queue, token=settings.discord_token,
                guild_id=settings.discord_guild_id, channel_id=settings.discord_channel_id,
                sweep_seconds=float(settings.sweep_seconds),
                max_file_bytes=settings.max_upload_bytes,
                heartbeats=DatabaseHeartbeats(container.engine))  # readiness reads it
    except BotStartError as err:
        print(f"printcore bot: {err}", file=sys.stderr)
        return 2
    finally:
        if beats is not None:
            beats.stop()
        if watcher is not None:
            watcher.stop()
        container.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="printcore", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)
    from entrypoints.db_cli import add_db_parsers

    add_db_parsers(db_sub)

    sub.add_parser("config", help="show effective settings").set_defaults(func=cmd_config)

    staff = sub.add_parser("staff", help="manage staff members")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser("add")
    add.add_argument("name")
    lst = staff_sub.add_parser("list")
    lst.add_argument("--all", action="store_true", help="include inactive members")
    deactivate = staff_sub.add_parser("deactivate")
    deactivate.add_argument("name")
    reactivate = staff_sub.add_parser("reactivate", help="put a deactivated member back")
    reactivate.add_argument("name")
    rename = staff_sub.add_parser("rename", help="rename a member (past events keep the name)")
    rename.add_argument("old")
    rename.add_argument("new")
    staff.set_defaults(func=cmd_staff)

    storage = sub.add_parser("storage", help="storage folders")
    storage_sub = storage.add_subparsers(dest="storage_command", required=True)
    check = storage_sub.add_parser("check", help="compare storage with the database")
    check.add_argument("--repair", action="store_true",
                       help="remove leftovers of interrupted moves, restore missing folders")
    check.set_defaults(func=cmd_storage_check)

    pw = sub.add_parser("set-password", help="set the shared staff password")
    pw.add_argument("--stdin", action="store_true", help="read it from standard input")
    pw.set_defaults(func=cmd_set_password)

    sessions = sub.add_parser("sessions", help="signed-in staff workstations")
    sessions_sub = sessions.add_subparsers(dest="sessions_command", required=True)
    sessions_sub.add_parser("list", help="list signed-in workstations")
    end = sessions_sub.add_parser("end", help="end a workstation's session")
    end.add_argument("id", nargs="?", help="the session id from `printcore sessions list`")
    end.add_argument("--all", action="store_true", help="end every session")
    sessions.set_defaults(func=cmd_sessions)

    from entrypoints.queue_cli import add_parsers

    add_parsers(sub)

    from entrypoints.outbox_cli import add_parsers as add_outbox_parsers

    add_outbox_parsers(sub)

    from entrypoints.reminders import add_parsers as add_reminder_parsers

    add_reminder_parsers(sub)

    from entrypoints.backup_cli import add_parsers as add_backup_parsers

    add_backup_parsers(sub)

    from entrypoints.exports_cli import add_parsers as add_export_parsers

    add_export_parsers(sub)

    from entrypoints.doctor import add_parsers as add_doctor_parsers

    add_doctor_parsers(sub)

    from entrypoints.retention_cli import add_parsers as add_retention_parsers

    add_retention_parsers(sub)

    from entrypoints.watch_cli import add_parsers as add_watch_parsers

    add_watch_parsers(sub)

    bot = sub.add_parser("bot", help="run the Discord bot and the queue sweep")
    bot.add_argument("--show-commands", action="store_true",
                     help="print the slash commands the bot would sync, and exit")
    bot.set_defaults(func=cmd_bot)
    return parser


def _check_arguments(argv: Sequence[str]) -> str | None:
    """What is wrong with the command line's texts (printcore.text's rule), or None.

    On POSIX, bytes that are not UTF-8 arrive as lone surrogates (surrogateescape)."""
    from printcore.text import text_problem

    for position, arg in enumerate(argv, 1):
        problem = text_problem(arg, multiline=True)
        if problem is not None:
            shown = arg.encode("utf-8", "backslashreplace").decode("ascii", "replace")
            return f"argument {position} ({shown!r}): {problem}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    problem = _check_arguments(raw)
    if problem is not None:
        print(f"printcore: {problem} Nothing was changed.", file=sys.stderr)
        return 1
    args = build_parser().parse_args(raw)  # --help and usage errors end here
    from entrypoints.settings import SettingsError, load_settings

    settings = None
    try:
        settings = load_settings()
        return int(args.func(settings, args))
    except (SettingsError, StorageError) as err:
        print(f"printcore: {err}", file=sys.stderr)
        return 2
    except PrintcoreError as err:
        # The queue's refusals in this front end's words (printcore queue …), others as
        # they are.
        from entrypoints.queue_words import refusal

        zone = settings.timezone if settings is not None else "UTC"
        print(f"printcore: {refusal(err, getattr(args, 'member', None), zone)}",
              file=sys.stderr)
        return 1
    except ValueError as err:
        if not _is_printers_file_error(err):
            raise
        print(f"printcore: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``printcore queue history | head -1``): what it read is
        # what it wanted. Point stdout at /dev/null so the exit's flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _is_printers_file_error(err: BaseException) -> bool:
    """A bad printers file (``adapters.printers_file.PrintersFileError``), asked without
    importing the adapter: it is loaded whenever one was raised."""
    module = sys.modules.get("adapters.printers_file")
    return module is not None and isinstance(err, module.PrintersFileError)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
