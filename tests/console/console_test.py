"""The web console in a real browser: Debian's Chromium, driven by Playwright for Python.

Run by tests/console.rs against a real node (SQLite, or Postgres with Redis):

    python console_test.py --url http://127.0.0.1:PORT --admin TOKEN --operator TOKEN \
        --viewer TOKEN --shots DIR --label sqlite

It signs in, creates a task through the form, watches its runs appear, disables it and sees
it stop, edits its trigger and reads the DST note in the live preview, runs it now, pauses
and resumes the cluster, checks that a viewer sees no controls and that a forged POST from a
viewer's session is refused, and signs out. It saves screenshots of the main pages at desktop
(1280 px) and phone (390 px) width into --shots. Exit 0 when every step passed; otherwise it
says which step failed and why.
"""

import argparse
import re
import sys
import time

from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
TASK = "console.every_sec"


def log(step):
    print(f"console test: {step}", flush=True)


def sign_in(page, url, token):
    page.goto(url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Tasks")


def newest_fire(page):
    """The fire time of the newest row of the task's timeline ('' when none)."""
    rows = page.locator("#timeline tbody tr td:first-child a")
    return rows.first.inner_text() if rows.count() else ""


def shots(page, url, folder, label, width, paths):
    page.set_viewport_size({"width": width, "height": 900 if width > 500 else 844})
    for name, path in paths:
        page.goto(url + path)
        page.wait_for_load_state("networkidle")
        page.screenshot(path=f"{folder}/{label}-{name}-{width}.png", full_page=True)
        # Nothing spills sideways at this width except inside a scrolling table.
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"{path} at {width} px is {overflow} px wider than the screen"
        # Every control a person can reach has a label (or an aria-label).
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea, button')]
                 .filter(el => el.type !== 'hidden')
                 .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                               && !(el.tagName === 'BUTTON' && el.textContent.trim()))
                 .map(el => el.outerHTML.slice(0, 80))"""
        )
        assert not unlabelled, f"{path}: controls without a label: {unlabelled}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--admin", required=True)
    ap.add_argument("--operator", required=True)
    ap.add_argument("--viewer", required=True)
    ap.add_argument("--shots", required=True)
    ap.add_argument("--label", required=True)
    a = ap.parse_args()
    url = a.url.rstrip("/")
    expect.set_options(timeout=15_000)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        admin = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Berlin")
        page = admin.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))

        log("sign in")
        sign_in(page, url, a.admin)
        cookie = next(c for c in admin.cookies() if c["name"] == "cronmesh_session")
        assert cookie["httpOnly"], cookie
        assert cookie["sameSite"] == "Strict", cookie
        assert cookie["expires"] > time.time() + 3600, cookie
        # The browser's zone reached the server: times are shown in it.
        expect(page.locator("#tasks caption")).to_contain_text("Europe/Berlin")

        log("create a task through the form")
        page.click("text=New task")
        page.fill("#name", TASK)
        page.check("input[name=mode][value=cron]")
        page.fill("#expr", "* * * * * *")
        page.fill("#timezone", "UTC")
        expect(page.locator("#preview")).to_contain_text("every second every day, UTC")
        page.select_option("#handler", "noop")
        page.fill("#owner", "console-test")
        page.fill("#description", "made in a browser")
        page.click("#save")
        expect(page.locator("h1")).to_contain_text(TASK)

        log("a bad expression is refused with the field named, nothing written")
        page.goto(url + "/tasks/new")
        page.fill("#name", "console.bad")
        page.fill("#expr", "0 0 32 * *")
        expect(page.locator("#preview")).to_contain_text("day-of-month")
        page.select_option("#handler", "noop")
        page.click("#save")
        expect(page.locator("#form-error")).to_contain_text("32")
        assert page.locator("#name").input_value() == "console.bad", "the form kept what was typed"
        page.goto(url + "/?q=console.bad")
        expect(page.locator("#tasks tbody")).to_contain_text("No task matches.")

        log("its runs appear")
        page.goto(url + f"/tasks/{TASK}")
        expect(page.locator("#timeline")).to_contain_text("succeeded", timeout=20_000)

        log("disable it and see it stop")
        page.click(f"button[aria-label='Disable {TASK}']")
        expect(page.locator("h1 .pill")).to_have_text("disabled")
        time.sleep(2.5)
        page.reload()
        before = newest_fire(page)
        time.sleep(3.5)
        page.reload()
        after = newest_fire(page)
        assert before and before == after, f"runs went on after disable: {before!r} -> {after!r}"

        log("edit the trigger; the preview shows the DST note")
        page.click("#edit")
        page.fill("#expr", "30 2 * * *")
        page.fill("#timezone", "America/New_York")
        page.fill("#preview_from", "2026-03-01")
        note = "02:30 does not exist on 2026-03-08 (clocks go forward); fires at 03:00 EDT"
        expect(page.locator("#preview")).to_contain_text(note)
        expect(page.locator("#preview")).to_contain_text("at 02:30 every day, America/New_York")
        page.click("#save")
        expect(page.locator("h1")).to_contain_text(TASK)
        expect(page.locator("main")).to_contain_text("30 2 * * *")
        expect(page.locator("main")).to_contain_text("America/New_York")

        log("run now")
        page.click(f"button[aria-label='Enable {TASK}']")
        expect(page.locator("h1 .pill")).to_have_text("enabled")
        fired_before = newest_fire(page)
        page.click("#run-now")
        expect(page.locator("#timeline tbody tr").first).to_contain_text("succeeded", timeout=20_000)
        page.wait_for_function(
            "(old) => { const a = document.querySelector('#timeline tbody tr td:first-child a'); return a && a.textContent !== old; }",
            arg=fired_before,
        )

        log("an edit of the description alone leaves the schedule as it was")
        page.goto(url + "/tasks/a.b/edit")
        page.fill("#description", "touched in the console")
        page.click("#save")
        expect(page.locator("main")).to_contain_text("touched in the console")
        expect(page.locator("main")).not_to_contain_text("schedule set by an operator")

        log("a shared trigger conf instead of an inline trigger")
        page.goto(url + "/tasks/a.b/edit")
        page.check("input[name=mode][value=conf]")
        expect(page.locator("#expr")).to_be_hidden()
        page.select_option("#trigger_conf", "nightly")
        expect(page.locator("#preview")).to_contain_text("at 01:15 every day, Europe/Berlin")
        page.click("#save")
        expect(page.locator("main")).to_contain_text("conf nightly")
        page.goto(url + "/confs")
        expect(page.locator("main table")).to_contain_text("a.b")

        log("delete with confirmation")
        page.goto(url + "/tasks/x.del")
        page.click("#delete")
        expect(page.locator("h1")).to_have_text("Delete x.del?")
        page.click("#confirm-delete")
        expect(page.locator("h1")).to_have_text("Tasks")
        expect(page.locator("#tasks")).not_to_contain_text("x.del")

        log("pause and resume the cluster; the banner shows on every page")
        page.goto(url + "/cluster")
        page.fill("#reason", "console test")
        page.click("#pause-toggle")
        for path in ["/", "/runs", "/nodes", f"/tasks/{TASK}"]:
            page.goto(url + path)
            expect(page.locator("#pause-banner")).to_contain_text("console test")
        shots(page, url, a.shots, a.label, 1280, [("paused", "/")])
        page.goto(url + "/cluster")
        page.fill("#reason", "done testing")
        page.click("#pause-toggle")
        expect(page.locator("#pause-banner")).to_have_count(0)

        log("the other pages")
        for path, heading in [("/runs?failed=on", "Runs"), ("/nodes", "Nodes"), ("/actors", "Actors on this node"),
                              ("/audit", "Audit log"), ("/confs", "Trigger confs")]:
            page.goto(url + path)
            expect(page.locator("h1")).to_have_text(heading)
        page.goto(url + "/audit")
        expect(page.locator("#audit")).to_contain_text("token:root")
        page.goto(url + "/actors")
        expect(page.locator("#actors")).to_contain_text("SchedulerActor")
        # Live: the table is read again without a reload.
        stamp = page.locator("#actors-live p.muted").inner_text()
        page.wait_for_function(
            "(old) => document.querySelector('#actors-live p.muted').textContent !== old", arg=stamp
        )

        log("screenshots")
        pages = [("tasks", "/"), ("task", f"/tasks/{TASK}"), ("editor", f"/tasks/{TASK}/edit"),
                 ("runs", "/runs"), ("nodes", "/nodes"), ("actors", "/actors"), ("audit", "/audit"),
                 ("confs", "/confs")]
        shots(page, url, a.shots, a.label, 1280, pages)
        shots(page, url, a.shots, a.label, 390, pages)

        log("keyboard: the first Tab reaches the skip link, Enter follows it")
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(url + "/")
        page.keyboard.press("Tab")
        expect(page.locator(":focus")).to_have_text("Skip to content")

        log("a viewer sees no edit controls, and a forged POST is refused")
        viewer = browser.new_context(viewport={"width": 1280, "height": 900})
        vpage = viewer.new_page()
        sign_in(vpage, url, a.viewer)
        expect(vpage.locator("text=New task")).to_have_count(0)
        expect(vpage.locator("#tasks button")).to_have_count(0)
        vpage.goto(url + f"/tasks/{TASK}")
        for control in ["#run-now", "#edit", "#delete", "form[action$='/enabled']"]:
            expect(vpage.locator(control)).to_have_count(0)
        expect(vpage.locator("text=Pause cluster")).to_have_count(0)
        csrf = vpage.locator("form[action='/logout'] input[name=csrf]").get_attribute("value")
        for path, form in [(f"/tasks/{TASK}/run", {"csrf": csrf}),
                           (f"/tasks/{TASK}/enabled", {"csrf": csrf, "enabled": "false"}),
                           (f"/tasks/{TASK}/delete", {"csrf": csrf}),
                           ("/cluster", {"csrf": csrf, "paused": "true", "reason": "forged"}),
                           ("/tasks/new", {"csrf": csrf, "name": "console.forged", "mode": "cron",
                                           "expr": "* * * * *", "handler": "noop"})]:
            resp = vpage.request.post(url + path, form=form, max_redirects=0)
            assert resp.status == 403, f"viewer POST {path}: {resp.status} {resp.text()[:200]}"
        resp = vpage.goto(url + "/no-such-page")
        assert resp.status == 404, f"an unknown page: {resp.status}"
        expect(vpage.locator("h1")).to_contain_text("404")
        vpage.goto(url + f"/tasks/{TASK}/edit")
        expect(vpage.locator("h1")).to_contain_text("403")
        # And an admin's form without its CSRF token is refused too.
        resp = page.request.post(url + f"/tasks/{TASK}/run", form={"csrf": "wrong"}, max_redirects=0)
        assert resp.status == 403, f"admin POST with a wrong CSRF token: {resp.status}"
        page.goto(url + "/audit")
        expect(page.locator("#audit")).not_to_contain_text("forged")

        log("sign out")
        session = next(c for c in admin.cookies() if c["name"] == "cronmesh_session")
        page.goto(url + "/")
        page.click("text=Sign out")
        expect(page).to_have_url(re.compile(r"/login"))
        page.goto(url + "/")
        expect(page).to_have_url(re.compile(r"/login\?next=/$"))
        # The old cookie is dead on the server, not only forgotten by the browser.
        stale = browser.new_context()
        stale.add_cookies([session])
        resp = stale.request.get(url + "/", max_redirects=0)
        assert resp.status == 303, f"a signed-out session still works: {resp.status}"
        shots(page, url, a.shots, a.label, 390, [("login", "/login")])

        assert not errors, f"script errors on the pages: {errors}"
        browser.close()
    log("all steps passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"console test FAILED: {e}", file=sys.stderr)
        sys.exit(1)
