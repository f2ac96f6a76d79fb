"""Who may call the API: a bearer token on every /v1 route (401 otherwise, whatever is
wrong with it), the route's roles (403), a per-token rate limit (429 with Retry-After),
and problems for unknown routes and methods; every answer as /openapi.json documents it."""

from __future__ import annotations

import pytest

from agent.model.access import Role
from agent.store import Store
from tests.support.api import ApiServer, api_server, api_settings

CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
        "Bearer  ",
        "Bearer dwa_" + "x" * 43 + " extra",
        "Bearer not-a-token",
        "Bearer dwa_" + "A" * 43,  # well formed, never issued
        "Bearer " + "é" * 10,
    ],
)
async def test_a_call_without_a_valid_token_is_401_with_a_bearer_challenge(
    store: Store, authorization: str | None
) -> None:
    """No token, another scheme, a malformed or an unknown token: 401, WWW-Authenticate: Bearer,
    and nothing of the route's data."""
    async with api_server(store) as api:
        await store.targets.add(f"ipfs://{CID}", "ipfs", 600)
        client = await api.client()
        headers = {"Authorization": authorization} if authorization is not None else {}
        resp = await client.request("GET", "/v1/targets", headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert CID not in resp.text
        assert resp.problem["status"] == 401 and resp.problem["title"] == "Unauthorized"


async def test_a_revoked_token_stops_working_at_once(store: Store) -> None:
    """A token works until it is revoked; the next call with it is 401."""
    async with api_server(store) as api:
        made = await api.tokens.add(Role.VIEWER, "ana")
        client = await api.client(token=made.token)
        assert (await client.get("/v1/targets")).status == 200
        await api.tokens.revoke(made.row.id)
        resp = await client.get("/v1/targets")
        assert resp.status == 401 and "WWW-Authenticate" in resp.headers


async def _status(api: ApiServer, role: Role, method: str, path: str, body: object = None) -> int:
    client = await api.client(role)
    return (await client.request(method, path, json_body=body)).status


async def test_each_role_reaches_exactly_its_routes(store: Store) -> None:
    """Reads are open to admin, investigator and viewer (findings to platforms too, narrowed);
    adding targets to admin and investigator; removing them to admins; reviews to admin and
    investigator. Any other role is 403 before anything is done."""
    async with api_server(store) as api:
        target = await store.targets.add(f"ipfs://{CID}", "ipfs", 600)
        readers = {Role.ADMIN: 200, Role.INVESTIGATOR: 200, Role.VIEWER: 200, Role.PLATFORM: 403}
        for path in ("/v1/targets", f"/v1/targets/{target.id}", "/v1/lists"):
            assert {r: await _status(api, r, "GET", path) for r in Role} == readers, path
        assert {r: await _status(api, r, "GET", "/v1/findings") for r in Role} == dict.fromkeys(Role, 200)
        add = {r: await _status(api, r, "POST", "/v1/targets", {"url": f"ipfs://{CID}"}) for r in Role}
        assert add == {Role.ADMIN: 200, Role.INVESTIGATOR: 200, Role.VIEWER: 403, Role.PLATFORM: 403}
        review = {"verdict": "confirmed"}
        reviews = {r: await _status(api, r, "POST", "/v1/findings/999/reviews", review) for r in Role}
        # 404: allowed to review, and there is no finding 999.
        assert reviews == {Role.ADMIN: 404, Role.INVESTIGATOR: 404, Role.VIEWER: 403, Role.PLATFORM: 403}
        for role in (Role.INVESTIGATOR, Role.VIEWER, Role.PLATFORM):
            assert await _status(api, role, "DELETE", f"/v1/targets/{target.id}") == 403
        assert [t.id for t in await store.targets.all()] == [target.id]
        assert await _status(api, Role.ADMIN, "DELETE", f"/v1/targets/{target.id}") == 204
        assert await store.targets.all() == []


async def test_a_token_over_its_rate_is_429_with_retry_after_and_others_are_not(store: Store) -> None:
    """With 1 request/s and a burst of 3, a fourth call at the same instant is 429 with
    Retry-After: 1; another token is unaffected; once the clock moves on, the first works again."""
    now = [100.0]
    settings = api_settings(rate_limit_per_s=1.0, rate_limit_burst=3)
    async with api_server(store, settings, clock=lambda: now[0]) as api:
        busy = await api.client(Role.VIEWER)
        assert [(await busy.get("/v1/lists")).status for _ in range(3)] == [200, 200, 200]
        throttled = await busy.get("/v1/lists")
        assert throttled.status == 429 and throttled.headers["Retry-After"] == "1"
        assert throttled.problem["status"] == 429
        other = await api.client(Role.VIEWER)
        assert (await other.get("/v1/lists")).status == 200
        now[0] += 1.0
        assert (await busy.get("/v1/lists")).status == 200
        assert (await busy.get("/v1/lists")).status == 429


async def test_retry_after_is_whole_seconds_to_the_next_request(store: Store) -> None:
    """At 0.25 request/s an empty bucket refills in 4 s: Retry-After says 4, never 0 or a fraction."""
    now = [0.0]
    async with api_server(store, api_settings(rate_limit_per_s=0.25, rate_limit_burst=1), clock=lambda: now[0]) as api:
        client = await api.client(Role.VIEWER)
        assert (await client.get("/v1/targets")).status == 200
        assert (await client.get("/v1/targets")).headers["Retry-After"] == "4"
        now[0] += 3.5
        assert (await client.get("/v1/targets")).headers["Retry-After"] == "1"


async def test_unknown_routes_and_methods_are_problems(store: Store) -> None:
    """An unknown path is a 404 problem, a known path with another method a 405 problem with
    Allow, a non-numeric id an unknown route (404), never a 500."""
    async with api_server(store) as api:
        client = await api.client(Role.ADMIN)
        missing = await client.get("/v1/nothing-here")
        assert missing.status == 404 and missing.problem["detail"] == "no such route"
        wrong = await client.request("PUT", "/v1/targets")
        assert wrong.status == 405 and "GET" in wrong.headers["Allow"] and "POST" in wrong.headers["Allow"]
        assert (await client.get("/v1/targets/abc")).status == 404
        assert (await client.get("/v1/targets/99999999999")).status == 404
