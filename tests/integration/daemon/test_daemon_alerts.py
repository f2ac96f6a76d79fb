"""Alerts through the running agent: a finding reaches a subscribed platform signed and
schema-valid; a false positive is retracted to exactly those who got it and never
alerted again; a takedown (410) produces content.unavailable with the time to removal."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import jsonschema

from agent.alerts.events import finding_retracted
from agent.alerts.signing import new_secret
from agent.config import AlertSettings
from agent.runtime.agent import Agent
from tests.conftest import MEDIA_FIXTURES, REPO
from tests.support.agent import settings_for
from tests.support.gateway import FixtureGateway
from tests.support.media_dag import expected_pdq
from tests.support.unixfs_builder import UnixFSBuilder
from tests.support.webhook_receiver import WebhookReceiver

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
SCHEMA = json.loads((REPO / "docs" / "events.schema.json").read_text())
ORIGINAL_PDQ = expected_pdq()["pdq/bridge-mods/aaa-orig.jpg"][0]


def check_schema(body: str) -> dict[str, object]:
    event = json.loads(body)
    jsonschema.validate(event, SCHEMA, format_checker=jsonschema.FormatChecker())
    return event  # type: ignore[no-any-return]


async def agent_with_photo(make_gateway: MakeGateway, tmp_path: Path, photo: str = "blur-a-lot.jpg"):  # type: ignore[no-untyped-def]
    gw = await make_gateway()
    builder = UnixFSBuilder()
    cid, size = builder.add_file((MEDIA_FIXTURES / "pdq" / "bridge-mods" / photo).read_bytes())
    root, _ = builder.add_directory({"photo.jpg": (cid, size)})
    gw.add_blocks(builder.blocks)
    listing = tmp_path / "watch.txt"
    listing.write_text(f"pdq {ORIGINAL_PDQ}\n")
    settings = settings_for(tmp_path, gw.url, lists=[str(listing)])
    settings = settings.model_copy(update={"alerts": AlertSettings(allow_hosts=["127.0.0.1"])})
    return gw, root, cid, listing, settings


async def test_a_finding_reaches_the_subscriber_signed_and_valid(make_gateway: MakeGateway, tmp_path: Path) -> None:
    _gw, root, _cid, _listing, settings = await agent_with_photo(make_gateway, tmp_path)
    secret = new_secret()
    async with WebhookReceiver([secret]) as receiver, Agent(settings) as agent:
        sub = await agent.store.subscriptions.add(receiver.url("/hook"), secret)
        other = await agent.store.subscriptions.add(receiver.url("/other-list"), new_secret(), lists=["elsewhere"])
        await agent.refresh_lists()
        target = await agent.add_target(f"ipfs://{root}", 60)
        assert (await agent.poll_target(target.id, scheduled=False)).ok
        assert agent.delivery is not None
        await agent.delivery.run_once()
        (got,) = await receiver.wait_for(1, "/hook")
        assert got.verified and got.webhook_id and got.webhook_id.startswith("evt_")
        event = check_schema(got.body)
        data = event["data"]
        assert event["type"] == "finding.created"
        assert data["finding"]["list"] == "watch" and data["finding"]["signal_type"] == "pdq"  # type: ignore[index]
        assert data["item"]["path"] == "photo.jpg" and data["root"] == str(root)  # type: ignore[index]
        assert data["target"] == {"id": target.id, "url": f"ipfs://{root}"}  # type: ignore[index]
        assert any(link.endswith(f"/ipfs/{root}/photo.jpg") for link in data["links"])  # type: ignore[index]
        assert receiver.at("/other-list") == [], "a subscription filtered to another list gets nothing"
        assert [d.status for d in await agent.store.outbox.deliveries_of(subscription_id=sub.id)] == ["succeeded"]
        assert await agent.store.outbox.deliveries_of(subscription_id=other.id) == []


async def test_a_false_positive_is_retracted_to_those_alerted_and_never_alerted_again(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    gw, root, cid, _listing, settings = await agent_with_photo(make_gateway, tmp_path)
    secret = new_secret()
    async with WebhookReceiver([secret]) as receiver, Agent(settings) as agent:
        await agent.store.subscriptions.add(receiver.url("/early"), secret)
        await agent.refresh_lists()
        target = await agent.add_target(f"ipfs://{root}", 60)
        await agent.poll_target(target.id, scheduled=False)
        assert agent.delivery is not None
        await agent.delivery.run_once()
        await receiver.wait_for(1, "/early")
        late = await agent.store.subscriptions.add(receiver.url("/late"), secret)  # never got the finding

        (finding,) = await agent.store.findings.recent()
        subs = await agent.store.subscriptions.all()
        at = datetime.now(UTC)
        assert finding.id is not None
        review = await agent.store.reviews.review(
            finding.id,
            "false_positive",
            note="a bridge, not propaganda",
            reviewer="analyst-1",
            retraction=lambda recipients: finding_retracted(
                finding, "false_positive", "a bridge, not propaganda", subs, recipients, at
            ),
        )
        assert review.verdict == "false_positive"
        await agent.delivery.run_once()
        early = await receiver.wait_for(2, "/early")
        retracted = check_schema(early[1].body)
        assert retracted["type"] == "finding.retracted" and early[1].verified
        assert retracted["data"]["finding"]["id"] == finding.id  # type: ignore[index]
        assert retracted["data"]["reason"] == "false_positive"  # type: ignore[index]
        assert await agent.store.outbox.deliveries_of(subscription_id=late.id) == []
        assert [r.reviewer for r in await agent.store.reviews.of(finding.id)] == ["analyst-1"]

        # The same photo under another root: suppressed, no new finding, no new alert.
        builder = UnixFSBuilder()
        root2, _ = builder.add_directory(
            {"again.jpg": (cid, len((MEDIA_FIXTURES / "pdq" / "bridge-mods" / "blur-a-lot.jpg").read_bytes()))}
        )
        gw.add_blocks(builder.blocks)
        second = await agent.add_target(f"ipfs://{root2}", 60)
        await agent.poll_target(second.id, scheduled=False)
        await agent.refresh_lists()
        await agent.delivery.run_once()
        assert await agent.store.findings.count() == 1
        assert len(receiver.received) == 2


async def test_content_answering_410_produces_content_unavailable_with_the_time_to_removal(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    gw, root, cid, _listing, settings = await agent_with_photo(make_gateway, tmp_path)
    secret = new_secret()
    async with WebhookReceiver([secret]) as receiver, Agent(settings) as agent:
        await agent.store.subscriptions.add(receiver.url("/hook"), secret)
        await agent.refresh_lists()
        target = await agent.add_target(f"ipfs://{root}", 60)
        await agent.poll_target(target.id, scheduled=False)
        assert agent.delivery is not None
        assert await agent.recheck_content() == 0, "still served: no change"
        gw.blocked[bytes(cid.digest)] = 410
        assert await agent.recheck_content() == 1
        assert await agent.recheck_content() == 0, "a state is announced once"
        await agent.delivery.run_once()
        received = await receiver.wait_for(2, "/hook")
        gone = check_schema(received[1].body)
        assert gone["type"] == "content.unavailable"
        data = gone["data"]
        assert data["item"]["cid"] == str(cid)  # type: ignore[index]
        assert data["time_to_removal_s"] >= 0  # type: ignore[index]
        assert "410" in data["reason"]  # type: ignore[index]

        del gw.blocked[bytes(cid.digest)]
        assert await agent.recheck_content() == 1
        await agent.delivery.run_once()
        back = check_schema((await receiver.wait_for(3, "/hook"))[2].body)
        assert back["type"] == "content.available"


async def test_an_entry_deleted_from_its_list_retracts_its_findings(make_gateway: MakeGateway, tmp_path: Path) -> None:
    _gw, root, _cid, listing, settings = await agent_with_photo(make_gateway, tmp_path)
    secret = new_secret()
    async with WebhookReceiver([secret]) as receiver, Agent(settings) as agent:
        await agent.store.subscriptions.add(receiver.url("/hook"), secret)
        await agent.refresh_lists()
        target = await agent.add_target(f"ipfs://{root}", 60)
        await agent.poll_target(target.id, scheduled=False)
        listing.write_text("# the entry was withdrawn upstream\n")
        await agent.refresh_lists()
        assert agent.delivery is not None
        await agent.delivery.run_once()
        received = await receiver.wait_for(2, "/hook")
        retracted = check_schema(received[1].body)
        assert retracted["type"] == "finding.retracted" and retracted["data"]["reason"] == "entry_deleted"  # type: ignore[index]
        assert len(await agent.store.reviews.retracted_ids()) == 1


async def test_two_agents_sharing_a_database_announce_a_takedown_once(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    gw, root, cid, _listing, settings = await agent_with_photo(make_gateway, tmp_path)
    async with Agent(settings, node="agent-a") as a:
        await a.store.subscriptions.add("https://platform.example/hook", new_secret())
        await a.refresh_lists()
        target = await a.add_target(f"ipfs://{root}", 60)
        await a.poll_target(target.id, scheduled=False)
        gw.blocked[bytes(cid.digest)] = 410
        async with Agent(settings, node="agent-b") as b:
            assert await a.recheck_content(scheduled=True) == 1
            probes = sum(gw.requests.values())
            assert await b.recheck_content(scheduled=True) == 0
            assert sum(gw.requests.values()) == probes, "the other agent does not probe in a claimed round"
            assert await b.recheck_content() == 0, "a manual check runs, and finds nothing new"
            assert sum(gw.requests.values()) > probes
        assert len(await a.store.outbox.events(event_type="content.unavailable")) == 1
