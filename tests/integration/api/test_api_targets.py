"""/v1/targets through the real app: the CLI's rules (a target watched twice is one
target), bodies read strictly (413, 415, 400, 422 naming the field), the SSRF guard on
what an API caller names, and the audit trail of every mutating call (not of reads)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.model.access import Role
from agent.store import Store
from tests.support import wait
from tests.support.api import api_server, api_settings

CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"


async def test_targets_are_added_listed_shown_and_removed(store: Store) -> None:
    """POST adds (201 with Location), the same target again is 200 with the same id and its
    first interval, GET lists and shows it, DELETE removes it (204) and then it is 404."""
    async with api_server(store) as api:
        client = await api.client(Role.ADMIN)
        made = await client.post("/v1/targets", {"url": f"/ipfs/{CID}", "interval_s": 120})
        assert made.status == 201
        target = made.json()
        assert target["url"] == f"ipfs://{CID}" and target["kind"] == "ipfs" and target["interval_s"] == 120
        assert made.headers["Location"] == f"/v1/targets/{target['id']}"
        again = await client.post("/v1/targets", {"url": f"ipfs://{CID}", "interval_s": 30})
        assert again.status == 200 and again.json()["id"] == target["id"] and again.json()["interval_s"] == 120
        listed = await client.get("/v1/targets")
        assert [t["id"] for t in listed.json()["targets"]] == [target["id"]]
        assert (await client.get(f"/v1/targets/{target['id']}")).json() == target
        assert (await client.delete(f"/v1/targets/{target['id']}")).status == 204
        assert (await client.get(f"/v1/targets/{target['id']}")).status == 404
        gone = await client.delete(f"/v1/targets/{target['id']}")
        assert gone.status == 404 and gone.problem["detail"] == f"no target {target['id']}"


async def test_bodies_are_json_bounded_and_checked_field_by_field(store: Store) -> None:
    """Another content type is 415, a body over max_body_bytes 413, broken JSON 400, and a
    wrong type, an unknown field or a missing one 422 naming each field; nothing is added."""
    async with api_server(store, api_settings(max_body_bytes=256)) as api:
        client = await api.client(Role.ADMIN)
        form = await client.request("POST", "/v1/targets", data="url=x", headers={"Content-Type": "text/plain"})
        assert form.status == 415
        huge = await client.post("/v1/targets", {"url": "ipfs://" + "a" * 300})
        assert huge.status == 413 and "256" in huge.problem["detail"]
        broken = await client.request(
            "POST", "/v1/targets", data='{"url": ', headers={"Content-Type": "application/json"}
        )
        assert broken.status == 400
        bad = await client.post("/v1/targets", {"url": 7, "interval_s": "60", "colour": "red"})
        assert bad.status == 422
        assert sorted(bad.fields()) == ["colour", "interval_s", "url"]
        missing = await client.post("/v1/targets", {})
        assert missing.status == 422 and missing.fields() == ["url"]
        nul = await client.post("/v1/targets", {"url": f"ipfs://{CID}\u0000"})
        assert nul.status == 422 and nul.fields() == ["url"]
        nonsense = await client.post("/v1/targets", {"url": "ipns://not a name"})
        assert nonsense.status == 422 and "neither an IPNS key nor a DNS name" in nonsense.problem["detail"]
        assert await store.targets.all() == []


async def test_a_chunked_body_over_the_limit_is_413(store: Store) -> None:
    """A body sent without Content-Length is counted while it is read: over the limit is 413."""
    async with api_server(store, api_settings(max_body_bytes=64)) as api:
        client = await api.client(Role.ADMIN)

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"url": "'
            for _ in range(10):
                yield b"a" * 16
            yield b'"}'

        resp = await client.request(
            "POST",
            "/v1/targets",
            data=chunks(),
            headers={"Content-Type": "application/json"},
        )
        assert resp.status == 413


async def test_unknown_query_parameters_are_refused(store: Store) -> None:
    """A query parameter a route does not take is a 400 naming it."""
    async with api_server(store) as api:
        client = await api.client(Role.VIEWER)
        resp = await client.get("/v1/targets", sort="url")
        assert resp.status == 400 and resp.fields() == ["sort"]


@pytest.mark.parametrize(
    "url",
    [
        "kubo://127.0.0.1:5001",
        "kubo://10.0.0.1:5001",
        "kubo://localhost:5001",
        f"http://169.254.169.254/ipfs/{CID}",
        f"http://10.0.0.1:8080/ipfs/{CID}",
        f"http://localhost:8080/ipfs/{CID}",
        "arweave+http://169.254.169.254?Content-Type=image/png",
    ],
)
async def test_a_target_naming_a_private_host_is_refused(store: Store, url: str) -> None:
    """The agent must not poll its own host, the private network or the metadata service
    for an API caller: 422 saying why, and nothing is watched."""
    async with api_server(store) as api:
        client = await api.client(Role.INVESTIGATOR)
        resp = await client.post("/v1/targets", {"url": url})
        assert resp.status == 422, resp.text
        assert "allow_hosts" in resp.problem["detail"] and resp.fields() == ["url"]
        assert await store.targets.all() == []


async def test_hosts_in_allow_hosts_and_the_configured_gateways_may_be_named(store: Store) -> None:
    """[api] allow_hosts lets an operator's own Kubo on 127.0.0.1 be watched; a gateway in
    [gateways] urls is trusted as the operator chose it."""
    base = api_settings(allow_hosts=["127.0.0.1"])
    settings = base.model_copy(update={"gateways": base.gateways.model_copy(update={"urls": ["http://10.0.0.1:8080"]})})
    async with api_server(store, settings) as api:
        client = await api.client(Role.ADMIN)
        assert (await client.post("/v1/targets", {"url": "kubo://127.0.0.1:5001"})).status == 201
        assert (await client.post("/v1/targets", {"url": f"http://10.0.0.1:8080/ipfs/{CID}"})).status == 201
        assert (await client.post("/v1/targets", {"url": "kubo://10.0.0.2:5001"})).status == 422


async def test_mutating_calls_are_audited_and_reads_are_not(store: Store) -> None:
    """An added target, a refused add (403, 422) and a removal of an unknown target (404) are
    each recorded with the principal, role, token, action, resource, status and remote
    address; GETs and calls without a valid token (401) are not."""
    async with api_server(store) as api:
        admin_token = await api.tokens.add(Role.ADMIN, "ops")
        admin = await api.client(token=admin_token.token)
        viewer = await api.client(Role.VIEWER, name="vic")
        anonymous = await api.client()
        made = (await admin.post("/v1/targets", {"url": f"ipfs://{CID}"})).json()
        await admin.get("/v1/targets")
        await admin.get(f"/v1/targets/{made['id']}")
        await admin.post("/v1/targets", {"url": "nope"})
        await viewer.post("/v1/targets", {"url": f"ipfs://{CID}"})
        await admin.delete("/v1/targets/4242")
        await anonymous.post("/v1/targets", {"url": f"ipfs://{CID}"})
        # Recorded after the 401 was answered: once it is in, the 401 would be too.
        await admin.delete("/v1/targets/4243")

        async def last_is_in() -> bool:
            return any(r.resource == "target:4243" for r in await api.audit.recent())

        await wait.until(last_is_in)
        rows = await api.audit.recent()
        seen = sorted((r.action, r.status, r.principal or "", r.resource or "") for r in rows)
        assert seen == sorted(
            [
                ("POST /v1/targets", 201, "ops", f"target:{made['id']}"),
                ("POST /v1/targets", 422, "ops", ""),
                ("POST /v1/targets", 403, "vic", ""),
                ("DELETE /v1/targets/{id}", 404, "ops", "target:4242"),
                ("DELETE /v1/targets/{id}", 404, "ops", "target:4243"),
            ]
        )
        created = next(r for r in rows if r.status == 201)
        assert created.token_id == admin_token.row.id and created.role is Role.ADMIN
        assert next(r for r in rows if r.status == 403).role is Role.VIEWER
        assert {r.remote for r in rows} == {"127.0.0.1"}
