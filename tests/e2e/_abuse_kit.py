"""Helpers for the abuse suite (tests/e2e/test_abuse.py): raw HTTP, multipart bodies built
byte by byte, the server's own environment and memory, the printcore CLI next to a running
server, a server started without PRINTCORE_BASE_URL, and an HTML audit (inline scripts,
``on…=`` attributes, ``javascript:`` URLs, where upload forms put their CSRF token)."""

from __future__ import annotations

import email
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from email import policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx

from _live import PASSWORD, STAFF, LiveServer, free_port

# --------------------------------------------------------------------------- the server


def server_env(server: LiveServer) -> dict[str, str]:
    """The running server's own environment (from /proc), for CLI commands beside it."""
    raw = Path(f"/proc/{server.process.pid}/environ").read_bytes()
    env = dict(
        item.split("=", 1) for item in raw.decode("utf-8", "surrogateescape").split("\0") if "=" in item
    )
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", env.get("PYTHONPATH", ""))
    return env


def cli(server: LiveServer, *args: str, stdin: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``printcore ARGS`` with the server's environment (database, home, secrets)."""
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        env=server_env(server), input=stdin, capture_output=True, text=True,
        timeout=timeout, cwd=str(server.home),
    )


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def rss_mb(server: LiveServer) -> float:
    """The server process's resident memory (VmRSS), MB."""
    return _status_kb(server.process.pid, "VmRSS") / 1024


def peak_mb(server: LiveServer) -> float:
    """The server process's peak resident memory (VmHWM), MB."""
    return _status_kb(server.process.pid, "VmHWM") / 1024


def reset_peak(server: LiveServer) -> None:
    """Reset VmHWM to the current RSS (``echo 5 > /proc/PID/clear_refs``)."""
    Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")


def stored(server: LiveServer) -> list[str]:
    """Every file under storage, the staging folder included."""
    return sorted(
        str(p.relative_to(server.storage)) for p in server.storage.rglob("*") if p.is_file()
    )


def staged(server: LiveServer) -> list[str]:
    staging = server.storage / ".staging"
    return sorted(p.name for p in staging.rglob("*") if p.is_file()) if staging.exists() else []


def job_folders(server: LiveServer) -> list[str]:
    """``Status/Folder_ID`` of every job folder in storage."""
    return sorted(
        f"{p.parent.name}/{p.name}" for p in server.storage.glob("*/*")
        if p.is_dir() and not p.parent.name.startswith(".")
    )


def max_job_id(server: LiveServer) -> int:
    ids = [int(name.rsplit("_", 1)[1]) for name in job_folders(server)
           if name.rsplit("_", 1)[-1].isdigit()]
    return max(ids, default=0)


def emails(server: LiveServer, kind: str = "") -> list[str]:
    """Names of the .eml files the server wrote (optionally only one kind)."""
    if not server.mail.exists():
        return []
    return sorted(p.name for p in server.mail.glob("*.eml") if f"-{kind}-" in p.name or not kind)


def emails_of_jobs_after(server: LiveServer, job_id: int) -> list[str]:
    """.eml files written for a job with an id above ``job_id``."""
    out = []
    for name in emails(server):
        match = re.search(r"-job(\d+)-", name)
        if match and int(match.group(1)) > job_id:
            out.append(name)
    return out


def wait_for(predicate: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def read_email(path: Path) -> tuple[str, str]:
    """(plain text body, html body) of an .eml file."""
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    return (plain.get_content() if plain else "",  # type: ignore[union-attr]
            html.get_content() if html else "")  # type: ignore[union-attr]


# ------------------------------------------------------------------ servers without base URL


@attrs.define
class PlainServer:
    """``printcore serve --port N`` without PRINTCORE_BASE_URL (and without PRINTCORE_PORT)."""

    url: str
    port: int
    home: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def mail(self) -> Path:
        return self.home / "mail"

    @property
    def storage(self) -> Path:
        return self.home / "storage"

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/api/v1", timeout=60)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_plain_server(home: Path, env_extra: dict[str, str] | None = None) -> PlainServer:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PRINTCORE_BASE_URL", "PRINTCORE_PORT", "PRINTCORE_HOST")}
    env.update({
        "PRINTCORE_HOME": str(home),
        "PRINTCORE_STAFF_PASSWORD": PASSWORD,
        "PRINTCORE_LOGIN_FAILURES_PER_MINUTE": "100000",
        "PRINTCORE_SUBMISSIONS_PER_HOUR": "100000",
        "PRINTCORE_SUBMISSION_MAIL_PER_HOUR": "100000",
        **(env_extra or {}),
    })
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "entrypoints.cli", "staff", "add", STAFF], env=env,
                   check=True, capture_output=True, timeout=120, cwd=str(home))
    log = home / "serve-output.log"
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "entrypoints.cli", "serve", "--port", str(port),
         "--log-level", "warning"],
        env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=str(home),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                return PlainServer(url, port, home, process, log)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


# ------------------------------------------------------------------------------ raw HTTP


@attrs.define
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _parse_response(data: bytes) -> RawResponse | None:
    """A whole response in ``data``, or None if more is needed."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        length = int(headers["content-length"])
        if len(rest) < length:
            return None
        return RawResponse(status, headers, rest[:length])
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size_line, sep, tail = rest.partition(b"\r\n")
            if not sep:
                return None
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                return RawResponse(status, headers, body)
            if len(tail) < size + 2:
                return None
            body += tail[:size]
            rest = tail[size + 2:]
    return None  # read until close


def raw_request(base_url: str, method: str, path: str, headers: dict[str, str],
                body: Iterable[bytes] = (), chunked: bool = False,
                timeout: float = 60.0) -> RawResponse:
    """Send a request over a plain socket, reading the answer *while* the body goes out, so a
    server that answers early (413, 403) and stops reading is seen answering, not as a
    broken pipe. Raises AssertionError when the connection closes with no answer."""
    split = urlsplit(base_url)
    sock = socket.create_connection((split.hostname, split.port), timeout=timeout)
    sock.settimeout(10)  # a send that blocks this long: the server stopped reading
    head = f"{method} {path} HTTP/1.1\r\nHost: {split.netloc}\r\n"
    all_headers = {"connection": "close", **{k.lower(): v for k, v in headers.items()}}
    if chunked:
        all_headers["transfer-encoding"] = "chunked"
    for name, value in all_headers.items():
        head += f"{name}: {value}\r\n"
    received = bytearray()
    closed = False

    def pump(wait: float) -> RawResponse | None:
        nonlocal closed
        while not closed:
            readable, _, _ = select.select([sock], [], [], wait)
            if not readable:
                return None
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            if not data:
                closed = True
                break
            received.extend(data)
            parsed = _parse_response(bytes(received))
            if parsed is not None:
                return parsed
            wait = 0
        return _parse_response(bytes(received)) if received else None

    try:
        sock.sendall(head.encode("latin-1") + b"\r\n")
        answer: RawResponse | None = None
        stopped = False
        for piece in body:
            frame = (f"{len(piece):x}\r\n".encode() + piece + b"\r\n") if chunked else piece
            for start in range(0, len(frame), 65536):
                try:
                    sock.sendall(frame[start:start + 65536])
                except (BrokenPipeError, ConnectionResetError, TimeoutError):
                    stopped = True
                    break
                answer = pump(0)
                if answer is not None or closed:
                    stopped = True
                    break
            if stopped:
                break
        else:
            if chunked:
                try:
                    sock.sendall(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
        if answer is None:
            deadline = time.monotonic() + timeout
            while answer is None and not closed and time.monotonic() < deadline:
                answer = pump(0.5)
        if answer is None and received:
            answer = _parse_response(bytes(received) + b"")
            if answer is None:  # read-until-close body
                head_part, _, rest = bytes(received).partition(b"\r\n\r\n")
                lines = head_part.decode("latin-1").split("\r\n")
                hdrs = {ln.partition(":")[0].strip().lower(): ln.partition(":")[2].strip()
                        for ln in lines[1:]}
                answer = RawResponse(int(lines[0].split()[1]), hdrs, rest)
        if answer is None:
            raise AssertionError(f"{method} {path}: the connection was dropped without an answer")
        return answer
    finally:
        sock.close()


# ------------------------------------------------------------------------ multipart bodies


def multipart(parts: list[tuple[bytes, bytes | None, bytes]], boundary: str) -> bytes:
    """A multipart/form-data body from ``(name, filename or None, content)`` in order."""
    out = bytearray()
    for name, filename, content in parts:
        out += f"--{boundary}\r\n".encode()
        disposition = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        out += disposition + b"\r\n\r\n" + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


SUBMISSION = {
    "student_name": "Jane Doe",
    "email": "jane.doe@university.edu",
    "discipline": "Mechanical Engineering",
    "class_number": "ME 101",
    "print_method": "filament",
    "color": "Red",
    "preferred_printer": "",
    "notes": "",
}


def submission_body(model: bytes, overrides: dict[str, bytes] | None = None,
                    filename: bytes = b"Moon.stl", first: list[tuple[bytes, bytes]] = (),
                    boundary: str = "") -> tuple[bytes, str]:
    """A submission's multipart body (fields UTF-8, ``overrides`` as raw bytes) and its
    boundary. ``first``: fields placed before all others (e.g. the csrf_token)."""
    boundary = boundary or "abuse" + uuid.uuid4().hex
    fields = {k.encode(): v.encode() for k, v in SUBMISSION.items()}
    fields.update({k.encode(): v for k, v in (overrides or {}).items()})
    parts: list[tuple[bytes, bytes | None, bytes]] = [(k, None, v) for k, v in first]
    parts += [(k, None, v) for k, v in fields.items()]
    parts.append((b"file", filename, model))
    return multipart(parts, boundary), boundary


# ----------------------------------------------------------------------------- staff web


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page[:2000]
    return match.group(1)


@attrs.define
class UploadForm:
    action: str
    token: str


def upload_form(page: str) -> UploadForm:
    """The first multipart form on a page: where it posts and its CSRF token (a hidden
    ``csrf_token`` field, or - before issue 10 - ``?csrf=`` in the action)."""
    audit = audit_html(page)
    assert audit.upload_forms, "no multipart form on the page"
    form = audit.upload_forms[0]
    token = form.hidden.get("csrf_token", "")
    if not token:
        match = re.search(r"[?&]csrf=([^&]+)", form.action)
        token = match.group(1) if match else ""
    return UploadForm(form.action, token)


@contextmanager
def web_login(url: str, workstation: str = "Abuse desk", password: str = PASSWORD,
              headers: dict[str, str] | None = None) -> Iterator[httpx.Client]:
    """A browser-like client logged in through the staff login form (session cookie)."""
    with httpx.Client(base_url=url, timeout=60, headers=headers or {}) as web:
        r = web.post("/staff/login?next=/staff",
                     data={"csrf_token": csrf_of(web.get("/staff/login").text),
                           "workstation": workstation, "password": password})
        assert r.status_code == 303, (r.status_code, r.text[:2000])
        yield web


# ----------------------------------------------------------------------------- HTML audit


@attrs.define
class FormInfo:
    action: str
    enctype: str
    order: list[tuple[str, str]] = attrs.Factory(list)  # (input type, name) in page order
    hidden: dict[str, str] = attrs.Factory(dict)


@attrs.define
class HtmlAudit:
    inline_scripts: int = 0
    handlers: list[str] = attrs.Factory(list)
    javascript_urls: list[str] = attrs.Factory(list)
    forms: list[FormInfo] = attrs.Factory(list)

    @property
    def upload_forms(self) -> list[FormInfo]:
        return [f for f in self.forms if "multipart" in f.enctype]

    def problems(self) -> list[str]:
        out = []
        if self.inline_scripts:
            out.append(f"{self.inline_scripts} inline <script> without src")
        out += [f"event handler attribute {h}" for h in self.handlers]
        out += [f"javascript: URL {u}" for u in self.javascript_urls]
        return out


class _Auditor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.audit = HtmlAudit()
        self._form: FormInfo | None = None

    def handle_starttag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        attributes = {k.lower(): (v or "") for k, v in attrs_}
        if tag == "script" and not attributes.get("src"):
            self.audit.inline_scripts += 1
        for name, value in attributes.items():
            if name.startswith("on"):
                self.audit.handlers.append(f"<{tag} {name}={value[:60]!r}>")
            squashed = re.sub(r"[\s\x00-\x1f]", "", value).lower()
            if squashed.startswith("javascript:"):
                self.audit.javascript_urls.append(f"<{tag} {name}={value[:60]!r}>")
        if tag == "form":
            self._form = FormInfo(attributes.get("action", ""), attributes.get("enctype", ""))
            self.audit.forms.append(self._form)
        elif tag in ("input", "select", "textarea", "button") and self._form is not None:
            kind = attributes.get("type", tag).lower()
            name = attributes.get("name", "")
            self._form.order.append((kind, name))
            if kind == "hidden":
                self._form.hidden[name] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def audit_html(page: str) -> HtmlAudit:
    auditor = _Auditor()
    auditor.feed(page)
    auditor.close()
    return auditor.audit


def header_problems(headers: Any) -> list[str]:
    """What is missing from a response's security headers (issue 10's CSP)."""
    problems = []
    csp = headers.get("content-security-policy")
    if not csp:
        return ["no Content-Security-Policy"]
    directives: dict[str, str] = {}
    for part in csp.split(";"):
        words = part.strip().split(None, 1)
        if words:
            directives[words[0].lower()] = words[1] if len(words) > 1 else ""
    if "'self'" not in directives.get("default-src", "").split():
        problems.append(f"default-src 'self' missing in {csp!r}")
    if "'none'" not in directives.get("frame-ancestors", "").split():
        problems.append(f"frame-ancestors 'none' missing in {csp!r}")
    script = directives.get("script-src", directives.get("default-src", ""))
    if "'unsafe-inline'" in script:
        problems.append(f"'unsafe-inline' in script-src of {csp!r}")
    if (headers.get("x-content-type-options") or "").lower() != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    return problems


def chunks_of(data: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]
