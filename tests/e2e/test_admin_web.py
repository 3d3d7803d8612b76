"""The admin area (/staff/admin) in Chromium against a real server delivering to a real
SMTP server, plus HTTP checks on SQLite and PostgreSQL and the diagnostics in-process.

Browser: staff added, refused as a duplicate, renamed (the page says past events keep
the old name), deactivated after a wrong then the right password again, reactivated;
the shared password changed (a wrong current password refused and nothing changed, two
different new ones refused), after which a second browser context is logged out while
this one stays signed in; a workstation ended (wrong password first); the settings with
a description for every field, secrets masked; of three refused emails one sent again
alone, then the other two with "send all failed again" (one lab event with the count 2).
Screenshots at 1280 and 390 px go to /tmp/shots/admin-*.png (PRINTCORE_SCREENSHOTS
overrides the folder); each page is checked for sideways scrolling and by axe there.

Bad inputs tried over HTTP: not logged in (to the login page), a forged CSRF token
(403), an unknown member (404), the last active member deactivated (422), a rename onto
a taken name in another case (409), reactivating an active member (409), adding an
empty name (422), a missing password again (422), ending an unknown session (404) and
the own session (422), an unknown message (404). Each leaves the staff list and the lab
events as they were.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from starlette.testclient import TestClient
from test_accessibility import describe, run_axe
from test_browser import browser  # noqa: F401 - the Chromium fixture

from _live import PASSWORD, STAFF, LiveServer, start_server, stop_server, submit
from _smtp import SmtpServer
from _support import FIXTURES

MODEL = FIXTURES / "models" / "Moon.stl"
NEW_PASSWORD = "a brand new staff password"
SHOTS = Path(os.environ.get("PRINTCORE_SCREENSHOTS") or "/tmp/shots")


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("admin"),
                        {**smtp.env, "PRINTCORE_OUTBOX_RETRY_SECONDS": "1"}, "sqlite")
    live.printcore("staff", "add", "Ben Okafor")
    yield live
    stop_server(live)


def _shots(page: Page, name: str) -> None:
    """Full-page screenshots of the current page at 1280 and 390 px wide; at each width
    the page neither scrolls sideways nor has a serious or critical axe violation."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"admin-{name}-{width}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name} at {width} px scrolls sideways by {overflow} px"
        bad = [v for v in run_axe(page) if v["impact"] in ("serious", "critical")]
        assert not bad, f"{name} at {width} px:\n{describe(bad)}"
    page.set_viewport_size({"width": 1280, "height": 900})


def _log_in(page: Page, server: LiveServer, workstation: str,
            password: str = PASSWORD) -> None:
    page.goto(server.url + "/staff/admin")
    page.wait_for_url(re.compile(r"/staff/login\?next=/staff/admin"))
    page.locator("#workstation").fill(workstation)
    page.locator("#password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(server.url + "/staff/admin")


def _choose(page: Page, name: str) -> None:
    page.locator("#whoami").select_option(name)
    page.locator("#whoami-form button").click()
    expect(page.locator(".flash")).to_contain_text(f"You are {name}")


@pytest.fixture
def admin(server: LiveServer, browser: Browser) -> Iterator[Page]:  # noqa: F811
    """A logged-in admin page at 1280 px, acting as STAFF."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _log_in(page, server, "Admin desk")
    _choose(page, STAFF)
    try:
        yield page
    finally:
        context.close()


def test_staff_members_added_renamed_deactivated_and_reactivated(
        admin: Page, server: LiveServer) -> None:
    page = admin
    expect(page.locator("#admin-link")).to_be_visible()
    page.locator("#admin-link").click()
    page.wait_for_url(server.url + "/staff/admin")
    expect(page.locator("h1")).to_have_text("Admin")
    for href in ("/staff/admin/audit", "/staff/admin/retention"):
        expect(page.locator(f'.admin-sections a[href="{href}"]')).to_have_count(1)
    page.locator('.admin-sections a[href="/staff/admin/staff"]').click()
    expect(page.locator('nav.tabs a[aria-current="page"]')).to_have_text("Staff members")
    expect(page.locator('nav.tabs a[href="/staff/admin/audit"]')).to_have_count(1)

    page.locator("#add-name").fill("Cy Former")
    page.locator("#add-staff-form button").click()
    expect(page.locator(".flash")).to_contain_text("Cy Former was added")
    # the same name in another case: 409, nothing added
    page.locator("#add-name").fill("cy former")
    page.locator("#add-staff-form button").click()
    expect(page.locator("#admin-error")).to_contain_text("already on the staff list")
    expect(page.locator("#err-add-name")).to_be_visible()
    expect(page.locator("#staff-list > li")).to_have_count(3)
    page.goto(server.url + "/staff/admin/staff")

    row = page.locator('#staff-list li[data-member="Cy Former"]')
    row.locator('input[name="new_name"]').fill("Cyrus Former")
    row.get_by_role("button", name="Rename").click()
    expect(page.locator(".flash")).to_contain_text("Cy Former is now Cyrus Former")
    expect(page.locator(".flash")).to_contain_text("Past events still show Cy Former")
    expect(page.locator(".hint").first).to_contain_text("past events keep the name")

    row = page.locator('#staff-list li[data-member="Cyrus Former"]')
    row.locator("summary").click()
    row.locator('input[name="confirm_password"]').fill("not the password")
    row.get_by_role("button", name="Deactivate Cyrus Former").click()
    expect(page.locator("#admin-error")).to_contain_text("wrong; nothing was changed")
    row = page.locator('#staff-list li[data-member="Cyrus Former"]')
    expect(row).to_have_attribute("data-active", "yes")
    expect(row.locator(".field-error")).to_have_text("Wrong password; try again.")
    _shots(page, "staff-refused")
    row.locator('input[name="confirm_password"]').fill(PASSWORD)
    row.get_by_role("button", name="Deactivate Cyrus Former").click()
    expect(page.locator(".flash")).to_contain_text("Cyrus Former was deactivated")
    row = page.locator('#staff-list li[data-member="Cyrus Former"]')
    expect(row).to_have_attribute("data-active", "no")
    expect(page.locator('#whoami option[value="Cyrus Former"]')).to_have_count(0)
    row.get_by_role("button", name="Reactivate").click()
    expect(page.locator(".flash")).to_contain_text("Cyrus Former is back")
    expect(page.locator('#whoami option[value="Cyrus Former"]')).to_have_count(1)
    _shots(page, "staff")

    page.goto(server.url + "/staff/admin")
    kinds = page.locator("#admin-events tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)")
    assert kinds[:4] == ["staff_reactivated", "staff_deactivated", "staff_renamed",
                         "staff_added"]
    newest = page.locator("#admin-events tbody tr").first
    expect(newest).to_contain_text(STAFF)
    expect(newest).to_contain_text("Admin desk")
    expect(page.locator('#admin-events tr[data-kind="staff_renamed"] .event-details')).to_have_text(
        "old: Cy Former · new: Cyrus Former")
    _shots(page, "overview")


def test_a_password_change_logs_out_the_other_workstations_only(
        admin: Page, server: LiveServer, browser: Browser) -> None:  # noqa: F811
    other_context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        other = other_context.new_page()
        _log_in(other, server, "Back room")
        page = admin
        page.goto(server.url + "/staff/admin/password")
        _shots(page, "password")

        page.locator("#confirm_password").fill("wrong password")
        page.locator("#password").fill(NEW_PASSWORD)
        page.locator("#password_again").fill(NEW_PASSWORD)
        page.locator("#password-form button").click()
        expect(page.locator("#err-confirm_password")).to_have_text("Wrong password; try again.")
        other.goto(server.url + "/staff/admin")  # nothing changed: still signed in
        expect(other.locator("h1")).to_have_text("Admin")

        page.locator("#confirm_password").fill(PASSWORD)
        page.locator("#password").fill(NEW_PASSWORD)
        page.locator("#password_again").fill(NEW_PASSWORD + "!")
        page.locator("#password-form button").click()
        expect(page.locator("#err-password_again")).to_be_visible()
        other.goto(server.url + "/staff/admin")
        expect(other.locator("h1")).to_have_text("Admin")

        page.locator("#confirm_password").fill(PASSWORD)
        page.locator("#password").fill(NEW_PASSWORD)
        page.locator("#password_again").fill(NEW_PASSWORD)
        page.locator("#password-form button").click()
        expect(page.locator(".flash")).to_contain_text("Every other workstation was signed out")
        page.goto(server.url + "/staff/admin/workstations")  # this one stays signed in
        expect(page.locator("#sessions > li")).to_have_count(1)
        expect(page.locator('#sessions li[data-own="yes"]')).to_contain_text("Admin desk")

        other.goto(server.url + "/staff/admin")
        other.wait_for_url(re.compile(r"/staff/login"))
        other.locator("#workstation").fill("Back room")
        other.locator("#password").fill(PASSWORD)  # the old one no longer works
        other.get_by_role("button", name="Log in").click()
        expect(other.locator(".error")).to_be_visible()

        # put the password back for the other tests, through the same page
        page.goto(server.url + "/staff/admin/password")
        page.locator("#confirm_password").fill(NEW_PASSWORD)
        page.locator("#password").fill(PASSWORD)
        page.locator("#password_again").fill(PASSWORD)
        page.locator("#password-form button").click()
        expect(page.locator(".flash")).to_contain_text("password was changed")
        page.goto(server.url + "/staff/admin")
        expect(page.locator('#admin-events tr[data-kind="password_changed"]')).to_have_count(2)
    finally:
        other_context.close()


def test_a_workstation_is_ended_with_the_password_again(
        admin: Page, server: LiveServer, browser: Browser) -> None:  # noqa: F811
    other_context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        other = other_context.new_page()
        _log_in(other, server, "Laser corner")
        page = admin
        page.goto(server.url + "/staff/admin/workstations")
        row = page.locator('#sessions li[data-workstation="Laser corner"]')
        expect(row).to_contain_text("Laser corner")
        expect(page.locator('#sessions li[data-own="yes"]')).to_contain_text("use Log out")
        row.locator("summary").click()
        row.locator('input[name="confirm_password"]').fill("nope")
        row.get_by_role("button", name="Sign Laser corner out").click()
        expect(page.locator("#admin-error")).to_contain_text("nothing was changed")
        other.goto(server.url + "/staff/admin")
        expect(other.locator("h1")).to_have_text("Admin")
        row = page.locator('#sessions li[data-workstation="Laser corner"]')
        expect(row.locator("details")).to_have_attribute("open", "")
        row.locator('input[name="confirm_password"]').fill(PASSWORD)
        _shots(page, "workstations")
        row.get_by_role("button", name="Sign Laser corner out").click()
        expect(page.locator(".flash")).to_contain_text("The login of Laser corner was ended")
        expect(page.locator('#sessions li[data-workstation="Laser corner"]')).to_have_count(0)
        other.goto(server.url + "/staff/admin")
        other.wait_for_url(re.compile(r"/staff/login"))
    finally:
        other_context.close()


def test_settings_in_effect_are_described_and_secrets_masked(
        admin: Page, server: LiveServer) -> None:
    from entrypoints.settings import Settings

    page = admin
    page.goto(server.url + "/staff/admin/settings")
    for field in attrs.fields(Settings):
        row = page.locator(f'#settings tr[data-setting="{field.name}"]')
        expect(row).to_have_count(1)
        description = row.locator(".setting-description").inner_text()
        assert description.strip() and "no description" not in description, field.name
    expect(page.locator('#settings tr[data-setting="secret_key"] .setting-value')).to_have_text(
        "********")
    expect(page.locator('#settings tr[data-setting="staff_password"] .setting-value')
           ).to_have_text("********")
    expect(page.locator('#pricing dd[data-rate="filament"]')).to_have_text("10 cents per gram")
    expect(page.locator('#pricing dd[data-rate="minimum"]')).to_contain_text("$3.00")
    expect(page.locator("#colors")).to_contain_text("other")
    expect(page.locator("#reasons li").first).to_be_visible()
    expect(page.locator("#access-hours")).to_contain_text("always")
    _shots(page, "settings")


def test_failed_emails_are_sent_again_one_or_all_at_once(
        admin: Page, server: LiveServer, smtp: SmtpServer) -> None:
    addresses = ["gone.one@university.edu", "gone.two@university.edu",
                 "gone.three@university.edu"]
    for address in addresses:
        smtp.refuse[address] = f"550 5.1.1 <{address}>: User unknown"
    with server.api() as api:
        jobs = {address: submit(api, MODEL, email=address) for address in addresses}
    page = admin
    for _ in range(60):
        page.goto(server.url + "/staff/admin/outbox")
        if page.locator("#outbox-failed tr[data-message]").count() == 3:
            break
        page.wait_for_timeout(500)
    expect(page.locator("#outbox-failed tr[data-message]")).to_have_count(3)
    expect(page.locator("#outbox-failed")).to_contain_text("User unknown")
    _shots(page, "outbox")
    for address in addresses:
        del smtp.refuse[address]
    before = len(smtp.messages())

    one = page.locator("#outbox-failed tr[data-message]", has_text=addresses[2])
    message_id = one.get_attribute("data-message")
    one.get_by_role("button", name="Send again").click()
    expect(page.locator(".flash")).to_have_text(f"Message {message_id} will be sent again now.")
    page.goto(f"{server.url}/staff/jobs/{jobs[addresses[2]]}")
    expect(page.locator("body")).to_contain_text("Email sent again")

    page.goto(server.url + "/staff/admin/outbox")
    expect(page.locator("#outbox-failed tr[data-message]")).to_have_count(2)
    page.locator("#retry-failed-form button").click()
    expect(page.locator(".flash")).to_contain_text("2 failed messages will be sent again now")
    for _ in range(60):
        if len(smtp.messages()) - before >= 3:
            break
        page.wait_for_timeout(500)
    got = sorted(m.envelope_to[0] for m in smtp.messages()[before:])
    assert got == sorted(addresses)
    page.goto(server.url + "/staff/admin/outbox")
    expect(page.locator("#outbox-failed tr[data-message]")).to_have_count(0)
    page.goto(server.url + "/staff/admin")
    run = page.locator('#admin-events tr[data-kind="outbox_retried"]')
    expect(run).to_have_count(1)  # one event for the run, with the count
    expect(run).to_contain_text("count: 2")
    expect(run).to_contain_text(STAFF)
    page.goto(server.url + "/staff/admin/diagnostics")
    expect(page.locator('#checks tr[data-check="database"]')).to_have_attribute("data-ok", "yes")
    _shots(page, "diagnostics")


# --- HTTP, on both databases ----------------------------------------------------------------

def _csrf(text: str) -> str:
    match = re.search(r'name="printcore-csrf" content="([^"]+)"', text)
    assert match, text[:500]
    return match.group(1)


def test_bad_admin_input_is_refused_and_changes_nothing(live_server: LiveServer) -> None:
    server = live_server
    with httpx.Client(base_url=server.url, timeout=60) as web:
        r = web.get("/staff/admin/staff", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
        login_page = web.get("/staff/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', login_page)
        assert token
        r = web.post("/staff/login?next=/staff/admin", follow_redirects=True, data={
            "csrf_token": token.group(1), "workstation": "HTTP desk", "password": PASSWORD})
        assert r.status_code == 200
        csrf = _csrf(r.text)
        before = web.get("/staff/admin/staff").text.count("data-member=")
        events_before = web.get("/staff/admin").text.count("<tr data-kind=")

        def post(path: str, **data: str) -> httpx.Response:
            return web.post(f"/staff/admin/{path}", follow_redirects=False,
                            data={"csrf_token": csrf, "staff_name": STAFF, **data})

        assert post("staff/add", name="Forged", csrf_token="forged").status_code == 403
        assert post("staff/add", name="   ", staff_action="add").status_code == 422
        r = post("staff/deactivate", name="Nobody", confirm_password=PASSWORD)
        assert r.status_code == 404
        r = post("staff/deactivate", name=STAFF, confirm_password=PASSWORD)
        assert r.status_code == 422 and "last active staff member" in r.text
        r = post("staff/deactivate", name=STAFF)
        assert r.status_code == 422 and "staff password again" in r.text
        assert post("staff/reactivate", name=STAFF).status_code == 409
        assert post("staff/add", name="Zed Zero", staff_action="add").status_code == 303
        r = post("staff/rename", name="Zed Zero", new_name=STAFF.upper())
        assert r.status_code == 409 and "already on the staff list" in r.text
        r = post("workstations/end", session_id="0" * 32, confirm_password=PASSWORD)
        assert r.status_code == 404
        own = re.search(r'name="session_id" value="([0-9a-f]{32})"',
                        web.get("/staff/admin/workstations").text)
        assert own is None  # the own login has no end form
        assert post("outbox/retry", message_id="999999").status_code == 404
        assert post("outbox/retry", message_id="x").status_code == 404
        after = web.get("/staff/admin/staff").text
        assert after.count("data-member=") == before + 1  # only Zed Zero was added
        assert web.get("/staff/admin").text.count("<tr data-kind=") == events_before + 1


# --- diagnostics in-process: a warning logged by this process is listed -----------------------

def test_diagnostics_list_the_checks_and_the_last_warnings(tmp_path: Path) -> None:
    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from entrypoints.web import app_from_container

    env = {"PRINTCORE_HOME": str(tmp_path / "home"), "PRINTCORE_SECRET_KEY": "admin-test-key-1234",
           "PRINTCORE_STAFF_PASSWORD": PASSWORD}
    container = bootstrap(load_settings(env, env_file=None))
    container.staff.add(STAFF)
    app = app_from_container(container, isolated_inspection=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/staff/login").text)
        assert token
        client.post("/staff/login", data={"csrf_token": token.group(1),
                                          "workstation": "Desk", "password": PASSWORD})
        logging.getLogger("printcore.test.admin").warning("storage nearly full: %d MB", 12)
        logging.getLogger("printcore.test.admin").info("not a warning")
        page = client.get("/staff/admin/diagnostics")
        assert page.status_code == 200
        assert 'data-check="database" data-ok="yes"' in page.text
        assert 'data-check="storage"' in page.text
        rows = re.findall(r"<tr><td class=\"nowrap\">[^<]+</td><td>(\w+)</td><td>([^<]+)</td>"
                          r"<td>([^<]+)</td></tr>", page.text)
        assert ("WARNING", "printcore.test.admin", "storage nearly full: 12 MB") in rows
        assert all(message != "not a warning" for _, _, message in rows)
