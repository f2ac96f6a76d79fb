"""Each role reaches exactly what issue 11 lists, on every route of the app's route table:
the expected table is written out here (not read from the routes), every route is called by
every role with a valid minimal request (allowed: a 2xx answer; forbidden: 403), without a
token and with a revoked one (401). Two platforms never see each other's findings or
subscriptions, and no token is kept in the database in clear."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from agent.alerts.signing import new_secret
from agent.api.routes import ROUTES
from agent.api.routing import Route
from agent.config import AlertSettings
from agent.model.access import Role
from agent.model.signals import SignalType
from agent.model.status import ItemState
from agent.services.scan_jobs import ScanJobRequest
from agent.services.tokens import token_hash
from agent.store import FindingRow, ItemRow, LocationRow, NewEvent, Store, SubscriptionRow
from agent.store.schema import api_tokens
from tests.support.api import PROBLEM_JSON, ApiClient, ApiResponse, ApiServer, api_server, api_settings
from tests.support.webhook_receiver import WebhookReceiver

CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"
ADMIN, INVESTIGATOR, PLATFORM, VIEWER = Role.ADMIN, Role.INVESTIGATOR, Role.PLATFORM, Role.VIEWER
EVERYONE = frozenset(Role)
READERS = frozenset({ADMIN, INVESTIGATOR, VIEWER})
SCANNERS = frozenset({ADMIN, INVESTIGATOR})
MATCHERS = frozenset({ADMIN, INVESTIGATOR, PLATFORM})
WEBHOOKS = frozenset({ADMIN, PLATFORM})
ONLY_ADMIN = frozenset({ADMIN})

# Issue 11's roles, route by route. A platform's webhooks are its own, and its findings the
# ones delivered to it (the isolation test checks the narrowing; here it reaches its own).
EXPECTED: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/v1/tokens"): ONLY_ADMIN,
    ("POST", "/v1/tokens"): ONLY_ADMIN,
    ("DELETE", "/v1/tokens/{id}"): ONLY_ADMIN,
    ("GET", "/v1/audit"): ONLY_ADMIN,
    ("GET", "/v1/targets"): READERS,
    ("POST", "/v1/targets"): SCANNERS,
    ("GET", "/v1/targets/{id}"): READERS,
    ("DELETE", "/v1/targets/{id}"): ONLY_ADMIN,
    ("GET", "/v1/lists"): READERS,
    ("POST", "/v1/scans"): SCANNERS,
    ("GET", "/v1/scans"): READERS,
    ("GET", "/v1/scans/{id}"): READERS,
    ("DELETE", "/v1/scans/{id}"): SCANNERS,
    ("GET", "/v1/findings"): EVERYONE,
    ("GET", "/v1/findings/{id}"): EVERYONE,
    ("POST", "/v1/findings/{id}/reviews"): SCANNERS,
    ("GET", "/v1/webhooks"): WEBHOOKS,
    ("POST", "/v1/webhooks"): WEBHOOKS,
    ("POST", "/v1/webhooks/replay"): WEBHOOKS,
    ("GET", "/v1/webhooks/{id}"): WEBHOOKS,
    ("DELETE", "/v1/webhooks/{id}"): WEBHOOKS,
    ("POST", "/v1/webhooks/{id}/rotate-secret"): WEBHOOKS,
    ("POST", "/v1/webhooks/{id}/test"): WEBHOOKS,
    ("POST", "/v1/webhooks/{id}/replay"): WEBHOOKS,
    ("POST", "/v1/match"): MATCHERS,
    ("POST", "/v1/hash"): MATCHERS,
}
NAMES = {ADMIN: "root", INVESTIGATOR: "ivy", PLATFORM: "acme", VIEWER: "vic"}
SINCE = "2026-01-01T00:00:00Z"
BOUNDARY = "dweb-matrix-boundary"


def _multipart(data: bytes) -> tuple[bytes, dict[str, str]]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="note.txt"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    body = head.encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


@dataclass(frozen=True)
class Req:
    path: str
    json_body: Any = None
    data: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    """Makes, for each call, the resources a valid minimal request names (a fresh target
    to delete, a subscription the caller owns, a finding delivered to the platform)."""

    api: ApiServer
    receiver: WebhookReceiver
    made: int = 0

    @property
    def store(self) -> Store:
        return self.api.store

    def _next(self) -> int:
        self.made += 1
        return self.made

    async def target(self) -> int:
        return (await self.store.targets.add(f"ipfs://{CID}/t{self._next()}", "ipfs", 600)).id

    async def subscription(self, owner: str) -> SubscriptionRow:
        return await self.store.subscriptions.add(self.receiver.url(f"/{owner}"), new_secret(), owner=owner)

    async def scan(self) -> int:
        job = await self.api.services.jobs.submit(ScanJobRequest(f"ipfs://{CID}"), "root")
        return job.id

    async def finding(self, to: tuple[SubscriptionRow, ...] = ()) -> int:
        """One item with one finding, its finding.created event delivered to `to`."""
        key = f"k{self._next()}"

        def outbox(new: list[FindingRow], _loc: LocationRow | None, _subs: list[SubscriptionRow]) -> list[NewEvent]:
            return [
                NewEvent(f"evt_{f.id}", "finding.created", {"id": f.id}, tuple(s.id for s in to), f.id, f.item_key)
                for f in new
            ]

        (row,) = await self.store.items.record(
            ItemRow(key=key, status=ItemState.VERIFIED, cid=f"bafy{key}"),
            LocationRow(item_key=key, path=f"{key}.jpg"),
            [FindingRow(key, "tcap", f"tcap:{key}", "abc", SignalType.MD5, 0.0)],
            outbox=outbox,
        )
        assert row.id is not None
        return row.id

    async def delivered_finding(self, role: Role) -> int:
        """A finding the caller may read: for a platform, one sent to its own subscription."""
        return await self.finding((await self.subscription(NAMES[role]),))


Build = Callable[[World, Role], Awaitable[Req]]


async def _fixed(req: Req) -> Req:
    return req


def _static(path: str, body: Any = None) -> Build:
    return lambda _w, _r: _fixed(Req(path, body))


async def _revoke_token(w: World, _role: Role) -> Req:
    return Req(f"/v1/tokens/{(await w.api.tokens.add(VIEWER)).row.id}")


async def _one_target(w: World, _role: Role) -> Req:
    return Req(f"/v1/targets/{await w.target()}")


async def _one_scan(w: World, _role: Role) -> Req:
    return Req(f"/v1/scans/{await w.scan()}")


async def _one_finding(w: World, role: Role) -> Req:
    return Req(f"/v1/findings/{await w.delivered_finding(role)}")


async def _review(w: World, role: Role) -> Req:
    return Req(f"/v1/findings/{await w.delivered_finding(role)}/reviews", {"verdict": "confirmed", "note": "seen"})


async def _subscribe(w: World, _role: Role) -> Req:
    return Req("/v1/webhooks", {"url": w.receiver.url("/new")})


def _own_webhook(suffix: str, body: Any = None) -> Build:
    async def build(w: World, role: Role) -> Req:
        return Req(f"/v1/webhooks/{(await w.subscription(NAMES[role])).id}{suffix}", body)

    return build


async def _hash(_w: World, _role: Role) -> Req:
    data, headers = _multipart(b"hello, matrix\n")
    return Req("/v1/hash", data=data, headers=headers)


REQUESTS: dict[tuple[str, str], Build] = {
    ("GET", "/v1/tokens"): _static("/v1/tokens"),
    ("POST", "/v1/tokens"): _static("/v1/tokens", {"role": "viewer"}),
    ("DELETE", "/v1/tokens/{id}"): _revoke_token,
    ("GET", "/v1/audit"): _static("/v1/audit"),
    ("GET", "/v1/targets"): _static("/v1/targets"),
    ("POST", "/v1/targets"): _static("/v1/targets", {"url": f"ipfs://{CID}"}),
    ("GET", "/v1/targets/{id}"): _one_target,
    ("DELETE", "/v1/targets/{id}"): _one_target,
    ("GET", "/v1/lists"): _static("/v1/lists"),
    ("POST", "/v1/scans"): _static("/v1/scans", {"target": f"ipfs://{CID}"}),
    ("GET", "/v1/scans"): _static("/v1/scans"),
    ("GET", "/v1/scans/{id}"): _one_scan,
    ("DELETE", "/v1/scans/{id}"): _one_scan,
    ("GET", "/v1/findings"): _static("/v1/findings"),
    ("GET", "/v1/findings/{id}"): _one_finding,
    ("POST", "/v1/findings/{id}/reviews"): _review,
    ("GET", "/v1/webhooks"): _static("/v1/webhooks"),
    ("POST", "/v1/webhooks"): _subscribe,
    ("POST", "/v1/webhooks/replay"): _static("/v1/webhooks/replay", {"since": SINCE}),
    ("GET", "/v1/webhooks/{id}"): _own_webhook(""),
    ("DELETE", "/v1/webhooks/{id}"): _own_webhook(""),
    ("POST", "/v1/webhooks/{id}/rotate-secret"): _own_webhook("/rotate-secret", {}),
    ("POST", "/v1/webhooks/{id}/test"): _own_webhook("/test"),
    ("POST", "/v1/webhooks/{id}/replay"): _own_webhook("/replay", {"since": SINCE}),
    ("POST", "/v1/match"): _static("/v1/match", {"signals": [{"type": "md5", "value": "0" * 32}]}),
    ("POST", "/v1/hash"): _hash,
}


def _settings() -> Any:
    # Many calls per token in one test: the matrix must meet the roles, not the rate limit.
    # The receiver is on 127.0.0.1, which an operator allows for webhooks here.
    base = api_settings(rate_limit_per_s=10_000.0, rate_limit_burst=100_000)
    return base.model_copy(update={"alerts": AlertSettings(allow_hosts=["127.0.0.1"])})


async def _call(client: ApiClient, route: Route, req: Req) -> ApiResponse:
    return await client.request(route.method, req.path, json_body=req.json_body, data=req.data, headers=req.headers)


def _key(route: Route) -> tuple[str, str]:
    return (route.method, route.path)


def test_the_route_table_holds_every_route_the_matrix_names_and_no_other() -> None:
    """A route of issue 11 removed from the app fails here, and so does a route added
    without its roles written into this matrix."""
    table = {_key(r) for r in ROUTES}
    assert sorted(set(EXPECTED) - table) == [], "routes the matrix names but the app lacks"
    assert sorted(table - set(EXPECTED)) == [], "routes the app has but the matrix does not name: add their roles"
    assert set(REQUESTS) == set(EXPECTED)


async def test_each_role_may_call_exactly_the_routes_issue_11_gives_it(store: Store) -> None:
    """For every route of the app and every role, a valid minimal request: a role the
    matrix allows gets a 2xx answer, any other a 403 problem naming its role."""
    async with WebhookReceiver([]) as receiver, api_server(store, _settings()) as api:
        world = World(api, receiver)
        clients = {role: await api.client(role, name=NAMES[role]) for role in Role}
        wrong: list[str] = []
        for route in ROUTES:
            allowed = EXPECTED.get(_key(route))
            assert allowed is not None, f"{route.method} {route.path}: not in the matrix"
            for role in Role:
                resp = await _call(clients[role], route, await REQUESTS[_key(route)](world, role))
                if role in allowed:
                    ok = 200 <= resp.status < 300
                else:
                    ok = resp.status == 403 and role.value in resp.problem["detail"]
                if not ok:
                    wrong.append(f"{role.value} {route.method} {route.path}: {resp.status} {resp.text[:160]}")
        assert wrong == []
        # The webhook test of each caller's own subscription reached the receiver.
        assert {r.path for r in receiver.received} == {f"/{NAMES[ADMIN]}", f"/{NAMES[PLATFORM]}"}


async def test_no_token_and_a_revoked_token_are_401_with_a_challenge_on_every_route(store: Store) -> None:
    """Every route of the table, called as an admin would call it but with no token, or
    with an admin token revoked a moment before: 401 with WWW-Authenticate: Bearer."""
    async with WebhookReceiver([]) as receiver, api_server(store, _settings()) as api:
        world = World(api, receiver)
        made = await api.tokens.add(ADMIN, "root")
        revoked = await api.client(token=made.token)
        assert (await revoked.get("/v1/tokens")).status == 200
        await api.tokens.revoke(made.row.id)
        anonymous = await api.client()
        wrong: list[str] = []
        for route in ROUTES:
            for who, client in (("no token", anonymous), ("revoked", revoked)):
                resp = await _call(client, route, await REQUESTS[_key(route)](world, ADMIN))
                challenge = resp.headers.get("WWW-Authenticate", "")
                if resp.status != 401 or not challenge.startswith("Bearer") or resp.content_type != PROBLEM_JSON:
                    wrong.append(f"{who} {route.method} {route.path}: {resp.status} {challenge!r}")
        assert wrong == []
        assert receiver.received == []
        # Only the targets the requests named were made (two callers each); none added, none removed.
        assert len(await store.targets.all()) == 2 * sum(1 for r in ROUTES if r.path == "/v1/targets/{id}")


async def test_two_platforms_see_only_their_own_findings_and_subscriptions(store: Store) -> None:
    """acme and globex each read the findings delivered to their own subscriptions only
    (a finding sent to the other, or to nobody, is 404 as if absent); each one's
    subscriptions are 404 to the other on every webhook route, and left untouched."""
    async with WebhookReceiver([]) as receiver, api_server(store, _settings()) as api:
        world = World(api, receiver)
        acme_sub, globex_sub = await world.subscription("acme"), await world.subscription("globex")
        acme_finding = await world.finding((acme_sub,))
        globex_finding = await world.finding((globex_sub,))
        both = await world.finding((acme_sub, globex_sub))
        nobody = await world.finding()
        acme = await api.client(PLATFORM, name="acme")
        globex = await api.client(PLATFORM, name="globex")
        for client, mine, theirs in ((acme, acme_finding, globex_finding), (globex, globex_finding, acme_finding)):
            listed = [f["id"] for f in (await client.get("/v1/findings")).json()["findings"]]
            assert listed == [both, mine]
            assert (await client.get(f"/v1/findings/{mine}")).json()["id"] == mine
            assert (await client.get(f"/v1/findings/{both}")).status == 200
            assert (await client.get(f"/v1/findings/{theirs}")).status == 404
            assert (await client.get(f"/v1/findings/{nobody}")).status == 404
        for client, own, other in ((acme, acme_sub, globex_sub), (globex, globex_sub, acme_sub)):
            assert [w["id"] for w in (await client.get("/v1/webhooks")).json()["webhooks"]] == [own.id]
            base = f"/v1/webhooks/{other.id}"
            assert (await client.get(base)).status == 404
            assert (await client.post(base + "/rotate-secret", {})).status == 404
            assert (await client.post(base + "/test", None)).status == 404
            assert (await client.post(base + "/replay", {"since": SINCE})).status == 404
            assert (await client.delete(base)).status == 404
        assert receiver.received == []
        kept = {s.id: s for s in await store.subscriptions.all()}
        assert set(kept) == {acme_sub.id, globex_sub.id}
        assert kept[acme_sub.id].secret == acme_sub.secret and kept[globex_sub.id].secret == globex_sub.secret
        admin = await api.client(ADMIN, name="root")
        assert len((await admin.get("/v1/webhooks")).json()["webhooks"]) == 2


def _database_files(tmp_path: Path) -> list[Path]:
    return sorted(p for p in tmp_path.rglob("*") if p.is_file() and ".db" in p.name)


async def test_tokens_are_not_in_the_database_in_clear(store: Store, tmp_path: Path) -> None:
    """Tokens of every role, one made through POST /v1/tokens, each used once: no column of
    api_tokens holds any of them (the SHA-256 does), and on SQLite no byte of the database
    files (WAL included) spells one."""
    async with api_server(store, _settings()) as api:
        made = [await api.tokens.add(role, NAMES[role]) for role in Role]
        tokens = [m.token for m in made]
        admin = await api.client(token=tokens[0])
        posted = await admin.post("/v1/tokens", {"role": "viewer", "name": "via-api"})
        assert posted.status == 201
        tokens.append(posted.json()["token"])
        for token in tokens:
            assert (await (await api.client(token=token)).get("/v1/findings")).status == 200
        await api.tokens.flush()
        async with store._engine.connect() as conn:
            rows = [dict(r) for r in (await conn.execute(sa.select(api_tokens))).mappings()]
    assert len(rows) == len(tokens)
    assert sorted(r["token_hash"] for r in rows) == sorted(token_hash(t) for t in tokens)
    cells = [str(v) for row in rows for v in row.values()]
    assert [t for t in tokens if any(t in cell for cell in cells)] == []
    assert [t for t in tokens if any(t.split("_", 1)[-1] in cell for cell in cells)] == []
    if store.dialect == "sqlite":
        files = _database_files(tmp_path)
        assert files, "the SQLite database files were not found"
        data = b"".join(p.read_bytes() for p in files)
        assert token_hash(tokens[0]).encode() in data  # the grep reads the right files
        assert [t for t in tokens if t.encode() in data] == []
