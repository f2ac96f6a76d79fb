"""/v1/scans through the real app over a real store: a scan is queued (202, Location), read,
paged newest first and cancelled; what an API caller must not name (a path or CAR file on
the agent's host, a gateway or list URL at a private address) is a 422 naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.model.access import Role
from agent.store import Store
from tests.support.api import api_server, api_settings

CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"


async def test_a_scan_is_queued_read_listed_and_cancelled(store: Store) -> None:
    """POST is 202 with the queued scan, its Location and the agent woken; GET shows it with no
    report yet; DELETE cancels a queued scan (202, cancelled) and a second DELETE is 200 with
    it unchanged; an unknown scan is 404."""
    wakes: list[int] = []
    async with api_server(store, wake_scans=lambda: wakes.append(1)) as api:
        client = await api.client(Role.INVESTIGATOR, name="ivy")
        made = await client.post("/v1/scans", {"target": f"/ipfs/{CID}", "mode": "raw"})
        assert made.status == 202, made.text
        scan = made.json()
        assert scan["status"] == "queued" and made.headers["Location"] == f"/v1/scans/{scan['id']}"
        assert scan["target"] == f"/ipfs/{CID}" and scan["requested_by"] == "ivy"
        assert scan["options"] == {"gateways": [], "lists": [], "mode": "raw"}
        assert wakes == [1], "the agent's runner is told at once"
        shown = await client.get(f"/v1/scans/{scan['id']}")
        assert shown.status == 200 and shown.json()["report"] is None and shown.json()["started_at"] is None
        assert shown.json()["progress"] == {"items": 0, "verified": 0, "errors": 0, "findings": 0}
        cancelled = await client.delete(f"/v1/scans/{scan['id']}")
        assert cancelled.status == 202 and cancelled.json()["status"] == "cancelled"
        again = await client.delete(f"/v1/scans/{scan['id']}")
        assert again.status == 200 and again.json() == cancelled.json()
        assert (await client.get(f"/v1/scans/{scan['id'] + 1000}")).status == 404
        assert (await client.delete(f"/v1/scans/{scan['id'] + 1000}")).status == 404


async def test_scans_are_paged_newest_first_with_a_cursor(store: Store) -> None:
    """Five scans, pages of two: 5 4 | 3 2 | 1, each page's cursor (and Link) leads to the next,
    the last has none."""
    async with api_server(store) as api:
        client = await api.client(Role.ADMIN)
        ids = [(await client.post("/v1/scans", {"target": CID})).json()["id"] for _ in range(5)]
        seen: list[list[int]] = []
        page = await client.get("/v1/scans", limit="2")
        while True:
            body = page.json()
            seen.append([s["id"] for s in body["scans"]])
            if body["next_cursor"] is None:
                assert "Link" not in page.headers
                break
            assert 'rel="next"' in page.headers["Link"]
            page = await client.get("/v1/scans", limit="2", cursor=body["next_cursor"])
        assert seen == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
        assert (await client.get("/v1/scans", cursor="nonsense")).status == 400


async def test_viewers_read_scans_platforms_do_not_and_only_scanners_start_or_cancel(store: Store) -> None:
    """A viewer may list and read but not start or cancel (403); a platform may do neither."""
    async with api_server(store) as api:
        scan = (await (await api.client(Role.ADMIN)).post("/v1/scans", {"target": CID})).json()
        viewer = await api.client(Role.VIEWER)
        assert (await viewer.get("/v1/scans")).status == 200
        assert (await viewer.get(f"/v1/scans/{scan['id']}")).status == 200
        assert (await viewer.post("/v1/scans", {"target": CID})).status == 403
        assert (await viewer.delete(f"/v1/scans/{scan['id']}")).status == 403
        platform = await api.client(Role.PLATFORM)
        assert (await platform.get("/v1/scans")).status == 403
        assert (await platform.post("/v1/scans", {"target": CID})).status == 403
        assert (await store.jobs.get(scan["id"])).status.value == "queued"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "gateway",
    ["http://127.0.0.1:8080", "http://10.0.0.1", "http://169.254.169.254/", "http://localhost:8080"],
)
async def test_a_gateway_at_a_private_address_is_refused_unless_allowed(store: Store, gateway: str) -> None:
    """A loopback, private or link-local gateway (or a name resolving to one) is 422 naming
    gateways[1], and nothing is queued; the same gateway in [api] allow_hosts is accepted."""
    # A public address as a literal: the guard passes it without a DNS lookup, and nothing runs the job.
    body = {"target": CID, "gateways": ["https://93.184.215.14", gateway]}
    async with api_server(store) as api:
        refused = await (await api.client(Role.INVESTIGATOR)).post("/v1/scans", body)
        assert refused.status == 422 and refused.fields() == ["gateways[1]"], refused.text
        assert await store.jobs.page(limit=10) == []
    host = gateway.split("//")[1].split(":")[0].rstrip("/")
    async with api_server(store, api_settings(allow_hosts=[host])) as api:
        allowed = await (await api.client(Role.INVESTIGATOR)).post("/v1/scans", body)
        assert allowed.status == 202, allowed.text


async def test_local_paths_car_files_and_file_lists_are_refused(store: Store, tmp_path: Path) -> None:
    """A directory on the agent's host, a .car file there (both existing), a file:// list and a
    list at a private address: each 422 naming its field; a wrong mode or field is 422 too."""
    folder = tmp_path / "secrets"
    folder.mkdir()
    (folder / "key.txt").write_text("private\n")
    car = tmp_path / "dump.car"
    car.write_bytes(b"\x00" * 64)
    async with api_server(store) as api:
        client = await api.client(Role.ADMIN)
        cases = [
            ({"target": str(folder)}, "target"),
            ({"target": str(car)}, "target"),
            ({"target": "dump.car"}, "target"),
            ({"target": CID, "lists": [f"file://{folder / 'key.txt'}"]}, "lists[0]"),
            ({"target": CID, "lists": ["https://example.org/l.csv", "http://10.1.2.3/list.txt"]}, "lists[1]"),
            ({"target": CID, "mode": "tar"}, "mode"),
            ({"target": CID, "depth": 3}, "depth"),
        ]
        for body, field in cases:
            resp = await client.post("/v1/scans", body)
            assert resp.status == 422, (body, resp.text)
            assert resp.fields() == [field], (body, resp.text)
        assert await store.jobs.page(limit=10) == []
