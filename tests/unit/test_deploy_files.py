"""The deployment files (deploy/, docker/compose.yaml) are well formed and run commands
that exist.

Checked: every systemd unit parses, has the settings the runbook promises
(EnvironmentFile, User, Restart=on-failure, a writable PRINTCORE_HOME under
ProtectSystem=strict) and an ExecStart that is a real ``printcore`` subcommand (a unit
naming ``printcore wrker`` would fail here), and ``systemd-analyze verify`` accepts it
when the tool is installed; the launchd plists load with plistlib, run printcore
subcommands, log to files that the newsyslog file rotates (a log missing from the
rotation fails); the journald drop-in parses; compose has a health check on every
long-running service, ``depends_on`` conditions only on services that have one (or run
once), and health-check commands that parse (the web's inline Python compiles, the
worker's and bot's ``printcore doctor --check`` names are real checks).
"""

from __future__ import annotations

import argparse
import configparser
import plistlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
PLISTS = sorted((DEPLOY / "launchd").glob("*.plist"))
CHECK_NAMES = {"database", "storage", "redis", "worker", "bot", "outbox"}


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from entrypoints.cli import build_parser

    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _runs_printcore(argv: list[str]) -> None:
    """``argv`` is ``.../printcore SUBCOMMAND [args]`` and parses as such."""
    assert Path(argv[0]).name == "printcore", argv
    assert argv[1] in _subcommands(), f"{argv[1]!r} is not a printcore subcommand"
    from entrypoints.cli import build_parser

    build_parser().parse_args(argv[1:])  # SystemExit on anything it does not know


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       delimiters=("=",), comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path, encoding="utf-8")
    return parser


def test_three_units() -> None:
    assert [p.name for p in UNITS] == ["printcore-bot.service", "printcore-web.service",
                                       "printcore-worker.service"]


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_unit(path: Path) -> None:
    unit = _unit(path)
    assert set(unit.sections()) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert service["EnvironmentFile"] == "/etc/printcore/printcore.env"
    assert service["User"] == "printcore" and service["Restart"] == "on-failure"
    # PRINTCORE_HOME (the working directory, /var/lib/printcore) stays writable.
    assert service["ProtectSystem"] == "strict"
    assert service["StateDirectory"] == "printcore"
    assert service["WorkingDirectory"] == "/var/lib/printcore"
    assert service["NoNewPrivileges"] == "yes"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    argv = service["ExecStart"].split()
    _runs_printcore(argv)
    expected = {"web": "serve", "worker": "worker", "bot": "bot"}[path.stem.split("-")[1]]
    assert argv[1] == expected


def test_units_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` on copies whose ExecStart is this checkout's printcore
    (the real path, /opt/printcore/..., does not exist on a test machine)."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (apt: systemd)")
    venv_printcore = ROOT / ".venv" / "bin" / "printcore"
    assert venv_printcore.exists()
    for path in UNITS:
        text = path.read_text().replace("/opt/printcore/.venv/bin/printcore",
                                        str(venv_printcore))
        (tmp_path / path.name).write_text(text)
    result = subprocess.run([tool, "verify", *[str(tmp_path / p.name) for p in UNITS]],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "printcore" not in result.stderr, result.stderr  # no warning about our units


def test_journald_drop_in() -> None:
    conf = _unit(DEPLOY / "systemd" / "journald-printcore.conf")
    journal = conf["Journal"]
    assert journal["Storage"] == "persistent"
    assert journal["SystemMaxUse"] and journal["MaxRetentionSec"]


def _plist(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        data: dict[str, Any] = plistlib.load(handle)
    return data


def _newsyslog() -> dict[str, list[str]]:
    entries = {}
    for line in (DEPLOY / "launchd" / "printcore.newsyslog.conf").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            fields = line.split()
            assert len(fields) == 7, line  # name owner:group mode count size when flags
            entries[fields[0]] = fields
    return entries


def test_launchd_plists() -> None:
    names = {p.name for p in PLISTS}
    assert {"edu.fablab.printcore.web.plist", "edu.fablab.printcore.worker.plist"} <= names
    rotated = _newsyslog()
    for fields in rotated.values():
        assert fields[1] == "printcore:staff" and int(fields[2], 8) == 0o640, fields
        assert int(fields[3]) > 0 and "N" in fields[6]
    logged: set[str] = set()
    for path in PLISTS:
        plist = _plist(path)
        assert plist["Label"] == path.stem
        if path.stem == "edu.fablab.printcore.logs":  # the weekly rotation job
            command = plist["ProgramArguments"][2]
            assert "newsyslog -F -f /etc/newsyslog.d/printcore.conf" in command
            for job in ("web", "worker"):
                assert f"kickstart -k system/edu.fablab.printcore.{job}" in command
            continue
        _runs_printcore(plist["ProgramArguments"])
        assert plist["UserName"] == "printcore" and plist["RunAtLoad"] is True
        assert plist["KeepAlive"] == {"SuccessfulExit": False}
        assert plist["EnvironmentVariables"]["PRINTCORE_HOME"] == plist["WorkingDirectory"]
        for key in ("StandardOutPath", "StandardErrorPath"):
            logged.add(plist[key])
    assert logged == set(rotated), "every launchd log is rotated, and only those"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    return data


def test_compose_health_checks() -> None:
    services = _compose()["services"]
    assert {"web", "worker", "bot", "db", "redis", "migrate"} <= set(services)
    healthy = {name for name, s in services.items()
               if not s.get("healthcheck", {}).get("disable") and (
                   "healthcheck" in s)}
    assert {"web", "worker", "bot", "db", "redis"} <= healthy
    for name, service in services.items():
        for needed, how in (service.get("depends_on") or {}).items():
            condition = how["condition"]
            if condition == "service_healthy":
                assert needed in healthy, f"{name} waits for {needed}, which has no check"
            else:
                assert condition == "service_completed_successfully" and needed == "migrate"
    for name in ("web", "worker", "bot"):
        assert services[name]["depends_on"]["migrate"]["condition"] == \
            "service_completed_successfully"
        assert "web" not in services[name]["depends_on"]  # a stopped worker blocks nothing
    _runs_printcore(services["migrate"]["command"])
    assert services["migrate"]["command"][1:] == ["db", "upgrade"]
    web = services["web"]["healthcheck"]["test"]
    assert web[:3] == ["CMD", "python", "-c"] and "/api/v1/health/ready" in web[3]
    compile(web[3], "web healthcheck", "exec")
    for name in ("worker", "bot"):
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD"
        _runs_printcore(test[1:])
        checks = test[test.index("doctor") + 1:][1::2]
        assert set(checks) <= CHECK_NAMES and name in checks
    assert services["db"]["healthcheck"]["test"][1].startswith("pg_isready")
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_compose_config(tmp_path: Path) -> None:
    """``docker compose config`` (v2) or ``docker-compose config`` (v1, which does not
    know the top-level ``name``: checked on a copy without it)."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "POSTGRES_PASSWORD": "x",
           "PRINTCORE_SECRET_KEY": "y", "DISCORD_TOKEN": "z"}
    compose = ROOT / "docker" / "compose.yaml"
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 env=env).returncode == 0:
        command = [docker, "compose", "-f", str(compose), "config", "--quiet"]
    elif shutil.which("docker-compose"):
        copy = compose.parent / f".compose-check-{tmp_path.name}.yaml"  # same folder: ..
        copy.write_text("".join(line for line in compose.read_text().splitlines(True)
                                if not line.startswith("name:")))
        command = ["docker-compose", "-f", str(copy), "config", "--quiet"]
    else:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env,
                                timeout=60)
    finally:
        for leftover in compose.parent.glob(".compose-check-*.yaml"):
            leftover.unlink()
    assert result.returncode == 0, result.stderr + result.stdout

