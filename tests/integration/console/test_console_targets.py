"""The console's targets page over the real app: investigators add targets through the form
(the SSRF guard refuses a private address with its reason, nothing added), admins pause,
resume and remove them (a removal needs its checkbox), viewers only read, a forged POST
of a role that may not is 403 and changes nothing, and what a publisher or a gateway
wrote is shown as text."""

from __future__ import annotations

import re

from agent.model.access import Role
from agent.model.time import utcnow
from agent.store import Store
from tests.support.api import api_server
from tests.support.console import ConsoleUser

CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"
HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def rows(html: str) -> list[list[str]]:
    """The targets table's cells as shown (tags dropped, entities kept), row by row."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    cells = (re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S))
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in row] for row in cells]


def forms(html: str) -> list[str]:
    """The actions of a page's POST forms, but the logout one every page has."""
    return [a for a in re.findall(r'<form method="post" action="([^"]+)"', html) if a != "/ui/logout"]


async def test_an_investigator_adds_a_target_with_the_form_and_sees_it_listed(store: Store) -> None:
    """The add form watches the URL with the interval given (303 to the list, which names
    it); the same target again is left as it was and said so; an investigator has the add
    form but no pause or remove buttons."""
    async with (
        api_server(store, console=True) as api,
        ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR, "ana")) as ana,
    ):
        empty = await ana.get("/ui/targets")
        assert empty.status == 200 and "No target is watched yet" in empty.text
        assert forms(empty.text) == ["/ui/targets"]

        added = await ana.post("/ui/targets", {"url": f"/ipfs/{CID}", "interval_s": "600"})

        [target] = await api.services.targets.all()
        assert (target.url, target.kind, target.interval_s, target.enabled) == (f"ipfs://{CID}", "ipfs", 600, True)
        assert added.status == 200 and added.url.endswith(f"/ui/targets?added={target.id}")
        assert f"Now watching target {target.id}." in added.text and f"ipfs://{CID}" in added.text
        assert "10 min 0 s" in added.text
        assert forms(added.text) == ["/ui/targets"], "no pause or remove for an investigator"

        again = await ana.post("/ui/targets", {"url": f"ipfs://{CID}", "interval_s": "30"})
        assert f"Target {target.id} was watched already" in again.text
        assert [t.interval_s for t in await api.services.targets.all()] == [600]


async def test_a_private_address_and_bad_input_are_refused_beside_the_form(store: Store) -> None:
    """A Kubo on the private network is refused with the SSRF guard's reason (422, the typed
    URL kept in the form, nothing watched); so are an unparsable URL and a bad interval."""
    async with (
        api_server(store, console=True) as api,
        ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR)) as ana,
    ):
        await ana.get("/ui/targets")
        private = await ana.post("/ui/targets", {"url": "kubo://10.0.0.1:5001", "interval_s": ""})
        assert private.status == 422
        assert 'role="alert" id="target-error"' in private.text
        assert "allow_hosts" in private.text and "10.0.0.1" in private.text
        assert 'value="kubo://10.0.0.1:5001"' in private.text

        nonsense = await ana.post("/ui/targets", {"url": "ipns://not a name"})
        assert nonsense.status == 422 and "neither an IPNS key nor a DNS name" in nonsense.text
        interval = await ana.post("/ui/targets", {"url": f"ipfs://{CID}", "interval_s": "0"})
        assert interval.status == 422 and "whole number of seconds" in interval.text
        missing = await ana.post("/ui/targets", {"url": " "})
        assert missing.status == 422 and "url is required" in missing.text
        assert await api.services.targets.all() == []


async def test_hostile_url_and_gateway_error_are_shown_as_text(store: Store) -> None:
    """A target whose path is markup and a poll error quoting markup appear escaped, never raw."""
    async with api_server(store, console=True) as api:
        added = await api.services.targets.add(f"ipfs://{CID}/{HOSTILE}")
        await store.targets.record_poll(
            added.target.id, ok=False, error=f"gateway said {HOSTILE}", next_run_at=utcnow()
        )
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as viewer:
            page = await viewer.get("/ui/targets")
        assert page.status == 200
        assert HOSTILE not in page.text
        [row] = rows(page.text)
        assert row[1:3] == [f"ipfs://{CID}/{ESCAPED}", "ipfs"]
        assert row[7:9] == [f"gateway said {ESCAPED}", "1"], "the error as text, one consecutive failure"
        assert row[4] == "yes" and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", row[5]) and row[6] == "-"


async def test_a_viewer_reads_but_has_no_forms_and_its_forged_posts_are_refused(store: Store) -> None:
    """A viewer sees the targets without any form; its add, pause and remove POSTs, with a
    valid CSRF token, are 403 and leave the targets as they were."""
    async with api_server(store, console=True) as api:
        target = (await api.services.targets.add(f"ipfs://{CID}")).target
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as viewer:
            page = await viewer.get("/ui/targets")
            assert page.status == 200 and f"ipfs://{CID}" in page.text
            assert forms(page.text) == [] and 'name="url"' not in page.text
            before = await api.services.targets.all()
            answers = [
                await viewer.post("/ui/targets", {"url": "ipns://example.org"}),
                await viewer.post(f"/ui/targets/{target.id}/enabled", {"enabled": "0"}),
                await viewer.post(f"/ui/targets/{target.id}/remove", {"confirm": "yes"}),
            ]
        assert [a.status for a in answers] == [403, 403, 403]
        assert all("the viewer role may not do this" in a.text for a in answers)
        assert await api.services.targets.all() == before


async def test_an_investigator_cannot_remove_or_pause_a_target(store: Store) -> None:
    """Removing and pausing are an admin's: an investigator's forged POSTs are 403, nothing changes."""
    async with api_server(store, console=True) as api:
        target = (await api.services.targets.add(f"ipfs://{CID}")).target
        async with ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR)) as ana:
            await ana.get("/ui/targets")
            removed = await ana.post(f"/ui/targets/{target.id}/remove", {"confirm": "yes"})
            paused = await ana.post(f"/ui/targets/{target.id}/enabled", {"enabled": "0"})
        assert (removed.status, paused.status) == (403, 403)
        assert await api.services.targets.get(target.id) == target


async def test_an_admin_pauses_resumes_and_removes_a_target_with_its_checkbox(store: Store) -> None:
    """Pause stops the target (shown paused), resume watches it again; remove without
    ticking "yes, remove it" is refused (422) and keeps it; ticked, it is gone; each
    removal is in the audit trail with the target and its answer."""
    async with api_server(store, console=True) as api:
        target = (await api.services.targets.add(f"ipfs://{CID}")).target
        async with ConsoleUser.login(api.url, await api.token(Role.ADMIN, "ops")) as admin:
            page = await admin.get("/ui/targets")
            assert forms(page.text) == [
                f"/ui/targets/{target.id}/enabled",
                f"/ui/targets/{target.id}/remove",
                "/ui/targets",
            ]
            assert f'<label for="confirm-{target.id}">yes, remove it</label>' in page.text

            paused = await admin.post(f"/ui/targets/{target.id}/enabled", {"enabled": "0"})
            assert paused.url.endswith(f"?paused={target.id}") and "paused" in paused.text
            assert not (await api.services.targets.get(target.id)).enabled
            assert f"Resume target {target.id}" in paused.text
            resumed = await admin.post(f"/ui/targets/{target.id}/enabled", {"enabled": "1"})
            assert f"Target {target.id} is watched again." in resumed.text
            assert (await api.services.targets.get(target.id)).enabled

            unticked = await admin.post(f"/ui/targets/{target.id}/remove", {})
            assert unticked.status == 422 and "yes, remove it" in unticked.text
            assert [t.id for t in await api.services.targets.all()] == [target.id]

            removed = await admin.post(f"/ui/targets/{target.id}/remove", {"confirm": "yes"})
            assert removed.status == 200 and f"Target {target.id} is no longer watched" in removed.text
            assert await api.services.targets.all() == []
            gone = await admin.post(f"/ui/targets/{target.id}/remove", {"confirm": "yes"})
            assert gone.status == 404 and f"no target {target.id}" in gone.text
        removals = [e for e in await api.services.audit.recent() if e.action == "POST /ui/targets/{id}/remove"]
        assert [(e.resource, e.status, e.principal) for e in removals] == [
            (f"target:{target.id}", 404, "ops"),
            (f"target:{target.id}", 303, "ops"),
            (f"target:{target.id}", 422, "ops"),
        ]
