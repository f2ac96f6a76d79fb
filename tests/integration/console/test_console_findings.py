"""The console's findings queue and finding page over the real app: the priority and newest
orders, filters that narrow with counts that match, paging that keeps the filters; one
finding's why and where (thresholds from the agent's catalog), its content timeline, its
reviews and deliveries; a false positive retracting for its subscribers; a viewer without a
review form and refused when it forges one; and the preview fetched through a real gateway.
Whatever a publisher or a list wrote is shown as text."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path

from agent.config import ConsoleSettings, ListSettings, ListThresholds, Settings
from agent.ipfs.cid import cid_text
from agent.lists.catalog import ListCatalog, ListSummary
from agent.lists.denylist import Denylist
from agent.lists.matcher import MatchIndex
from agent.lists.model import HashList
from agent.model.access import Role
from agent.model.finding import DenyBasis, MatchedOn
from agent.model.records import FindingFilter
from agent.model.signals import SignalType
from agent.model.status import ItemState, ReviewState, Verdict
from agent.model.time import utcnow
from agent.services.findings import ReviewRequest
from agent.store import FindingRow, ItemRow, LocationRow, NewEvent, Store, SubscriptionRow
from tests.conftest import MEDIA_FIXTURES
from tests.support.agent import settings_for
from tests.support.api import api_server
from tests.support.console import ConsoleUser
from tests.support.gateway import FixtureGateway
from tests.support.unixfs_builder import UnixFSBuilder

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
HOSTILE_LABEL = "<script>alert(1)</script>"
ESCAPED_LABEL = "&lt;script&gt;alert(1)&lt;/script&gt;"
HOSTILE_PATH = "<img src=x onerror=alert(1)>.jpg"
ESCAPED_PATH = "&lt;img src=x onerror=alert(1)&gt;.jpg"
PHOTO = MEDIA_FIXTURES / "pdq" / "bridge-mods" / "aaa-orig.jpg"
ITEM_HASH = "d8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b22"
ENTRY_HASH = "d8f8f0cce0f4e84d0e370a22028f67f0b36e2ed596623e1d33e6339c4e9c9b33"


async def _record(
    store: Store,
    key: str,
    signal_type: MatchedOn = SignalType.MD5,
    distance: float = 0.0,
    *,
    list_name: str = "tcap",
    labels: Sequence[str] = (),
    target_id: int | None = None,
    path: str | None = None,
    cid: str | None = None,
    gateway: str | None = None,
    media_type: str = "image/jpeg",
    to: Sequence[SubscriptionRow] = (),
    query: str | None = None,
    entry_value: str = "abc",
    list_source: str | None = None,
    list_line: int | None = None,
    compared_percent: float | None = None,
) -> int:
    """One item seen at one location with one finding, its finding.created event delivered to `to`."""

    def outbox(new: list[FindingRow], _loc: LocationRow | None, _subs: list[SubscriptionRow]) -> list[NewEvent]:
        return [
            NewEvent(f"evt_{f.id}", "finding.created", {"id": f.id}, tuple(s.id for s in to), f.id, f.item_key)
            for f in new
        ]

    (row,) = await store.items.record(
        ItemRow(key=key, status=ItemState.VERIFIED, cid=cid or f"bafy{key}", media_type=media_type, size=2048),
        LocationRow(
            item_key=key, path=path or f"{key}.jpg", target_id=target_id, root_cid=f"bafyroot{key}", gateway=gateway
        ),
        [
            FindingRow(
                key,
                list_name,
                f"{list_name}:{key}",
                entry_value,
                signal_type,
                distance,
                labels=tuple(labels),
                query=query,
                list_source=list_source,
                list_line=list_line,
                compared_percent=compared_percent,
            )
        ],
        outbox=outbox,
    )
    assert row.id is not None
    return row.id


def queue_ids(html: str) -> list[int]:
    """The finding ids of the queue's table, top to bottom."""
    return [int(i) for i in re.findall(r'<td class="num"><a href="/ui/findings/(\d+)">', html)]


def link(html: str, rel: str) -> str:
    """A pager link's URL (prev or next), entities undone as a browser would."""
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
    assert found, f"no {rel} link"
    return found.group(1).replace("&amp;", "&")


def forms(html: str) -> list[str]:
    """The actions of a page's POST forms, but the logout one every page has."""
    return [a for a in re.findall(r'<form method="post" action="([^"]+)"', html) if a != "/ui/logout"]


async def test_the_queue_puts_exact_matches_first_then_the_closest_and_newest_orders_by_time(store: Store) -> None:
    """By default (priority) an md5 match comes before perceptual ones, and a PDQ match at 2
    bits before one at 30; `order=newest` lists them newest recorded first."""
    async with api_server(store, console=True) as api:
        far = await _record(store, "far", SignalType.PDQ, 30)
        exact = await _record(store, "exact", SignalType.MD5, 0)
        near = await _record(store, "near", SignalType.PDQ, 2)
        denied = await _record(store, "denied", DenyBasis.CID, 0)
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as user:
            priority = await user.get("/ui/findings")
            assert priority.status == 200
            assert queue_ids(priority.text) == [denied, exact, near, far]
            assert "Findings 1\u20134 of 4, highest priority first." in priority.text
            newest = await user.get("/ui/findings", order="newest")
            assert queue_ids(newest.text) == [denied, near, exact, far]
            assert "newest first" in newest.text


async def test_each_filter_narrows_the_queue_and_the_count_says_how_many(store: Store) -> None:
    """List, label, target, review state and content state each leave only their findings,
    and the count above the table is that of the filter; an unknown value is refused."""
    async with api_server(store, console=True) as api:
        target = await store.targets.add("ipfs://bafytarget", "ipfs", 600)
        a = await _record(store, "a", labels=["terror"], target_id=target.id)
        b = await _record(store, "b", list_name="ncmec", labels=["csam"])
        c = await _record(store, "c", labels=["terror", "csam"])
        await api.services.findings.review(ReviewRequest(b, Verdict.CONFIRMED, reviewer="ana"))
        await api.services.findings.review(ReviewRequest(c, Verdict.FALSE_POSITIVE, reviewer="ana"))
        await store.content.set_state("a", "unavailable", first_alert_at=utcnow(), detail={}, follow_up=None)
        await store.content.set_state("c", "available", first_alert_at=utcnow(), detail={}, follow_up=None)
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as user:
            everything = await user.get("/ui/findings")
            assert sorted(queue_ids(everything.text)) == [a, b, c] and "of 3," in everything.text
            for params, expected in (
                ({"list": "ncmec"}, [b]),
                ({"list": "tcap"}, [a, c]),
                ({"label": "csam"}, [b, c]),
                ({"label": "terr"}, []),
                ({"target": str(target.id)}, [a]),
                ({"review": "unreviewed"}, [a]),
                ({"review": "confirmed"}, [b]),
                ({"review": "false_positive"}, [c]),
                ({"content": "unavailable"}, [a]),
                ({"content": "available"}, [c]),
                ({"list": "tcap", "label": "csam"}, [c]),
            ):
                page = await user.get("/ui/findings", **params)
                assert page.status == 200, params
                assert sorted(queue_ids(page.text)) == expected, params
                if expected:
                    assert f"of {len(expected)} matching these filters" in page.text, params
                else:
                    assert "No finding matches these filters." in page.text, params
            # The drop-downs offer what there is, the current choice selected.
            chosen = await user.get("/ui/findings", label="csam", target=str(target.id))
            assert '<option value="csam" selected>csam</option>' in chosen.text
            assert f'<option value="{target.id}" selected>{target.id}: ipfs://bafytarget</option>' in chosen.text
            assert '<option value="ncmec">ncmec</option>' in chosen.text
            bad = await user.get("/ui/findings", review="maybe")
            assert bad.status == 422 and "review must be one of: unreviewed, confirmed, false_positive" in bad.text
            assert (await user.get("/ui/findings", offset="-1")).status == 422


async def test_paging_keeps_the_order_and_the_filters(store: Store) -> None:
    """One finding a page of the three labelled ones (of five): next and previous links carry
    the label, the order and the page size, and every labelled finding is shown once."""
    async with api_server(store, console=True) as api:
        ids = [await _record(store, f"k{i}", labels=["t"] if i % 2 == 0 else ["u"]) for i in range(5)]
        labelled = [ids[4], ids[2], ids[0]]
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as user:
            first = await user.get("/ui/findings", order="newest", label="t", limit="1")
            assert queue_ids(first.text) == [labelled[0]] and "Findings 1\u20131 of 3" in first.text
            assert 'rel="prev"' not in first.text
            to_second = link(first.text, "next")
            assert "label=t" in to_second and "order=newest" in to_second and "limit=1" in to_second
            second = await user.get(to_second)
            assert queue_ids(second.text) == [labelled[1]] and "Findings 2\u20132 of 3" in second.text
            third = await user.get(link(second.text, "next"))
            assert queue_ids(third.text) == [labelled[2]] and 'rel="next"' not in third.text
            back = await user.get(link(third.text, "prev"))
            assert queue_ids(back.text) == [labelled[1]]
            # The priority order pages the same way (all exact matches: newest first among them).
            by_priority = await user.get("/ui/findings", label="t", limit="2")
            assert queue_ids(by_priority.text) == labelled[:2]
            rest = await user.get(link(by_priority.text, "next"))
            assert queue_ids(rest.text) == labelled[2:] and "label=t" in link(rest.text, "prev")


async def test_an_empty_queue_says_so(store: Store) -> None:
    async with (
        api_server(store, console=True) as api,
        ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as user,
    ):
        page = await user.get("/ui/findings")
        assert page.status == 200 and "No findings yet" in page.text and "<table>" not in page.text


async def test_a_hostile_label_and_path_are_shown_as_text_in_the_queue_and_the_finding(store: Store) -> None:
    """A list label `<script>…` and a DAG path `<img onerror>` appear escaped everywhere
    they are shown (the table, the label drop-down, the finding page), never as markup."""
    async with api_server(store, console=True) as api:
        finding_id = await _record(store, "evil", labels=[HOSTILE_LABEL], path=f"dir/{HOSTILE_PATH}")
        async with ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR)) as user:
            for page in (
                await user.get("/ui/findings"),
                await user.get("/ui/findings", label=HOSTILE_LABEL),
                await user.get(f"/ui/findings/{finding_id}"),
            ):
                assert page.status == 200
                assert ESCAPED_LABEL in page.text and HOSTILE_LABEL not in page.text
                assert ESCAPED_PATH in page.text and HOSTILE_PATH not in page.text
                assert "<script>alert" not in page.text and "<img src=x" not in page.text
            filtered = await user.get("/ui/findings", label=HOSTILE_LABEL)
            assert queue_ids(filtered.text) == [finding_id]
            assert f'<option value="{ESCAPED_LABEL}" selected>' in filtered.text


def _catalog() -> ListCatalog:
    """What the agent matches with now: list "tcap" loaded, with thresholds of its own."""
    tcap = HashList("tcap", pdq_distance=20, vpdq_match_percent=75.0, vpdq_compared_percent=50.0)
    return ListCatalog(MatchIndex([tcap]), Denylist(), (ListSummary("tcap", "lists/tcap.csv", 0, 0, 0),))


async def test_the_finding_page_says_why_it_matched_and_where_it_is(store: Store) -> None:
    """Signal type, the item's and the entry's hashes, the distance beside the loaded list's
    threshold, source, version, line, labels; target, root CID, path, item CID, the gateway
    that served it, every location and the gateway links; a list this agent has not loaded
    has an unknown threshold unless the configuration sets one; vPDQ shows the share of the
    list video and its threshold."""
    # A list this agent has not loaded, with a threshold of its own in the configuration.
    configured = Settings(lists=ListSettings(thresholds={"configured": ListThresholds(pdq_distance=10)}))
    async with api_server(store, configured, console=True, catalog=_catalog) as api:
        target = await store.targets.add("ipfs://bafytarget", "ipfs", 600)
        await store.lists.record_version("tcap", "lists/tcap.csv", "ab" * 32, 12, 0, 0)
        finding_id = await _record(
            store,
            "photo",
            SignalType.PDQ,
            7,
            labels=["terror"],
            target_id=target.id,
            path="album/photo.jpg",
            cid="bafyphotocid",
            gateway="http://gw.example",
            query=ITEM_HASH,
            entry_value=ENTRY_HASH,
            list_source="lists/tcap.csv",
            list_line=42,
        )
        await store.items.record(
            ItemRow(key="photo", status=ItemState.VERIFIED, cid="bafyphotocid"),
            LocationRow(item_key="photo", path="mirror/photo.jpg", root_cid="bafyother", gateway="http://gw2.example"),
        )
        unloaded = await _record(store, "other", SignalType.PDQ, 3, list_name="elsewhere")
        set_aside = await _record(store, "aside", SignalType.PDQ, 3, list_name="configured")
        video = await _record(store, "video", SignalType.VPDQ, 90, compared_percent=60.0, media_type="video/mp4")
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as user:
            page = await user.get(f"/ui/findings/{finding_id}")
            assert page.status == 200
            text = page.text
            for heading in ("Why it matched", "Where it is", "Preview", "Content state", "Reviews", "Deliveries"):
                assert f">{heading}</h2>" in text, heading
            assert "<dt>Signal type</dt><dd>pdq</dd>" in text
            assert f'<dd class="mono">{ITEM_HASH}</dd>' in text and f'<dd class="mono">{ENTRY_HASH}</dd>' in text
            assert "<dd>7 bits</dd>" in text and "<dd>at most 20 bits</dd>" in text
            assert '<dd class="mono">lists/tcap.csv</dd>' in text and "<dt>Line</dt><dd>42</dd>" in text
            assert "ab" * 32 in text and "12 entries" in text
            assert '<span class="badge">terror</span>' in text
            assert "ipfs://bafytarget" in text and "bafyrootphoto" in text and "album/photo.jpg" in text
            assert (
                '<dd class="mono">bafyphotocid</dd>' in text and '<span class="mono">http://gw.example</span>' in text
            )
            assert "mirror/photo.jpg" in text and "http://gw2.example" in text  # every location
            assert "http://gw.example/ipfs/bafyrootphoto/album/photo.jpg" in text
            assert "http://gw.example/ipfs/bafyphotocid" in text
            assert 'data-preview-src="/ui/findings/' in text  # an image: a preview

            queue = await user.get("/ui/findings")
            assert "7 bits / <span>at most 20 bits</span>" in queue.text

            other = await user.get(f"/ui/findings/{unloaded}")
            assert "unknown: this agent has not loaded list elsewhere" in other.text
            assert "no version of this list is stored" in other.text
            aside = await user.get(f"/ui/findings/{set_aside}")
            assert "at most 10 bits (as configured; this agent has not loaded the list)" in aside.text

            clip = await user.get(f"/ui/findings/{video}")
            assert "90% of the frames matched" in clip.text and "at least 75% of the video&#39;s frames" in clip.text
            assert "60% of the list video's frames" in clip.text
            assert "at least 50% of the list video&#39;s frames" in clip.text
            assert "data-preview-src" not in clip.text and "previews are for images" in clip.text

            assert (await user.get("/ui/findings/424242")).status == 404


async def test_the_content_timeline_shows_the_removal_and_the_gateways_that_blocked_it(store: Store) -> None:
    """Unavailable two hours after the first alert: the state, the time to removal, each
    gateway's answer at the last check (a 410 one named among the gateways that blocked it)
    and the content.unavailable change with its reason."""
    async with api_server(store, console=True) as api:
        finding_id = await _record(store, "gone")
        answers = {
            "http://gw.example": {"status": 410, "verdict": "blocked"},
            "http://gw2.example": {"status": 404, "verdict": "not_found"},
        }
        detail = {"gateways": answers, "providers": 0, "reason": "410 at http://gw.example; 0 providers"}

        def announce(recipients: list[int]) -> NewEvent:
            payload = {**detail, "time_to_removal_s": 7200.0}
            return NewEvent("evt_gone", "content.unavailable", payload, tuple(recipients), item_key="gone")

        first_alert = utcnow() - timedelta(hours=2)
        await store.content.set_state(
            "gone", "unavailable", first_alert_at=first_alert, detail=detail, follow_up=announce
        )
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as user:
            text = (await user.get(f"/ui/findings/{finding_id}")).text
            assert '<span class="badge ok">unavailable</span>' in text
            assert "<dt>Time to removal</dt><dd>2 h 0 min</dd>" in text
            assert "410 at http://gw.example; 0 providers" in text and "(0 providers in routing)" in text
            assert '<td class="mono">http://gw2.example</td><td class="num">404</td><td>not found</td>' in text
            blocked = text.split("<dt>Gateways that blocked it</dt>", 1)[1].split("</dd>", 1)[0]
            assert "http://gw.example" in blocked and "HTTP 410" in blocked and "gw2" not in blocked
            assert "became unavailable" in text
            unchecked = await _record(store, "fresh")
            assert "Not checked yet" in (await user.get(f"/ui/findings/{unchecked}")).text


async def test_a_false_positive_by_an_investigator_is_recorded_retracted_and_audited(store: Store) -> None:
    """The review form posts a false positive with a note: the page shows the review and the
    retraction, the service has both, the subscriber that got the finding is sent
    finding.retracted, the audit trail has the POST, and no review form is left."""
    async with api_server(store, console=True) as api:
        sub = await store.subscriptions.add("https://acme.example/hook", "whsec_a", owner="acme")
        finding_id = await _record(store, "fp", to=[sub])
        async with ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR, "ana")) as ana:
            before = await ana.get(f"/ui/findings/{finding_id}")
            assert forms(before.text) == [f"/ui/findings/{finding_id}/review"]
            assert '<label for="note">' in before.text and '<textarea id="note" name="note"' in before.text

            answer = await ana.post(
                f"/ui/findings/{finding_id}/review", {"verdict": "false_positive", "note": "a <b>logo</b>"}
            )
            assert answer.status == 200 and answer.url.endswith(f"/ui/findings/{finding_id}?reviewed=false_positive")
            assert "Recorded as a false positive: the alert is retracted for its subscribers." in answer.text
            assert 'id="retraction"' in answer.text and "reviewed as a false positive" in answer.text
            assert "a &lt;b&gt;logo&lt;/b&gt;" in answer.text and "<td>ana</td>" in answer.text
            assert forms(answer.text) == [], "nothing left to decide once retracted"

        shown = await api.services.findings.show(finding_id)
        assert [(r.verdict, r.note, r.reviewer) for r in shown.reviews] == [
            (Verdict.FALSE_POSITIVE, "a <b>logo</b>", "ana")
        ]
        assert shown.view.retraction is not None and shown.view.retraction.reason.value == "false_positive"
        [retracted] = await store.outbox.events(event_type="finding.retracted")
        assert [d.subscription_id for d in await store.outbox.deliveries_of(event_id=retracted.id)] == [sub.id]
        trail = await api.services.audit.recent(principal="ana")
        assert [(e.action, e.status, e.resource) for e in trail if e.action != "POST /ui/login"] == [
            ("POST /ui/findings/{id}/review", 303, f"finding:{finding_id}")
        ]


async def test_a_confirmed_finding_can_still_be_marked_a_false_positive_and_a_bad_verdict_is_refused(
    store: Store,
) -> None:
    """Confirming keeps the form (a confirmed finding may turn out a false positive later);
    a verdict that is neither is refused beside the form with the note kept, recording nothing."""
    async with api_server(store, console=True) as api:
        finding_id = await _record(store, "ok")
        async with ConsoleUser.login(api.url, await api.token(Role.ADMIN, "root")) as admin:
            confirmed = await admin.post(f"/ui/findings/{finding_id}/review", {"verdict": "confirmed", "note": ""})
            assert "Recorded: the finding is confirmed." in confirmed.text
            assert forms(confirmed.text) == [f"/ui/findings/{finding_id}/review"]
            bad = await admin.post(f"/ui/findings/{finding_id}/review", {"verdict": "maybe", "note": "kept"})
            assert bad.status == 422 and 'role="alert" id="review-error"' in bad.text
            assert "Choose Confirm or False positive".lower() in bad.text.lower() and ">kept</textarea>" in bad.text
        reviews = (await api.services.findings.show(finding_id)).reviews
        assert [(r.verdict, r.note) for r in reviews] == [(Verdict.CONFIRMED, None)]
        assert await api.services.findings.count(FindingFilter(review=ReviewState.CONFIRMED)) == 1


async def test_a_viewer_has_no_review_form_and_its_forged_review_is_refused(store: Store) -> None:
    """A viewer's finding page has no review form; a review posted anyway, with the viewer's
    own valid CSRF token, is 403 and records nothing (the refusal is in the audit trail)."""
    async with api_server(store, console=True) as api:
        finding_id = await _record(store, "v")
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER, "val")) as val:
            page = await val.get(f"/ui/findings/{finding_id}")
            assert page.status == 200 and forms(page.text) == []
            assert "False positive</button>" not in page.text
            forged = await val.post(f"/ui/findings/{finding_id}/review", {"verdict": "false_positive"})
            assert forged.status == 403 and "the viewer role may not do this" in forged.text
        shown = await api.services.findings.show(finding_id)
        assert shown.reviews == () and shown.view.retraction is None
        assert await store.outbox.events(event_type="finding.retracted") == []
        trail = await api.services.audit.recent(principal="val")
        assert [(e.action, e.status) for e in trail if e.action != "POST /ui/login"] == [
            ("POST /ui/findings/{id}/review", 403)
        ]


async def test_deliveries_are_shown_to_admins_with_the_subscription_url_as_text(store: Store) -> None:
    """An admin sees each delivery of the finding's events (the subscription's URL as text,
    its status and attempts); an investigator is told deliveries are an admin's to see."""
    async with api_server(store, console=True) as api:
        sub = await store.subscriptions.add("https://acme.example/hook?<x>", "whsec_a", owner="acme")
        finding_id = await _record(store, "sent", to=[sub])
        async with ConsoleUser.login(api.url, await api.token(Role.ADMIN)) as admin:
            text = (await admin.get(f"/ui/findings/{finding_id}")).text
            deliveries = text.split(">Deliveries</h2>", 1)[1]
            assert "<td>finding.created</td>" in deliveries
            assert '<span class="mono">https://acme.example/hook?&lt;x&gt;</span>' in deliveries
            assert '<span class="badge">pending</span>' in deliveries
        async with ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR)) as ana:
            text = (await ana.get(f"/ui/findings/{finding_id}")).text
            assert "acme.example" not in text and "shown to admins" in text


# -- previews ---------------------------------------------------------------------------------


def _serve_photo(gateway: FixtureGateway) -> str:
    """The photo as one UnixFS file on `gateway`; its CID."""
    builder = UnixFSBuilder(chunk=64 * 1024)
    cid, _ = builder.add_file(PHOTO.read_bytes())
    gateway.add_blocks(builder.blocks)
    return cid_text(cid)


def _with_blur(settings: Settings, blur: bool) -> Settings:
    return settings.model_copy(update={"console": ConsoleSettings(blur_previews=blur)})


async def test_the_preview_is_an_image_fetched_through_a_real_gateway(
    store: Store, make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """The finding page's figure points at the preview; GET on it answers a JPEG re-encoded
    from the verified bytes, not cached, shown inline; the image is veiled by default."""
    gateway = await make_gateway()
    cid = _serve_photo(gateway)
    async with api_server(store, settings_for(tmp_path, gateway.url), console=True) as api:
        finding_id = await _record(store, "shown", SignalType.PDQ, 4, cid=cid)
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as user:
            page = await user.get(f"/ui/findings/{finding_id}")
            assert f'data-preview-src="/ui/findings/{finding_id}/preview"' in page.text
            assert f'<img id="preview-{finding_id}" class="veiled"' in page.text
            assert "Fetching a preview through verified retrieval…" in page.text
            assert f'data-reveal="preview-{finding_id}" aria-pressed="false">Reveal preview</button>' in page.text
            async with user.session.get(f"{api.url}/ui/findings/{finding_id}/preview") as r:
                body = await r.read()
                assert r.status == 200 and r.content_type == "image/jpeg", await r.text(errors="replace")
                assert r.headers["Cache-Control"] == "no-store" and r.headers["Content-Disposition"] == "inline"
            assert body[:3] == b"\xff\xd8\xff" and body != PHOTO.read_bytes()


async def test_a_preview_no_gateway_answers_is_a_502_with_the_reason(
    store: Store, make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """With the only gateway gone, the preview is a 502 whose plain-text message says no
    preview could be fetched; the finding page itself still shows."""
    gateway = await make_gateway()
    cid = _serve_photo(gateway)
    url = gateway.url
    await gateway.stop()
    async with api_server(store, settings_for(tmp_path, url), console=True) as api:
        finding_id = await _record(store, "lost", cid=cid)
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as user:
            preview = await user.get(f"/ui/findings/{finding_id}/preview")
            assert preview.status == 502 and preview.headers["Content-Type"].startswith("text/plain")
            assert preview.text.startswith("no preview") and url in preview.text
            assert (await user.get(f"/ui/findings/{finding_id}")).status == 200


async def test_a_reviewer_who_turned_the_blur_off_gets_an_unveiled_preview(store: Store, tmp_path: Path) -> None:
    """Blur off in the reviewer's own settings (the configured default on): no `veiled` class,
    and the button offers to veil it; the setting is the reviewer's, not everyone's."""
    async with api_server(store, _with_blur(settings_for(tmp_path), True), console=True) as api:
        finding_id = await _record(store, "pic")
        async with ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR, "ana")) as ana:
            assert 'class="veiled"' in (await ana.get(f"/ui/findings/{finding_id}")).text
            await ana.post("/ui/settings", {})  # the checkbox unticked
            page = await ana.get(f"/ui/findings/{finding_id}")
            assert f'<img id="preview-{finding_id}" alt=' in page.text and 'class="veiled"' not in page.text
            assert 'aria-pressed="true">Veil preview</button>' in page.text
        async with ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR, "bob")) as bob:
            assert 'class="veiled"' in (await bob.get(f"/ui/findings/{finding_id}")).text
