"""The console's scans over the real app and a real store (SQLite and PostgreSQL): the form
queues a scan with the API's rules (a bad target or a guarded gateway is shown beside its
field, nothing queued), a viewer sees no form and cannot post one, a running scan's progress
is JSON the page follows, a finished one's report is a table with every outside string as
text and downloads as exactly the stored JSON, and a queued scan is cancelled from its page.

Jobs are run by hand through the store's jobs repository (claim, renew, finish), as the
runner would: no scan is fetched here (the browser test runs one against the real agent)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from agent.model.access import Role
from agent.model.finding import DenyBasis, Finding
from agent.model.jobs import JobProgress, JobStatus, ScanJobRow
from agent.model.report import ItemReport, ItemSource, ItemStatus, ScanReport
from agent.model.signals import SignalType
from agent.services import ScanJobRequest
from agent.store import Store
from tests.support.api import ApiServer, api_server
from tests.support.console import ConsoleUser

CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"
ITEM_CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
# A public address as a literal: the SSRF guard passes it without a DNS lookup, and nothing fetches.
PUBLIC_GATEWAY = "https://93.184.215.14"
HOSTILE_PATH = "<img src=x onerror=alert(1)>.jpg"
HOSTILE_LABEL = "<script>alert(1)</script>"
HOSTILE_ERROR = "gateway said <b onmouseover=alert(2)>no</b>"
NODE = "console-test-node"


def field_error(page_text: str, name: str) -> str | None:
    """The message the form shows beside control `name` (as text), if any."""
    found = re.search(rf'<span id="{name}-error" class="error">(.*?)</span>', page_text, re.S)
    return html.unescape(found.group(1)) if found else None


async def queued(api: ApiServer, target: str = CID, by: str = "ivy") -> ScanJobRow:
    return await api.services.jobs.submit(ScanJobRequest(target), by)


async def running(api: ApiServer, progress: JobProgress | None = None) -> ScanJobRow:
    """A queued scan claimed by a node (as the runner claims it), with `progress` renewed."""
    job = await queued(api)
    (claimed,) = await api.store.jobs.claim(NODE, limit=1, lease_s=600)
    assert claimed.id == job.id
    if progress is not None:
        renewed = await api.store.jobs.renew(job.id, NODE, lease_s=600, progress=progress)
        assert renewed is not None
    return await api.services.jobs.get(job.id)


def hostile_report() -> dict[str, Any]:
    """A report as the runner stores it (ScanReport.to_dict), with names a publisher chose."""
    matched = ItemReport(
        path=HOSTILE_PATH,
        cid=ITEM_CID,
        size=2048,
        media_type="image/jpeg",
        status=ItemStatus.VERIFIED,
        source=ItemSource(gateway=PUBLIC_GATEWAY, verified=True, gateways=[PUBLIC_GATEWAY]),
        findings=[
            Finding(
                list_name="tcap-sample",
                entry="f" * 64,
                entry_id="7",
                signal_type=SignalType.PDQ,
                distance=12,
                labels=(HOSTILE_LABEL,),
            )
        ],
    )
    broken = ItemReport(
        path="docs/broken.bin",
        cid=None,
        size=None,
        media_type=None,
        status=ItemStatus.ERROR,
        error=HOSTILE_ERROR,
    )
    report = ScanReport(
        target=f"ipfs://{CID}",
        root=CID,
        started_at="2026-12-01T12:00:00Z",
        finished_at="2026-12-01T12:00:05Z",
        items=[matched, broken],
        errors=["a scan-level problem: <i>timeout</i>"],
        findings=[Finding("deny", CID, "1", DenyBasis.CID, 0)],
    )
    return report.to_dict()


async def test_the_form_queues_a_scan_for_the_logged_in_user_and_shows_it(store: Store) -> None:
    """An investigator's form (target, two gateway lines with a blank between, raw mode) queues
    the scan as them, wakes the agent, lands on its page, and the scans page lists it."""
    wakes: list[int] = []
    async with (
        api_server(store, console=True, wake_scans=lambda: wakes.append(1)) as api,
        ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR, "ivy")) as user,
    ):
        form = await user.get("/ui/scans")
        assert form.status == 200 and 'name="target"' in form.text and 'action="/ui/scans"' in form.text
        answer = await user.post(
            "/ui/scans",
            {"target": f"ipfs://{CID}/a", "gateways": f"{PUBLIC_GATEWAY}\n\n  \n", "lists": "", "mode": "raw"},
        )
        (job,) = await api.services.jobs.page(10)
        assert answer.status == 200 and answer.url.endswith(f"/ui/scans/{job.id}"), (answer.status, answer.url)
        assert (job.target, job.requested_by, job.status) == (f"ipfs://{CID}/a", "ivy", JobStatus.QUEUED)
        assert (job.options.gateways, job.options.lists, job.options.mode) == ((PUBLIC_GATEWAY,), (), "raw")
        assert wakes == [1], "the agent's runner is told at once"
        assert f"ipfs://{CID}/a" in answer.text and "queued" in answer.text
        listed = await user.get("/ui/scans")
        assert f'href="/ui/scans/{job.id}"' in listed.text and f"ipfs://{CID}/a" in listed.text


async def test_recent_scans_are_newest_first_and_paged(store: Store) -> None:
    """51 scans: the first page holds the 50 newest, newest first, and links to the oldest one."""
    async with api_server(store, console=True) as api:
        jobs = [await queued(api) for _ in range(51)]
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as user:
            first = await user.get("/ui/scans")
            ids = [int(i) for i in re.findall(r'href="/ui/scans/(\d+)"', first.text)]
            assert ids == [j.id for j in reversed(jobs[1:])]
            older = re.search(r'href="/ui/scans\?before=(\d+)"', first.text)
            assert older is not None
            second = await user.get("/ui/scans", before=older.group(1))
            assert [int(i) for i in re.findall(r'href="/ui/scans/(\d+)"', second.text)] == [jobs[0].id]
            assert "before=" not in second.text


@pytest.mark.parametrize(
    ("fields", "control", "says"),
    [
        ({"target": "/etc/passwd"}, "target", "never a file or directory on the agent's host"),
        ({"target": HOSTILE_LABEL}, "target", "network targets only"),
        ({"target": "", "gateways": PUBLIC_GATEWAY}, "target", "target is required"),
        ({"target": CID, "gateways": f"{PUBLIC_GATEWAY}\n\nhttp://10.0.0.1/"}, "gateways", "line 3: http://10.0.0.1"),
        ({"target": CID, "gateways": "ftp://gateway.example"}, "gateways", "line 1"),
        ({"target": CID, "lists": "file:///etc/passwd"}, "lists", "only http(s) list URLs"),
        ({"target": CID, "mode": "tar"}, "mode", "car or raw"),
    ],
)
async def test_a_refused_scan_is_shown_beside_its_field_with_the_typed_values(
    store: Store, fields: dict[str, str], control: str, says: str
) -> None:
    """A bad target, a gateway the SSRF guard refuses (10.0.0.1: refused before any connection),
    a file list or an unknown mode: 422, the message beside that control, what was typed kept
    (as text), and nothing queued."""
    async with (
        api_server(store, console=True) as api,
        ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR)) as user,
    ):
        await user.get("/ui/scans")
        sent = {"target": "", "gateways": "", "lists": "", "mode": "car", **fields}
        page = await user.post("/ui/scans", sent)
        assert page.status == 422, page.text[:500]
        beside = field_error(page.text, control)
        assert beside is not None and says in beside, (control, beside)
        assert 'role="alert"' in page.text
        assert await api.services.jobs.page(10) == []
        if sent["target"]:
            assert f'value="{html.escape(sent["target"])}"' in page.text
        if sent["gateways"]:
            # The newline after the start tag is the one an HTML parser drops: the text is kept exactly.
            assert f">\n{html.escape(sent['gateways'])}</textarea>" in page.text
        assert "<script>alert(1)</script>" not in page.text


async def test_a_viewer_sees_no_form_or_cancel_and_its_forged_posts_are_refused(store: Store) -> None:
    """A viewer reads the scans but gets neither the form nor a cancel button; its POSTs,
    with a valid CSRF token, are 403 and nothing is queued or cancelled."""
    async with api_server(store, console=True) as api:
        job = await queued(api)
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER, "vic")) as user:
            listed = await user.get("/ui/scans")
            assert listed.status == 200 and f'href="/ui/scans/{job.id}"' in listed.text
            assert 'name="target"' not in listed.text and 'action="/ui/scans"' not in listed.text
            shown = await user.get(f"/ui/scans/{job.id}")
            assert shown.status == 200 and "data-progress-url" in shown.text
            assert "/cancel" not in shown.text
            forged = await user.post("/ui/scans", {"target": CID})
            assert forged.status == 403
            cancel = await user.post(f"/ui/scans/{job.id}/cancel", {})
            assert cancel.status == 403
        assert [j.id for j in await api.services.jobs.page(10)] == [job.id]
        assert (await api.services.jobs.get(job.id)).status is JobStatus.QUEUED


async def test_a_running_scan_reports_its_progress_as_json_for_the_page_to_follow(store: Store) -> None:
    """The progress JSON of a running scan holds its status and counts (never cached); its
    page has the progress box the script polls, with those counts, and a cancel button."""
    async with api_server(store, console=True) as api:
        job = await running(api, JobProgress(items=3, verified=2, errors=1, findings=1))
        async with ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR)) as user:
            async with user.session.get(f"{api.url}/ui/scans/{job.id}/progress") as r:
                assert r.status == 200 and r.content_type == "application/json"
                assert r.headers["Cache-Control"] == "no-store"
                body = await r.json()
            assert body == {
                "status": "running",
                "finished": False,
                "items": 3,
                "verified": 2,
                "errors": 1,
                "findings": 1,
            }
            page = await user.get(f"/ui/scans/{job.id}")
            assert f'data-progress-url="/ui/scans/{job.id}/progress"' in page.text
            assert re.search(r'data-field="items">3<', page.text) and re.search(r'data-field="errors">1<', page.text)
            assert f'action="/ui/scans/{job.id}/cancel"' in page.text
            assert "Download JSON" not in page.text
            unknown = await user.get(f"/ui/scans/{job.id + 100}/progress")
            assert unknown.status == 404


async def test_a_finished_scan_shows_its_report_as_a_table_with_outside_strings_as_text(store: Store) -> None:
    """A done scan: its items (path, CID, status, media type, size), the finding with list,
    signal and distance, the item's error, the totals and the scan's errors, every name a
    publisher or gateway chose escaped; no progress box, and a JSON download link."""
    async with api_server(store, console=True) as api:
        job = await running(api)
        report = hostile_report()
        assert await api.store.jobs.finish(
            job.id, NODE, JobStatus.DONE, report=report, progress=JobProgress(2, 1, 1, 1)
        )
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as user:
            page = await user.get(f"/ui/scans/{job.id}")
        text = page.text
        assert page.status == 200
        assert html.escape(HOSTILE_PATH) in text and HOSTILE_PATH not in text
        assert html.escape(HOSTILE_LABEL) in text and HOSTILE_LABEL not in text
        assert html.escape(HOSTILE_ERROR) in text and "<b onmouseover" not in text
        assert "&lt;i&gt;timeout&lt;/i&gt;" in text
        assert ITEM_CID in text and "image/jpeg" in text and "2048" in text
        assert "tcap-sample" in text and "pdq" in text and "distance 12:" in text
        assert "deny" in text  # the finding about the root
        assert '<th scope="col">Path</th>' in text
        assert "data-progress-url" not in text and "/cancel" not in text
        assert f'href="/ui/scans/{job.id}/report.json"' in text and "Download JSON" in text


async def test_a_failed_scan_shows_its_error_as_text(store: Store) -> None:
    """A failed scan's page says why, escaped, and offers no report to download."""
    async with api_server(store, console=True) as api:
        job = await running(api)
        assert await api.store.jobs.finish(job.id, NODE, JobStatus.FAILED, error=f"list {HOSTILE_ERROR}")
        async with ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR)) as user:
            page = await user.get(f"/ui/scans/{job.id}")
            assert "Why it failed" in page.text and html.escape(f"list {HOSTILE_ERROR}") in page.text
            assert "<b onmouseover" not in page.text and "Download JSON" not in page.text
            assert (await user.get(f"/ui/scans/{job.id}/report.json")).status == 404


async def test_the_report_downloads_as_exactly_the_stored_json(store: Store) -> None:
    """report.json is 404 until the scan is done, then the stored report itself, as an attachment."""
    async with api_server(store, console=True) as api:
        job = await running(api)
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as user:
            before = await user.get(f"/ui/scans/{job.id}/report.json")
            assert before.status == 404 and "has no report" in before.text
            report = hostile_report()
            assert await api.store.jobs.finish(job.id, NODE, JobStatus.DONE, report=report)
            download = await user.get(f"/ui/scans/{job.id}/report.json")
        assert download.status == 200
        assert download.headers["Content-Type"].startswith("application/json")
        assert download.headers["Content-Disposition"] == f'attachment; filename="scan-{job.id}.json"'
        assert json.loads(download.text) == report


async def test_a_queued_scan_is_cancelled_from_its_page(store: Store) -> None:
    """The cancel button of a queued scan cancels it at once: back on its page, it says so."""
    async with api_server(store, console=True) as api:
        job = await queued(api)
        async with ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR)) as user:
            await user.get(f"/ui/scans/{job.id}")
            page = await user.post(f"/ui/scans/{job.id}/cancel", {})
            assert page.status == 200 and page.url.endswith(f"/ui/scans/{job.id}?cancelled=1")
            assert "Cancelled." in page.text and "data-progress-url" not in page.text
        assert (await api.services.jobs.get(job.id)).status is JobStatus.CANCELLED
