"""Too many uploads waiting to be checked: a new one is refused before its body is read.

A real server (``printcore serve``, SQLite) with one checking process and
``PRINTCORE_INSPECT_QUEUE_MAX=1``. While it checks Original3DBenchy.3mf (over a second:
its 3MF XML is large, and the first file also spawns the checker), a second submission
over the API and one through the student form are answered 503 with ``Retry-After`` and
a message that says when to send it again; nothing of theirs is stored (no job, no
staged file). Once the check is done the same upload is taken (201).

Bad inputs tried: an API submission and a form submission while the queue is full.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _support import FIXTURES

from _live import LiveServer, login, start_server, stop_server, submit

BENCHY = FIXTURES / "models" / "Original3DBenchy.3mf"
MOON = FIXTURES / "models" / "Moon.stl"
FIELDS = {
    "student_name": "Jane Doe", "email": "jane.doe@university.edu",
    "discipline": "Mechanical Engineering", "class_number": "ME 101",
    "print_method": "filament", "color": "Red", "preferred_printer": "", "notes": "",
}


@pytest.fixture()
def one_checker(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path / "home", {
        "PRINTCORE_INSPECT_WORKERS": "1", "PRINTCORE_INSPECT_QUEUE_MAX": "1"}, "sqlite")
    yield server
    stop_server(server)


def _staged(server: LiveServer) -> list[Path]:
    return sorted((server.storage / ".staging").glob("*.part"))


def _jobs(server: LiveServer) -> int:
    with server.api() as api:
        headers = login(api)
        return sum(api.get("/jobs", headers=headers).json()["counts"].values())


def test_uploads_past_the_waiting_limit_are_asked_to_retry(one_checker: LiveServer) -> None:
    server = one_checker
    first: dict[str, object] = {}

    def send_benchy() -> None:
        with server.api() as api:
            first["id"] = submit(api, BENCHY)

    sender = threading.Thread(target=send_benchy)
    sender.start()
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size == BENCHY.stat().st_size for p in _staged(server)):
        assert time.monotonic() < deadline, "the first upload never arrived in staging"
        assert sender.is_alive(), f"the first upload ended early: {first}"
        time.sleep(0.01)
    time.sleep(0.2)  # its body is in; it is being checked now
    assert sender.is_alive()

    with server.api() as api, MOON.open("rb") as handle:
        refused = api.post("/submissions", data=FIELDS, files={"file": ("Moon.stl", handle)})
    with httpx.Client(base_url=server.url, timeout=60) as web:
        web.get("/")
        with MOON.open("rb") as handle:  # refused before the form's CSRF check reads it
            form = web.post("/submit", data=FIELDS, files={"file": ("Moon.stl", handle)})
    still_checking = sender.is_alive()
    sender.join(90)
    assert not sender.is_alive() and "id" in first, first

    assert still_checking, "the first check ended before the refusals: the test proved nothing"
    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "busy"
    assert int(refused.headers["Retry-After"]) == error["retry_after"] >= 5
    assert "send it again in about" in error["message"] and "nothing was kept" in error["message"]
    assert form.status_code == 503, form.text[:500]
    assert int(form.headers["Retry-After"]) >= 5
    assert "send it again in about" in form.text

    assert _jobs(server) == 1  # only the Benchy
    assert _staged(server) == []
    with server.api() as api:
        assert submit(api, MOON) > int(first["id"])  # type: ignore[call-overload]
