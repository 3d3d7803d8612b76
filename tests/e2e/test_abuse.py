"""Abuse over HTTP (issue 10): hostile text, numbers, floods, big bodies, stolen sessions,
headers and scripts, against real server processes (``printcore serve``), on SQLite and,
where the database is involved (text, numbers, sessions), on PostgreSQL too.

Bad inputs tried, by class:

1. Text: lone surrogates (``"\\udfff"`` sent as a JSON escape, ``ED BF BF`` in a form),
   NUL, BEL, ESC sequences (``"\\x1b[31m"``), tabs/newlines in single-line fields, invalid
   UTF-8 bytes (``FF FE``) in multipart fields and file names, a ``charset=utf-16`` /
   ``charset=latin-1`` multipart header, ``%ED%BF%BF`` / ``%00`` in urlencoded forms and
   query strings, the login password and staff name with a surrogate; JSON nested values
   (``reasons[1]``, ``extra.deep``); rows already stored with a lone surrogate (rejection
   reasons, an event's details) written straight into the database.
2. Numbers: path ids 2^63 - 1, 2^63 and 10^20 (API, staff pages, queue tickets);
   ``limit``/``offset``/``page`` negative, zero, just past their range, 2^63 and 10^20;
   JSON integers 10^30 and -2^63 (top level and nested), ``time_hours`` 721, 1e300, NaN,
   Infinity, -Infinity, ``weight_g`` 1e300 and 10^30 (API and staff form).
3. Floods: wrong passwords past PRINTCORE_LOGIN_FAILURES_PER_MINUTE (then the right one,
   another workstation name, the HTML login form), one workstation name from many
   addresses, submissions past PRINTCORE_SUBMISSIONS_PER_HOUR per address and per email
   address, past PRINTCORE_SUBMISSION_MAIL_PER_HOUR for the lab, X-Forwarded-For with and
   without PRINTCORE_TRUSTED_PROXIES.
4. Bodies: 32 MiB JSON to /api/v1/auth/login with Content-Length and chunked, 2 MiB
   urlencoded login form, 1 MiB + 1 byte to /api/v1/confirm; the server's peak RSS.
5. Sessions: a cookie copied before logout, a bearer token after /api/v1/auth/logout,
   cookies and tokens from before ``printcore set-password``, ``printcore sessions
   list|end``.
6. Links: ``printcore serve --port N`` without PRINTCORE_BASE_URL.
7. Headers and scripts: CSP and nosniff on pages, API, 404, 405, 413, 422, 429, static
   files and a 500; inline scripts, ``on…=`` handlers and ``javascript:`` URLs on every
   page; upload forms whose CSRF token is missing, forged, or sent after the file part.
8. Afterwards (last test): every job renders on every view, ``printcore storage check``
   is clean and the server's memory is back near where it started.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import psycopg
import pytest
from _abuse_kit import (
    PlainServer,
    audit_html,
    chunks_of,
    cli,
    csrf_of,
    emails,
    emails_of_jobs_after,
    header_problems,
    job_folders,
    max_job_id,
    multipart,
    peak_mb,
    raw_request,
    read_email,
    reset_peak,
    rss_mb,
    server_env,
    staged,
    start_plain_server,
    stored,
    submission_body,
    upload_form,
    wait_for,
    web_login,
)

from _live import (
    PASSWORD,
    PG_DSN,
    STAFF,
    LiveServer,
    confirm_token,
    login,
    start_server,
    stop_server,
    submit,
    upload_sliced,
)

BIG = 2**63
# 2^31 and 2^31 + 1 overflow PostgreSQL's 32-bit id columns; 2^63 SQLite's integers.
HUGE_IDS = ("2147483648", "2147483649", "9223372036854775808", "99999999999999999999")
BASELINE_RSS: dict[str, float] = {}


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    """conftest's ``live_server`` (SQLite and PostgreSQL); remembers its memory at first use
    for the last test."""
    BASELINE_RSS.setdefault(live_server.kind, rss_mb(live_server))
    return live_server


@pytest.fixture(scope="module")
def model(fixtures_dir: Path) -> bytes:
    return (fixtures_dir / "models" / "Moon.stl").read_bytes()


def _own_server(factory: pytest.TempPathFactory, name: str, env: dict[str, str]) -> Iterator[LiveServer]:
    live = start_server(factory.mktemp(name), env, "sqlite")
    try:
        yield live
    finally:
        stop_server(live)


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Low limits, 127.0.0.1 trusted as a proxy: each test uses its own X-Forwarded-For
    addresses, so one test's lockout does not reach the next."""
    yield from _own_server(tmp_path_factory, "throttled", {
        "PRINTCORE_LOGIN_FAILURES_PER_MINUTE": "3",
        "PRINTCORE_SUBMISSIONS_PER_HOUR": "3",
        "PRINTCORE_SUBMISSION_MAIL_PER_HOUR": "100000",
        "PRINTCORE_TRUSTED_PROXIES": "127.0.0.1",
    })


@pytest.fixture(scope="module")
def untrusting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Low limits and no trusted proxies: X-Forwarded-For must be ignored."""
    yield from _own_server(tmp_path_factory, "untrusting", {
        "PRINTCORE_LOGIN_FAILURES_PER_MINUTE": "3",
        "PRINTCORE_SUBMISSIONS_PER_HOUR": "3",
        "PRINTCORE_SUBMISSION_MAIL_PER_HOUR": "100000",
        "PRINTCORE_TRUSTED_PROXIES": "",
    })


@pytest.fixture(scope="module")
def mail_capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from _own_server(tmp_path_factory, "mailcap", {
        "PRINTCORE_SUBMISSIONS_PER_HOUR": "1000",
        "PRINTCORE_SUBMISSION_MAIL_PER_HOUR": "3",
    })


@pytest.fixture(scope="module")
def spare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A fresh SQLite server (the default limits of tests/_live.py) for bodies, headers
    and pages."""
    yield from _own_server(tmp_path_factory, "spare", {})


# ------------------------------------------------------------------------------ helpers


def _bearer(server: LiveServer, workstation: str = "Abuse desk") -> dict[str, str]:
    with server.api() as api:
        return login(api, workstation)


def _job_count(server: LiveServer, headers: dict[str, str]) -> int:
    with server.api() as api:
        r = api.get("/jobs", headers=headers)
        assert r.status_code == 200, r.text
        return sum(r.json()["counts"].values())


def _job(server: LiveServer, headers: dict[str, str], job_id: int) -> dict[str, Any]:
    with server.api() as api:
        r = api.get(f"/jobs/{job_id}", headers=headers)
        assert r.status_code == 200, r.text
        return dict(r.json())


def _messages(server: LiveServer, headers: dict[str, str], job_id: int) -> int:
    with server.api() as api:
        r = api.get(f"/jobs/{job_id}/messages", headers=headers)
        assert r.status_code == 200, r.text
        return len(r.json()["messages"])


def _sliced_job(server: LiveServer, headers: dict[str, str], fixtures_dir: Path) -> tuple[int, str]:
    with server.api() as api:
        job_id = submit(api, fixtures_dir / "models" / "Moon.stl")
        r = upload_sliced(api, headers, job_id, fixtures_dir / "sliced" / "wormdrive.gcode.3mf")
        assert r.status_code == 201, r.text
        return job_id, r.json()["file"]["stored_name"]


def _status_token(server: LiveServer, model: bytes, **fields: str) -> tuple[int, str]:
    """Submit through the API; (job id, status token)."""
    body, boundary = submission_body(model, {k: v.encode() for k, v in fields.items()})
    with server.api() as api:
        r = api.post("/submissions", content=body,
                     headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), r.json()["status_url"].rsplit("/", 1)[1]


def _invalid_text(r: httpx.Response, field: str) -> str | None:
    """None if ``r`` is the contract's 422 naming ``field``; else what was wrong."""
    if r.status_code != 422:
        return f"status {r.status_code}: {r.text[:300]!r}"
    try:
        error = r.json()["error"]
    except (ValueError, KeyError):
        return f"422 without the JSON error shape: {r.text[:300]!r}"
    if error.get("code") != "invalid_text":
        return f"code {error.get('code')!r}, not invalid_text: {error}"
    if not isinstance(error.get("message"), str) or not error["message"]:
        return f"no message: {error}"
    fields = error.get("fields") or {}
    if not any(name == field or name.startswith(field) for name in fields):
        return f"fields {fields} do not name {field!r}"
    return None


def _post_multipart(client: httpx.Client, path: str, body: bytes, boundary: str,
                    charset: str | None = None, **headers: str) -> httpx.Response:
    ctype = "multipart/form-data; "
    if charset:
        ctype += f"charset={charset}; "
    return client.post(path, content=body,
                       headers={"content-type": ctype + f"boundary={boundary}", **headers})


def _surrogate(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _html_error_page(r: httpx.Response, status: int) -> str | None:
    if r.status_code != status:
        return f"status {r.status_code}: {r.text[:300]!r}"
    if "text/html" not in r.headers.get("content-type", ""):
        return f"not an HTML page: {r.headers.get('content-type')}"
    if 'class="error"' not in r.text and "field-error" not in r.text:
        return "the page does not say what to fix (no error message on it)"
    return None


# ======================================================================= 1. hostile text


def test_bad_text_in_json_bodies_is_422_naming_the_field(
    server: LiveServer, fixtures_dir: Path
) -> None:
    """Surrogate, NUL, BEL, ESC and a newline in a single-line field, in the login body, the
    reject/approve bodies (top level, in ``reasons[i]`` and nested in an unknown key) and
    the confirmation body: 422 invalid_text naming the field; the job, its messages and
    storage unchanged; no session from the login. A tab/newline/CR in ``custom_reason`` is
    accepted (multi-line field)."""
    headers = _bearer(server)
    job_id, sliced = _sliced_job(server, headers, fixtures_dir)
    # json.dumps (ensure_ascii) writes "\udfff", "\u0000"... as JSON escapes.
    approve = {"staff_name": STAFF, "weight_g": 10, "time_hours": 1, "authoritative_file": sliced}
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/auth/login", {"workstation": "Desk", "password": "\udfff"}, "password"),
        ("/auth/login", {"workstation": "\x1b[31mDesk", "password": "x"}, "workstation"),
        ("/auth/login", {"workstation": "Desk\x00", "password": PASSWORD}, "workstation"),
        (f"/jobs/{job_id}/reject", {"staff_name": STAFF, "custom_reason": "\udfff"},
         "custom_reason"),
        (f"/jobs/{job_id}/reject", {"staff_name": STAFF, "reasons": ["\udfff"]}, "reasons[0]"),
        (f"/jobs/{job_id}/reject", {"staff_name": STAFF, "reasons": ["Other", "a\x07b"]},
         "reasons[1]"),
        (f"/jobs/{job_id}/reject", {"staff_name": STAFF, "custom_reason": "a\x00b"},
         "custom_reason"),
        (f"/jobs/{job_id}/reject", {"staff_name": "\udfff", "custom_reason": "x"},
         "staff_name"),
        (f"/jobs/{job_id}/reject", {"staff_name": "Ada\nLovelace", "custom_reason": "x"},
         "staff_name"),
        (f"/jobs/{job_id}/approve", {**approve, "authoritative_file": "\x1b[31m" + sliced},
         "authoritative_file"),
        (f"/jobs/{job_id}/approve", {**approve, "extra": {"deep": ["ok", "\x00"]}}, "extra"),
        ("/confirm", {"token": "\udfff"}, "token"),
    ]
    before_job = _job(server, headers, job_id)
    before_messages = _messages(server, headers, job_id)
    before_files = stored(server)
    failures = []
    with server.api() as api:
        for path, payload, field in cases:
            raw = json.dumps(payload)
            try:
                r = api.post(path, content=raw.encode("ascii"),
                             headers={"content-type": "application/json", **headers})
            except httpx.HTTPError as err:
                failures.append(f"POST {path} {raw}: no HTTP answer ({err!r})")
                continue
            problem = _invalid_text(r, field)
            if problem:
                failures.append(f"POST {path} {raw}: {problem}")
            if path == "/auth/login" and "printcore_session" in r.headers.get("set-cookie", ""):
                failures.append(f"POST {path} {raw}: a session cookie was set")
    if _job(server, headers, job_id) != before_job:
        failures.append(f"the job changed: {_job(server, headers, job_id)}")
    if _messages(server, headers, job_id) != before_messages:
        failures.append("the job has new messages")
    if stored(server) != before_files:
        failures.append(f"storage changed: {sorted(set(stored(server)) ^ set(before_files))}")
    assert not failures, "\n".join(failures)

    # Multi-line fields keep their newlines and tabs.
    with server.api() as api:
        reason = "Walls too thin:\n\tbelow 0.8 mm\r\nplease thicken"
        r = api.post(f"/jobs/{job_id}/reject", headers=headers,
                     json={"staff_name": STAFF, "custom_reason": reason})
        assert r.status_code == 200, r.text
        assert reason in r.json()["rejection_reasons"]


def test_bad_text_in_submissions_is_422_and_stores_nothing(
    server: LiveServer, model: bytes
) -> None:
    """API submissions (multipart) with ``FF FE`` and ``ED BF BF`` (a surrogate) in
    student_name, ESC in color, NUL in notes, a tab in discipline, BEL in class_number,
    invalid UTF-8 in the email, invalid UTF-8 and an ESC sequence in the file name, and
    ``FF FE`` under a ``charset=utf-16`` header: 422 invalid_text naming the field; no job,
    no stored or staged file, no email. Then UTF-8 under ``charset=latin-1`` is still read
    as UTF-8 (not latin-1), and CR/LF/tab in notes are kept."""
    headers = _bearer(server)
    cases: list[tuple[dict[str, bytes], bytes, str | None, str]] = [
        ({"student_name": b"\xff\xfe"}, b"Moon.stl", None, "student_name"),
        ({"student_name": _surrogate("Jane \udfff")}, b"Moon.stl", None, "student_name"),
        ({"color": b"\x1b[31mRed"}, b"Moon.stl", None, "color"),
        ({"notes": b"a\x00b"}, b"Moon.stl", None, "notes"),
        ({"discipline": b"ME\tdesign"}, b"Moon.stl", None, "discipline"),
        ({"class_number": b"\x07"}, b"Moon.stl", None, "class_number"),
        ({"email": b"jane\xff@university.edu"}, b"Moon.stl", None, "email"),
        ({}, b"mod\xff\xfeel.stl", None, "file"),
        ({}, b"\x1b[31mmodel.stl", None, "file"),
        ({"student_name": b"\xff\xfe"}, b"Moon.stl", "utf-16", "student_name"),
    ]
    before_count, before_files, before_max = (
        _job_count(server, headers), stored(server), max_job_id(server))
    failures = []
    with server.api() as api:
        for overrides, filename, charset, field in cases:
            body, boundary = submission_body(model, overrides, filename)
            try:
                r = _post_multipart(api, "/submissions", body, boundary, charset)
            except httpx.HTTPError as err:
                failures.append(f"{overrides} {filename!r}: no HTTP answer ({err!r})")
                continue
            problem = _invalid_text(r, field)
            if problem:
                failures.append(f"{overrides} {filename!r} charset={charset}: {problem}")
    if _job_count(server, headers) != before_count:
        failures.append(f"{_job_count(server, headers) - before_count} job(s) were created")
    if stored(server) != before_files:
        failures.append(f"storage changed: {sorted(set(stored(server)) ^ set(before_files))}")
    if emails_of_jobs_after(server, before_max):
        failures.append(f"emails: {emails_of_jobs_after(server, before_max)}")
    assert not failures, "\n".join(failures)

    with server.api() as api:
        body, boundary = submission_body(model, {"student_name": "Zoë Ångström".encode()})
        r = _post_multipart(api, "/submissions", body, boundary, "latin-1")
        assert r.status_code == 201, r.text
        assert _job(server, headers, r.json()["id"])["student_name"] == "Zoë Ångström"
        notes = "line one\r\nline two\ttabbed"
        body, boundary = submission_body(model, {"notes": notes.encode()})
        r = _post_multipart(api, "/submissions", body, boundary)
        assert r.status_code == 201, r.text
        assert _job(server, headers, r.json()["id"])["notes"] == notes


def test_bad_text_in_html_forms_is_a_422_page(
    server: LiveServer, model: bytes, fixtures_dir: Path
) -> None:
    """The student form with a surrogate in student_name, NUL in notes and ``FF FE`` under
    ``charset=utf-16``; the staff login form with ``%ED%BF%BF`` as password and as
    workstation; the staff reject form with ``%ED%BF%BF`` as staff_name and ``%00`` in
    custom_reason; the sliced-file form with ``FF`` in staff_name: a 422 page saying what
    to fix, nothing stored, no session from the login."""
    headers = _bearer(server)
    job_id, _ = _sliced_job(server, headers, fixtures_dir)
    before_job, before_count, before_files, before_max = (
        _job(server, headers, job_id), _job_count(server, headers), stored(server),
        max_job_id(server))
    failures = []
    with httpx.Client(base_url=server.url, timeout=60) as web:
        for overrides, charset in (
            ({"student_name": _surrogate("\udfff")}, None),
            ({"notes": b"please\x00"}, None),
            ({"student_name": b"\xff\xfe"}, "utf-16"),
        ):
            form = upload_form(web.get("/").text)
            body, boundary = submission_body(model, overrides,
                                             first=[(b"csrf_token", form.token.encode())])
            r = _post_multipart(web, form.action, body, boundary, charset)
            problem = _html_error_page(r, 422)
            if problem:
                failures.append(f"student form {overrides} charset={charset}: {problem}")

        for raw in ("workstation=Desk&password=%ED%BF%BF",
                    "workstation=%ED%BF%BF&password=" + PASSWORD.replace(" ", "+")):
            csrf = csrf_of(web.get("/staff/login").text)
            r = web.post("/staff/login", content=f"csrf_token={csrf}&{raw}".encode(),
                         headers={"content-type": "application/x-www-form-urlencoded"})
            problem = _html_error_page(r, 422)
            if problem:
                failures.append(f"login form {raw}: {problem}")
            if web.get("/staff").status_code != 303:
                failures.append(f"login form {raw}: it logged in")
                web.post("/staff/logout", data={"csrf_token": csrf})

    with web_login(server.url) as staff:
        csrf = csrf_of(staff.get(f"/staff/jobs/{job_id}").text)
        for raw in ("staff_name=%ED%BF%BF&reasons=Other&custom_reason=x",
                    f"staff_name={STAFF.replace(' ', '+')}&custom_reason=a%00b"):
            r = staff.post(f"/staff/jobs/{job_id}/reject",
                           content=f"csrf_token={csrf}&{raw}".encode(),
                           headers={"content-type": "application/x-www-form-urlencoded"})
            problem = _html_error_page(r, 422)
            if problem:
                failures.append(f"reject form {raw}: {problem}")
        page = staff.get(f"/staff/jobs/{job_id}").text
        form = upload_form(page)
        sliced = (fixtures_dir / "sliced" / "wormdrive.gcode.3mf").read_bytes()
        boundary = "abuse" + uuid.uuid4().hex
        body = multipart([(b"csrf_token", None, form.token.encode()),
                          (b"staff_name", None, b"Ada\xff"),
                          (b"file", b"wormdrive.gcode.3mf", sliced)], boundary)
        r = _post_multipart(staff, form.action, body, boundary)
        problem = _html_error_page(r, 422)
        if problem:
            failures.append(f"sliced-file form staff_name FF: {problem}")
    if _job(server, headers, job_id) != before_job:
        failures.append(f"the job changed: {_job(server, headers, job_id)}")
    if _job_count(server, headers) != before_count:
        failures.append(f"{_job_count(server, headers) - before_count} job(s) were created")
    if stored(server) != before_files:
        failures.append(f"storage changed: {sorted(set(stored(server)) ^ set(before_files))}")
    if emails_of_jobs_after(server, before_max):
        failures.append(f"emails: {emails_of_jobs_after(server, before_max)}")
    assert not failures, "\n".join(failures)


def test_bad_text_in_query_parameters_is_422(server: LiveServer) -> None:
    """``status=%ED%BF%BF``, ``status=%FF`` and ``status=%00`` on /api/v1/jobs (422
    invalid_text naming ``status``) and on /staff; ``next=%ED%BF%BF`` on /staff/login."""
    headers = _bearer(server)
    failures = []
    with server.api() as api:
        for raw in ("%ED%BF%BF", "%FF", "%00", "a%1B%5B31m"):
            r = api.get(f"/jobs?status={raw}", headers=headers)
            problem = _invalid_text(r, "status")
            if problem:
                failures.append(f"/api/v1/jobs?status={raw}: {problem}")
    with web_login(server.url) as staff:
        for path in ("/staff?status=%ED%BF%BF", "/staff?status=%00",
                     "/staff/login?next=%ED%BF%BF"):
            problem = _html_error_page(staff.get(path), 422)
            if problem:
                failures.append(f"{path}: {problem}")
    assert not failures, "\n".join(failures)


def _write_bad_rows(server: LiveServer, job_id: int) -> None:
    """Store a lone surrogate (as JSON text) in the job's rejection reasons and in its
    reject event's details, as an older printcore might have."""
    reasons = '["\\udfff", "Walls too thin \\udfff"]'
    details = '{"reasons": ["\\udfff"]}'
    if server.kind == "sqlite":
        with sqlite3.connect(server.home / "printcore.db", timeout=30) as db:
            db.execute("UPDATE jobs SET rejection_reasons = ? WHERE id = ?", (reasons, job_id))
            n = db.execute("UPDATE events SET details = ? WHERE subject = 'job' AND "
                           "subject_id = ? AND kind = 'reject'", (details, job_id)).rowcount
        assert n == 1
        return
    url = server_env(server)["DATABASE_URL"]
    schema = unquote(url).split("search_path=", 1)[1].split("&", 1)[0]
    with psycopg.connect(PG_DSN, autocommit=True) as db:
        db.execute(f'SET search_path TO "{schema}"')
        db.execute("UPDATE jobs SET rejection_reasons = %s::json WHERE id = %s",
                   (reasons, job_id))
        cur = db.execute("UPDATE events SET details = %s::json WHERE subject = 'job' AND "
                         "subject_id = %s AND kind = 'reject'", (details, job_id))
        assert cur.rowcount == 1


def test_text_already_stored_with_a_surrogate_still_renders(
    server: LiveServer, model: bytes
) -> None:
    """Rows of an upgraded lab: a lone surrogate in ``jobs.rejection_reasons`` and in the
    reject event's ``details``, written straight into the database. Every view of the job
    answers 200 and shows U+FFFD."""
    headers = _bearer(server)
    job_id, token = _status_token(server, model)
    with server.api() as api:
        r = api.post(f"/jobs/{job_id}/reject", headers=headers,
                     json={"staff_name": STAFF, "reasons": ["Other"], "custom_reason": "x"})
        assert r.status_code == 200, r.text
    _write_bad_rows(server, job_id)
    failures = []
    with server.api() as api:
        r = api.get(f"/jobs/{job_id}", headers=headers)
        if r.status_code != 200:
            failures.append(f"/api/v1/jobs/{job_id}: {r.status_code} {r.text[:200]!r}")
        else:
            body = r.json()
            if "\ufffd" not in body["rejection_reasons"]:
                failures.append(f"/api/v1/jobs/{job_id}: reasons {body['rejection_reasons']!r}")
            if not any("\ufffd" in json.dumps(e["details"], ensure_ascii=False)
                       for e in body["events"]):
                failures.append(f"/api/v1/jobs/{job_id}: no U+FFFD in the events")
        for path in ("/jobs?status=rejected", "/jobs", f"/jobs/{job_id}/messages"):
            r = api.get(path, headers=headers)
            if r.status_code != 200:
                failures.append(f"/api/v1{path}: {r.status_code} {r.text[:200]!r}")
    with web_login(server.url) as staff:
        for path, shows in ((f"/staff/jobs/{job_id}", True), ("/staff?status=rejected", False),
                            (f"/status/{token}", True)):
            r = staff.get(path)
            if r.status_code != 200:
                failures.append(f"{path}: {r.status_code} {r.text[:200]!r}")
            elif shows and "\ufffd" not in html.unescape(r.text):
                failures.append(f"{path}: no U+FFFD on the page")
    assert not failures, "\n".join(failures)


# ============================================================================= 2. numbers


def test_ids_beyond_64_bits_are_404(server: LiveServer, fixtures_dir: Path) -> None:
    """Path ids 2^31, 2^31 + 1, 2^63 - 1, 2^63 and 10^20 on the API (job, messages, approve, delete, retry,
    queue ticket) and the staff pages (job page, download, action form): 404 each."""
    headers = _bearer(server)
    failures = []
    body = {"staff_name": STAFF}
    with server.api() as api:
        for big in ("9223372036854775807", *HUGE_IDS):
            for method, path, payload in (
                ("GET", f"/jobs/{big}", None),
                ("GET", f"/jobs/{big}/messages", None),
                ("POST", f"/jobs/{big}/approve",
                 {**body, "weight_g": 10, "time_hours": 1, "authoritative_file": "x"}),
                ("POST", f"/jobs/{big}/reject", {**body, "custom_reason": "x"}),
                ("DELETE", f"/jobs/{big}", body),
                ("POST", f"/messages/{big}/retry", body),
                ("DELETE", f"/queue/tickets/{big}", body),
            ):
                r = api.request(method, path, headers=headers, json=payload)
                if r.status_code != 404:
                    failures.append(f"{method} /api/v1{path}: {r.status_code} {r.text[:200]!r}")
    with web_login(server.url) as staff:
        csrf = csrf_of(staff.get("/staff").text)
        for big in ("9223372036854775807", *HUGE_IDS):
            for method, path in (("GET", f"/staff/jobs/{big}"),
                                 ("GET", f"/staff/jobs/{big}/files/x.stl"),
                                 ("POST", f"/staff/jobs/{big}/reject")):
                data = {"csrf_token": csrf, "staff_name": STAFF} if method == "POST" else None
                r = staff.request(method, path, data=data)
                if r.status_code != 404:
                    failures.append(f"{method} {path}: {r.status_code} {r.text[:200]!r}")
    assert not failures, "\n".join(failures)


def test_limit_offset_and_page_out_of_range_are_422(server: LiveServer) -> None:
    """``limit`` -1, 0, 1001, 2^63, 10^20; ``offset`` -1, 1_000_000_001, 2^63; ``page`` -1,
    0, 1_000_001, 2^63, 10^20, ``abc``: 422. The edges (limit 1 and 1000, offset
    1_000_000_000, page 1_000_000) answer 200."""
    headers = _bearer(server)
    failures = []
    with server.api() as api:
        for query in ("limit=-1", "limit=0", "limit=1001", f"limit={BIG}",
                      "limit=100000000000000000000", "offset=-1", "offset=1000000001",
                      f"offset={BIG}"):
            r = api.get(f"/jobs?{query}", headers=headers)
            if r.status_code != 422:
                failures.append(f"/api/v1/jobs?{query}: {r.status_code} {r.text[:200]!r}")
            elif query.split("=")[0] not in r.json()["error"].get("fields", {}):
                failures.append(f"/api/v1/jobs?{query}: the error does not name the parameter")
        for query in ("limit=1", "limit=1000&offset=1000000000"):
            r = api.get(f"/jobs?{query}", headers=headers)
            if r.status_code != 200:
                failures.append(f"/api/v1/jobs?{query}: {r.status_code} {r.text[:200]!r}")
    with web_login(server.url) as staff:
        for page in ("-1", "0", "1000001", str(BIG), "100000000000000000000", "abc"):
            r = staff.get(f"/staff?page={page}")
            if r.status_code != 422:
                failures.append(f"/staff?page={page}: {r.status_code}")
        r = staff.get("/staff?page=1000000")
        if r.status_code != 200:
            failures.append(f"/staff?page=1000000: {r.status_code}")
    assert not failures, "\n".join(failures)


def test_out_of_range_numbers_in_bodies_are_422_naming_the_field(
    server: LiveServer, fixtures_dir: Path
) -> None:
    """Approve (API) with version 10^30 and -2^63, time_hours 721, 1e300, NaN, Infinity and
    -Infinity, weight_g 1e300 and 10^30, and 10^30 nested in an unknown key; the staff
    approve form with time_hours 721 and 1e300: 422 naming the field, a real HTTP answer
    each time, the job unchanged. time_hours 720 is still accepted."""
    headers = _bearer(server)
    job_id, sliced = _sliced_job(server, headers, fixtures_dir)
    base = {"staff_name": STAFF, "authoritative_file": sliced, "weight_g": 10, "time_hours": 1}
    nan, inf = float("nan"), float("inf")
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({**base, "version": 10**30}, "version"),
        ({**base, "version": -(2**63)}, "version"),
        ({**base, "time_hours": 721}, "time_hours"),
        ({**base, "time_hours": 1e300}, "time_hours"),
        ({**base, "time_hours": nan}, "time_hours"),  # json.dumps writes NaN, Infinity
        ({**base, "time_hours": inf}, "time_hours"),
        ({**base, "time_hours": -inf}, "time_hours"),
        ({**base, "weight_g": 1e300}, "weight_g"),
        ({**base, "weight_g": 10**30}, "weight_g"),
        ({**base, "extra": [1, {"n": 10**30}]}, None),
    ]
    before = _job(server, headers, job_id)
    failures = []
    with server.api() as api:
        for payload, field in cases:
            raw = json.dumps(payload)
            try:
                r = api.post(f"/jobs/{job_id}/approve", content=raw.encode(),
                             headers={"content-type": "application/json", **headers})
            except httpx.HTTPError as err:
                failures.append(f"{raw}: no HTTP answer ({err!r})")
                continue
            if r.status_code != 422:
                failures.append(f"{raw}: {r.status_code} {r.text[:200]!r}")
                continue
            error = r.json()["error"]
            if field and field not in error.get("fields", {}) and field not in error["message"]:
                failures.append(f"{raw}: the error does not name {field}: {error}")
    with web_login(server.url) as staff:
        csrf = csrf_of(staff.get(f"/staff/jobs/{job_id}").text)
        for hours in ("721", "1e300"):
            r = staff.post(f"/staff/jobs/{job_id}/approve",
                           data={"csrf_token": csrf, "staff_name": STAFF, "weight_g": "10",
                                 "time_hours": hours, "authoritative_file": sliced})
            if r.status_code != 422 or "time_hours" not in r.text:
                failures.append(f"staff form time_hours={hours}: {r.status_code}")
    assert _job(server, headers, job_id) == before
    assert not failures, "\n".join(failures)
    with server.api() as api:
        r = api.post(f"/jobs/{job_id}/approve", headers=headers,
                     json={"staff_name": STAFF, "weight_g": 10, "time_hours": 720,
                           "authoritative_file": sliced})
        assert r.status_code == 200, r.text
        assert r.json()["time_hours"] == 720


# ========================================================================== 3. rate limits


def _xff(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def _rate_limited(r: httpx.Response | Any, api: bool = True) -> str | None:
    """None if ``r`` is the contract's 429."""
    if r.status_code != 429:
        return f"status {r.status_code}: {r.text[:200]!r}"
    retry = r.headers.get("retry-after", "")
    if not retry.isdigit() or int(retry) < 1:
        return f"Retry-After {retry!r} is not a positive whole number of seconds"
    if header_problems(r.headers):
        return f"headers: {header_problems(r.headers)}"
    if api:
        error = r.json().get("error", {})
        if error.get("code") != "rate_limited" or not isinstance(error.get("message"), str):
            return f"error {error}"
        if not isinstance(error.get("retry_after"), int) or abs(error["retry_after"] - int(retry)) > 1:
            return f"retry_after {error.get('retry_after')!r} vs Retry-After {retry}"
    elif "text/html" not in r.headers.get("content-type", ""):
        return f"not an HTML page: {r.headers.get('content-type')}"
    return None


def _wrong_logins(server: LiveServer, n: int, workstation: str, address: str) -> list[int]:
    with server.api() as api:
        return [api.post("/auth/login", headers=_xff(address),
                         json={"workstation": workstation, "password": f"guess {i}"}).status_code
                for i in range(n)]


def test_login_brute_force_is_locked_out_even_for_the_right_password(
    throttled: LiveServer
) -> None:
    """Three wrong passwords from one address (limit 3/min), then a fourth, the right
    password, and the right password under another workstation name from the same
    address: 429 with Retry-After, no session."""
    address = "198.51.100.10"
    assert _wrong_logins(throttled, 3, "Desk A", address) == [401, 401, 401]
    with throttled.api() as api:
        for workstation, password in (("Desk A", "guess 4"), ("Desk A", PASSWORD),
                                      ("Desk B", PASSWORD)):
            r = api.post("/auth/login", headers=_xff(address),
                         json={"workstation": workstation, "password": password})
            problem = _rate_limited(r)
            assert problem is None, (workstation, password, problem)
            assert "token" not in r.text and "printcore_session" not in r.headers.get(
                "set-cookie", "")
        # Another address and workstation are not affected.
        r = api.post("/auth/login", headers=_xff("198.51.100.11"),
                     json={"workstation": "Desk C", "password": PASSWORD})
        assert r.status_code == 200, r.text


def test_lockout_counts_per_workstation_name_across_addresses(throttled: LiveServer) -> None:
    """One wrong password for workstation "Desk W" from each of three addresses; then the
    right password for "Desk W" from a fourth address is 429, while "Desk V" from that
    address logs in."""
    for i in range(3):
        assert _wrong_logins(throttled, 1, "Desk W", f"203.0.113.{i + 1}") == [401]
    with throttled.api() as api:
        r = api.post("/auth/login", headers=_xff("203.0.113.9"),
                     json={"workstation": "Desk W", "password": PASSWORD})
        assert _rate_limited(r) is None, _rate_limited(r)
        r = api.post("/auth/login", headers=_xff("203.0.113.9"),
                     json={"workstation": "Desk V", "password": PASSWORD})
        assert r.status_code == 200, r.text


def test_login_form_brute_force_gets_a_429_page(throttled: LiveServer) -> None:
    """The staff login form: three wrong passwords, then the right one: a 429 page with
    Retry-After, and /staff still asks to log in."""
    with httpx.Client(base_url=throttled.url, timeout=30, headers=_xff("192.0.2.50")) as web:
        for i in range(3):
            csrf = csrf_of(web.get("/staff/login").text)
            r = web.post("/staff/login", data={"csrf_token": csrf, "workstation": "Desk F",
                                               "password": f"wrong {i}"})
            assert r.status_code == 401, r.status_code
        csrf = csrf_of(web.get("/staff/login").text)
        r = web.post("/staff/login", data={"csrf_token": csrf, "workstation": "Desk F",
                                           "password": PASSWORD})
        assert _rate_limited(r, api=False) is None, _rate_limited(r, api=False)
        assert web.get("/staff").status_code == 303


def _submit_from(server: LiveServer, model: bytes, address: str, email: str,
                 client: httpx.Client) -> httpx.Response:
    body, boundary = submission_body(model, {"email": email.encode()})
    return _post_multipart(client, "/api/v1/submissions", body, boundary, **_xff(address))


def _settled_submitted_emails(server: LiveServer, expected: int) -> list[str]:
    wait_for(lambda: len(emails(server, "submitted")) >= expected,
             f"{expected} submission emails in {server.mail}")
    time.sleep(0.5)  # a late extra email would show up here
    return emails(server, "submitted")


def test_submission_flood_is_429_with_no_job_and_no_email(
    throttled: LiveServer, model: bytes
) -> None:
    """Five API submissions and one form submission from one address (limit 3/hour,
    different email addresses): the 4th and later are 429 (JSON on the API, an HTML page
    on the form) with Retry-After; three jobs, three emails. Another forwarded address
    (trusted proxy) still submits."""
    before_jobs, before_mail = len(job_folders(throttled)), len(emails(throttled, "submitted"))
    address = "198.51.100.77"
    with httpx.Client(base_url=throttled.url, timeout=60) as client:
        codes = []
        for i in range(5):
            r = _submit_from(throttled, model, address, f"flood{i}@university.edu", client)
            codes.append(r.status_code)
            if i >= 3:
                assert _rate_limited(r) is None, _rate_limited(r)
        assert codes == [201, 201, 201, 429, 429], codes
        form = upload_form(client.get("/", headers=_xff(address)).text)
        body, boundary = submission_body(model, {"email": b"flood9@university.edu"},
                                         first=[(b"csrf_token", form.token.encode())])
        r = _post_multipart(client, form.action, body, boundary, **_xff(address))
        assert _rate_limited(r, api=False) is None, _rate_limited(r, api=False)
    assert len(job_folders(throttled)) == before_jobs + 3
    assert len(_settled_submitted_emails(throttled, before_mail + 3)) == before_mail + 3
    assert staged(throttled) == []
    with httpx.Client(base_url=throttled.url, timeout=60) as client:
        r = _submit_from(throttled, model, "198.51.100.78", "other@university.edu", client)
        assert r.status_code == 201, r.text


def test_submissions_are_limited_per_email_address(throttled: LiveServer, model: bytes) -> None:
    """One email address from four forwarded addresses (limit 3/hour): the 4th is 429."""
    before = len(job_folders(throttled))
    with httpx.Client(base_url=throttled.url, timeout=60) as client:
        codes = [_submit_from(throttled, model, f"192.0.2.{i + 10}", "same@university.edu",
                              client).status_code for i in range(4)]
    assert codes == [201, 201, 201, 429], codes
    assert len(job_folders(throttled)) == before + 3


def test_forwarded_for_is_ignored_without_trusted_proxies(
    untrusting: LiveServer, model: bytes
) -> None:
    """No PRINTCORE_TRUSTED_PROXIES: four submissions and four wrong logins, each with a
    different X-Forwarded-For, all count for 127.0.0.1: the 4th is 429."""
    before_jobs = len(job_folders(untrusting))
    with httpx.Client(base_url=untrusting.url, timeout=60) as client:
        codes = [_submit_from(untrusting, model, f"10.9.0.{i}", f"s{i}@university.edu",
                              client).status_code for i in range(4)]
    assert codes == [201, 201, 201, 429], codes
    assert len(job_folders(untrusting)) == before_jobs + 3
    with untrusting.api() as api:
        codes = [api.post("/auth/login", headers=_xff(f"10.8.0.{i}"),
                          json={"workstation": f"Desk {i}", "password": "nope"}).status_code
                 for i in range(4)]
    assert codes == [401, 401, 401, 429], codes


def test_lab_wide_submission_mail_cap(mail_capped: LiveServer, model: bytes) -> None:
    """PRINTCORE_SUBMISSION_MAIL_PER_HOUR=3: the 4th submission (another email address) is
    429, no 4th job, no 4th "submission received" email."""
    with httpx.Client(base_url=mail_capped.url, timeout=60) as client:
        codes = []
        for i in range(4):
            r = _submit_from(mail_capped, model, "127.0.0.1", f"cap{i}@university.edu", client)
            codes.append(r.status_code)
    assert codes == [201, 201, 201, 429], codes
    assert _rate_limited(r) is None, _rate_limited(r)
    assert len(job_folders(mail_capped)) == 3
    assert len(_settled_submitted_emails(mail_capped, 3)) == 3


# ======================================================================= 4. big bodies


def test_big_bodies_are_413_without_the_memory_to_hold_them(spare: LiveServer) -> None:
    """32 MiB of JSON to /api/v1/auth/login with Content-Length and chunked, a 2 MiB
    urlencoded staff login form, 1 MiB + 1 byte to /api/v1/confirm: 413 body_too_large
    (a real answer, never a dropped connection); the server's peak RSS grows < 40 MB. A
    900 kB body is still read (401)."""
    big = b'{"workstation": "' + b"x" * (32 << 20) + b'", "password": "p"}'
    json_headers = {"content-type": "application/json"}
    reset_peak(spare)
    before = rss_mb(spare)
    answers = [
        raw_request(spare.url, "POST", "/api/v1/auth/login",
                    {**json_headers, "content-length": str(len(big))}, chunks_of(big)),
        raw_request(spare.url, "POST", "/api/v1/auth/login", json_headers, chunks_of(big),
                    chunked=True),
        raw_request(spare.url, "POST", "/api/v1/confirm",
                    {**json_headers, "content-length": str((1 << 20) + 1)},
                    [b'{"token": "' + b"t" * ((1 << 20) + 1 - 14) + b'"}']),
    ]
    for answer in answers:
        assert answer.status == 413, (answer.status, answer.body[:300])
        assert answer.json()["error"]["code"] == "body_too_large", answer.body[:300]
        assert not header_problems(answer.headers), header_problems(answer.headers)
    form = b"password=p&workstation=" + b"w" * (2 << 20)
    answer = raw_request(spare.url, "POST", "/staff/login",
                         {"content-type": "application/x-www-form-urlencoded",
                          "content-length": str(len(form))}, chunks_of(form))
    assert answer.status == 413, (answer.status, answer.body[:300])
    grown = peak_mb(spare) - before
    assert grown < 40, f"peak RSS grew by {grown:.0f} MB for bodies that were refused"
    with spare.api() as api:
        r = api.post("/auth/login", json={"workstation": "w", "password": "p" * 900_000})
        assert r.status_code == 401, r.text[:300]


# ========================================================================== 5. sessions


def _cookie_client(server: LiveServer, cookies: httpx.Cookies) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, cookies=cookies)


def _cookie_works(server: LiveServer, cookies: httpx.Cookies) -> tuple[int, int]:
    """(GET /staff, GET /api/v1/jobs) with a saved copy of a session cookie."""
    with _cookie_client(server, cookies) as web:
        return web.get("/staff").status_code, web.get("/api/v1/jobs").status_code


def test_logout_ends_the_session_on_the_server(server: LiveServer) -> None:
    """A copy of the session cookie saved before POST /staff/logout: afterwards /staff
    redirects to the login and the API answers 401. A bearer token from another login
    still works; POST /api/v1/auth/logout ends that token (401 afterwards)."""
    other = _bearer(server, "Other desk")
    with web_login(server.url, "Logout desk") as web:
        saved = httpx.Cookies(web.cookies)
        assert _cookie_works(server, saved) == (200, 200)
        r = web.post("/staff/logout", data={"csrf_token": csrf_of(web.get("/staff").text)})
        assert r.status_code == 303
    with _cookie_client(server, saved) as thief:
        r = thief.get("/staff")
        assert r.status_code == 303 and r.headers["location"].startswith("/staff/login"), (
            r.status_code, r.headers.get("location"))
        assert thief.get("/api/v1/jobs").status_code == 401
    with server.api() as api:
        assert api.get("/jobs", headers=other).status_code == 200
        r = api.post("/auth/logout", headers=other)
        assert r.status_code in (200, 204), (r.status_code, r.text)
    with server.api() as api:  # a fresh client: no cookie, only the old bearer token
        assert api.get("/jobs", headers=other).status_code == 401


def test_set_password_ends_every_session_and_token(server: LiveServer) -> None:
    """Cookies and bearer tokens from before ``printcore set-password --stdin``: 401 for the
    token, a redirect for the cookie; the new password logs in, the old one does not."""
    token = _bearer(server, "Before desk")
    with web_login(server.url, "Before web") as web:
        saved = httpx.Cookies(web.cookies)
    new = "a brand new staff password"
    try:
        result = cli(server, "set-password", "--stdin", stdin=new + "\n")
        assert result.returncode == 0, result.stderr
        with server.api() as api:
            assert api.get("/jobs", headers=token).status_code == 401
        status, api_status = _cookie_works(server, saved)
        assert (status, api_status) == (303, 401)
        with server.api() as api:
            r = api.post("/auth/login", json={"workstation": "After", "password": new})
            assert r.status_code == 200, r.text
            r = api.post("/auth/login", json={"workstation": "After", "password": PASSWORD})
            assert r.status_code == 401, r.text
    finally:
        result = cli(server, "set-password", "--stdin", stdin=PASSWORD + "\n")
        assert result.returncode == 0, result.stderr


def test_sessions_list_and_end_one(server: LiveServer) -> None:
    """``printcore sessions list`` shows each signed-in workstation on a line with an id;
    ``printcore sessions end ID`` ends that one only."""
    name_a, name_b = f"List desk {uuid.uuid4().hex[:6]}", f"Keep desk {uuid.uuid4().hex[:6]}"
    token_a, token_b = _bearer(server, name_a), _bearer(server, name_b)
    listing = cli(server, "sessions", "list")
    assert listing.returncode == 0, listing.stderr
    lines = [line for line in listing.stdout.splitlines() if name_a in line]
    assert len(lines) == 1, listing.stdout
    assert any(name_b in line for line in listing.stdout.splitlines()), listing.stdout
    # Every id shown must be usable as typed: `printcore sessions end ID` (an id that starts
    # with "-" would be taken for an option).
    ids = [line.split()[0] for line in listing.stdout.splitlines()
           if line.strip() and not line.rstrip().endswith("signed-in workstation(s)")]
    assert not [i for i in ids if i.startswith("-")], listing.stdout
    session_id = lines[0].split()[0]
    ended = cli(server, "sessions", "end", session_id)
    assert ended.returncode == 0, (session_id, ended.stdout, ended.stderr)
    with server.api() as api:
        assert api.get("/jobs", headers=token_a).status_code == 401
        assert api.get("/jobs", headers=token_b).status_code == 200
    listing = cli(server, "sessions", "list")
    assert name_a not in listing.stdout and name_b in listing.stdout, listing.stdout


# ============================================================================= 6. links


def test_emailed_links_follow_the_port_served(tmp_path: Path, fixtures_dir: Path) -> None:
    """``printcore serve --port N`` with neither PRINTCORE_BASE_URL nor PRINTCORE_PORT: the
    printed address, the status link of the "submission received" email and the
    confirmation link of the approval email are on http://127.0.0.1:N."""
    plain: PlainServer = start_plain_server(tmp_path / "plain")
    try:
        expected = f"http://127.0.0.1:{plain.port}"
        assert expected in plain.output(), plain.output()
        with plain.api() as api:
            job_id = submit(api, fixtures_dir / "models" / "Moon.stl")
            headers = login(api)
            r = upload_sliced(api, headers, job_id, fixtures_dir / "sliced" / "wormdrive.gcode.3mf")
            assert r.status_code == 201, r.text
            r = api.post(f"/jobs/{job_id}/approve", headers=headers,
                         json={"staff_name": STAFF, "weight_g": 10, "time_hours": 1,
                               "authoritative_file": r.json()["file"]["stored_name"]})
            assert r.status_code == 200, r.text
        wait_for(lambda: len(list(plain.mail.glob("*.eml"))) >= 2, "two emails")
        for kind, path in (("submitted", "/status/"), ("approved", "/confirm/")):
            eml = next(plain.mail.glob(f"*-job{job_id}-{kind}-*.eml"))
            text, page = read_email(eml)
            links = re.findall(r"https?://[^\s\"'<>]+" + path, text + page)
            assert links, (kind, text)
            assert all(link.startswith(expected + "/") for link in links), (kind, links)
    finally:
        plain.stop()


# ============================================================== 7. headers, scripts, CSRF


def test_security_headers_on_every_kind_of_response(
    spare: LiveServer, throttled: LiveServer, model: bytes
) -> None:
    """CSP (``default-src 'self'``, ``frame-ancestors 'none'``, no ``'unsafe-inline'``
    scripts) and nosniff on: pages, API, a static file, 404 (page and API), 405, 413, 422
    (API and form), 401 and 429."""
    failures = []
    web_headers = {}
    with httpx.Client(base_url=spare.url, timeout=30) as web:
        for method, path, kwargs, status in (
            ("GET", "/", {}, 200),
            ("GET", "/staff/login", {}, 200),
            ("GET", "/staff", {}, 303),
            ("GET", "/static/printcore.css", {}, 200),
            ("GET", "/api/v1/health", {}, 200),
            ("GET", "/api/v1/openapi.json", {}, 200),
            ("GET", "/api/v1/jobs", {}, 401),
            ("GET", "/no/such/page", {}, 404),
            ("GET", "/api/v1/no/such", {}, 404),
            ("GET", "/status/forged-token", {}, 400),
            ("GET", "/api/v1/auth/login", {}, 405),
            ("POST", "/api/v1/auth/login", {"content": b"{not json"}, 422),
            ("POST", "/api/v1/submissions", {"data": {"student_name": ""}}, 422),
        ):
            r = web.request(method, path, **kwargs)
            web_headers[path] = r.headers
            if r.status_code != status:
                failures.append(f"{method} {path}: {r.status_code}, expected {status}")
            if header_problems(r.headers):
                failures.append(f"{method} {path} ({r.status_code}): {header_problems(r.headers)}")
    big = b"{" + b" " * (2 << 20) + b"}"
    answer = raw_request(spare.url, "POST", "/api/v1/auth/login",
                         {"content-type": "application/json", "content-length": str(len(big))},
                         chunks_of(big))
    if answer.status != 413 or header_problems(answer.headers):
        failures.append(f"POST /api/v1/auth/login 2 MiB: {answer.status} "
                        f"{header_problems(answer.headers)}")
    codes = _wrong_logins(throttled, 4, "Header desk", "192.0.2.222")
    with throttled.api() as api:
        r = api.post("/auth/login", headers=_xff("192.0.2.222"),
                     json={"workstation": "Header desk", "password": "x"})
    if r.status_code != 429 or header_problems(r.headers):
        failures.append(f"429 after {codes}: {r.status_code} {header_problems(r.headers)}")
    assert not failures, "\n".join(failures)


def test_a_500_carries_the_security_headers(tmp_path: Path) -> None:
    """A route that raises, in the real app built in-process: a 500 page (and a 500 under
    /api/) with the same CSP and nosniff."""
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from entrypoints.web import app_from_container

    settings = load_settings({"PRINTCORE_HOME": str(tmp_path / "home"),
                              "PRINTCORE_SECRET_KEY": "abuse-500-secret"}, env_file=None)
    app = app_from_container(bootstrap(settings), isolated_inspection=False)

    async def boom(request: Any) -> Any:
        raise RuntimeError("boom")

    app.router.routes.insert(0, Route("/boom", boom))
    app.router.routes.insert(0, Route("/api/boom", boom))
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/boom", "/api/boom"):
            r = client.get(path)
            assert r.status_code == 500, (path, r.status_code)
            assert not header_problems(r.headers), (path, header_problems(r.headers))
            assert "RuntimeError" not in r.text and "Traceback" not in r.text


def _jobs_in_every_state(server: LiveServer, fixtures_dir: Path) -> dict[str, tuple[int, str]]:
    """state → (job id, status token), walked over the API."""
    headers = _bearer(server)
    model = (fixtures_dir / "models" / "Moon.stl").read_bytes()
    out: dict[str, tuple[int, str]] = {}
    steps = [("mark-printing", {"printer": "X1C-1"}, "printing"),
             ("mark-complete", {}, "completed"),
             ("payment", {"grams": 11.2, "txn_no": "TX-1", "picked_up_by": "Jane Doe"},
              "paid_picked_up")]
    with server.api() as api:
        for target in ("uploaded", "rejected", "pending", "ready_to_print", "printing",
                       "completed", "paid_picked_up"):
            job_id, token = _status_token(server, model)
            out[target] = (job_id, token)
            if target == "uploaded":
                continue
            if target == "rejected":
                r = api.post(f"/jobs/{job_id}/reject", headers=headers,
                             json={"staff_name": STAFF, "custom_reason": "Too thin"})
                assert r.status_code == 200, r.text
                continue
            r = upload_sliced(api, headers, job_id,
                              fixtures_dir / "sliced" / "wormdrive.gcode.3mf")
            assert r.status_code == 201, r.text
            r = api.post(f"/jobs/{job_id}/approve", headers=headers,
                         json={"staff_name": STAFF, "weight_g": 10, "time_hours": 1,
                               "authoritative_file": r.json()["file"]["stored_name"]})
            assert r.status_code == 200, r.text
            if target == "pending":
                continue
            r = api.post("/confirm", json={"token": confirm_token(server, job_id)})
            assert r.status_code == 200, r.text
            for path, extra, reached in steps:
                if r.json()["status"] == target:
                    break
                r = api.post(f"/jobs/{job_id}/{path}", headers=headers,
                             json={"staff_name": STAFF, **extra})
                assert r.status_code == 200, r.text
                assert r.json()["status"] == reached
    return out


def test_no_page_carries_inline_scripts_handlers_or_javascript_urls(
    spare: LiveServer, fixtures_dir: Path
) -> None:
    """The student form (fresh and after a 422), status pages, the confirmation page,
    token error pages, staff login (fresh and after a wrong password), the dashboard
    tabs, the job page in every state, the printers page, 404 pages: no ``<script>``
    without src, no ``on…=`` attribute, no ``javascript:`` URL, and CSP on each."""
    jobs = _jobs_in_every_state(spare, fixtures_dir)
    pages: dict[str, httpx.Response] = {}
    with httpx.Client(base_url=spare.url, timeout=30) as web:
        pages["/"] = web.get("/")
        form = upload_form(pages["/"].text)
        body, boundary = submission_body(b"solid x\nendsolid x\n", {"email": b"nope"},
                                         first=[(b"csrf_token", form.token.encode())])
        pages["/ (422)"] = _post_multipart(web, form.action, body, boundary)
        for state, (_, token) in jobs.items():
            pages[f"/status ({state})"] = web.get(f"/status/{token}")
        pages["/status/forged"] = web.get("/status/forged")
        pages["/confirm/forged"] = web.get("/confirm/forged")
        pages["/staff/login"] = web.get("/staff/login")
        pages["/staff/login (401)"] = web.post(
            "/staff/login", data={"csrf_token": csrf_of(pages["/staff/login"].text),
                                  "workstation": "x", "password": "wrong"})
        pages["/nope"] = web.get("/nope")
    with spare.api() as api:
        headers = login(api)
        pending_id = jobs["pending"][0]
        messages = api.get(f"/jobs/{pending_id}/messages", headers=headers).json()["messages"]
        assert messages
    with web_login(spare.url) as staff:
        for status in ("uploaded", "pending", "ready_to_print", "printing", "completed",
                       "paid_picked_up", "rejected"):
            pages[f"/staff?status={status}"] = staff.get(f"/staff?status={status}")
        for state, (job_id, _) in jobs.items():
            pages[f"/staff/jobs ({state})"] = staff.get(f"/staff/jobs/{job_id}")
        pages["/staff/printers"] = staff.get("/staff/printers")
        pages["/staff/jobs/999999"] = staff.get("/staff/jobs/999999")
    failures = []
    for name, r in pages.items():
        if r.status_code >= 500 or "text/html" not in r.headers.get("content-type", ""):
            failures.append(f"{name}: {r.status_code} {r.headers.get('content-type')}")
            continue
        problems = audit_html(r.text).problems() + header_problems(r.headers)
        if problems:
            failures.append(f"{name} ({r.status_code}): {problems}")
    assert not failures, "\n".join(failures)


def test_upload_forms_carry_the_csrf_token_as_a_field_before_the_file(
    spare: LiveServer, fixtures_dir: Path
) -> None:
    """The student form and the job page's sliced-file form: a hidden ``csrf_token`` input
    before the file input, no token in the action URL."""
    with httpx.Client(base_url=spare.url, timeout=30) as web:
        student = web.get("/").text
    job_id, _ = _status_token(spare, (fixtures_dir / "models" / "Moon.stl").read_bytes())
    with web_login(spare.url) as staff:
        job_page = staff.get(f"/staff/jobs/{job_id}").text
    for name, page in (("student form", student), ("sliced-file form", job_page)):
        forms = audit_html(page).upload_forms
        assert forms, name
        for form in forms:
            assert "csrf" not in form.action, (name, form.action)
            kinds = [kind for kind, _ in form.order]
            assert "file" in kinds, (name, form.order)
            assert ("hidden", "csrf_token") in form.order, (name, form.order)
            assert form.order.index(("hidden", "csrf_token")) < kinds.index("file"), (
                name, form.order)
            assert form.hidden["csrf_token"], name


def _no_staging_while_sending(server: LiveServer, path: str, cookies: str,
                              before: list[tuple[bytes, bytes]], file_part: bytes,
                              after: list[tuple[bytes, bytes]]) -> tuple[int, list[str]]:
    """Send a multipart body whose file part comes before (or without) a valid CSRF field,
    slowly: the staging folder is watched while the file is still arriving. Returns the
    answer's status and whatever was seen in staging."""
    boundary = "abuse" + uuid.uuid4().hex
    head = multipart([(k, None, v) for k, v in before], boundary)[: -len(f"--{boundary}--\r\n")]
    head += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
             f"filename=\"model.stl\"\r\n\r\n").encode()
    tail = b"\r\n" + multipart([(k, None, v) for k, v in after], boundary)
    seen: list[str] = []

    def pieces() -> Iterator[bytes]:
        yield head
        for start in range(0, len(file_part), 64 * 1024):
            yield file_part[start:start + 64 * 1024]
            seen.extend(staged(server))
            time.sleep(0.01)
        yield tail

    answer = raw_request(server.url, "POST", path,
                         {"content-type": f"multipart/form-data; boundary={boundary}",
                          "content-length": str(len(head) + len(file_part) + len(tail)),
                          "cookie": cookies}, pieces())
    seen.extend(staged(server))
    return answer.status, sorted(set(seen))


def test_multipart_without_a_valid_csrf_before_the_file_is_403_and_stages_nothing(
    spare: LiveServer, fixtures_dir: Path
) -> None:
    """The student form and the sliced-file form posted to their action with: no
    csrf_token, a forged one, and the right one after the file part: 403, nothing staged
    while the file streams in, nothing stored."""
    model = (fixtures_dir / "models" / "Moon.stl").read_bytes() * 40  # about 240 kB
    job_id, _ = _status_token(spare, (fixtures_dir / "models" / "Moon.stl").read_bytes())
    fields = [(k.encode(), v.encode()) for k, v in
              {"student_name": "Jane Doe", "email": "j@university.edu", "discipline": "ME",
               "print_method": "filament", "color": "Red"}.items()]
    before = stored(spare)
    failures = []
    with httpx.Client(base_url=spare.url, timeout=30) as web:
        form = upload_form(web.get("/").text)
        cookie = "; ".join(f"{k}={v}" for k, v in web.cookies.items())
        action = form.action.split("?", 1)[0]
        token = form.token.encode()
        for label, first, last in (("no token", fields, []),
                                   ("forged token", [(b"csrf_token", b"forged"), *fields], []),
                                   ("token after the file", fields, [(b"csrf_token", token)])):
            status, seen = _no_staging_while_sending(spare, action, cookie, first, model, last)
            if status != 403 or seen:
                failures.append(f"student form, {label}: {status}, staged {seen}")
    with web_login(spare.url) as staff:
        form = upload_form(staff.get(f"/staff/jobs/{job_id}").text)
        cookie = "; ".join(f"{k}={v}" for k, v in staff.cookies.items())
        action = form.action.split("?", 1)[0]
        token = form.token.encode()
        name = [(b"staff_name", STAFF.encode())]
        for label, first, last in (("no token", name, []),
                                   ("forged token", [(b"csrf_token", b"forged"), *name], []),
                                   ("token after the file", name, [(b"csrf_token", token)])):
            status, seen = _no_staging_while_sending(spare, action, cookie, first, model, last)
            if status != 403 or seen:
                failures.append(f"sliced-file form, {label}: {status}, staged {seen}")
    assert stored(spare) == before
    assert not failures, "\n".join(failures)


# ================================================================ 8. after all of the above


def test_zz_after_the_abuse_every_job_still_renders(server: LiveServer) -> None:
    """Last: every job renders on every view (API list and detail, dashboard tab, job page,
    student status page), ``printcore storage check`` exits 0 with 0 problems, and the
    server's memory is within 50 MB of where it was before this module's first test."""
    headers = _bearer(server, "Final desk")
    failures = []
    with server.api() as api:
        listing = api.get("/jobs?limit=1000", headers=headers)
        assert listing.status_code == 200, listing.text[:300]
        jobs = listing.json()["jobs"]
        assert jobs
        for status in {j["status"] for j in jobs}:
            r = api.get(f"/jobs?status={status}&limit=1000", headers=headers)
            if r.status_code != 200:
                failures.append(f"/api/v1/jobs?status={status}: {r.status_code}")
        for job in jobs:
            r = api.get(f"/jobs/{job['id']}", headers=headers)
            if r.status_code != 200:
                failures.append(f"/api/v1/jobs/{job['id']}: {r.status_code} {r.text[:200]!r}")
    secret = server_env(server).get("PRINTCORE_SECRET_KEY") or (
        server.home / "secret_key").read_text().strip()
    with web_login(server.url, "Final web") as staff:
        for status in {j["status"] for j in jobs}:
            r = staff.get(f"/staff?status={status}")
            if r.status_code != 200:
                failures.append(f"/staff?status={status}: {r.status_code}")
        for job in jobs:
            r = staff.get(f"/staff/jobs/{job['id']}")
            if r.status_code != 200:
                failures.append(f"/staff/jobs/{job['id']}: {r.status_code}")
    from adapters.tokens import ItsdangerousSigner

    signer = ItsdangerousSigner(secret)  # signs as the server does (same secret)
    with httpx.Client(base_url=server.url, timeout=30) as web:
        for job in jobs:
            token = signer.dumps("status", {"job": job["id"]})
            r = web.get(f"/status/{token}")
            if r.status_code != 200:
                failures.append(f"/status/ (job {job['id']}): {r.status_code}")
    check = cli(server, "storage", "check")
    if check.returncode != 0 or " 0 problem(s)" not in check.stdout:
        failures.append(f"storage check: exit {check.returncode}: {check.stdout}{check.stderr}")
    baseline = BASELINE_RSS.get(server.kind, rss_mb(server))
    deadline = time.monotonic() + 15
    while rss_mb(server) > baseline + 50 and time.monotonic() < deadline:
        time.sleep(0.5)
    if rss_mb(server) > baseline + 50:
        failures.append(f"RSS {rss_mb(server):.0f} MB, started at {baseline:.0f} MB")
    assert not failures, "\n".join(failures)

