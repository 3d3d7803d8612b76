"""Finding jobs over HTTP (issue 12), on a real server per database (SQLite, PostgreSQL):
``GET /api/v1/jobs?q=`` and the staff dashboard's ``/staff?q=``, across all states with
each match's state, the header's search box on every staff page, and bad input."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator

import attrs
import httpx
import pytest

from _live import PASSWORD, STAFF, LiveServer, login, submit
from _support import FIXTURES

MODEL = FIXTURES / "models" / "Moon.stl"


@attrs.frozen
class Lab:
    server: LiveServer
    headers: dict[str, str]
    tag: str  # unique per server: keeps these jobs apart from other tests' jobs
    ids: dict[str, int]


@pytest.fixture(scope="module")
def lab(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Lab:
    tag = uuid.uuid4().hex[:8]
    folder = tmp_path_factory.mktemp("models")
    model = folder / f"Bracket_{tag}_50%_v2.stl"
    shutil.copy(MODEL, model)
    with live_server.api() as api:
        headers = login(api)
        ids = {
            "ada": submit(api, model, student_name=f"Ada Lovelace{tag}",
                          email=f"ada.{tag}@Example.edu", color="Red"),
            "grace": submit(api, MODEL, student_name=f"Grace Hopper{tag}",
                            email=f"grace.{tag}@example.edu", print_method="resin",
                            color="Grey", discipline="Mathematics"),
            "emilie": submit(api, MODEL, student_name=f"Émilie Châtelet{tag}",
                             email=f"emilie.{tag}@example.fr", color="Blue"),
        }
        r = api.post(f"/jobs/{ids['grace']}/reject", headers=headers,
                     json={"staff_name": STAFF, "reasons": ["Walls too thin."]})
        assert r.status_code == 200, r.text
    return Lab(live_server, headers, tag, ids)


@pytest.fixture
def api(lab: Lab) -> Iterator[httpx.Client]:
    with lab.server.api() as client:
        client.headers.update(lab.headers)
        yield client


@pytest.fixture(scope="module")
def web(lab: Lab) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lab.server.url, timeout=60) as client:
        page = client.get("/staff/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        r = client.post("/staff/login?next=/staff", data={
            "csrf_token": csrf.group(1), "workstation": "Search desk", "password": PASSWORD})
        assert r.status_code == 303, r.text
        yield client


def found(api: httpx.Client, **params: str) -> tuple[list[int], int, dict[int, str]]:
    r = api.get("/jobs", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"jobs", "counts", "total", "limit", "offset"}
    return ([j["id"] for j in body["jobs"]], body["total"],
            {j["id"]: j["status"] for j in body["jobs"]})


# --- the API --------------------------------------------------------------------------


def test_api_q_finds_across_states_with_their_status(lab: Lab, api: httpx.Client) -> None:
    ids, total, states = found(api, q=lab.tag)
    assert ids == [lab.ids["ada"], lab.ids["grace"], lab.ids["emilie"]] and total == 3
    assert states[lab.ids["grace"]] == "rejected" and states[lab.ids["ada"]] == "uploaded"
    assert found(api, q=f"GRACE.{lab.tag}@EXAMPLE")[0] == [lab.ids["grace"]]  # email
    assert found(api, q=f"chatelet{lab.tag}")[0] == [lab.ids["emilie"]]  # accents ignored
    assert found(api, q=f"bracket_{lab.tag}_50%")[0] == [lab.ids["ada"]]  # original name
    assert found(api, q=f"#{lab.ids['grace']}")[0] == [lab.ids["grace"]]  # #id
    assert lab.ids["grace"] in found(api, q=str(lab.ids["grace"]))[0]  # id


def test_api_stored_file_names_filters_sort_and_paging(lab: Lab, api: httpx.Client) -> None:
    stored = api.get(f"/jobs/{lab.ids['ada']}").json()["files"][0]["stored_name"]
    assert lab.ids["ada"] in found(api, q=stored)[0]
    assert found(api, q=lab.tag, print_method="resin")[0] == [lab.ids["grace"]]
    assert found(api, q=lab.tag, color="red")[0] == [lab.ids["ada"]]
    assert found(api, q=lab.tag, discipline="mathematics")[0] == [lab.ids["grace"]]
    assert found(api, q=lab.tag, preferred_printer="nowhere")[:2] == ([], 0)
    assert found(api, q=lab.tag, status="rejected")[0] == [lab.ids["grace"]]
    # by name: ada, emilie ("émilie" folds to "emilie"), grace
    assert found(api, q=lab.tag, sort="name")[0] == [
        lab.ids["ada"], lab.ids["emilie"], lab.ids["grace"]]
    ids, total, _ = found(api, q=lab.tag, limit="2", offset="2")
    assert (ids, total) == ([lab.ids["emilie"]], 3)
    assert found(api, q=f"ada.{lab.tag}")[0] == [lab.ids["ada"]]
    assert found(api, q=f"ada_{lab.tag}")[:2] == ([], 0)  # "_" is literal, not "any character"
    assert found(api, q=f"ada%{lab.tag}")[:2] == ([], 0)  # and so is "%"


def test_api_without_search_keeps_its_listing_and_adds_total(lab: Lab, api: httpx.Client) -> None:
    body = api.get("/jobs", params={"limit": "1"}).json()
    assert body["total"] == sum(body["counts"].values()) and len(body["jobs"]) == 1
    body = api.get("/jobs", params={"status": "rejected"}).json()
    assert body["total"] == body["counts"]["rejected"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": "x" * 201}, "q"),
        ({"q": "ada", "sort": "newest"}, "sort"),
        ({"sort": "size"}, "sort"),
        ({"q": "ada", "status": "lost"}, "status"),
    ],
)
def test_api_refuses_bad_search_input(
    api: httpx.Client, params: dict[str, str], field: str
) -> None:
    r = api.get("/jobs", params=params)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and field in error["fields"]


def test_api_refuses_a_control_character_in_q_at_the_guard(api: httpx.Client) -> None:
    r = api.get("/jobs?q=ada%00x")
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_text" and "q" in error["fields"]


def test_api_search_needs_a_login(lab: Lab) -> None:
    with lab.server.api() as anonymous:
        assert anonymous.get("/jobs", params={"q": lab.tag}).status_code == 401


# --- the dashboard --------------------------------------------------------------------


def _cards(page: str) -> dict[int, str]:
    """job id → state shown on each card of a search result."""
    return {int(i): s for i, s in re.findall(
        r'data-job="(\d+)"[^>]*>(?:(?!</a>).)*?<div class="job-head">(?:(?!</a>).)*?'
        r'data-state="([a-z_]+)"', page, re.S)}


def test_dashboard_search_lists_matches_with_their_states(lab: Lab, web: httpx.Client) -> None:
    r = web.get("/staff", params={"q": lab.tag})
    assert r.status_code == 200
    page = r.text
    assert _cards(page) == {lab.ids["ada"]: "uploaded", lab.ids["grace"]: "rejected",
                            lab.ids["emilie"]: "uploaded"}
    assert "Rejected</span>" in page and "3 matches in all states" in page
    assert 'id="clear-search" href="/staff"' in page or 'href="/staff" id="clear-search"' in page
    assert 'class="tabs"' not in page  # the tabs give way to the matches
    assert f'value="{lab.tag}"' in page  # the box keeps what was typed
    body = page.split("<body", 1)[1]
    assert "<script" not in body and " style=" not in body  # the CSP forbids inline ones


def test_dashboard_filters_and_sort(lab: Lab, web: httpx.Client) -> None:
    page = web.get("/staff", params={"q": lab.tag, "print_method": "resin"}).text
    assert _cards(page) == {lab.ids["grace"]: "rejected"} and "1 match in" in page
    page = web.get("/staff", params={"color": "blue", "q": lab.tag}).text
    assert list(_cards(page)) == [lab.ids["emilie"]]
    page = web.get("/staff", params={"q": lab.tag, "sort": "name"}).text
    assert list(_cards(page)) == [lab.ids["ada"], lab.ids["emilie"], lab.ids["grace"]]
    page = web.get("/staff", params={"q": f"nobody-{lab.tag}"}).text
    assert "No job matches this search." in page


def test_dashboard_without_search_shows_the_tabs(web: httpx.Client) -> None:
    page = web.get("/staff").text
    assert 'class="tabs"' in page and 'id="search-form"' in page
    assert 'id="clear-search"' not in page


def test_every_staff_page_has_the_search_box(lab: Lab, web: httpx.Client) -> None:
    for path in ("/staff", f"/staff/jobs/{lab.ids['ada']}", "/staff/printers"):
        page = web.get(path).text
        assert re.search(r'<form method="get" action="/staff"[^>]*role="search"', page), path
        assert 'id="nav-q" name="q"' in page, path


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"q": "x" * 201}, 422),
        ({"q": "ada", "sort": "newest"}, 422),
    ],
)
def test_dashboard_refuses_bad_search_input(
    web: httpx.Client, query: dict[str, str], status: int
) -> None:
    assert web.get("/staff", params=query).status_code == status


def test_dashboard_refuses_a_control_character_in_q(web: httpx.Client) -> None:
    assert web.get("/staff?q=a%1bb").status_code == 422


def test_dashboard_search_needs_a_login(lab: Lab) -> None:
    r = httpx.get(lab.server.url + "/staff", params={"q": lab.tag}, follow_redirects=False)
    assert r.status_code == 303 and "/staff/login" in r.headers["location"]
