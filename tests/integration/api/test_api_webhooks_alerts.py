"""A platform that subscribed itself through the API gets the running agent's alerts: a
finding.created from a real poll of a test gateway (a PDQ list match), then, after a review
through the API calls it a false positive, finding.retracted; both verified with the
`standardwebhooks` package and the secret POST /v1/webhooks returned."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from agent.config import AlertSettings
from agent.model.access import Role
from agent.runtime.agent import Agent
from tests.conftest import MEDIA_FIXTURES
from tests.support.agent import settings_for
from tests.support.api import api_server
from tests.support.gateway import FixtureGateway
from tests.support.media_dag import expected_pdq
from tests.support.unixfs_builder import UnixFSBuilder
from tests.support.webhook_receiver import WebhookReceiver

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
ORIGINAL_PDQ = expected_pdq()["pdq/bridge-mods/aaa-orig.jpg"][0]


async def test_a_webhook_subscribed_through_the_api_gets_the_finding_and_its_retraction(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """The platform's receiver gets finding.created for the photo the agent found, signed
    with the secret of the API's answer; the platform reads that finding through the API;
    an investigator's false_positive review sends it finding.retracted, signed the same."""
    gw = await make_gateway()
    builder = UnixFSBuilder()
    cid, size = builder.add_file((MEDIA_FIXTURES / "pdq" / "bridge-mods" / "blur-a-lot.jpg").read_bytes())
    root, _ = builder.add_directory({"photo.jpg": (cid, size)})
    gw.add_blocks(builder.blocks)
    listing = tmp_path / "watch.txt"
    listing.write_text(f"pdq {ORIGINAL_PDQ}\n")
    settings = settings_for(tmp_path, gw.url, lists=[str(listing)])
    settings = settings.model_copy(update={"alerts": AlertSettings(allow_hosts=["127.0.0.1"])})

    async with WebhookReceiver([]) as receiver, Agent(settings) as agent, api_server(agent.store, settings) as api:
        platform = await api.client(Role.PLATFORM, name="platform-a")
        investigator = await api.client(Role.INVESTIGATOR, name="analyst-1")
        await agent.refresh_lists()
        made = await platform.post("/v1/webhooks", {"url": receiver.url("/hook"), "lists": ["watch"]})
        assert made.status == 201, made.text
        secret = made.json()["secret"]
        receiver.secrets = [secret]

        target = await agent.add_target(f"ipfs://{root}", 60)
        assert (await agent.poll_target(target.id, scheduled=False)).ok
        assert agent.delivery is not None
        await agent.delivery.run_once()
        (created,) = await receiver.wait_for(1, "/hook")
        event = Webhook(secret).verify(created.body, created.headers)
        assert event["type"] == "finding.created"
        assert event["data"]["finding"]["list"] == "watch" and event["data"]["item"]["path"] == "photo.jpg"
        finding_id = event["data"]["finding"]["id"]

        seen = await platform.get("/v1/findings")
        assert [f["id"] for f in seen.json()["findings"]] == [finding_id], "delivered to it, so it may read it"

        reviewed = await investigator.post(
            f"/v1/findings/{finding_id}/reviews", {"verdict": "false_positive", "note": "a bridge"}
        )
        assert reviewed.status == 201, reviewed.text
        await agent.delivery.run_once()
        retracted = (await receiver.wait_for(2, "/hook"))[1]
        event = Webhook(secret).verify(retracted.body, retracted.headers)
        assert event["type"] == "finding.retracted"
        assert event["data"]["finding"]["id"] == finding_id and event["data"]["reason"] == "false_positive"
        assert retracted.webhook_id != created.webhook_id
        assert json.loads(retracted.body)["data"]["note"] == "a bridge"
