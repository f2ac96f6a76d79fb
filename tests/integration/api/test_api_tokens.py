"""/v1/tokens and /v1/audit through the real app: admins only; a token made through the API
works at once and is shown once (the store holds only its hash), a revoked one stops at once;
the audit trail lists every mutating call (who, what, answer, from where) and no read."""

from __future__ import annotations

from agent.model.access import Role
from agent.services.tokens import token_hash
from agent.store import Store
from tests.support.api import api_server

CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"


async def test_only_admins_reach_tokens_and_the_audit_log(store: Store) -> None:
    """Investigator, platform and viewer tokens get 403 on every token and audit route."""
    async with api_server(store) as api:
        admin_made = await (await api.client(Role.ADMIN)).post("/v1/tokens", {"role": "viewer"})
        made_id = admin_made.json()["id"]
        for role in (Role.INVESTIGATOR, Role.PLATFORM, Role.VIEWER):
            client = await api.client(role)
            assert (await client.get("/v1/tokens")).status == 403
            assert (await client.post("/v1/tokens", {"role": "admin"})).status == 403
            assert (await client.delete(f"/v1/tokens/{made_id}")).status == 403
            assert (await client.get("/v1/audit")).status == 403
        assert [t.role for t in await store.tokens.all()].count(Role.ADMIN) == 1, "no admin was made"


async def test_a_token_made_through_the_api_works_is_shown_once_and_stops_when_revoked(store: Store) -> None:
    """POST is 201 with the token; it calls the API with its role at once; the list shows it
    without the secret, the store holds only its SHA-256; DELETE revokes it and its next call
    is 401; an unknown id is 404, a bad role 422."""
    async with api_server(store) as api:
        admin = await api.client(Role.ADMIN, name="root")
        made = await admin.post("/v1/tokens", {"role": "investigator", "name": "ivy"})
        assert made.status == 201, made.text
        new = made.json()
        assert (new["name"], new["role"], new["active"]) == ("ivy", "investigator", True)
        assert made.headers["Location"] == f"/v1/tokens/{new['id']}"
        ivy = await api.client(token=new["token"])
        assert (await ivy.get("/v1/targets")).status == 200
        assert (await ivy.get("/v1/tokens")).status == 403, "an investigator's token, not an admin's"

        listed = (await admin.get("/v1/tokens")).json()["tokens"]
        assert [t["name"] for t in listed] == ["root", "ivy"]
        assert all("token" not in t for t in listed) and new["token"] not in str(listed)
        found = await store.tokens.by_hash(token_hash(new["token"]))
        assert found is not None and found[0].id == new["id"]

        revoked = await admin.delete(f"/v1/tokens/{new['id']}")
        assert revoked.status == 200 and revoked.json()["active"] is False
        assert (await ivy.get("/v1/targets")).status == 401
        assert (await admin.delete("/v1/tokens/999999")).status == 404
        bad = await admin.post("/v1/tokens", {"role": "superuser"})
        assert bad.status == 422 and bad.fields() == ["role"]
        clash = await admin.post("/v1/tokens", {"role": "viewer", "name": "root"})
        assert clash.status == 422 and "one principal has one role" in clash.problem["detail"]


async def test_the_audit_log_lists_the_mutating_calls_and_no_reads(store: Store) -> None:
    """After a scan, a refused target, a token made and a few reads: the audit log lists the
    three mutating calls newest first (who, token, role, what, answer, from 127.0.0.1), never a
    read or the token's secret; the principal filter and the cursor narrow and page it."""
    async with api_server(store) as api:
        admin = await api.client(Role.ADMIN, name="root")
        ivy = await api.client(Role.INVESTIGATOR, name="ivy")
        scan = await ivy.post("/v1/scans", {"target": CID})
        refused = await ivy.post("/v1/targets", {"url": "https://10.0.0.1/ipfs/" + CID})
        assert refused.status == 422
        made = await admin.post("/v1/tokens", {"role": "platform", "name": "acme"})
        await ivy.get(f"/v1/scans/{scan.json()['id']}")
        await ivy.get("/v1/targets")
        await admin.get("/v1/tokens")

        log = await admin.get("/v1/audit")
        assert log.status == 200
        entries = log.json()["entries"]
        rows = [(e["principal"], e["role"], e["action"], e["status"], e["resource"]) for e in entries]
        assert rows == [
            ("root", "admin", "POST /v1/tokens", 201, f"token:{made.json()['id']}"),
            ("ivy", "investigator", "POST /v1/targets", 422, None),
            ("ivy", "investigator", "POST /v1/scans", 202, f"scan:{scan.json()['id']}"),
        ]
        assert {e["remote"] for e in entries} == {"127.0.0.1"}
        assert all(e["token_id"] is not None for e in entries)
        assert made.json()["token"] not in log.text
        assert (await admin.get("/v1/audit")).json()["entries"] == entries, "reading the log is not logged"

        only_ivy = (await admin.get("/v1/audit", principal="ivy")).json()["entries"]
        assert [e["action"] for e in only_ivy] == ["POST /v1/targets", "POST /v1/scans"]
        first = await admin.get("/v1/audit", limit="2")
        assert [e["id"] for e in first.json()["entries"]] == [e["id"] for e in entries[:2]]
        rest = await admin.get("/v1/audit", limit="2", cursor=first.json()["next_cursor"])
        assert [e["id"] for e in rest.json()["entries"]] == [entries[2]["id"]]
        assert rest.json()["next_cursor"] is None
