"""/v1/findings and /v1/lists through the real app: filtered pages behind a cursor (and a
Link header), one finding in full (deliveries for admins only), platforms limited to what
was delivered to them, and reviews whose false positive sends finding.retracted."""

from __future__ import annotations

from collections.abc import Sequence

from agent.model.access import Role
from agent.model.signals import SignalType
from agent.model.status import ItemState
from agent.store import FindingRow, ItemRow, LocationRow, NewEvent, Store, SubscriptionRow
from tests.support.api import api_server


async def _record(
    store: Store,
    key: str,
    *,
    labels: Sequence[str] = (),
    target_id: int | None = None,
    to: Sequence[SubscriptionRow] = (),
) -> int:
    """One item with one finding, its finding.created event delivered to `to`."""

    def outbox(new: list[FindingRow], _loc: LocationRow | None, _subs: list[SubscriptionRow]) -> list[NewEvent]:
        return [
            NewEvent(f"evt_{f.id}", "finding.created", {"id": f.id}, tuple(s.id for s in to), f.id, f.item_key)
            for f in new
        ]

    (finding,) = await store.items.record(
        ItemRow(key=key, status=ItemState.VERIFIED, cid=f"bafy{key}"),
        LocationRow(item_key=key, path=f"{key}.jpg", target_id=target_id),
        [FindingRow(key, "tcap", f"tcap:{key}", "abc", SignalType.MD5, 0.0, labels=tuple(labels))],
        outbox=outbox,
    )
    assert finding.id is not None
    return finding.id


async def test_findings_page_newest_first_with_filters_and_a_cursor(store: Store) -> None:
    """limit=2 pages through five findings newest first; next_cursor and the Link header lead
    to the next page, which keeps the filters; the last page has no cursor."""
    async with api_server(store) as api:
        ids = [await _record(store, f"k{i}", labels=["t"] if i % 2 else ["u"]) for i in range(5)]
        client = await api.client(Role.VIEWER)
        first = await client.get("/v1/findings", limit="2")
        assert [f["id"] for f in first.json()["findings"]] == [ids[4], ids[3]]
        assert first.json()["findings"][0]["list"] == "tcap" and first.json()["findings"][0]["cid"] == "bafyk4"
        cursor = first.json()["next_cursor"]
        assert f"cursor={cursor}" in first.headers["Link"] and 'rel="next"' in first.headers["Link"]
        second = await client.get("/v1/findings", limit="2", cursor=cursor)
        third = await client.get("/v1/findings", limit="2", cursor=second.json()["next_cursor"])
        assert [f["id"] for f in second.json()["findings"] + third.json()["findings"]] == [ids[2], ids[1], ids[0]]
        assert third.json()["next_cursor"] is None and "Link" not in third.headers
        labelled = await client.get("/v1/findings", label="t", limit="1")
        assert [f["id"] for f in labelled.json()["findings"]] == [ids[3]]
        nxt = await client.get("/v1/findings", label="t", limit="1", cursor=labelled.json()["next_cursor"])
        assert [f["id"] for f in nxt.json()["findings"]] == [ids[1]]
        assert (await client.get("/v1/findings", review="unreviewed")).json()["findings"][0]["id"] == ids[4]
        assert (await client.get("/v1/findings", list="other")).json()["findings"] == []


async def test_bad_query_values_are_refused_naming_the_parameter(store: Store) -> None:
    """A limit out of range, an unknown review state, a time without offset and a forged
    cursor are refused (422 / 400) naming the parameter."""
    async with api_server(store) as api:
        client = await api.client(Role.VIEWER)
        assert (await client.get("/v1/findings", limit="0")).fields() == ["limit"]
        assert (await client.get("/v1/findings", limit="501")).fields() == ["limit"]
        assert (await client.get("/v1/findings", review="maybe")).fields() == ["review"]
        naive = await client.get("/v1/findings", since="2026-01-01T00:00:00")
        assert naive.status == 422 and naive.fields() == ["since"]
        assert (await client.get("/v1/findings", since="2026-01-01T00:00:00Z")).status == 200
        forged = await client.get("/v1/findings", cursor="not-ours")
        assert forged.status == 400 and forged.fields() == ["cursor"]


async def test_a_platform_sees_only_the_findings_delivered_to_it(store: Store) -> None:
    """A platform's list holds the findings sent to its own subscriptions; another finding is
    404 to it, as if absent, while a viewer sees both."""
    async with api_server(store) as api:
        acme = await store.subscriptions.add("https://acme.example/a", "whsec_a", owner="acme")
        other = await store.subscriptions.add("https://other.example/h", "whsec_o", owner="other")
        mine = await _record(store, "a", to=[acme])
        theirs = await _record(store, "b", to=[other])
        platform = await api.client(Role.PLATFORM, name="acme")
        assert [f["id"] for f in (await platform.get("/v1/findings")).json()["findings"]] == [mine]
        assert (await platform.get(f"/v1/findings/{mine}")).status == 200
        assert (await platform.get(f"/v1/findings/{theirs}")).status == 404
        viewer = await api.client(Role.VIEWER)
        assert len((await viewer.get("/v1/findings")).json()["findings"]) == 2


async def test_a_finding_in_full_shows_deliveries_to_admins_only(store: Store) -> None:
    """GET /v1/findings/{id} gives locations, reviews and content state; the deliveries of
    its events only to an admin (null for others); an unknown id is 404."""
    async with api_server(store) as api:
        sub = await store.subscriptions.add("https://acme.example/a", "whsec_a", owner="acme")
        finding_id = await _record(store, "a", to=[sub])
        admin = await api.client(Role.ADMIN)
        full = (await admin.get(f"/v1/findings/{finding_id}")).json()
        assert full["locations"][0]["path"] == "a.jpg" and full["reviews"] == []
        assert [d["subscription_id"] for d in full["deliveries"]] == [sub.id]
        investigator = await api.client(Role.INVESTIGATOR)
        assert (await investigator.get(f"/v1/findings/{finding_id}")).json()["deliveries"] is None
        assert (await admin.get("/v1/findings/424242")).status == 404


async def test_a_false_positive_review_retracts_to_who_got_the_finding(store: Store) -> None:
    """A review is recorded with the principal as reviewer (201); false_positive queues
    finding.retracted to the subscription that was sent the finding; a bad verdict is 422."""
    async with api_server(store) as api:
        sub = await store.subscriptions.add("https://acme.example/a", "whsec_a", owner="acme")
        finding_id = await _record(store, "a", to=[sub])
        client = await api.client(Role.INVESTIGATOR, name="ana")
        bad = await client.post(f"/v1/findings/{finding_id}/reviews", {"verdict": "maybe"})
        assert bad.status == 422 and bad.fields() == ["verdict"]
        confirmed = await client.post(f"/v1/findings/{finding_id}/reviews", {"verdict": "confirmed"})
        assert confirmed.status == 201 and confirmed.json()["reviewer"] == "ana"
        assert await store.outbox.events(event_type="finding.retracted") == []
        fp = await client.post(f"/v1/findings/{finding_id}/reviews", {"verdict": "false_positive", "note": "a logo"})
        assert fp.status == 201
        [retraction] = await store.outbox.events(event_type="finding.retracted")
        assert retraction.finding_id == finding_id
        assert [d.subscription_id for d in await store.outbox.deliveries_of(event_id=retraction.id)] == [sub.id]
        shown = (await client.get(f"/v1/findings/{finding_id}")).json()
        assert [r["verdict"] for r in shown["reviews"]] == ["confirmed", "false_positive"]
        assert shown["review"]["verdict"] == "false_positive" and shown["retraction"]["reason"] == "false_positive"
        listed = await client.get("/v1/findings", review="false_positive")
        assert [f["id"] for f in listed.json()["findings"]] == [finding_id]


async def test_lists_show_each_lists_version_and_counts(store: Store) -> None:
    """GET /v1/lists names each list the store has a version of, with its content hash,
    counts and problems; entries by type are null when this agent has not loaded it."""
    async with api_server(store) as api:
        await store.lists.record_version("tcap", "https://tcap.example/list", "ab" * 32, 12, 0, 1)
        listed = (await (await api.client(Role.VIEWER)).get("/v1/lists")).json()["lists"]
        assert [(x["name"], x["version"], x["entries"], x["problems"]) for x in listed] == [("tcap", "ab" * 32, 12, 1)]
        assert listed[0]["entries_by_type"] is None
