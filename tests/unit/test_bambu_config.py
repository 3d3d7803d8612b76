"""The printers file's watch settings, access codes, reconnect delays and fingerprints
(issue 15)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.bambu.certs import PinError, check_presented, pinned_context, pretty
from adapters.bambu.connection import PUSHALL, Backoff
from adapters.bambu.secrets import AccessCodeError, access_code, env_name
from adapters.printers_file import (
    PrintersFileError,
    normalise_fingerprint,
    read_printers,
    read_watch_config,
    set_fingerprint,
)

FP = "3a" * 32
FILE = f"""\
# printers (comment kept)
watch:
  offline_after_seconds: 120
  debounce_seconds: 2.5
printers:
  - name: X1C-1
    label: Bambu Lab X1 Carbon 1   # bench 1
    serial: 00M09A350100123
    host: 192.0.2.50
  - name: P1S.2
    serial: 01P00A123456789
    host: p1s-2.lab.example
    port: 1883
    tls: false
  - X1C-3
  - name: A1-4
    label: mini
    serial: 03919A3A2600123
    host: 192.0.2.54
    fingerprint: "{FP.upper()}"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "printers.yaml"
    path.write_text(text)
    return path


def test_names_and_labels_read_as_before(tmp_path: Path) -> None:
    path = write(tmp_path, FILE)
    assert read_printers(path) == [("X1C-1", "Bambu Lab X1 Carbon 1"), ("P1S.2", ""),
                                   ("X1C-3", ""), ("A1-4", "mini")]


def test_watch_settings_and_defaults(tmp_path: Path) -> None:
    config = read_watch_config(write(tmp_path, FILE))
    assert [p.name for p in config.watched] == ["X1C-1", "P1S.2", "A1-4"]
    assert config.member_reported == ("X1C-3",)
    x1 = config.printer("x1c-1")
    assert (x1.port, x1.tls, x1.fingerprint) == (8883, True, None)
    p1 = config.printer("P1S.2")
    assert (p1.port, p1.tls, p1.host) == (1883, False, "p1s-2.lab.example")
    assert config.printer("A1-4").fingerprint == FP
    assert (config.offline_after_seconds, config.debounce_seconds,
            config.pushall_seconds) == (120.0, 2.5, 300.0)
    plain = read_watch_config(write(tmp_path, "printers:\n  - X1C-1\n"))
    assert plain.watched == () and plain.offline_after_seconds == 330.0


@pytest.mark.parametrize(("item", "words"), [
    ("    serial: 00M09A350100123\n", "needs both 'serial' and 'host'"),
    ("    host: 1.2.3.4\n    port: 8883\n", "needs both 'serial' and 'host'"),
    ("    serial: 00M-09\n    host: h\n", "4-40 letters and digits"),
    ("    serial: 00M09A350100123\n    host: 'a b'\n", "not a host name"),
    ("    serial: 00M09A350100123\n    host: h\n    port: 70000\n", "from 1 to 65535"),
    ("    serial: 00M09A350100123\n    host: h\n    port: true\n", "from 1 to 65535"),
    ("    serial: 00M09A350100123\n    host: h\n    tls: 'no'\n", "true or false"),
    ("    serial: 00M09A350100123\n    host: h\n    fingerprint: abc\n", "64 hex digits"),
    ("    serial: 00M09A350100123\n    host: h\n    access_code: '1234'\n", "nothing else"),
])
def test_bad_watch_items_are_refused_with_the_reason(tmp_path: Path, item: str,
                                                     words: str) -> None:
    path = write(tmp_path, "printers:\n  - name: X1C-1\n" + item)
    with pytest.raises(PrintersFileError, match=words):
        read_watch_config(path)


@pytest.mark.parametrize(("watch", "words"), [
    ("  debounce_seconds: -1\n", "debounce_seconds must be seconds from 0 to 300"),
    ("  pushall_seconds: 10\n", "pushall_seconds must be seconds from 300"),
    ("  offline_after_seconds: 'soon'\n", "offline_after_seconds"),
    ("  polling: 3\n", "'watch:' takes only"),
])
def test_bad_watch_settings_are_refused(tmp_path: Path, watch: str, words: str) -> None:
    path = write(tmp_path, "watch:\n" + watch + "printers:\n  - X1C-1\n")
    with pytest.raises(PrintersFileError, match=words):
        read_watch_config(path)


def test_a_serial_given_twice_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "printers:\n  - {name: a, serial: ABCD1234, host: h}\n"
                           "  - {name: b, serial: abcd1234, host: h2}\n")
    with pytest.raises(PrintersFileError, match="given for both a and b"):
        read_watch_config(path)


def test_set_fingerprint_adds_then_replaces_and_keeps_every_other_line(tmp_path: Path) -> None:
    path = write(tmp_path, FILE)
    set_fingerprint(path, "x1c-1", "AB:" * 31 + "AB")
    set_fingerprint(path, "A1-4", "sha256:" + "cd" * 32)
    text = path.read_text()
    assert text.count("fingerprint:") == 2
    assert "# printers (comment kept)" in text and "# bench 1" in text
    config = read_watch_config(path)
    assert config.printer("X1C-1").fingerprint == "ab" * 32
    assert config.printer("A1-4").fingerprint == "cd" * 32
    assert config.printer("P1S.2").fingerprint is None
    assert read_printers(path)[0] == ("X1C-1", "Bambu Lab X1 Carbon 1")
    before = text.splitlines()
    set_fingerprint(path, "X1C-1", "ef" * 32)
    after = path.read_text().splitlines()
    assert [a for a, b in zip(before, after, strict=True) if a != b] == [
        f'    fingerprint: "{"ab" * 32}"']


def test_set_fingerprint_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    path = write(tmp_path, "printers:\n  - X1C-3\n  - {name: Z, serial: ABCD1234, host: h}\n")
    with pytest.raises(PrintersFileError, match="no printer 'X1C-3'"):
        set_fingerprint(path, "X1C-3", FP)
    with pytest.raises(PrintersFileError, match="on one line"):
        set_fingerprint(path, "Z", FP)
    with pytest.raises(PrintersFileError, match="not a SHA-256"):
        set_fingerprint(path, "Z", "beef")
    assert path.read_text() == "printers:\n  - X1C-3\n  - {name: Z, serial: ABCD1234, host: h}\n"


def test_fingerprint_spellings() -> None:
    assert normalise_fingerprint(pretty(FP)) == FP
    assert normalise_fingerprint("SHA256:" + FP.upper()) == FP
    assert normalise_fingerprint("3a" * 31) is None
    assert pretty("ab01") == "AB:01"


def test_access_codes_from_the_environment_or_the_secrets_file(tmp_path: Path) -> None:
    assert env_name("X1C-1") == "PRINTCORE_BAMBU_ACCESS_CODE_X1C_1"
    assert env_name("p1s.2") == "PRINTCORE_BAMBU_ACCESS_CODE_P1S_2"
    secrets = tmp_path / "codes"
    secrets.write_text("# codes\n\nX1C-1 = 11112222\np1s.2=33334444\n")
    secrets.chmod(0o600)
    env = {"PRINTCORE_BAMBU_SECRETS_FILE": str(secrets),
           "PRINTCORE_BAMBU_ACCESS_CODE_X1C_1": "99998888"}
    assert access_code("X1C-1", env) == "99998888"  # the environment first
    assert access_code("P1S.2", env) == "33334444"
    assert access_code("A1-4", env) is None
    assert access_code("X1C-1", {}) is None
    secrets.write_text("X1C-1 11112222\n")
    with pytest.raises(AccessCodeError, match="line 1: write NAME=CODE"):
        access_code("P1S.2", env)
    with pytest.raises(AccessCodeError, match="Cannot read"):
        access_code("P1S.2", {"PRINTCORE_BAMBU_SECRETS_FILE": str(tmp_path / "none")})


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    b = Backoff(base=1.0, cap=60.0, rng=random.Random(7))
    delays = [b.next_delay() for _ in range(12)]
    steps = [min(60.0, 2.0 ** n) for n in range(12)]
    assert all(s / 2 <= d <= s for d, s in zip(delays, steps, strict=True))
    assert max(delays) <= 60.0 and delays[-1] >= 30.0
    other = Backoff(base=1.0, cap=60.0, rng=random.Random(8))
    assert [other.next_delay() for _ in range(12)] != delays  # jitter: not in lock step
    b.reset()
    assert b.next_delay() <= 1.0


def test_pushall_is_the_protocols_request() -> None:
    assert json.loads(json.dumps(PUSHALL)) == {"pushing": {
        "sequence_id": "0", "command": "pushall", "version": 1, "push_target": 1}}


def test_pins_refuse_missing_or_other_certificates(tmp_path: Path) -> None:
    with pytest.raises(PinError, match="cannot be read"):
        pinned_context(tmp_path / "none.pem")
    (tmp_path / "bad.pem").write_text("hello")
    with pytest.raises(PinError, match="not a PEM certificate"):
        pinned_context(tmp_path / "bad.pem")
    with pytest.raises(PinError, match="expected 3A:3A"):
        check_presented(b"other der bytes", FP)
    with pytest.raises(PinError, match="no certificate"):
        check_presented(None, FP)


HEAVY = {"paho", "ssl", "yaml", "sqlalchemy", "adapters", "structlog"}


@pytest.mark.parametrize("argv", [["watch", "--help"], ["printers", "trust", "--help"]])
def test_the_commands_help_imports_no_adapter(tmp_path: Path, argv: list[str]) -> None:
    code = ("import json, sys\nfrom entrypoints.cli import main\ntry:\n"
            f"    main({argv!r})\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "print('MODULES=' + json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTCORE_")}
    env["PRINTCORE_HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=True)
    out, _, modules = result.stdout.rpartition("MODULES=")
    assert "usage: printcore" in out
    assert set(json.loads(modules)) & (HEAVY - {"ssl"}) == set()
