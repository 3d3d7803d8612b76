"""The printer's certificate, pinned (issue 15): a TLS Mosquitto this test starts with its
own CA and a "printer" certificate (CN = the serial), user ``bblp`` with the access code.

``printcore printers trust NAME`` fetches and pins the certificate (PEM in the trust
folder, fingerprint in the printers file, comments kept); the watcher then connects with
that certificate as its only trust anchor and gets the simulated printer's reports. A
wrong pin is refused and the health says which fingerprint was expected and which was
presented; a wrong access code is refused and said so; a certificate that does not name
the configured serial is not trusted.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from _bambu.brokers import OwnBroker, PrinterCerts, make_printer_certs
from _bambu.sim import SimPrinter, wait_until
from _bambu.sinks import RecordingSink
from adapters.bambu.certs import pem_fingerprint, pretty
from adapters.bambu.secrets import env_name
from adapters.printers_file import read_printers, read_watch_config
from entrypoints.settings import Settings, load_settings
from entrypoints.watch_cli import cmd_trust, run_watch, start_watcher

CODE = "12ab34cd"
FAST = dict(debounce=0.5, backoff_base=0.2, backoff_cap=1.0, tick_seconds=0.05,
            pushall_gap=1.0)


class Printer:
    def __init__(self, folder: Path) -> None:
        self.serial = "01S00C" + uuid.uuid4().hex[:9].upper()
        self.certs: PrinterCerts = make_printer_certs(folder / "certs", self.serial)
        self.broker = OwnBroker(folder / "broker", certs=self.certs, password=CODE).start()
        self.sim = SimPrinter(self.serial, self.broker.port, username="bblp", password=CODE,
                              ca_file=str(self.certs.ca_pem)).start()

    def close(self) -> None:
        self.sim.stop()
        self.broker.stop()


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[Printer]:
    p = Printer(tmp_path)
    yield p
    p.close()


def settings_for(home: Path, body: str) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    (home / "printers.yaml").write_text(body)
    return load_settings({"PRINTCORE_HOME": str(home)}, env_file=None)


def printers_file(p: Printer, extra: str = "") -> str:
    return ("# the lab's printers\nwatch:\n  debounce_seconds: 1\nprinters:\n"
            "  - name: X1C-1   # bench 1\n    label: X1 Carbon\n"
            f"    serial: {p.serial}\n    host: 127.0.0.1\n    port: {p.broker.port}\n"
            f"{extra}  - X1C-2\n")


def trust(settings: Settings, name: str = "X1C-1", **flags: bool) -> tuple[int, list[str]]:
    lines: list[str] = []
    args = argparse.Namespace(name=name, replace=flags.get("replace", False),
                              ignore_serial=flags.get("ignore_serial", False), timeout=5.0)
    return cmd_trust(settings, args, out=lines.append), lines


def test_trust_pins_the_certificate_and_the_watcher_uses_it(tmp_path: Path,
                                                            printer: Printer) -> None:
    settings = settings_for(tmp_path / "home", printers_file(printer))
    code, lines = trust(settings)
    assert code == 0, lines
    expected = pem_fingerprint(printer.certs.cert_pem.read_text())
    assert any(pretty(expected) in line for line in lines)
    assert any(printer.serial in line for line in lines)  # the subject CN is shown
    pinned = tmp_path / "home" / "printer-certs" / "X1C-1.pem"
    assert pem_fingerprint(pinned.read_text()) == expected
    text = (tmp_path / "home" / "printers.yaml").read_text()
    assert "# the lab's printers" in text and "# bench 1" in text  # comments kept
    assert read_watch_config(settings.printers_file).printer("X1C-1").fingerprint == expected
    assert read_printers(settings.printers_file) == [("X1C-1", "X1 Carbon"), ("X1C-2", "")]

    sink = RecordingSink()
    watcher = start_watcher(settings, sink, {env_name("X1C-1"): CODE}, **FAST)
    assert watcher is not None
    try:
        sink.wait_kinds("X1C-1", ["online", "idle"])
        printer.sim.start_print(task="900")
        sink.wait_kinds("X1C-1", ["started"])
        printer.sim.set(gcode_state="FINISH")
        sink.wait_kinds("X1C-1", ["finished"])
        assert watcher.health()["X1C-1"]["connected"] is True
        assert set(watcher.health()) == {"X1C-1"}  # X1C-2 stays member-reported
    finally:
        watcher.stop()


def test_a_wrong_certificate_is_refused_and_the_health_says_why(tmp_path: Path,
                                                                printer: Printer) -> None:
    wrong = pem_fingerprint(printer.certs.impostor_pem.read_text())
    presented = pem_fingerprint(printer.certs.cert_pem.read_text())
    home = tmp_path / "home"
    settings = settings_for(home, printers_file(printer, f'    fingerprint: "{wrong}"\n'))
    (home / "printer-certs").mkdir()
    (home / "printer-certs" / "X1C-1.pem").write_bytes(printer.certs.impostor_pem.read_bytes())
    sink = RecordingSink()
    watcher = start_watcher(settings, sink, {env_name("X1C-1"): CODE}, **FAST)
    assert watcher is not None
    try:
        wait_until(lambda: watcher.health()["X1C-1"]["last_error"], what="the refusal")
        error = watcher.health()["X1C-1"]["last_error"]
        assert f"expected {pretty(wrong)}" in error and f"presented {pretty(presented)}" in error
        assert "printcore printers trust X1C-1" in error
        printer.sim.publish_full()
        time.sleep(0.5)
        assert sink.reports == [] and watcher.health()["X1C-1"]["connected"] is False
    finally:
        watcher.stop()
    # trusting again refuses to replace a pin silently, and does with --replace
    code, _ = trust(settings)
    assert code == 1
    code, _ = trust(settings, replace=True)
    assert code == 0
    assert read_watch_config(settings.printers_file).printer("X1C-1").fingerprint == presented


def test_a_pem_that_does_not_match_the_printers_file_is_refused(tmp_path: Path,
                                                                printer: Printer) -> None:
    presented = pem_fingerprint(printer.certs.cert_pem.read_text())
    home = tmp_path / "home"
    settings = settings_for(home, printers_file(printer, f"    fingerprint: {presented}\n"))
    (home / "printer-certs").mkdir()
    (home / "printer-certs" / "X1C-1.pem").write_bytes(printer.certs.impostor_pem.read_bytes())
    watcher = start_watcher(settings, RecordingSink(), {env_name("X1C-1"): CODE}, **FAST)
    assert watcher is not None
    try:
        error = watcher.health()["X1C-1"]["last_error"]
        assert "but the printers file pins" in error and pretty(presented) in error
    finally:
        watcher.stop()


def test_a_wrong_access_code_is_refused(tmp_path: Path, printer: Printer) -> None:
    settings = settings_for(tmp_path / "home", printers_file(printer))
    assert trust(settings)[0] == 0
    watcher = start_watcher(settings, RecordingSink(), {env_name("X1C-1"): "nope0000"}, **FAST)
    assert watcher is not None
    try:
        wait_until(lambda: "refused the login" in (watcher.health()["X1C-1"]["last_error"] or ""),
                   what="the login refusal")
        assert "access code" in watcher.health()["X1C-1"]["last_error"]
    finally:
        watcher.stop()


def test_untrusted_or_codeless_printers_are_not_connected_and_say_why(
        tmp_path: Path, printer: Printer) -> None:
    settings = settings_for(tmp_path / "home", printers_file(printer))
    watcher = start_watcher(settings, RecordingSink(), {env_name("X1C-1"): CODE}, **FAST)
    assert watcher is not None
    try:
        assert "printcore printers trust X1C-1" in watcher.health()["X1C-1"]["last_error"]
    finally:
        watcher.stop()
    watcher = start_watcher(settings, RecordingSink(), {}, **FAST)
    assert watcher is not None
    try:
        assert env_name("X1C-1") in watcher.health()["X1C-1"]["last_error"]
    finally:
        watcher.stop()


def test_a_certificate_naming_another_serial_is_not_trusted(tmp_path: Path,
                                                            printer: Printer) -> None:
    body = printers_file(printer).replace(printer.serial, "01S00C000000000")
    settings = settings_for(tmp_path / "home", body)
    code, _ = trust(settings)
    assert code == 1
    assert read_watch_config(settings.printers_file).printer("X1C-1").fingerprint is None
    assert not (tmp_path / "home" / "printer-certs" / "X1C-1.pem").exists()
    assert trust(settings, ignore_serial=True)[0] == 0


def test_trust_refuses_member_reported_and_unreachable_printers(tmp_path: Path,
                                                                printer: Printer) -> None:
    settings = settings_for(tmp_path / "home", printers_file(printer))
    assert trust(settings, name="X1C-2")[0] == 1
    assert trust(settings, name="nope")[0] == 1
    printer.broker.stop()
    assert trust(settings)[0] == 2


def test_run_watch_prints_the_printers_and_stops_on_the_event(tmp_path: Path,
                                                              printer: Printer) -> None:
    settings = settings_for(tmp_path / "home", printers_file(printer))
    assert trust(settings)[0] == 0
    sink, stop, lines = RecordingSink(), threading.Event(), []
    runner = threading.Thread(target=lambda: lines.append(run_watch(
        settings, sink, stop, out=lines.append, environ={env_name("X1C-1"): CODE}, **FAST)))
    runner.start()
    try:
        sink.wait_kinds("X1C-1", ["online", "idle"])
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive() and lines[-1] == 0
    text = "\n".join(str(x) for x in lines)
    assert "X1C-1: 127.0.0.1" in text and "TLS, pinned" in text
    assert "X1C-2: member-reported" in text and "stopped (2 report(s) applied" in text
