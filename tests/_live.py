"""Running a real printcore server (``printcore serve``: uvicorn on a free port) for tests."""

from __future__ import annotations

import email
import os
import re
import socket
import subprocess
import sys
import time
from email import policy
from pathlib import Path

import attrs
import httpx

PG_DSN = os.environ.get("PRINTCORE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
STAFF = "Ada Lovelace"
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@attrs.define
class LiveServer:
    url: str
    home: Path
    kind: str
    process: subprocess.Popen[bytes]
    log: Path
    #: The environment the server runs with (for ``printcore`` commands on its data).
    env: dict[str, str] = attrs.Factory(dict)

    def printcore(self, *args: str) -> None:
        """Run ``printcore ARGS`` on this server's data (e.g. ``staff add NAME``)."""
        _printcore(self.env, *args)

    @property
    def storage(self) -> Path:
        return self.home / "storage"

    @property
    def mail(self) -> Path:
        return self.home / "mail"

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/api/v1", timeout=60)


def _printcore(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def start_server(home: Path, env_extra: dict[str, str], kind: str) -> LiveServer:
    port = free_port()
    env = {
        **os.environ,
        "PRINTCORE_HOME": str(home),
        "PRINTCORE_PORT": str(port),
        "PRINTCORE_BASE_URL": f"http://127.0.0.1:{port}",
        "PRINTCORE_STAFF_PASSWORD": PASSWORD,
        # Other suites submit and log in far more than a student would: the limits get
        # their own servers in tests/e2e/test_abuse.py.
        "PRINTCORE_LOGIN_FAILURES_PER_MINUTE": "100000",
        "PRINTCORE_SUBMISSIONS_PER_HOUR": "100000",
        "PRINTCORE_SUBMISSION_MAIL_PER_HOUR": "100000",
        **env_extra,
    }
    _printcore(env, "staff", "add", STAFF)
    log = home / "server.log"
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "serve", "--log-level", "warning"],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                return LiveServer(url, home, kind, process, log, env)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()


def login(api: httpx.Client, workstation: str = "E2E desk") -> dict[str, str]:
    """Log in over the API; returns the bearer Authorization header."""
    r = api.post("/auth/login", json={"workstation": workstation, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def submit(api: httpx.Client, model: Path, **fields: str) -> int:
    """Submit ``model`` with a valid student's details; returns the job id."""
    data = {
        "student_name": "Jane Doe",
        "email": "jane.doe@university.edu",
        "discipline": "Mechanical Engineering",
        "class_number": "ME 101",
        "print_method": "filament",
        "color": "Red",
        "preferred_printer": "",
        "notes": "",
        **fields,
    }
    with model.open("rb") as handle:
        r = api.post("/submissions", data=data, files={"file": (model.name, handle)})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def confirm_token(server: LiveServer, job_id: int, newer_than: str | None = None,
                  wait: float = 20.0) -> str:
    """The confirmation token from the newest approval email written for the job (the
    server delivers from its outbox in the background, so this waits up to ``wait`` s;
    with ``newer_than``, for a token other than that one)."""
    deadline = time.monotonic() + wait
    while True:
        for path in sorted(server.mail.glob(f"*-job{job_id}-approved-*.eml"), reverse=True):
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            match = re.search(r"/confirm/(\S+)", text)
            if match and match.group(1) != newer_than:
                return match.group(1)
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"no approval email for job {job_id} in {server.mail}")
        time.sleep(0.05)




def upload_sliced(api: httpx.Client, headers: dict[str, str], job_id: int,
                  sliced: Path) -> httpx.Response:
    """Upload a sliced file for a job as the test staff member; returns the response."""
    with sliced.open("rb") as handle:
        return api.post(f"/jobs/{job_id}/files", headers=headers, data={"staff_name": STAFF},
                        files={"file": (sliced.name, handle)})
