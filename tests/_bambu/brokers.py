"""MQTT brokers for the watcher's tests.

* The machine's Mosquitto on 127.0.0.1:1883 (plain, anonymous): :func:`require_shared`.
* Brokers the tests start themselves (:class:`OwnBroker`): ``/usr/sbin/mosquitto -c conf``
  on a free loopback port, plain or TLS with a test CA and a "printer" certificate made
  with ``cryptography`` (:func:`make_printer_certs`: CN = the serial, as Bambu printers'
  own certificates), with a password file from ``mosquitto_passwd -b`` (user ``bblp``).
  They can be stopped and started again on the same port (a printer that drops off).

A missing Mosquitto skips on a developer's machine and fails under ``CI=true``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import attrs
import pytest

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
SHARED = ("127.0.0.1", 1883)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"Mosquitto is required in CI: {reason}")
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_shared() -> tuple[str, int]:
    """The machine's Mosquitto (127.0.0.1:1883), or skip/fail."""
    if not port_open(*SHARED):
        missing("no MQTT broker at 127.0.0.1:1883 (apt-get install mosquitto; start it)")
    return SHARED


def require_binaries() -> None:
    for path in (MOSQUITTO, MOSQUITTO_PASSWD):
        if not (Path(path).exists() or shutil.which(Path(path).name)):
            missing(f"{path} is not installed (apt-get install mosquitto mosquitto-clients)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.frozen
class PrinterCerts:
    ca_pem: Path
    cert_pem: Path
    key_pem: Path
    impostor_pem: Path  # another self-signed certificate naming the same serial


def make_printer_certs(folder: Path, serial: str) -> PrinterCerts:
    """A test CA, a printer certificate it issued (CN = ``serial``, SAN 127.0.0.1), and an
    impostor certificate (self-signed, same CN) to pin wrongly."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    folder.mkdir(parents=True, exist_ok=True)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Printers")])

    def pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("Test BBL CA")).issuer_name(name("Test BBL CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.DNSName(serial.lower()),
                                       x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (x509.CertificateBuilder().subject_name(name(serial)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(san, critical=False)
            .sign(ca_key, hashes.SHA256()))
    other_key = ec.generate_private_key(ec.SECP256R1())
    impostor = (x509.CertificateBuilder().subject_name(name(serial)).issuer_name(name(serial))
                .public_key(other_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=30))
                .sign(other_key, hashes.SHA256()))
    out = PrinterCerts(folder / "ca.pem", folder / "printer.pem", folder / "printer.key",
                       folder / "impostor.pem")
    out.ca_pem.write_bytes(pem(ca))
    out.cert_pem.write_bytes(pem(cert))
    out.key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    out.impostor_pem.write_bytes(pem(impostor))
    return out


class OwnBroker:
    """A Mosquitto this test runs: plain (anonymous) or, with ``certs``, TLS with user
    ``bblp`` and ``password``."""

    def __init__(self, folder: Path, *, certs: PrinterCerts | None = None,
                 password: str | None = None) -> None:
        require_binaries()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.certs, self.password = certs, password
        self.proc: subprocess.Popen[bytes] | None = None
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "user root",
                 "log_dest stderr", "log_type error", "log_type warning"]
        if certs is not None:
            lines += [f"certfile {certs.cert_pem}", f"keyfile {certs.key_pem}"]
        if password is not None:
            passwd = folder / "passwd"
            passwd.write_text("")
            subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwd), "bblp", password],
                           check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines += ["allow_anonymous true"]
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> OwnBroker:
        self.log = (self.folder / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port, 0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("mosquitto did not start: "
                                     + (self.folder / "mosquitto.log").read_text())
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
