"""Every page in a real browser, checked by axe-core and for sideways scrolling.

Each page a student or staff member can reach (the form empty and with field errors, the
status page in every state, the confirmation pages, the token error, the staff login with
and without an error, every dashboard tab, a search with and without matches, the job
page in every state, the printers, setup and who-are-you pages, the 404 pages) is its
own test:

* ``test_axe``: no ``critical`` and no ``serious`` axe violation (WCAG 2.x A/AA rules
  and axe's best practices), each violation printed with its rule, elements and summary;
* ``test_no_sideways_scroll``: at 390 px (a phone), 768 px (a tablet) and 1280 px, the
  page is no wider than the window, and no element sticks out past the right edge unless
  it sits inside its own scrolling box (a wide table must become cards or scroll inside
  a box, never push the page sideways).

axe-core is vendored (tests/e2e/vendor/README.md says from where and how to update) and
evaluated through the DevTools protocol (``page.evaluate``), which the page's
Content-Security-Policy (``script-src 'self'``) does not govern: the pages are checked
with their real CSP, not with ``bypass_csp``. ``test_axe_finds_what_it_should`` proves
the harness can fail: on a real page, under that CSP, it must flag planted faults.

Screenshots (1280 and 390 px) of the dashboard, a job page and the student form go to
``$PRINTCORE_SCREENSHOTS`` (else the test's tmp_path).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from test_browser import CHROMIUM, LAUNCH_ARGS, _fill_student_form
from test_queue_browser import _queue

from _live import PASSWORD, STAFF, LiveServer, confirm_token, login, upload_sliced
from _support import FIXTURES, service_missing

AXE_VERSION = "4.14.1"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
AXE = Path(__file__).parent / "vendor" / f"axe-core-{AXE_VERSION}" / "axe.min.js"
MODEL = FIXTURES / "models" / "Moon.stl"
SLICED = FIXTURES / "sliced" / "wormdrive.gcode.3mf"
WIDTHS = (390, 768, 1280)
BLOCKING = ("critical", "serious")
WORKSTATION = "Accessibility desk"
STATES = ("uploaded", "pending", "ready_to_print", "printing", "completed",
          "paid_picked_up", "rejected")

# The pages are the same on both databases; one kind is enough here.
pytestmark = pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)


# --- the lab: one job in every state, made through the real API ------------------------


@attrs.frozen
class Lab:
    server: LiveServer
    tag: str
    jobs: dict[str, int]  # state -> job id
    status_urls: dict[str, str]  # state -> the student's /status/<token>
    confirm_pending: str  # /confirm/<token> of the pending job (not used yet)
    confirm_used: str  # /confirm/<token> of a job already confirmed


def _submit(api: httpx.Client, tag: str, state: str) -> tuple[int, str]:
    data = {"student_name": f"Student {state.replace('_', ' ').title()} {tag}",
            "email": f"{state}.{tag}@university.edu", "discipline": "Mechanical Engineering",
            "class_number": "ME 101", "print_method": "filament", "color": "Red",
            "preferred_printer": "", "notes": "Please print it upright, with a brim."}
    with MODEL.open("rb") as handle:
        r = api.post("/submissions", data=data, files={"file": (MODEL.name, handle)})
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), str(r.json()["status_url"])


def _act(api: httpx.Client, headers: dict[str, str], job_id: int, path: str,
         **extra: Any) -> None:
    r = api.post(f"/jobs/{job_id}/{path}", headers=headers, json={"staff_name": STAFF, **extra})
    assert r.status_code == 200, (path, r.text)


@pytest.fixture(scope="module")
def lab(live_server: LiveServer) -> Lab:
    server = live_server
    tag = os.urandom(4).hex()
    jobs: dict[str, int] = {}
    urls: dict[str, str] = {}
    tokens: dict[str, str] = {}
    with server.api() as api:
        headers = login(api)
        for state in STATES:
            job_id, url = _submit(api, tag, state)
            jobs[state], urls[state] = job_id, url
            if state == "uploaded":
                continue
            if state == "rejected":
                _act(api, headers, job_id, "reject", reasons=["Walls too thin to print."])
                continue
            r = upload_sliced(api, headers, job_id, SLICED)
            assert r.status_code == 201, r.text
            _act(api, headers, job_id, "approve", weight_g=10.48, time_hours=1.0,
                 authoritative_file=r.json()["file"]["stored_name"])
            tokens[state] = confirm_token(server, job_id)
            if state == "pending":
                continue
            assert api.post("/confirm", json={"token": tokens[state]}).status_code == 200
            steps = [("mark-printing", {"printer": "X1C-1"}), ("mark-complete", {}),
                     ("payment", {"grams": 11.2, "txn_no": f"TX-{job_id}",
                                  "picked_up_by": "Jane Doe"})]
            for path, extra in steps[: STATES.index(state) - STATES.index("ready_to_print")]:
                _act(api, headers, job_id, path, **extra)
        for state, job_id in jobs.items():
            assert api.get(f"/jobs/{job_id}", headers=headers).json()["status"] == state
    # people in the self-service queue, so the printers page shows its table
    for member, job, est in (("ann", "bracket", "1h"), ("bob", "gear with a long name", "30m"),
                             ("cy", "hook", "2h"), ("dee", "phone stand", "45m")):
        _queue(server, "join", f"a11y-{member}-{tag}", job, est, "--name", member.capitalize())
    return Lab(server, tag, jobs, urls, f"/confirm/{tokens['pending']}",
               f"/confirm/{tokens['ready_to_print']}")


# --- the browser ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        service_missing(f"Chromium not found at {CHROMIUM}")
    playwright: Playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
    except Exception as err:
        playwright.stop()
        service_missing(f"Chromium at {CHROMIUM} does not start: {err}")
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture(scope="module")
def student(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@pytest.fixture(scope="module")
def staff(browser: Browser, lab: Lab) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(lab.server.url + "/staff/login?next=/staff")
    page.locator("#workstation").fill(WORKSTATION)
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lab.server.url + "/staff")
    page.close()
    yield context
    context.close()


# --- the pages -----------------------------------------------------------------------


def _go(path: Callable[[Lab], str], status: int = 200) -> Callable[[Page, Lab], None]:
    def visit(page: Page, lab: Lab) -> None:
        response = page.goto(lab.server.url + path(lab), wait_until="load")
        assert response is not None and response.status == status, (
            path(lab), response and response.status)
    return visit


def _form_with_errors(page: Page, lab: Lab) -> None:
    _go(lambda _: "/")(page, lab)
    _fill_student_form(page, "not-an-email@@university", MODEL)
    page.get_by_role("button", name="Submit request").click()
    page.wait_for_url(lab.server.url + "/submit*")
    assert page.locator("#email[aria-invalid=true]").count() == 1, page.content()


def _login_with_error(page: Page, lab: Lab) -> None:
    page.context.clear_cookies()  # a fresh visitor
    _go(lambda _: "/staff/login?next=/staff")(page, lab)
    page.locator("#workstation").fill(WORKSTATION)
    page.locator("#password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    page.locator(".error[role=alert]").wait_for()


# name -> (who, how to get there)
PAGES: dict[str, tuple[str, Callable[[Page, Lab], None]]] = {
    "student-form": ("student", _go(lambda _: "/")),
    "student-form-errors": ("student", _form_with_errors),
    **{f"student-status-{s}": ("student", _go(lambda lab, s=s: lab.status_urls[s]))
       for s in STATES},
    "student-status-new": ("student", _go(lambda lab: lab.status_urls["uploaded"] + "?new=1")),
    "student-confirm": ("student", _go(lambda lab: lab.confirm_pending)),
    "student-already-confirmed": ("student", _go(lambda lab: lab.confirm_used)),
    "student-token-error": ("student", _go(lambda _: "/confirm/not-a-real-token", 400)),
    "student-status-token-error": ("student", _go(lambda _: "/status/not-a-real-token", 400)),
    "not-found": ("student", _go(lambda _: "/no/such/page", 404)),
    "staff-login": ("student", _go(lambda _: "/staff/login?next=/staff")),
    "staff-login-error": ("student", _login_with_error),
    **{f"dashboard-{s}": ("staff", _go(lambda _, s=s: f"/staff?status={s}")) for s in STATES},
    "dashboard-search": ("staff", _go(lambda lab: f"/staff?q={lab.tag}")),
    "dashboard-search-none": ("staff", _go(lambda lab: f"/staff?q=nobody-{lab.tag}")),
    **{f"job-{s}": ("staff", _go(lambda lab, s=s: f"/staff/jobs/{lab.jobs[s]}"))
       for s in STATES},
    "job-not-found": ("staff", _go(lambda _: "/staff/jobs/999999", 404)),
    "printers": ("staff", _go(lambda _: "/staff/printers")),
    "staff-reports": ("staff", _go(lambda _: "/staff/reports")),
    "staff-setup": ("staff", _go(lambda _: "/staff/setup")),
    "staff-whoami": ("staff", _go(lambda _: "/staff/whoami")),
    **{f"admin-{section or 'overview'}": (
        "staff", _go(lambda _, section=section: "/staff/admin" + (f"/{section}" if section else "")))
       for section in ("", "staff", "password", "workstations", "settings", "outbox",
                       "diagnostics", "audit", "retention")},
}


def _open(name: str, lab: Lab, student: BrowserContext, staff: BrowserContext,
          width: int = 1280) -> Page:
    who, visit = PAGES[name]
    page = (staff if who == "staff" else student).new_page()
    page.set_viewport_size({"width": width, "height": 900})
    visit(page, lab)
    return page


# --- axe -----------------------------------------------------------------------------


def _axe_source() -> str:
    source = AXE.read_bytes()
    assert hashlib.sha256(source).hexdigest() == AXE_SHA256, (
        f"{AXE} is not the vendored axe-core {AXE_VERSION}")
    return source.decode()


def run_axe(page: Page) -> list[dict[str, Any]]:
    """axe's violations on ``page``: rule id, impact, summary and the elements."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    assert page.evaluate("window.axe.version") == AXE_VERSION
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target.join(' '), impact: n.impact,
                                      summary: n.failureSummary, html: n.html}))}));
    }""")
    return list(result)


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']}")
        for node in v["nodes"]:
            summary = " ".join((node["summary"] or "").split())
            lines.append(f"    {node['target']}  {node['html'][:120]}\n      {summary[:300]}")
    return "\n".join(lines)


@pytest.mark.parametrize("name", PAGES)
def test_axe(name: str, lab: Lab, student: BrowserContext, staff: BrowserContext) -> None:
    page = _open(name, lab, student, staff)
    try:
        violations = run_axe(page)
    finally:
        page.close()
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    if violations:
        print(f"{name}: every axe violation\n{describe(violations)}")
    assert not blocking, f"{name}: critical/serious axe violations\n{describe(blocking)}"


def test_axe_finds_what_it_should(lab: Lab, student: BrowserContext,
                                  staff: BrowserContext) -> None:
    """The harness can fail: faults planted in a real page (under its CSP) are found."""
    page = _open("job-uploaded", lab, student, staff)
    try:
        page.evaluate("""() => {
            const main = document.querySelector('main');
            main.insertAdjacentHTML('beforeend',
                '<img id="planted-img" src="/static/none.png">' +
                '<input id="planted-input" type="text">' +
                '<p id="planted-contrast">faint</p>');
            // CSSOM, since the CSP refuses style attributes
            const faint = document.getElementById('planted-contrast').style;
            faint.color = '#ccc';
            faint.background = '#fff';
        }""")
        found = {(v["id"], n["target"]) for v in run_axe(page) for n in v["nodes"]}
    finally:
        page.close()
    assert ("image-alt", "#planted-img") in found, found
    assert ("label", "#planted-input") in found, found
    assert ("color-contrast", "#planted-contrast") in found, found


@pytest.mark.parametrize(("name", "fields"), [
    ("student-form-errors", ["email"]),
    ("staff-login-error", ["password"]),
])
def test_errors_are_tied_to_their_fields(name: str, fields: list[str], lab: Lab,
                                         student: BrowserContext, staff: BrowserContext) -> None:
    """A field marked invalid names its message (aria-describedby), so a screen reader
    reads the message with the field; axe does not check this."""
    page = _open(name, lab, student, staff)
    try:
        invalid = page.evaluate("""() => [...document.querySelectorAll('[aria-invalid=true]')]
            .map(el => ({id: el.id, description: (el.getAttribute('aria-describedby') || '')
                .split(/\\s+/).filter(Boolean)
                .map(ref => (document.getElementById(ref) || {}).textContent || '')
                .join(' ').trim()}))""")
    finally:
        page.close()
    assert sorted(f["id"] for f in invalid) == sorted(fields), invalid
    for field in invalid:
        assert field["description"], f"{name}: #{field['id']} is invalid but names no message"


# --- responsive ----------------------------------------------------------------------

OVERFLOW = """() => {
    const width = window.innerWidth;
    const scrolls = el => {
        for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
            const x = getComputedStyle(p).overflowX;
            if (x === 'auto' || x === 'scroll') return p;
        }
        return null;
    };
    const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        [...el.classList].map(c => '.' + c).join('');
    const out = [];
    for (const el of document.body.querySelectorAll('*')) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) continue;
        const box = scrolls(el);
        // inside a box that scrolls (and, if placed absolutely, whose position it follows)
        const pos = getComputedStyle(el).position;
        const follows = box && (pos === 'fixed' ? false : pos !== 'absolute' ||
                                (el.offsetParent && box.contains(el.offsetParent)));
        if (follows && box.getBoundingClientRect().right <= width + 1) continue;
        // text that does not wrap spills out of its box: count what spills too
        const spill = getComputedStyle(el).overflowX === 'visible' ? el.scrollWidth : 0;
        const right = Math.max(r.right, r.left + spill);
        if (right > width + 1) out.push({el, right});
    }
    // name the innermost culprits, not every ancestor they push out
    const culprits = out.filter(o => !out.some(other => other.el !== o.el && o.el.contains(other.el)));
    const sticking = culprits.map(o => `${name(o.el)} right=${Math.round(o.right)} (${
        (o.el.textContent || '').trim().slice(0, 40)})`);
    return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width,
            bodyOverflowX: getComputedStyle(document.body).overflowX,
            htmlOverflowX: getComputedStyle(document.documentElement).overflowX,
            sticking: sticking.slice(0, 15)};
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", PAGES)
def test_no_sideways_scroll(name: str, width: int, lab: Lab, student: BrowserContext,
                            staff: BrowserContext) -> None:
    page = _open(name, lab, student, staff, width)
    try:
        found = page.evaluate(OVERFLOW)
        tables = page.evaluate("""() => [...document.querySelectorAll('table')].map(t => {
            let box = t;
            for (; box; box = box.parentElement) {
                const x = getComputedStyle(box).overflowX;
                if (x === 'auto' || x === 'scroll') break;
            }
            return {table: t.id || t.className || 'table', display: getComputedStyle(t).display,
                    right: Math.round(t.getBoundingClientRect().right),
                    scrollBox: box ? box.tagName.toLowerCase() + '.' + box.className : null,
                    boxRight: box ? Math.round(box.getBoundingClientRect().right) : null};
        })""")
    finally:
        page.close()
    assert found["scrollWidth"] <= found["innerWidth"], f"{name} at {width}px: {found} {tables}"
    # no hiding the overflow instead of fixing it
    assert "hidden" not in (found["bodyOverflowX"], found["htmlOverflowX"]), found
    assert not found["sticking"], f"{name} at {width}px, past the right edge: {found}"
    for table in tables:  # as cards, or scrolling inside its own box: either way it fits
        right = table["right"] if table["scrollBox"] is None else table["boxRight"]
        assert right <= width + 1, f"{name} at {width}px, a table too wide: {table}"


# --- screenshots for a human -----------------------------------------------------------


def test_screenshots(lab: Lab, student: BrowserContext, staff: BrowserContext,
                     tmp_path: Path) -> None:
    folder = Path(os.environ.get("PRINTCORE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    shots = []
    for name in ("dashboard-uploaded", "job-ready_to_print", "student-form", "printers"):
        for width in (1280, 390):
            page = _open(name, lab, student, staff, width)
            path = folder / f"a11y-{name}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            page.close()
            shots.append(path)
            print(f"screenshot: {path}")
    assert all(p.stat().st_size > 10_000 for p in shots), shots
