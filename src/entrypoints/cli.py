"""``printcore``: the command line.

    printcore serve                 run the web app (uvicorn); prints address, database, storage
    printcore db upgrade            apply database migrations
    printcore config                show the effective settings (secrets masked)
    printcore staff add NAME        add (or reactivate) a staff member
    printcore staff list [--all]    list staff members
    printcore staff deactivate NAME
    printcore set-password          set the shared staff password (prompted, or --stdin)
    printcore storage check [--repair]  compare storage folders with the database
    printcore queue …               the self-service queue (see entrypoints.queue_cli)
    printcore sweep [--once]        fire due queue offers and deadlines
    printcore bot [--show-commands] run the Discord bot (needs DISCORD_TOKEN) and the sweep
    printcore worker                deliver messages through Dramatiq (needs REDIS_URL)
    printcore outbox list|retry ID|deliver   outbound messages (see entrypoints.outbox_cli)

Exit codes: 0 ok, 1 refused input, 2 configuration or database unreachable.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from adapters.printers_file import PrintersFileError
from entrypoints.settings import Settings, SettingsError, load_settings
from printcore.errors import PrintcoreError, StorageError, ValidationError

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
    container = _container(settings)
    app = app_from_container(container)
    print(f"printcore serving at http://{host}:{port}/  (staff: http://{host}:{port}/staff)")
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
    uvicorn.run(app, host=host, port=port, log_level=args.log_level, proxy_headers=True)
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
    container = _container(settings)
    try:
        if args.staff_command == "add":
            member = container.staff.add(args.name)
            print(f"added {member.name}")
        elif args.staff_command == "list":
            for member in container.staff.list(active_only=not args.all):
                print(member.name + ("" if member.active else "  (inactive)"))
        elif args.staff_command == "deactivate":
            container.staff.deactivate(args.name)
            print(f"deactivated {args.name}")
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

    container = _container(settings)
    print(f"printcore bot: database {_describe_database(settings)}; sweeping every "
          f"{settings.sweep_seconds} s; commands sync to "
          + (f"guild {settings.discord_guild_id}" if settings.discord_guild_id
             else "every guild (global; can take up to an hour to appear)"), flush=True)
    try:
        run_bot(container.queue, token=settings.discord_token,
                guild_id=settings.discord_guild_id, channel_id=settings.discord_channel_id,
                sweep_seconds=float(settings.sweep_seconds),
                max_file_bytes=settings.max_upload_bytes)
    except BotStartError as err:
        print(f"printcore bot: {err}", file=sys.stderr)
        return 2
    finally:
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

    sub.add_parser("config", help="show effective settings").set_defaults(func=cmd_config)

    staff = sub.add_parser("staff", help="manage staff members")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser("add")
    add.add_argument("name")
    lst = staff_sub.add_parser("list")
    lst.add_argument("--all", action="store_true", help="include inactive members")
    deactivate = staff_sub.add_parser("deactivate")
    deactivate.add_argument("name")
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

    from entrypoints.queue_cli import add_parsers

    add_parsers(sub)

    from entrypoints.outbox_cli import add_parsers as add_outbox_parsers

    add_outbox_parsers(sub)

    bot = sub.add_parser("bot", help="run the Discord bot and the queue sweep")
    bot.add_argument("--show-commands", action="store_true",
                     help="print the slash commands the bot would sync, and exit")
    bot.set_defaults(func=cmd_bot)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        return int(args.func(settings, args))
    except (SettingsError, StorageError, PrintersFileError) as err:
        print(f"printcore: {err}", file=sys.stderr)
        return 2
    except PrintcoreError as err:
        print(f"printcore: {err.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
