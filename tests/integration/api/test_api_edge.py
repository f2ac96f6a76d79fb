"""The API's edge: a bug in a handler answers a 500 problem without internals, logged
without the caller's token; no token, header or hash ever reaches the log."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
import structlog

from agent.api.routes import ROUTES
from agent.api.routing import ALL_ROLES, Call, Route
from agent.api.schemas import Out
from agent.model.access import Role
from agent.observability import configure_logging
from agent.services.tokens import token_hash
from agent.store import Store
from tests.support.api import api_server


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    configure_logging("info", stream=out, json=True)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


async def broken(call: Call) -> Out:
    raise RuntimeError(f"internal state {call.principal.name} /var/lib/secret")


BROKEN = Route("GET", "/v1/broken", broken, ALL_ROLES, "A route with a bug", "test", responses={200: Out})


async def test_a_failing_handler_answers_a_bare_500_problem_and_logs_no_token(
    store: Store, log_stream: io.StringIO
) -> None:
    """The caller gets a problem saying only that the agent could not answer; the log names
    the route and the error type, never the Authorization header or the token."""
    async with api_server(store, routes=[BROKEN]) as api:
        made = await api.tokens.add(Role.ADMIN, "ops")
        client = await api.client(token=made.token)
        with pytest.raises(AssertionError, match="status 500 not declared"):
            await client.get("/v1/broken")  # the document declares no 500: the checker says so
        async with api.session.get(api.url + "/v1/broken", headers={"Authorization": f"Bearer {made.token}"}) as r:
            assert r.status == 500 and r.content_type == "application/problem+json"
            body = await r.json()
        api.checker.validate(body, {"$ref": "#/components/schemas/ProblemDetail"})
        assert body["detail"] == "the agent could not answer this request"
        assert "secret" not in str(body) and "RuntimeError" not in str(body)
    logged = log_stream.getvalue()
    assert "api request failed" in logged and "/v1/broken" in logged
    assert made.token not in logged and token_hash(made.token) not in logged


async def test_tokens_never_reach_the_log(store: Store, log_stream: io.StringIO) -> None:
    """Valid, revoked, unknown and malformed tokens, refused bodies, audited calls and a
    failing route: the log holds none of the tokens, nor their hashes."""
    async with api_server(store, routes=[*ROUTES, BROKEN]) as api:
        made = await api.tokens.add(Role.ADMIN, "ops")
        client = await api.client(token=made.token)
        await client.get("/v1/targets")
        await client.post("/v1/targets", {"url": "kubo://127.0.0.1:5001"})
        await client.post("/v1/targets", {"url": 1})
        async with api.session.get(api.url + "/v1/broken", headers={"Authorization": f"Bearer {made.token}"}) as r:
            assert r.status == 500
        unknown = "dwa_" + "Z" * 43
        await (await api.client(token=unknown)).get("/v1/targets")
        await (await api.client(token="garbage-token-value")).get("/v1/targets")
        await api.tokens.revoke(made.row.id)
        await client.get("/v1/targets")
    logged = log_stream.getvalue()
    assert "api request failed" in logged  # the log was captured
    for secret in (made.token, token_hash(made.token), unknown, "garbage-token-value"):
        assert secret not in logged
