"""One MQTT connection to one Bambu printer (paho-mqtt 2.x), kept up from its own thread.

The printer runs the MQTT broker (port 8883, TLS, user ``bblp``, password = its LAN
access code). A :class:`PrinterConnection` subscribes to ``device/{serial}/report``,
asks for a full report (``pushall`` on ``device/{serial}/request``) when the session comes
up (when it asked less than ``pushall_gap`` seconds ago, default
:data:`PUSHALL_GAP_SECONDS`, it waits until that much has passed, so a flapping connection
cannot flood the printer) and then every ``pushall_seconds`` (≥ 300: P1/A1 printers must
not be asked more often), and hands every
message, connection and error to ``emit`` as an :class:`Event` (the watcher's queue).

Reconnecting: after a failed attempt or a lost connection it waits a capped exponential
delay with jitter (:class:`Backoff`: 1 s, 2 s, 4 s … up to 60 s, each drawn from the upper
half of its step), reset by the first message of a session. Printers accept very few LAN
clients: the deployment opens exactly one connection per printer (``printcore watch``, or
the bot when it runs the watcher) and fans the reports out inside.
"""

from __future__ import annotations

import json
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import attrs
import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion

from adapters.bambu.certs import PinError, check_presented, mismatch_reason
from adapters.printers_file import WatchedPrinter

__all__ = ["PUSHALL", "PUSHALL_GAP_SECONDS", "Backoff", "Event", "PrinterConnection",
           "report_topic", "request_topic"]

_log = structlog.get_logger("printcore.bambu")

#: The full-report request (Bambu LAN protocol), published to ``device/{serial}/request``.
PUSHALL = {"pushing": {"sequence_id": "0", "command": "pushall", "version": 1,
                       "push_target": 1}}
#: Least time between two full-report requests, also across reconnects (seconds): a new
#: session asks at once unless one was asked for this recently, else as soon as this much
#: has passed (P1/A1 printers must not be asked more than every ~5 minutes).
PUSHALL_GAP_SECONDS = 300.0
USERNAME = "bblp"


def report_topic(serial: str) -> str:
    return f"device/{serial}/report"


def request_topic(serial: str) -> str:
    return f"device/{serial}/request"


@attrs.frozen
class Event:
    """What a connection saw: ``kind`` ``connected``, ``disconnected``, ``message``
    (``payload``: the raw bytes) or ``error`` (``detail``: one sentence); ``at`` UTC."""

    printer: str
    kind: Literal["connected", "disconnected", "message", "error"]
    at: datetime
    payload: bytes = b""
    detail: str | None = None


@attrs.define
class Backoff:
    """Capped exponential delays with jitter: attempt n waits a time drawn uniformly from
    ``[d/2, d]`` with ``d = min(cap, base * 2**n)`` seconds."""

    base: float = 1.0
    cap: float = 60.0
    rng: random.Random = attrs.field(factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        step = min(self.cap, self.base * (2.0 ** min(self.attempt, 30)))
        self.attempt += 1
        return step / 2 + self.rng.uniform(0.0, step / 2)

    def reset(self) -> None:
        self.attempt = 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PrinterConnection:
    """Keeps one printer's MQTT session up until :meth:`stop`. ``context`` is the pinned
    TLS context (``adapters.bambu.certs.pinned_context``), or None for a printer whose
    ``tls`` is false in the printers file (a plain test broker)."""

    def __init__(self, printer: WatchedPrinter, access_code: str, emit: Callable[[Event], None],
                 *, context: ssl.SSLContext | None, pushall_seconds: float = 300.0,
                 keepalive: int = 30, backoff: Backoff | None = None,
                 connect_timeout: float = 10.0, pushall_gap: float = PUSHALL_GAP_SECONDS,
                 now: Callable[[], datetime] = _utcnow) -> None:
        if printer.tls and context is None:
            raise ValueError(f"{printer.name}: a TLS printer needs its pinned context")
        self.printer = printer
        self._code = access_code
        self._emit = emit
        self._context = context if printer.tls else None
        self._pushall_seconds = pushall_seconds
        self._pushall_gap = pushall_gap
        self._pushall_wanted = False  # a new session's full report, not sent yet
        self._keepalive = keepalive
        self._connect_timeout = connect_timeout
        self._backoff = backoff or Backoff()
        self._now = now
        self._stop = threading.Event()
        self._last_pushall: float | None = None  # time.monotonic()
        self._session_up = False
        self._heard = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"printcore-bambu-{printer.name}")

    # -- control ---------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the loop --------------------------------------------------------------------

    def _client(self) -> mqtt.Client:
        client_id = f"printcore-{socket.gethostname()}-{os.getpid()}-{self.printer.name}"[:64]
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv311, clean_session=True)
        client.username_pw_set(USERNAME, self._code)
        client.connect_timeout = self._connect_timeout
        if self._context is not None:
            client.tls_set_context(self._context)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        return client

    def _run(self) -> None:
        where = f"{self.printer.host}:{self.printer.port}"
        while not self._stop.is_set():
            client = self._client()
            try:
                client.connect(self.printer.host, self.printer.port, self._keepalive)
            except ssl.SSLCertVerificationError as exc:
                if self.printer.fingerprint:
                    reason = mismatch_reason(self.printer.host, self.printer.port,
                                             self.printer.fingerprint, exc)
                else:
                    reason = f"TLS handshake refused: {exc.verify_message or exc}"
                self._error(reason.replace("NAME", self.printer.name))
            except (OSError, ssl.SSLError) as exc:  # refused, unreachable, timed out, TLS
                self._error(f"cannot connect to {where}: {exc}")
            except Exception as exc:  # paho's own (e.g. a bad host name): never end the loop
                self._error(f"cannot connect to {where}: {exc!r}")
            else:
                self._serve(client)
            if self._stop.is_set():
                break
            self._stop.wait(self._backoff.next_delay())

    def _serve(self, client: mqtt.Client) -> None:
        self._session_up = False
        self._heard = False
        try:
            while not self._stop.is_set():
                rc = client.loop(timeout=0.5)
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    break
                if self._session_up and (
                        self._pushall_due(self._pushall_seconds)
                        or (self._pushall_wanted and self._pushall_due(self._pushall_gap))):
                    self._pushall(client)
            if self._stop.is_set():
                client.disconnect()
                client.loop(timeout=0.2)
        except Exception as exc:  # a bug in a callback must not end the thread
            self._error(f"connection loop failed: {exc!r}")
        finally:
            try:
                client.socket() and client.socket().close()  # type: ignore[union-attr]
            except OSError:
                pass
            if self._session_up:
                self._session_up = False
                self._emit(Event(self.printer.name, "disconnected", self._now()))

    def _pushall_due(self, seconds: float) -> bool:
        return self._last_pushall is None or time.monotonic() - self._last_pushall >= seconds

    def _pushall(self, client: mqtt.Client) -> None:
        self._last_pushall = time.monotonic()
        self._pushall_wanted = False
        client.publish(request_topic(self.printer.serial), json.dumps(PUSHALL), qos=0)

    def _error(self, detail: str) -> None:
        _log.warning("printer connection", printer=self.printer.name, error=detail)
        self._emit(Event(self.printer.name, "error", self._now(), detail=detail))

    # -- paho callbacks (run inside client.loop, on this thread) ----------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            hint = (" (check the access code, and that LAN mode is on)"
                    if "authori" in str(reason_code).lower() or "password" in
                    str(reason_code).lower() else "")
            self._error(f"the printer refused the login: {reason_code}{hint}")
            client.disconnect()
            return
        if self._context is not None and self.printer.fingerprint:
            sock = client.socket()
            try:
                der = sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
                check_presented(der, self.printer.fingerprint)
            except (PinError, AttributeError) as exc:
                self._error(f"refused: {exc}")
                client.disconnect()
                return
        client.subscribe(report_topic(self.printer.serial), qos=0)
        self._session_up = True
        self._emit(Event(self.printer.name, "connected", self._now()))
        self._pushall_wanted = True
        if self._pushall_due(self._pushall_gap):
            self._pushall(client)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reason_codes: Any, properties: Any) -> None:
        if any(getattr(code, "is_failure", False) for code in reason_codes):
            self._error(f"the printer refused the subscription to "
                        f"{report_topic(self.printer.serial)} (is the serial right?)")
            client.disconnect()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if not self._heard:
            self._heard = True
            self._backoff.reset()  # a working session: start the delays again from 1 s
        self._emit(Event(self.printer.name, "message", self._now(), payload=bytes(message.payload)))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                       reason_code: Any, properties: Any) -> None:
        if not self._stop.is_set() and self._session_up:
            _log.info("printer disconnected", printer=self.printer.name,
                      reason=str(reason_code))
