"""Bad input over HTTP gets a clear answer and loses nothing (issue 2's table).

Tried here: a wrong extension; an executable renamed .stl; a file over the limit; missing
and invalid fields (API and HTML form, values kept); a transition not allowed in the
state; two workstations approving one job at once; a wrong password; tampered, reused and
expired confirmation links; ``../../x.stl``, 300-character and non-UTF-8 original names;
a .3mf ZIP bomb; an unreachable DATABASE_URL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from itsdangerous import URLSafeSerializer

from _live import (
    STAFF,
    LiveServer,
    confirm_token,
    login,
    start_server,
    stop_server,
    submit,
    upload_sliced,
)
from adapters.health import MARKER_NAME

VALID = {
    "student_name": "Jane Doe",
    "email": "jane@university.edu",
    "discipline": "ME",
    "class_number": "",
    "print_method": "filament",
    "color": "Red",
}


def _stored(server: LiveServer) -> list[str]:
    """Every file under storage, staging included, but the storage root's marker
    (``.printcore-storage``, written at first start: adapters.health)."""
    return sorted(
        str(p.relative_to(server.storage)) for p in server.storage.rglob("*")
        if p.is_file() and p.relative_to(server.storage) != Path(MARKER_NAME)
    )


def _job_count(api: httpx.Client, headers: dict[str, str]) -> int:
    return sum(api.get("/jobs", headers=headers).json()["counts"].values())


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with a 1 MB upload limit, on the embedded default."""
    server = start_server(
        tmp_path_factory.mktemp("small"), {"PRINTCORE_MAX_UPLOAD_MB": "1"}, "sqlite"
    )
    yield server
    stop_server(server)


def test_wrong_extension_and_fake_content_are_415_and_store_nothing(
    live_server: LiveServer, tmp_path: Path
) -> None:
    with live_server.api() as api:
        headers = login(api)
        before_files, before_jobs = _stored(live_server), _job_count(api, headers)
        notes = tmp_path / "notes.txt"
        notes.write_text("solid cube\nfacet normal 0 0 0\n")
        exe = tmp_path / "model.stl"
        exe.write_bytes(Path(sys.executable).read_bytes()[:200_000])
        for path in (notes, exe):
            with path.open("rb") as handle:
                r = api.post("/submissions", data=VALID, files={"file": (path.name, handle)})
            assert r.status_code == 415, r.text
            error = r.json()["error"]
            assert error["code"] == "unsupported_file" and "file" in error["fields"]
            assert ".stl" in error["message"].lower() or "export" in error["message"].lower()
        assert _stored(live_server) == before_files
        assert _job_count(api, headers) == before_jobs


def test_over_the_limit_is_413_and_the_partial_file_is_removed(
    small_server: LiveServer, tmp_path: Path
) -> None:
    big = tmp_path / "big.stl"
    big.write_bytes(b"\0" * 2_500_000)
    with small_server.api() as api:
        with big.open("rb") as handle:
            r = api.post("/submissions", data=VALID, files={"file": ("big.stl", handle)})
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "file_too_large"
        assert "1 MB" in r.json()["error"]["message"]

        # Without a Content-Length the body is cut off while streaming, same answer.
        def chunks() -> Iterator[bytes]:
            boundary = b"--xyz\r\n"
            yield (
                boundary + b'Content-Disposition: form-data; name="file"; filename="b.stl"\r\n\r\n'
            )
            for _ in range(30):
                yield b"\0" * 100_000
            yield b"\r\n--xyz--\r\n"

        r = api.post(
            "/submissions",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=xyz"},
        )
        assert r.status_code == 413, r.text
    assert _stored(small_server) == []


def test_invalid_fields_are_422_with_messages_per_field(
    live_server: LiveServer, fixtures_dir: Path
) -> None:
    model = fixtures_dir / "models" / "Moon.stl"
    with live_server.api() as api:
        bad = {**VALID, "email": "jane(at)uni", "print_method": "plastic", "student_name": ""}
        with model.open("rb") as handle:
            r = api.post("/submissions", data=bad, files={"file": (model.name, handle)})
        assert r.status_code == 422, r.text
        fields = r.json()["error"]["fields"]
        assert {"email", "print_method", "student_name"} <= set(fields)
        r = api.post("/submissions", data=VALID)  # no file at all
        assert r.status_code == 422 and "file" in r.json()["error"]["fields"]
        r = api.post("/submissions", json=VALID)  # not multipart
        assert r.status_code == 422


def test_html_form_keeps_what_was_typed(live_server: LiveServer, fixtures_dir: Path) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as web:
        page = web.get("/")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        assert 'action="/submit"' in page.text  # the token is a field, never in the URL
        model = fixtures_dir / "models" / "Moon.stl"
        typed = {
            **VALID,
            "email": "not-an-email",
            "discipline": "Industrial Design",
            "notes": "Please use the 0.2 mm nozzle",
        }
        with model.open("rb") as handle:
            r = web.post("/submit", data={"csrf_token": csrf, **typed},
                         files={"file": (model.name, handle)})
        assert r.status_code == 422
        assert 'value="Industrial Design"' in r.text
        assert "Please use the 0.2 mm nozzle" in r.text
        assert 'value="not-an-email"' in r.text
        assert "Enter a valid email address" in r.text
        # Without the CSRF token the form is refused.
        with model.open("rb") as handle:
            r = web.post("/submit", data={"csrf_token": "forged", **VALID},
                         files={"file": (model.name, handle)})
        assert r.status_code == 403
        # A token sent after the file (or not at all) is refused before the file is kept.
        with model.open("rb") as handle:
            r = web.post("/submit", data=VALID, files={"file": (model.name, handle)})
        assert r.status_code == 403


def test_illegal_transition_is_409_naming_the_state(
    live_server: LiveServer, fixtures_dir: Path
) -> None:
    with live_server.api() as api:
        job_id = submit(api, fixtures_dir / "models" / "Moon.stl")
        headers = login(api)
        before = api.get(f"/jobs/{job_id}", headers=headers).json()
        r = api.post(f"/jobs/{job_id}/mark-complete", headers=headers, json={"staff_name": STAFF})
        assert r.status_code == 409
        assert r.json()["error"]["state"] == "uploaded"
        assert "uploaded" in r.json()["error"]["message"]
        after = api.get(f"/jobs/{job_id}", headers=headers).json()
        assert after == before
        r = api.post(
            f"/jobs/{job_id}/approve",
            headers=headers,
            json={
                "staff_name": "Mallory",
                "weight_g": 5,
                "time_hours": 1,
                "authoritative_file": "x",
            },
        )
        assert r.status_code == 422 and "staff_name" in r.json()["error"]["fields"]


def _sliced_job(api: httpx.Client, headers: dict[str, str], fixtures_dir: Path) -> tuple[int, str]:
    job_id = submit(api, fixtures_dir / "models" / "Moon.stl")
    r = upload_sliced(api, headers, job_id, fixtures_dir / "sliced" / "wormdrive.gcode.3mf")
    assert r.status_code == 201, r.text
    return job_id, r.json()["file"]["stored_name"]


def test_two_workstations_approving_at_once_one_wins(
    live_server: LiveServer, fixtures_dir: Path
) -> None:
    with live_server.api() as api:
        headers_a = login(api, "Desk A")
        headers_b = login(api, "Desk B")
        for _ in range(3):
            job_id, sliced = _sliced_job(api, headers_a, fixtures_dir)
            version = api.get(f"/jobs/{job_id}", headers=headers_a).json()["version"]
            results: list[int] = []
            barrier = threading.Barrier(2)

            def approve(headers: dict[str, str], grams: float) -> None:
                with live_server.api() as client:
                    barrier.wait()
                    r = client.post(
                        f"/jobs/{job_id}/approve",
                        headers=headers,
                        json={
                            "staff_name": STAFF,
                            "weight_g": grams,
                            "time_hours": 1,
                            "authoritative_file": sliced,
                            "version": version,
                        },
                    )
                    results.append(r.status_code)

            threads = [
                threading.Thread(target=approve, args=(h, g))
                for h, g in ((headers_a, 12.0), (headers_b, 40.0))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(results) == [200, 409], results
            job = api.get(f"/jobs/{job_id}", headers=headers_a).json()
            assert job["status"] == "pending"
            assert [e["kind"] for e in job["events"]].count("approve") == 1
            folder = next(live_server.storage.glob(f"Pending/*_{job_id}"))
            meta = json.loads((folder / "metadata.json").read_text())
            assert meta["weight_g"] == job["weight_g"]  # the winner's figures, not the loser's
            assert not list(live_server.storage.glob(f"Uploaded/*_{job_id}"))


def test_wrong_password_is_401_without_a_session(live_server: LiveServer) -> None:
    with live_server.api() as api:
        r = api.post("/auth/login", json={"workstation": "Desk", "password": "guess"})
        assert r.status_code == 401
        assert "printcore_session" not in r.headers.get("set-cookie", "")
        assert api.get("/jobs").status_code == 401
        r = api.get("/jobs", headers={"Authorization": "Bearer forged.token"})
        assert r.status_code == 401


def test_confirmation_link_tampered_reused_or_expired(
    live_server: LiveServer, fixtures_dir: Path
) -> None:
    with live_server.api() as api:
        headers = login(api)
        job_id, sliced = _sliced_job(api, headers, fixtures_dir)
        r = api.post(
            f"/jobs/{job_id}/approve",
            headers=headers,
            json={
                "staff_name": STAFF,
                "weight_g": 10,
                "time_hours": 1,
                "authoritative_file": sliced,
            },
        )
        assert r.status_code == 200
        token = confirm_token(live_server, job_id)

        secret = (live_server.home / "secret_key").read_text().strip()
        signer = URLSafeSerializer(secret, salt="printcore.confirm")
        payload = signer.loads(token)
        expired = signer.dumps({**payload, "exp": 1_000_000_000})

        with httpx.Client(base_url=live_server.url) as web:
            tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
            for bad, code in ((tampered, "token_tampered"), (expired, "token_expired")):
                page = web.get(f"/confirm/{bad}")
                assert page.status_code == 400
                assert f'data-code="{code}"' in page.text
                assert "Nothing was changed" in page.text
            assert api.get(f"/jobs/{job_id}", headers=headers).json()["status"] == "pending"

            page = web.get(f"/confirm/{token}")
            assert page.status_code == 200 and "$3.00" in page.text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            r = web.post(f"/confirm/{token}", data={"csrf_token": csrf})
            assert r.status_code == 303
            again = web.get(f"/confirm/{token}")
            assert again.status_code == 200 and 'data-code="token_used"' in again.text
            assert "already confirmed" in again.text and "Nothing was changed" in again.text
        r = api.post("/confirm", json={"token": token})
        assert r.status_code == 400 and r.json()["error"]["code"] == "token_used"
        job = api.get(f"/jobs/{job_id}", headers=headers).json()
        assert job["status"] == "ready_to_print"
        assert [e["kind"] for e in job["events"]].count("confirm") == 1


@pytest.mark.parametrize(
    "name", ["../../x.stl", "A" * 300 + ".stl", "mod\udcffel.stl", "..\\..\\windows\\x.STL"]
)
def test_hostile_original_names_are_stored_under_the_generated_name(
    live_server: LiveServer, fixtures_dir: Path, name: str
) -> None:
    model = (fixtures_dir / "models" / "Moon.stl").read_bytes()
    with live_server.api() as api:
        encoded = name.encode("utf-8", "surrogateescape")
        body = b"".join(
            [
                *(
                    f'--b\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in VALID.items()
                ),
                b'--b\r\nContent-Disposition: form-data; name="file"; filename="'
                + encoded
                + b'"\r\n\r\n',
                model,
                b"\r\n--b--\r\n",
            ]
        )
        r = api.post(
            "/submissions",
            content=body,
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        if "\udcff" in name:  # not UTF-8: refused naming the field, nothing kept (issue 10)
            assert r.status_code == 422, r.text
            assert r.json()["error"]["code"] == "invalid_text"
            assert "file" in r.json()["error"]["fields"]
            assert not list(live_server.storage.glob(".staging/*"))
            return
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
    folder = next(live_server.storage.glob(f"Uploaded/*_{job_id}"))
    assert sorted(p.name for p in folder.iterdir()) == [
        f"JaneDoe_Filament_Red_{job_id}.stl",
        "metadata.json",
    ]
    assert not (live_server.home / "x.stl").exists()
    assert not list(live_server.home.rglob("x.stl")) and not list(live_server.home.rglob("AAAA*"))


def test_a_3mf_zip_bomb_is_refused_before_it_is_expanded(
    live_server: LiveServer, tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.3mf"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("3D/3dmodel.model", "w", force_zip64=True) as entry:
            chunk = b"\0" * (1 << 20)
            for _ in range(3000):  # 3 GB of zeros, about 3 MB compressed
                entry.write(chunk)
    assert bomb.stat().st_size < 10_000_000
    with live_server.api() as api:
        with bomb.open("rb") as handle:
            r = api.post("/submissions", data=VALID, files={"file": ("bomb.3mf", handle)})
    assert r.status_code == 415, r.text
    assert not [
        p for p in live_server.storage.rglob("*") if p.is_file() and p.stat().st_size > 100_000_000
    ]


def test_unreachable_database_url_exits_without_creating_sqlite(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "PRINTCORE_HOME": str(home),
        "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/printcore",
    }
    result = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "127.0.0.1:1" in result.stderr
    assert not list(tmp_path.rglob("*.db"))
