"""End to end against a running server (``printcore serve`` on SQLite): the job page shows
a print3d:// link per file, the opener opens one with the fake slicer, and the "opened in
slicer" event it reports appears in the job's history; the report endpoint refuses
replays, forgeries and links for other files."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _opener_kit import SECRET, launches, make_fake_slicer, user_env, write_config
from jinja2 import Environment, FileSystemLoader

from _live import LiveServer, login, start_server, stop_server, submit, upload_sliced
from entrypoints.opener.token import make_link, parse_link

WORKSTATION = "Front desk"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("opener-server"),
                        {"PRINTCORE_OPENER_SECRET": SECRET}, "sqlite")
    yield live
    stop_server(live)


@pytest.fixture(scope="module")
def job(server: LiveServer, fixtures_dir: Path) -> tuple[int, dict[str, str]]:
    """A submitted job with a sliced file; returns (job id, bearer headers)."""
    with server.api() as api:
        job_id = submit(api, fixtures_dir / "models" / "rear_case.stl")
        headers = login(api)
        r = upload_sliced(api, headers, job_id, fixtures_dir / "sliced" / "wormdrive.gcode.3mf")
        assert r.status_code == 201, r.text
    return job_id, headers


def _job_page(server: LiveServer, job_id: int) -> str:
    with httpx.Client(base_url=server.url, timeout=60) as web:
        r = web.post("/api/v1/auth/login",
                     json={"workstation": WORKSTATION, "password": "correct horse battery"})
        assert r.status_code == 200, r.text
        page = web.get(f"/staff/jobs/{job_id}")
        assert page.status_code == 200
        return page.text


def _links(page: str) -> dict[str, str]:
    """data-file → print3d:// URL, from the job page's slicer links."""
    found = re.findall(r'<a href="(print3d://[^"]+)" class="slicer-link" data-role="\w+" '
                       r'data-file="([^"]+)"', page)
    return {name: html.unescape(url) for url, name in found}


def _report(server: LiveServer, body: dict[str, object]) -> httpx.Response:
    return httpx.post(server.url + "/api/v1/slicer/opened", json=body, timeout=60)


def test_a_link_on_the_job_page_opens_in_the_slicer_and_is_recorded(
    server: LiveServer, job: tuple[int, dict[str, str]], tmp_path: Path
) -> None:
    job_id, headers = job
    detail = httpx.get(f"{server.url}/api/v1/jobs/{job_id}", headers=headers, timeout=60).json()
    names = {f["role"]: f["stored_name"] for f in detail["files"]}
    links = _links(_job_page(server, job_id))
    assert set(links) == {names["original"], names["sliced"]}
    for name, url in links.items():
        parsed = parse_link(url)
        assert parsed.job_id == job_id and parsed.workstation == WORKSTATION
        assert (server.storage / parsed.file).is_file() and parsed.file.endswith("/" + name)
        assert 0 < parsed.expires - time.time() <= 2 * 3600

    home = tmp_path / "staff-pc"
    program, record = make_fake_slicer(tmp_path / "slicer")
    write_config(home, server.storage, program, server_url=server.url)
    url = links[names["sliced"]]
    result = subprocess.run([sys.executable, "-m", "entrypoints.opener", url],
                            env=user_env(home), stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    expected = (server.storage / parse_link(url).file).resolve()
    assert launches(record)[0]["argv"] == [str(expected)]

    history = httpx.get(f"{server.url}/api/v1/jobs/{job_id}", headers=headers,
                        timeout=60).json()["events"]
    opened = [e for e in history if e["kind"] == "opened_in_slicer"]
    assert len(opened) == 1
    assert opened[0]["actor"]["workstation"] == WORKSTATION
    assert opened[0]["details"]["stored_name"] == names["sliced"]
    assert opened[0]["details"]["host"] == "test-bench"
    assert opened[0]["details"]["slicer"] == "fake slicer"
    page = _job_page(server, job_id)
    assert "opened in the slicer" in page.lower() and names["sliced"] in page

    # The same link reports once only.
    again = _report(server, {"link": url, "host": "x", "slicer": "y"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_reported"


def test_the_report_endpoint_refuses_what_a_link_does_not_authorise(
    server: LiveServer, job: tuple[int, dict[str, str]]
) -> None:
    job_id, _ = job
    soon = int(time.time()) + 600
    folder = next(iter(server.storage.glob(f"*/*_{job_id}")))
    rel = folder.relative_to(server.storage).as_posix()
    own_file = next(p.name for p in folder.iterdir() if p.suffix == ".stl")
    good = make_link(SECRET, job_id, f"{rel}/{own_file}", soon, WORKSTATION)

    cases = [
        ({"link": good.replace(f"job={job_id}", f"job={job_id + 1}")}, 401, "link_refused"),
        ({"link": make_link("not-the-server-secret-123", job_id, f"{rel}/{own_file}", soon)},
         401, "link_refused"),
        ({"link": make_link(SECRET, job_id, f"{rel}/{own_file}", int(time.time()) - 3600)},
         401, "link_refused"),
        ({"link": "print3d://open?job=1"}, 401, "link_refused"),
        ({}, 401, "link_refused"),
        ({"link": make_link(SECRET, job_id, f"{rel}/someone_else.stl", soon)}, 422,
         "validation_error"),
        ({"link": make_link(SECRET, 999_999, f"{rel}/{own_file}", soon)}, 404, "not_found"),
        ({"link": good, "host": ["not", "text"]}, 422, "validation_error"),
        ({"link": good, "slicer": "x" * 121}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        r = _report(server, body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body, r.text)
    # Shortly after its expiry (the file was opened just before), a report is still taken.
    late = make_link(SECRET, job_id, f"{rel}/{own_file}", int(time.time()) - 60, WORKSTATION)
    assert _report(server, {"link": late, "host": "pc", "slicer": "Cura"}).status_code == 201
    assert _report(server, {"link": good}).status_code == 201


def test_without_an_opener_secret_the_page_says_links_are_off() -> None:
    templates = Path(__file__).resolve().parents[2] / "src/adapters/web/templates"
    env = Environment(loader=FileSystemLoader(str(templates)), autoescape=True)
    include = env.get_template("staff/_slicer_links.html")
    off = include.render(slicer_links=[], slicer_links_enabled=False)
    # one quiet line pointing at Setup, where the setting is named (adapters.web.setup_notices)
    assert "Slicer links are off" in off and 'href="/staff/setup#slicer-links"' in off
    assert "print3d://" not in off
    assert "print3d" not in include.render(slicer_links=[], slicer_links_enabled=True)


def test_the_server_side_signer_is_what_the_web_adapter_expects() -> None:
    from adapters.web.slicer_links import OpenerLinks
    from entrypoints.web import LinkSigner

    signer = LinkSigner(SECRET)
    assert isinstance(signer, OpenerLinks)
    url = signer.make(5, "Pending/A_5/A_5.stl", int(time.time()) + 60, WORKSTATION)
    checked = signer.check(url, time.time())
    assert (checked.job_id, checked.file, checked.workstation) == (5, "Pending/A_5/A_5.stl",
                                                                   WORKSTATION)
    with pytest.raises(ValueError, match="signature"):
        LinkSigner("another-secret-0123456789").check(url, time.time())
    with pytest.raises(ValueError, match="at least 16"):
        LinkSigner("short")
    assert signer.opens("A_5_sliced.gcode.3mf") and not signer.opens("metadata.json")


def test_the_opener_secret_setting(tmp_path: Path) -> None:
    from entrypoints.settings import SettingsError, load_settings

    base = {"PRINTCORE_HOME": str(tmp_path), "PRINTCORE_SECRET_KEY": "k" * 32}
    assert load_settings(base, env_file=None).opener_secret is None
    settings = load_settings({**base, "PRINTCORE_OPENER_SECRET": f"  {SECRET} "}, env_file=None)
    assert settings.opener_secret == SECRET
    assert settings.describe()["opener_secret"] == "********"
    with pytest.raises(SettingsError, match="PRINTCORE_OPENER_SECRET must be at least 16"):
        load_settings({**base, "PRINTCORE_OPENER_SECRET": "too-short"}, env_file=None)


def test_adapters_never_import_entrypoints() -> None:
    """The links reach the web adapter through its OpenerLinks protocol (DESIGN.md: arrows
    point inward only, entrypoints → adapters → printcore)."""
    import ast

    adapters = Path(__file__).resolve().parents[2] / "src" / "adapters"
    found = []
    for path in adapters.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "entrypoints"]
    assert found == []
