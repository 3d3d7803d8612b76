"""The printer's certificate, pinned: TLS contexts and fingerprints.

A Bambu printer's MQTT broker presents a certificate of its own (issued per printer, with
the printer's serial as its common name, not its IP address). The watcher trusts exactly
that certificate:

* ``printcore printers trust NAME`` fetches what the printer presents
  (:func:`fetch_certificate`), checks it with a pinned handshake
  (:func:`inspect_pinned`), shows its SHA-256 fingerprint, keeps the PEM in the trust
  folder (``$PRINTCORE_HOME/printer-certs/NAME.pem``, :func:`trust_path`) and writes the
  fingerprint into the printers file.
* Each connection loads that PEM as its only trust anchor (:func:`pinned_context`:
  ``CERT_REQUIRED``, ``VERIFY_X509_PARTIAL_CHAIN`` so the leaf itself is the anchor,
  ``check_hostname=False`` since the name is the serial) and checks the fingerprint of
  the presented certificate again (:func:`check_presented`).

Verification is never switched off for a connection. A certificate that is not the pinned
one fails the handshake; :func:`mismatch_reason` then says which fingerprint was expected
and which was presented.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from pathlib import Path
from typing import Any

import attrs

__all__ = ["CertificateInfo", "PinError", "check_presented", "der_fingerprint",
           "fetch_certificate", "inspect_pinned", "mismatch_reason", "pem_fingerprint",
           "pinned_context", "pretty", "trust_path"]


class PinError(Exception):
    """The presented certificate is not the pinned one, or the pin cannot be used (no
    PEM, a PEM that does not match the printers file's fingerprint). The message says
    what was expected and what was found, and what to do."""


def der_fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, 64 lower-case hex digits."""
    return hashlib.sha256(der).hexdigest()


def pem_fingerprint(pem: str) -> str:
    """SHA-256 of the (first) certificate in PEM text. Raises ValueError when it holds
    none."""
    try:
        return der_fingerprint(ssl.PEM_cert_to_DER_cert(pem.strip() + "\n"))
    except ValueError:
        raise ValueError("not a PEM certificate") from None


def pretty(fingerprint: str) -> str:
    """``AB:CD:…`` (how browsers and openssl show a fingerprint)."""
    upper = fingerprint.upper()
    return ":".join(upper[i:i + 2] for i in range(0, len(upper), 2))


def trust_path(trust_dir: Path, printer: str) -> Path:
    """Where the pinned PEM of ``printer`` is kept."""
    return trust_dir / f"{printer}.pem"


def fetch_certificate(host: str, port: int, timeout: float = 10.0) -> str:
    """The certificate (PEM) that ``host:port`` presents, as is, for a person to pin
    (trust on first use: only ``printers trust`` calls this, and only to show and keep it).
    Raises OSError (unreachable, refused, timed out) or ssl.SSLError (no TLS there)."""
    return ssl.get_server_certificate((host, port), timeout=timeout)


def pinned_context(pem_path: Path, fingerprint: str | None = None) -> ssl.SSLContext:
    """A client context whose only trust anchor is the PEM at ``pem_path``.

    With ``fingerprint`` (64 hex digits, from the printers file) the PEM must match it.
    Raises PinError when the file is missing, is not a certificate, or does not match."""
    try:
        pem = pem_path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise PinError(f"the trusted certificate {pem_path} cannot be read ({exc}); run "
                       "`printcore printers trust NAME`") from None
    try:
        found = pem_fingerprint(pem)
    except ValueError:
        raise PinError(f"{pem_path} is not a PEM certificate; run `printcore printers "
                       "trust NAME` again") from None
    if fingerprint is not None and found != fingerprint:
        raise PinError(f"{pem_path} holds certificate {pretty(found)} but the printers file "
                       f"pins {pretty(fingerprint)}; run `printcore printers trust NAME` "
                       "again")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # the certificate names the serial, not the address
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_verify_locations(cadata=pem)
    return context


def check_presented(der: bytes | None, fingerprint: str) -> None:
    """Raise PinError unless ``der`` (the peer's certificate) has ``fingerprint``."""
    if der is None:
        raise PinError("the printer presented no certificate")
    presented = der_fingerprint(der)
    if presented != fingerprint:
        raise PinError(f"certificate mismatch: expected {pretty(fingerprint)}, presented "
                       f"{pretty(presented)}")


def mismatch_reason(host: str, port: int, expected: str, error: BaseException,
                    timeout: float = 5.0) -> str:
    """Why a pinned handshake with ``host:port`` failed, in one sentence: the expected and
    the presented fingerprints when the printer presents another certificate (fetched
    once more to name it), else the TLS error itself."""
    try:
        presented = pem_fingerprint(fetch_certificate(host, port, timeout))
    except (OSError, ssl.SSLError, ValueError):
        return f"TLS handshake refused: {error}"
    if presented == expected:
        return f"TLS handshake refused although the certificate is the pinned one: {error}"
    return (f"the printer's certificate is not the trusted one: expected {pretty(expected)}, "
            f"presented {pretty(presented)}; if the printer was replaced or reset, run "
            "`printcore printers trust NAME` again")


@attrs.frozen
class CertificateInfo:
    """What a pinned handshake showed: ``fingerprint`` (hex), ``subject_cn`` (Bambu: the
    serial), ``issuer_cn``, ``not_after`` (as OpenSSL prints it, GMT)."""

    fingerprint: str
    subject_cn: str | None
    issuer_cn: str | None
    not_after: str | None


def _cn(name: Any) -> str | None:
    for rdn in name or ():
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def inspect_pinned(host: str, port: int, pem: str, timeout: float = 10.0) -> CertificateInfo:
    """Connect to ``host:port`` trusting only ``pem`` (as the watcher will), and describe
    the certificate. Raises ssl.SSLError when the handshake refuses it (e.g. the printer
    presents another certificate since the fetch) and OSError when unreachable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_verify_locations(cadata=pem)
    with socket.create_connection((host, port), timeout=timeout) as raw, \
            context.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
        decoded = tls.getpeercert()
    assert der is not None
    return CertificateInfo(fingerprint=der_fingerprint(der),
                           subject_cn=_cn(decoded.get("subject") if decoded else None),
                           issuer_cn=_cn(decoded.get("issuer") if decoded else None),
                           not_after=str(decoded.get("notAfter")) if decoded else None)
