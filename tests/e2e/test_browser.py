"""The web UI in a real browser (headless Chromium driven by Playwright): a student
submits through the form (a wrong email first), staff log in, slice, approve, print and
record the payment by clicking through the pages, and the student confirms from the
emailed link. Screenshots of the main pages go to ``$PRINTCORE_SCREENSHOTS`` (else the
test's tmp_path) for a human to look at."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, Playwright, expect, sync_playwright

from _live import PASSWORD, STAFF, LiveServer, confirm_token
from _support import service_missing

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WORKSTATION = "Browser desk"
STUDENT = {
    "student_name": "Grace Hopper",
    "discipline": "Computer Science",
    "class_number": "CS 201",
    "color": "Blue",
    "preferred_printer": "X1C-2",
    "notes": "Please print it upright.\nThanks!",
}
GOOD_EMAIL = "grace.hopper@university.edu"
BAD_EMAIL = "grace.hopper@@university"

# Both tests drive the browser; the database behind the pages is covered by the HTTP
# walk-through on both kinds, so one kind is enough here.
pytestmark = pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        service_missing(f"Chromium not found at {CHROMIUM}")
    playwright: Playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
    except Exception as err:
        playwright.stop()
        service_missing(f"Chromium at {CHROMIUM} does not start: {err}")
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PRINTCORE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _shot(page: Page, folder: Path, name: str, shots: list[Path], prefix: str = "walk") -> None:
    path = folder / f"{prefix}-{len(shots) + 1:02d}-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    shots.append(path)
    print(f"screenshot: {path}")


def _fill_student_form(page: Page, email: str, model: Path) -> None:
    for name, value in STUDENT.items():
        page.locator(f"#{name}").fill(value)
    page.locator("#email").fill(email)
    page.get_by_label("Filament (FDM)").check()
    page.locator("#file").set_input_files(str(model))


def _choose_staff(page: Page) -> None:
    """Pick the staff member once, in the header's "You are:" form."""
    page.locator("#whoami").select_option(STAFF)
    page.locator("#whoami-form button").click()
    expect(page.locator(".flash")).to_contain_text(f"You are {STAFF}")


def _staff_form(page: Page, action: str) -> Locator:
    """The action form posting to ``.../<action>``, its dialog opened; it sends the
    staff member chosen in the header."""
    opener = page.locator(f"details#action-{action}:not([open]) > summary")
    if opener.count():
        opener.click()
    form = page.locator(f'form[action$="/{action}"], form[action*="/{action}?"]')
    expect(form.locator('input[name="staff_name"]')).to_have_value(STAFF)
    return form


def _submit_as_student(page: Page, server: LiveServer, model: Path) -> int:
    page.goto(server.url + "/")
    _fill_student_form(page, GOOD_EMAIL, model)
    page.get_by_role("button", name="Submit request").click()
    page.wait_for_url(re.compile(r"/status/.+\?new=1"))
    match = re.search(r"#(\d+)", page.locator(".flash").inner_text())
    assert match, page.content()
    return int(match.group(1))


def _log_in(page: Page, server: LiveServer) -> None:
    page.goto(server.url + "/staff")
    page.wait_for_url(re.compile(r"/staff/login\?next="))
    page.locator("#workstation").fill(WORKSTATION)
    page.locator("#password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server.url + "/staff")
    _choose_staff(page)


def _slice_and_approve(page: Page, server: LiveServer, job_id: int, sliced: Path) -> None:
    page.goto(f"{server.url}/staff/jobs/{job_id}")
    form = _staff_form(page, "files")
    form.locator('input[type="file"]').set_input_files(str(sliced))
    form.get_by_role("button", name="Upload sliced file").click()
    page.wait_for_url(f"{server.url}/staff/jobs/{job_id}")
    approve = _staff_form(page, "approve")
    approve.get_by_role("button", name="Approve and email the student").click()
    page.wait_for_url(f"{server.url}/staff/jobs/{job_id}")
    expect(page.locator("h1 .status")).to_have_text("Pending confirmation")


def test_student_and_staff_walk_through_the_pages(
    live_server: LiveServer, browser: Browser, fixtures_dir: Path, screenshots: Path
) -> None:
    server = live_server
    model = fixtures_dir / "models" / "Moon.stl"
    sliced = fixtures_dir / "sliced" / "wormdrive.gcode.3mf"
    shots: list[Path] = []
    student_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    staff_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        # 1. The student's form: a wrong email first, everything typed is kept.
        student = student_ctx.new_page()
        student.goto(server.url + "/")
        expect(student.locator("h1")).to_have_text("Submit a 3D print request")
        _fill_student_form(student, BAD_EMAIL, model)
        student.get_by_role("button", name="Submit request").click()
        student.wait_for_url(server.url + "/submit*")
        expect(student.locator("p.error[role=alert]")).to_contain_text("correct the marked")
        email_error = student.locator("#email-error")
        expect(email_error).to_be_visible()
        expect(email_error).to_contain_text("valid email address")
        # the message sits right under the email box
        assert student.locator("#email + p.field-error").get_attribute("id") == "email-error"
        expect(student.locator("#email")).to_have_attribute("aria-invalid", "true")
        expect(student.locator("#email")).to_have_value(BAD_EMAIL)
        for name, value in STUDENT.items():
            expect(student.locator(f"#{name}")).to_have_value(value)
        expect(student.get_by_label("Filament (FDM)")).to_be_checked()
        expect(student.locator("p.reattach")).to_contain_text("attach your file again")
        expect(student.locator("#file")).not_to_have_attribute("aria-invalid", "true")
        _shot(student, screenshots, "form-with-errors", shots)

        student.locator("#email").fill(GOOD_EMAIL)
        student.locator("#file").set_input_files(str(model))
        student.get_by_role("button", name="Submit request").click()
        student.wait_for_url(re.compile(r"/status/.+\?new=1"))
        flash = student.locator(".flash")
        expect(flash).to_contain_text("Your print request number is #")
        match = re.search(r"#(\d+)", flash.inner_text())
        assert match, student.content()
        job_id = int(match.group(1))
        expect(student.locator("h1")).to_have_text(f"Print request #{job_id}")
        expect(student.locator(".status")).to_have_text("Uploaded")
        _shot(student, screenshots, "submitted", shots)

        # 2. Staff: login, dashboard, the job page, the sliced file, the approval.
        staff = staff_ctx.new_page()
        staff.goto(server.url + "/staff")
        staff.wait_for_url(re.compile(r"/staff/login\?next=/staff"))
        expect(staff.locator("h1")).to_have_text("Staff login")
        staff.locator("#workstation").fill(WORKSTATION)
        staff.locator("#password").fill(PASSWORD)
        staff.get_by_role("button", name="Log in").click()
        staff.wait_for_url(server.url + "/staff")
        expect(staff.locator(".ws")).to_contain_text(WORKSTATION)
        _choose_staff(staff)
        tab = staff.locator('.tab[data-status="uploaded"]')
        expect(tab).to_have_class(re.compile(r"\bactive\b"))
        expect(tab).to_contain_text("Uploaded")
        assert int(tab.locator(".count").inner_text()) >= 1
        card = staff.locator(f'.job-card[data-job="{job_id}"]')
        expect(card).to_contain_text(f"#{job_id}")
        expect(card).to_contain_text(STUDENT["student_name"])
        expect(card).to_contain_text("Moon.stl")
        _shot(staff, screenshots, "dashboard", shots)

        card.click()
        staff.wait_for_url(f"{server.url}/staff/jobs/{job_id}")
        expect(staff.locator("h1")).to_contain_text(f"Job #{job_id}")
        expect(staff.locator("h1 .status")).to_have_text("Uploaded")
        upload = staff.locator(f'form[action^="/staff/jobs/{job_id}/files"]')
        expect(upload.locator('input[name="staff_name"]')).to_have_value(STAFF)
        upload.locator('input[type="file"]').set_input_files(str(sliced))
        upload.get_by_role("button", name="Upload sliced file").click()
        staff.wait_for_url(f"{server.url}/staff/jobs/{job_id}")
        expect(staff.locator(".flash")).to_contain_text("Sliced file added.")
        approve = staff.locator("#approve-form")
        weight = approve.locator('input[name="weight_g"]')
        hours = approve.locator('input[name="time_hours"]')
        assert float(weight.input_value()) == pytest.approx(10.48)
        assert float(hours.input_value()) == 1.0
        expect(approve.locator('input[name="staff_name"]')).to_have_value(STAFF)
        # the recommended sliced file is preselected (radio buttons since the saves list)
        expect(approve.locator('input[name="authoritative_file"]:checked')).to_have_count(1)
        _shot(staff, screenshots, "job-before-approval", shots)

        approve = _staff_form(staff, "approve")
        approve.get_by_role("button", name="Approve and email the student").click()
        staff.wait_for_url(f"{server.url}/staff/jobs/{job_id}")
        expect(staff.locator("h1 .status")).to_have_text("Pending confirmation")

        # 3. The student follows the emailed link and accepts the cost.
        token = confirm_token(server, job_id)
        student.goto(f"{server.url}/confirm/{token}")
        expect(student.locator("h1")).to_have_text(f"Confirm print request #{job_id}")
        expect(student.locator(".card")).to_contain_text("$3.00")
        _shot(student, screenshots, "confirm", shots)
        student.get_by_role("button", name=re.compile("I accept the cost")).click()
        student.wait_for_url(re.compile(r"/status/.+\?confirmed=1"))
        expect(student.locator(".status")).to_have_text("Ready to print")
        expect(student.locator(".flash")).to_contain_text("Confirmed")

        # 4. Staff print it, complete it, and record the payment at pickup.
        staff.reload()
        expect(staff.locator("h1 .status")).to_have_text("Ready to print")
        form = _staff_form(staff, "start_print")
        form.locator('input[name="printer"]').fill("X1C-1")
        form.get_by_role("button", name="Mark printing").click()
        staff.wait_for_url(f"{server.url}/staff/jobs/{job_id}")
        expect(staff.locator("h1 .status")).to_have_text("Printing")

        form = _staff_form(staff, "complete")
        form.get_by_role("button", name="Mark complete and email for pickup").click()
        staff.wait_for_url(f"{server.url}/staff/jobs/{job_id}")
        expect(staff.locator("h1 .status")).to_have_text("Completed")

        form = _staff_form(staff, "pick_up")
        form.locator('input[name="grams"]').fill("11.2")
        form.locator('input[name="txn_no"]').fill("TX-2001")
        form.locator('input[name="picked_up_by"]').fill(STUDENT["student_name"])
        form.get_by_role("button", name="Record payment").click()
        staff.wait_for_url(f"{server.url}/staff/jobs/{job_id}")
        expect(staff.locator("h1 .status")).to_have_text("Paid & picked up")
        expect(staff.locator("section.card").first).to_contain_text("TX-2001")

        history = staff.locator("ul.events li")
        for step in ("Sliced file added", "Approved", "Printing started", "Completed",
                     "Paid and picked up"):
            item = history.filter(has=staff.locator("strong", has_text=re.compile(f"^{step}$")))
            expect(item).to_have_count(1)
            expect(item).to_contain_text(f"by {STAFF} @ {WORKSTATION}")
        expect(
            history.filter(has=staff.locator("strong",
                                             has_text=re.compile("^Confirmed by the student$")))
        ).to_have_count(1)
        _shot(staff, screenshots, "job-final", shots)

        # the student's status page follows along
        student.reload()
        expect(student.locator(".status")).to_have_text("Paid & picked up")
    finally:
        student_ctx.close()
        staff_ctx.close()
    print("screenshots:", *map(str, shots), sep="\n  ")


def test_reused_confirmation_link_says_so_and_changes_nothing(
    live_server: LiveServer, browser: Browser, fixtures_dir: Path, screenshots: Path
) -> None:
    server = live_server
    student_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    staff_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    shots: list[Path] = []
    try:
        student = student_ctx.new_page()
        job_id = _submit_as_student(student, server, fixtures_dir / "models" / "Moon.stl")
        staff = staff_ctx.new_page()
        _log_in(staff, server)
        _slice_and_approve(staff, server, job_id, fixtures_dir / "sliced" / "wormdrive.gcode.3mf")

        token = confirm_token(server, job_id)
        student.goto(f"{server.url}/confirm/{token}")
        student.get_by_role("button", name=re.compile("I accept the cost")).click()
        student.wait_for_url(re.compile(r"/status/.+\?confirmed=1"))
        expect(student.locator(".status")).to_have_text("Ready to print")

        # The same link again, as a student clicking the email a second time.
        response = student.goto(f"{server.url}/confirm/{token}")
        assert response is not None and response.status == 200
        expect(student.locator("h1")).to_contain_text("is already confirmed")
        note = student.locator("p.flash[role=status]")
        expect(note).to_have_attribute("data-code", "token_used")
        expect(student.locator("main")).to_contain_text("ready to print")
        expect(student.locator("main")).to_contain_text("Nothing was changed")
        expect(student.get_by_role("button", name=re.compile("I accept the cost"))).to_have_count(0)
        _shot(student, screenshots, "reused-link", shots, prefix="reused")

        staff.reload()
        expect(staff.locator("h1 .status")).to_have_text("Ready to print")
        confirms = staff.locator("ul.events li strong", has_text=re.compile("^Confirmed by the student$"))
        expect(confirms).to_have_count(1)
    finally:
        student_ctx.close()
        staff_ctx.close()
