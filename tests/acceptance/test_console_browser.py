"""The investigators' console in a real Chromium against the real agent (issue 12's acceptance):
log in, scan from the form and watch it finish, find the finding, reveal its preview, review it
as a false positive and see the webhook receiver get finding.retracted; hostile names are text;
the review flow works from the keyboard; a viewer cannot review; a form from another origin or
without its CSRF token is refused; and the screenshots in docs/ come from here.

Every test runs in a guarded browser (tests/support/browser.py): a dialog, a script error, a
Content-Security-Policy violation or a request beyond loopback fails it, so a hostile name that
ran (`onerror=alert(1)`, `<script>alert(1)</script>`) fails the test that showed it. The world
(tests/support/console_world.py) is one agent per module and database dialect; each test makes
its own finding from a DAG of its own.

DWEB_WRITE_SCREENSHOTS=1 writes the screenshots to docs/ (SQLite run only); otherwise to the
test's tmp_path, so a test run never changes the checkout."""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Page, expect

from tests.conftest import REPO
from tests.support.agent_process import fresh_postgres_database
from tests.support.browser import GuardedBrowser, IncidentKind, guarded_browser, screenshot
from tests.support.console_world import (
    HOSTILE_LABEL,
    HOSTILE_NAME,
    LIST_NAME,
    NORMAL_LABEL,
    SCAN_S,
    ConsoleWorld,
    console_world,
    photo_pdq,
)
from tests.support.http import serve_app
from tests.support.media_dag import hamming
from tests.support.wait import until

pytestmark = pytest.mark.asyncio(loop_scope="module")

WRITE_SCREENSHOTS = "DWEB_WRITE_SCREENSHOTS"
DOCS = REPO / "docs"
# Waits on conditions in the page; generous for a busy machine, a fast one never waits them out.
PAGE_MS = 60_000
SCAN_MS = int(SCAN_S * 1000)
# Enough Tab presses to cross the navigation, the facts and the preview of a finding page.
MAX_TABS = 80

# Every control a person uses must say what it is: its <label>, aria-label or aria-labelledby,
# or, for a button, its text. Returns the controls that say nothing (their HTML, cut).
UNNAMED_CONTROLS = """() => {
  const text = (node) => (node ? node.textContent : "").replace(/\\s+/g, " ").trim();
  const missing = [];
  for (const el of document.querySelectorAll("input, select, textarea, button")) {
    if (el.type === "hidden") continue;
    const aria = (el.getAttribute("aria-label") || "").trim();
    const by = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean)
      .map((id) => text(document.getElementById(id))).join(" ").trim();
    const labels = Array.from(el.labels || []).map(text).join(" ").trim();
    const own = el.tagName === "BUTTON" ? text(el)
      : ["submit", "button", "reset"].includes(el.type) ? (el.value || "").trim() : "";
    if (!(aria || by || labels || own)) missing.push(el.outerHTML.slice(0, 200));
  }
  return missing;
}"""
# Tab order is document order: no positive tabindex anywhere.
POSITIVE_TABINDEX = """() => Array.from(document.querySelectorAll("[tabindex]"))
  .filter((el) => el.tabIndex > 0).map((el) => el.outerHTML.slice(0, 200))"""
# What has the focus, and whether a person can see it.
FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {
    tag: el.tagName.toLowerCase(), id: el.id, name: el.getAttribute("name") || "",
    value: el.getAttribute("value") || "", text: el.textContent.replace(/\\s+/g, " ").trim().slice(0, 60),
    outline: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth) || 0,
  };
}"""
# Markup a hostile name would have made had it been parsed as HTML.
INJECTED = """() => ({
  imgX: document.querySelectorAll('img[src="x"]').length,
  handlers: Array.from(document.querySelectorAll("*")).filter((el) =>
    Array.from(el.attributes).some((a) => a.name.startsWith("on"))).length,
  inlineScripts: Array.from(document.scripts).filter((s) => !s.src || s.textContent.trim()).length,
  scriptsNamingAlert: Array.from(document.scripts).filter((s) => s.textContent.includes("alert(1)")).length,
})"""
NOTHING_INJECTED = {"imgX": 0, "handlers": 0, "inlineScripts": 0, "scriptsNamingAlert": 0}


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ConsoleWorld]:
    """One agent, gateway, list and webhook receiver for the module, on each database dialect."""
    tmp = tmp_path_factory.mktemp(f"console-{request.param}")
    if request.param == "sqlite":
        async with console_world(tmp) as built:
            yield built
        return
    async with fresh_postgres_database() as url, console_world(tmp, database_url=url) as built:
        yield built


# The harness's `browser` fixture, on this module's event loop (the world's servers live there).
@pytest_asyncio.fixture(loop_scope="module")
async def browser() -> AsyncIterator[GuardedBrowser]:
    async with guarded_browser() as guarded:
        yield guarded


def _dialect(world: ConsoleWorld) -> str:
    return str(world.agent.events("agent.started")[0]["database"])


async def _main_text(page: Page) -> str:
    return await page.locator("main").inner_text()


async def _assert_nothing_injected(page: Page) -> None:
    assert await page.evaluate(INJECTED) == NOTHING_INJECTED, page.url


async def _open_finding(page: Page, world: ConsoleWorld, finding_id: int) -> None:
    """The finding page, its preview fetched (from /ui/findings/{id}/preview) and shown."""
    preview_url = f"{world.agent.ui_url}findings/{finding_id}/preview"
    async with page.expect_response(preview_url, timeout=PAGE_MS) as answer:
        await page.goto(f"{world.agent.ui_url}findings/{finding_id}")
    response = await answer.value
    assert response.status == 200, await response.text()
    assert (response.headers.get("content-type") or "").startswith("image/")
    await _preview_loaded(page, finding_id)


async def _preview_loaded(page: Page, finding_id: int) -> None:
    image = page.locator(f"#preview-{finding_id}")
    await expect(image).to_be_visible(timeout=PAGE_MS)
    loaded = await image.evaluate("(img) => [img.complete, img.naturalWidth, img.naturalHeight, img.currentSrc]")
    assert loaded[0] and loaded[1] > 0 and loaded[2] > 0, loaded
    assert loaded[3].endswith(f"/ui/findings/{finding_id}/preview"), loaded


async def _filter_of(page: Page, finding_id: int) -> str:
    return str(await page.locator(f"#preview-{finding_id}").evaluate("(img) => getComputedStyle(img).filter"))


async def _scroll_to_top(page: Page, selector: str) -> None:
    await page.locator(selector).evaluate("(el) => el.scrollIntoView({ block: 'start' })")


async def _unnamed_controls(page: Page) -> list[str]:
    missing: list[str] = await page.evaluate(UNNAMED_CONTROLS)
    return missing


async def _no_review_recorded(world: ConsoleWorld, finding_id: int) -> None:
    detail = await world.finding(finding_id)
    assert detail["reviews"] == [] and detail["review"] is None and detail["retraction"] is None, detail


def _review_url(world: ConsoleWorld, finding_id: int) -> str:
    return f"{world.agent.ui_url}findings/{finding_id}/review"


# ------------------------------------------------------------------------------------ the tests


async def test_an_investigator_scans_from_the_form_finds_the_finding_reveals_its_preview_and_retracts_it(
    world: ConsoleWorld, browser: GuardedBrowser
) -> None:
    """The whole review flow through the pages: log in with the form; queue a scan of the test DAG
    from the Scans form; its live progress turns into the report, every item listed and the hostile
    file name shown as text; the finding is in the queue with its hostile label as text; its page
    says why it matched, its preview comes veiled (blurred) until revealed; a false positive with a
    note is recorded and retracted, and the webhook receiver, sent finding.created by the scan, now
    gets a signed finding.retracted."""
    dag = world.new_dag()
    page = await browser.new_page()
    await world.login(page, world.investigator)

    await page.get_by_role("link", name="Scans", exact=True).click()
    await expect(page.get_by_role("heading", name="Start a scan")).to_be_visible()
    await page.get_by_label("Target").fill(f"ipfs://{dag.root}")
    await page.get_by_label("Gateways").fill(world.gateway.url)
    # No list URL is typed: the form says the agent's own list (the one with the finding's label) is matched.
    await expect(page.locator("#lists-hint")).to_contain_text(LIST_NAME)
    # The gateway holds the scan until the page has shown it running.
    held = world.hold_gateway()
    try:
        await page.get_by_role("button", name="Queue the scan").click()
        await page.wait_for_url(re.compile(r"/ui/scans/\d+$"), timeout=PAGE_MS)
        job_id = int(page.url.rsplit("/", 1)[1])
        progress = page.locator("[data-progress-url]")
        await expect(progress).to_be_visible()
        await expect(progress.locator('[data-field="status"]')).to_have_text(re.compile("queued|running"))
        await until(lambda: world.gateway_requests() > held, SCAN_S, lambda: "the scan never asked the gateway")
    finally:
        world.gateway.release()
    # The page follows the scan (console.js) and shows its report once it ends: no reload by the test.
    await expect(page.get_by_role("heading", name="Report")).to_be_visible(timeout=SCAN_MS)
    await expect(progress).to_have_count(0)
    job = await world.finished_scan(job_id)
    assert job["requested_by"] == "ivy-investigator" and job["options"]["gateways"] == [world.gateway.url], job
    items = page.locator("table").filter(has=page.get_by_role("columnheader", name="Path"))
    for path in dag.paths:
        await expect(items.get_by_role("cell", name=path, exact=True)).to_have_count(1)
    hostile_row = items.locator("tr").filter(has=page.get_by_role("cell", name=HOSTILE_NAME, exact=True))
    await expect(hostile_row).to_contain_text(LIST_NAME)
    await expect(hostile_row).to_contain_text(HOSTILE_LABEL)
    assert HOSTILE_NAME in await _main_text(page)
    await _assert_nothing_injected(page)

    found = await world.findings_of(dag)
    assert len(found) == 1, found
    finding_id = int(found[0]["id"])
    created = await world.event("finding.created", finding_id)
    assert created.verified, created.error

    await page.get_by_role("link", name="Findings", exact=True).click()
    row = page.locator("tbody tr").filter(has=page.locator(f'a[href="/ui/findings/{finding_id}"]'))
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(HOSTILE_LABEL)
    await expect(row).to_contain_text(NORMAL_LABEL)
    await expect(row).to_contain_text(HOSTILE_NAME)
    await expect(row).to_contain_text("unreviewed")
    await _assert_nothing_injected(page)

    preview_url = f"{world.agent.ui_url}findings/{finding_id}/preview"
    async with page.expect_response(preview_url, timeout=PAGE_MS) as answer:
        await row.get_by_role("link", name=str(finding_id), exact=True).click()
    assert (await answer.value).status == 200
    why = page.locator("dl.facts").first
    await expect(why).to_contain_text("pdq")
    distance = hamming(photo_pdq(dag.photo), photo_pdq())
    await expect(why.locator("dt:text-is('Distance') + dd")).to_have_text(f"{distance} bits")
    await expect(why).to_contain_text("at most")
    await expect(why).to_contain_text(LIST_NAME)
    await expect(why).to_contain_text(HOSTILE_LABEL)
    await expect(page.locator("main")).to_contain_text(HOSTILE_NAME)
    await _assert_nothing_injected(page)

    await _preview_loaded(page, finding_id)
    image = page.locator(f"#preview-{finding_id}")
    await expect(image).to_have_class(re.compile(r"\bveiled\b"))
    assert "blur" in await _filter_of(page, finding_id)
    reveal = page.get_by_role("button", name="Reveal preview")
    await reveal.click()
    await expect(image).not_to_have_class(re.compile(r"\bveiled\b"))
    assert "blur" not in await _filter_of(page, finding_id)
    await expect(page.get_by_role("button", name="Veil preview")).to_have_attribute("aria-pressed", "true")

    note = "the bridge photo is a tourist's, not the listed content"
    await page.get_by_label("Note").fill(note)
    await page.get_by_role("button", name="False positive").click()
    await page.wait_for_url(re.compile(r"reviewed=false_positive"), timeout=PAGE_MS)
    await expect(page.get_by_role("status").filter(has_text="false positive")).to_be_visible()
    reviews = page.locator("table").filter(has=page.get_by_role("columnheader", name="Verdict"))
    await expect(reviews).to_contain_text("false positive")
    await expect(reviews).to_contain_text(note)
    await expect(reviews).to_contain_text("ivy-investigator")
    await expect(page.locator("#retraction")).to_contain_text("reviewed as a false positive")
    await expect(page.get_by_role("button", name="False positive")).to_have_count(0)

    detail = await world.finding(finding_id)
    assert [(r["verdict"], r["note"], r["reviewer"]) for r in detail["reviews"]] == [
        ("false_positive", note, "ivy-investigator")
    ]
    assert detail["retraction"] is not None and detail["retraction"]["reason"] == "false_positive"
    retracted = await world.event("finding.retracted", finding_id)
    assert retracted.verified, retracted.error
    assert retracted.at >= created.at
    said = json.loads(retracted.body)["data"]
    assert (said["reason"], said["note"], said["finding"]["labels"]) == ("false_positive", note, found[0]["labels"])


async def test_the_review_flow_works_from_the_keyboard_alone_with_visible_focus_and_named_controls(
    world: ConsoleWorld, browser: GuardedBrowser
) -> None:
    """Tab alone reaches the note and the False positive button of a finding page, in document
    order, every focused element showing an outline; typing and Enter records the review. Every
    control of the queue, the finding page and the scans page has an accessible name, and no
    element jumps the tab order."""
    finding = await world.finding_by_scan(world.new_dag())
    finding_id = int(finding["id"])
    page = await browser.new_page()
    await world.login(page, world.investigator)

    for path in ("findings", f"findings/{finding_id}", "scans"):
        await page.goto(world.agent.ui_url + path)
        assert await _unnamed_controls(page) == [], path
        assert await page.evaluate(POSITIVE_TABINDEX) == [], path

    await _open_finding(page, world, finding_id)
    await page.locator("body").focus()  # the keyboard starts from the top of the page

    async def tab_to(wanted: str, is_it: Any) -> list[dict[str, Any]]:
        path: list[dict[str, Any]] = []
        for _ in range(MAX_TABS):
            await page.keyboard.press("Tab")
            focused: dict[str, Any] = await page.evaluate(FOCUSED)
            path.append(focused)
            assert focused["outline"] != "none" and focused["outlineWidth"] > 0, f"focus not visible: {focused}"
            if is_it(focused):
                return path
        raise AssertionError(f"{wanted} not reached with {MAX_TABS} Tabs; focus went {[p['tag'] for p in path]}")

    walked = await tab_to("the note", lambda f: f["tag"] == "textarea" and f["name"] == "note")
    assert walked[0]["text"] == "Skip to content", "the first Tab reaches the skip link"
    assert any(f["text"] == "Reveal preview" for f in walked), "the reveal button is on the way"
    note = "keyboard review: a holiday photo of the bridge"
    await page.keyboard.type(note)
    walked = await tab_to("False positive", lambda f: f["tag"] == "button" and f["value"] == "false_positive")
    assert [f["value"] for f in walked] == ["confirmed", "false_positive"], "Confirm first, then False positive"
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"reviewed=false_positive"), timeout=PAGE_MS)
    await expect(page.get_by_role("status").filter(has_text="false positive")).to_be_visible()

    detail = await world.finding(finding_id)
    assert [(r["verdict"], r["note"]) for r in detail["reviews"]] == [("false_positive", note)]
    assert detail["retraction"] is not None


async def test_every_page_an_admin_opens_names_every_control_keeps_document_order_and_shows_names_as_text(
    world: ConsoleWorld, browser: GuardedBrowser
) -> None:
    """An admin sees every page and every button (webhooks, target removal, deliveries): on each
    one every control has an accessible name, no element jumps the tab order, and the hostile
    names a scan brought in are text, nothing injected."""
    dag = world.new_dag()
    finding_id = int((await world.finding_by_scan(dag))["id"])
    scans = (await world.api("GET", "/v1/scans?limit=1"))[1]["scans"]
    page = await browser.new_page()
    await world.login(page, world.admin)
    for path in (
        "findings",
        f"findings/{finding_id}",
        "scans",
        f"scans/{scans[0]['id']}",
        "targets",
        "webhooks",
        f"webhooks/{world.subscription_id}",
        "lists",
        "report",
        "settings",
    ):
        response = await page.goto(world.agent.ui_url + path)
        assert response is not None and response.status == 200, path
        assert await _unnamed_controls(page) == [], path
        assert await page.evaluate(POSITIVE_TABINDEX) == [], path
        await _assert_nothing_injected(page)
    await page.goto(f"{world.agent.ui_url}findings/{finding_id}")
    await expect(page.locator("main")).to_contain_text(world.receiver.url("/hook"))  # its deliveries


async def test_a_viewer_sees_the_finding_without_review_or_scan_forms_and_a_forged_review_is_refused(
    world: ConsoleWorld, browser: GuardedBrowser
) -> None:
    """A viewer reads the finding (its hostile label as text) but is offered no review form and no
    scan form; a review POSTed from its own console page with its own valid CSRF token is 403, and
    no review is recorded."""
    finding = await world.finding_by_scan(world.new_dag())
    finding_id = int(finding["id"])
    page = await browser.new_page()
    await world.login(page, world.viewer)
    await expect(page.locator("header")).to_contain_text("(viewer)")

    await _open_finding(page, world, finding_id)
    main = page.locator("main")
    await expect(main).to_contain_text(HOSTILE_LABEL)
    await expect(page.locator(f'form[action="/ui/findings/{finding_id}/review"]')).to_have_count(0)
    await expect(page.get_by_role("button", name="False positive")).to_have_count(0)
    await expect(page.get_by_role("button", name="Confirm")).to_have_count(0)
    await expect(page.locator("textarea")).to_have_count(0)
    await _assert_nothing_injected(page)

    await page.goto(world.agent.ui_url + "scans")
    await expect(page.get_by_role("heading", name="Scans", exact=True)).to_be_visible()
    await expect(page.locator('form[action="/ui/scans"]')).to_have_count(0)
    await expect(page.get_by_role("button", name="Queue the scan")).to_have_count(0)
    await expect(page.get_by_label("Target")).to_have_count(0)

    await page.goto(f"{world.agent.ui_url}findings/{finding_id}")
    csrf = await page.locator('form[action="/ui/logout"] input[name="csrf"]').input_value()
    assert csrf
    forged = await page.evaluate(
        """async ([url, csrf]) => {
          const body = new URLSearchParams({ csrf, verdict: "false_positive", note: "forged by a viewer" });
          const answer = await fetch(url, { method: "POST", body, credentials: "same-origin" });
          return [answer.status, await answer.text()];
        }""",
        [_review_url(world, finding_id), csrf],
    )
    assert forged[0] == 403, forged
    assert "the viewer role may not do this" in forged[1]
    await browser.settle()
    browser.guard.expected(IncidentKind.CONSOLE_ERROR, "403")  # the refused fetch, logged by Chromium
    await _no_review_recorded(world, finding_id)


async def test_a_review_form_from_another_origin_or_without_its_csrf_token_is_refused(
    world: ConsoleWorld, browser: GuardedBrowser
) -> None:
    """While the investigator is logged in, a page of another origin that auto-submits the review
    form is refused: from 127.0.0.1 on another port (same site, the cookie goes with it) by the
    origin check, even holding the right CSRF token; from localhost (another site, SameSite=Strict
    keeps the cookie back) as a request without a session. The console's own form, its csrf field
    removed, is refused too. No review is recorded."""
    finding = await world.finding_by_scan(world.new_dag())
    finding_id = int(finding["id"])
    context = await browser.new_context()
    page = await context.new_page()
    await world.login(page, world.investigator)
    await page.goto(f"{world.agent.ui_url}findings/{finding_id}")
    csrf = await page.locator(f'form[action="/ui/findings/{finding_id}/review"] input[name="csrf"]').input_value()

    attack = (
        "<!doctype html><html><head><title>win a prize</title><script src='/go.js' defer></script></head><body>"
        f"<form method='post' action='{_review_url(world, finding_id)}'>"
        f"<input type='hidden' name='csrf' value='{csrf}'>"
        "<input type='hidden' name='verdict' value='false_positive'>"
        "<input type='hidden' name='note' value='forged from another origin'>"
        "</form></body></html>"
    )

    async def html(_request: web.Request) -> web.Response:
        return web.Response(text=attack, content_type="text/html")

    async def go(_request: web.Request) -> web.Response:
        return web.Response(text="document.forms[0].submit();", content_type="application/javascript")

    app = web.Application()
    app.router.add_get("/", html)
    app.router.add_get("/go.js", go)
    runner, other = await serve_app(app)
    try:
        for origin, status, said in (
            (other, 403, "this form was sent from another site"),
            (other.replace("127.0.0.1", "localhost"), 401, "your session has ended"),
        ):
            assert origin != world.agent.api_url
            attacked = await context.new_page()
            async with attacked.expect_response(_review_url(world, finding_id), timeout=PAGE_MS) as answer:
                await attacked.goto(origin + "/")
            assert (await answer.value).status == status, origin
            await expect(attacked.locator("main")).to_contain_text(said)
            await _no_review_recorded(world, finding_id)
    finally:
        await runner.cleanup()

    await page.reload()
    form = page.locator(f'form[action="/ui/findings/{finding_id}/review"]')
    await form.locator('input[name="csrf"]').evaluate("(input) => input.remove()")
    await page.get_by_label("Note").fill("no token")
    async with page.expect_response(_review_url(world, finding_id)) as answer:
        await page.get_by_role("button", name="False positive").click()
    assert (await answer.value).status == 403
    await expect(page.locator("main")).to_contain_text("security token is missing")
    await _no_review_recorded(world, finding_id)

    await browser.settle()
    assert len(browser.guard.expected(IncidentKind.CONSOLE_ERROR, "403")) == 2
    assert len(browser.guard.expected(IncidentKind.CONSOLE_ERROR, "401")) == 1


async def test_screenshots_of_the_queue_a_veiled_finding_and_a_scan_report(
    world: ConsoleWorld, browser: GuardedBrowser, tmp_path: Path
) -> None:
    """The pictures docs/ shows (DWEB_WRITE_SCREENSHOTS=1 writes them there): the queue, a
    finding with its preview veiled, a scan's report; each a 1280x900 PNG of a page that
    rendered with nothing broken."""
    dag = world.new_dag()
    scan = await world.scan(dag)
    finding_id = int((await world.findings_of(dag))[0]["id"])
    into = DOCS if os.environ.get(WRITE_SCREENSHOTS) == "1" and _dialect(world) == "sqlite" else tmp_path
    page = await browser.new_page()
    await world.login(page, world.investigator)

    shots: list[Path] = []
    await page.goto(world.agent.ui_url + "findings")
    await expect(page.locator(f'a[href="/ui/findings/{finding_id}"]')).to_be_visible()
    shots.append(await screenshot(page, into / "console-queue.png"))

    await _open_finding(page, world, finding_id)
    await expect(page.locator(f"#preview-{finding_id}")).to_have_class(re.compile(r"\bveiled\b"))
    # The top of the page: why it matched and where it is, what a reviewer reads first.
    await page.evaluate("scrollTo(0, 0)")
    shots.append(await screenshot(page, into / "console-finding.png"))

    await page.goto(f"{world.agent.ui_url}scans/{scan['id']}")
    await expect(page.get_by_role("heading", name="Report")).to_be_visible()
    await _scroll_to_top(page, "h2:text-is('Report')")  # the report's facts, totals and items
    shots.append(await screenshot(page, into / "console-scan.png"))

    for shot in shots:
        png = shot.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (1280, 900), shot
