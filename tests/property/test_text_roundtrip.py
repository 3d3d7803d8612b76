"""Any text either round-trips through submission → job → job page → email unchanged, or
is refused with 422 and nothing stored (issue 10).

Hypothesis generates texts from all of Unicode *including* lone surrogates (Cs) and
control characters (Cc), plus whitespace and look-alikes (tab, CR, LF, NEL, NBSP, U+2028,
U+FFFD), and puts one into ``student_name``, ``color`` or ``notes`` of a submission sent
as multipart bytes (UTF-8, surrogates through ``surrogatepass`` so the invalid bytes
``ED B0 80``… reach the server), through the JSON API or the HTML form.

The real app runs in this process (``bootstrap`` + ``app_from_container`` on a temporary
SQLite home, driven by Starlette's TestClient; the outbox is delivered here with
``deliver_due`` to the real ``.eml`` file transport). The server's one documented
normalisation is that surrounding whitespace is stripped (``str.strip``). So:

* accepted (201 / 303) ⇒ the text as sent contained no surrogate and no control character
  (tab/CR/LF only in notes), and the stripped text is exactly the job's field in the API,
  appears on the staff job page (HTML-unescaped), and - for student_name and color, the
  fields the "submission received" email shows - in that email's text and HTML parts;
* refused ⇒ status 422, and the job count, the files under storage (staging included)
  and the outbox rows are unchanged;
* a text with no surrogate or control character whose stripped form is non-empty (for the
  required fields) and within the field's length limit is accepted.
"""

from __future__ import annotations

import email
import html
import re
import unicodedata
import uuid
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from printcore.requests.validation import FIELD_LIMITS

STAFF = "Ada Lovelace"
PASSWORD = "correct horse battery"
VALID = {
    "student_name": "Jane Doe",
    "email": "jane.doe@university.edu",
    "discipline": "Mechanical Engineering",
    "class_number": "ME 101",
    "print_method": "filament",
    "color": "Red",
    "preferred_printer": "",
    "notes": "",
}
MULTILINE = {"notes"}
IN_EMAIL = {"student_name", "color"}


@attrs.define
class Lab:
    container: Any
    client: Any
    headers: dict[str, str]
    model: bytes
    mail_dir: Path
    storage: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Iterator[Lab]:
    from starlette.testclient import TestClient

    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from entrypoints.web import app_from_container

    home = tmp_path_factory.mktemp("roundtrip")
    env = {
        "PRINTCORE_HOME": str(home),
        "PRINTCORE_SECRET_KEY": "text-roundtrip-secret",
        "PRINTCORE_STAFF_PASSWORD": PASSWORD,
        "PRINTCORE_LOGIN_FAILURES_PER_MINUTE": "100000",
        "PRINTCORE_SUBMISSIONS_PER_HOUR": "100000",
        "PRINTCORE_SUBMISSION_MAIL_PER_HOUR": "100000",
    }
    container = bootstrap(load_settings(env, env_file=None))
    container.staff.add(STAFF)
    app = app_from_container(container, isolated_inspection=False)
    # No `with`: the lifespan (and its background delivery thread) does not run; the test
    # delivers the outbox itself, so it knows when an email exists.
    client = TestClient(app, base_url="http://127.0.0.1")
    r = client.post("/api/v1/auth/login", json={"workstation": "Roundtrip", "password": PASSWORD})
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    try:
        yield Lab(container, client, headers,
                  (fixtures_dir / "models" / "Moon.stl").read_bytes(),
                  container.settings.mail_dir, container.settings.storage_root)
    finally:
        client.close()
        container.close()


def _acceptable(text: str, field: str) -> bool:
    """The contract's rule for a text as sent: no surrogate, no Cc but tab/CR/LF in notes."""
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cs":
            return False
        if category == "Cc" and not (field in MULTILINE and ch in "\t\r\n"):
            return False
    return True


def _body(values: dict[str, str], model: bytes, first: list[tuple[str, str]]) -> tuple[bytes, str]:
    boundary = "rt" + uuid.uuid4().hex
    out = bytearray()
    for name, value in [*first, *values.items()]:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                .encode())
        out += value.encode("utf-8", "surrogatepass") + b"\r\n"
    out += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="Moon.stl"\r\n\r\n').encode() + model + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), boundary


def _form_target(page: str) -> tuple[str, list[tuple[str, str]]]:
    """Where the student form posts, and its CSRF token as a leading field (the hidden
    ``csrf_token`` input; older pages carried it as ``?csrf=`` in the action)."""
    form = re.search(r'<form[^>]*enctype="multipart/form-data"[^>]*>', page)
    assert form, page[:2000]
    action = html.unescape(re.search(r'action="([^"]*)"', form.group(0)).group(1))  # type: ignore[union-attr]
    hidden = re.search(r'name="csrf_token" value="([^"]+)"', page[form.end():])
    return action, [("csrf_token", hidden.group(1))] if hidden else []


def _stored(lab: Lab) -> list[str]:
    return sorted(str(p.relative_to(lab.storage)) for p in lab.storage.rglob("*") if p.is_file())


def _state(lab: Lab) -> tuple[int, list[str], int]:
    counts = lab.container.requests.counts()
    return (sum(counts.values()), _stored(lab), len(lab.container.outbox.list(limit=100_000)))


def _submitted_email(lab: Lab, job_id: int) -> tuple[str, str]:
    lab.container.outbox.deliver_due()
    paths = sorted(lab.mail_dir.glob(f"*-job{job_id}-submitted-*.eml"))
    assert len(paths) == 1, (job_id, sorted(p.name for p in lab.mail_dir.glob("*.eml")))
    message = email.message_from_bytes(paths[0].read_bytes(), policy=policy.default)
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    return (plain.get_content() if plain else "",  # type: ignore[union-attr]
            html.unescape(rich.get_content()) if rich else "")  # type: ignore[union-attr]


SPECIAL = "\t\r\n\x00\x1b\x7f\x85\xa0\u2028\u200b\ufeff\ufffd \udfff\ud800"
TEXTS = st.text(
    alphabet=st.one_of(
        st.characters(codec=None),  # all of Unicode but surrogates
        st.characters(categories=["Cs", "Cc"]),  # lone surrogates and control characters
        st.sampled_from(SPECIAL),
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),  # plenty of plain ASCII
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(["student_name", "color", "notes"]), text=TEXTS,
       via=st.sampled_from(["api", "form"]))
def test_text_round_trips_or_is_refused_with_nothing_stored(
    lab: Lab, field: str, text: str, via: str
) -> None:
    values = {**VALID, field: text}
    before = _state(lab)
    if via == "api":
        body, boundary = _body(values, lab.model, [])
        r = lab.client.post("/api/v1/submissions", content=body,
                            headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    else:
        action, first = _form_target(lab.client.get("/").text)
        body, boundary = _body(values, lab.model, first)
        r = lab.client.post(action, content=body, follow_redirects=False,
                            headers={"content-type": f"multipart/form-data; boundary={boundary}"})

    expected = text.strip()
    should_pass = (_acceptable(text, field) and len(expected) <= FIELD_LIMITS[field]
                   and (field == "notes" or expected != ""))
    if r.status_code not in (201, 303):
        assert r.status_code == 422, (r.status_code, r.text[:500])
        assert _state(lab) == before, "a refused submission left something behind"
        assert not should_pass, f"{field}={text!r} was refused: {r.text[:500]}"
        event("refused")
        return
    event("accepted")

    assert (r.status_code == 201) == (via == "api"), r.status_code
    assert _acceptable(text, field), f"{field}={text!r} was accepted"
    if via == "api":
        job_id = int(r.json()["id"])
    else:
        status_page = lab.client.get(r.headers["location"])
        assert status_page.status_code == 200
        job_id = int(re.search(r"Print request #(\d+)", status_page.text).group(1))  # type: ignore[union-attr]
    job = lab.client.get(f"/api/v1/jobs/{job_id}", headers=lab.headers)
    assert job.status_code == 200, job.text
    assert job.json()[field] == expected
    page = lab.client.get(f"/staff/jobs/{job_id}")
    assert page.status_code == 200
    assert expected in html.unescape(page.text)
    if field in IN_EMAIL:
        plain, rich = _submitted_email(lab, job_id)
        assert expected in plain, plain
        assert expected in rich, rich
