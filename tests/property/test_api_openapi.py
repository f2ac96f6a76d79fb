"""No input makes the API answer 500, and every answer is the one /openapi.json declares.

The document validates as OpenAPI 3.1 and describes every webhook event. schemathesis
generates valid and invalid requests from it for every operation and sends them to the real
app on a real 127.0.0.1 socket, once with an admin token and once with a platform token;
hypothesis sends arbitrary JSON values and byte strings to every POST route, and arbitrary
URLs as webhook endpoints and scan gateways. The server's event loop is fenced
(tests/support/api_live.py): no host name is looked up and no connection leaves loopback.

DWEB_TEST_API_EXAMPLES bounds the examples per operation (default 25; .ci/run sets fewer)."""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.provisional import urls
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agent.api.openapi import openapi_document
from agent.api.routes import ROUTES
from agent.model.access import Role
from agent.model.events import EVENT_TYPES
from agent.net.addresses import classify_ip
from tests.support.api_live import CID, LiveApi, Sent

EXAMPLES = int(os.environ.get("DWEB_TEST_API_EXAMPLES", "25"))
PROBLEM_JSON = "application/problem+json"
DOCUMENT = openapi_document(ROUTES)
# The one operation not generated: POST /v1/webhooks/{id}/test sends a real POST to the
# subscription's URL at once, and a generated subscription to a public address (which the
# guard rightly admits) would be sent one. test_generated_webhook_urls_and_gateways_never_
# reach_a_forbidden_address below calls it on every URL it subscribes, behind the fence.
SKIPPED = {("POST", "/v1/webhooks/{id}/test")}
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT).exclude(method="POST", path="/v1/webhooks/{id}/test")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
JSON_HEADERS = {"Content-Type": "application/json"}


def _live(tmp_path_factory: pytest.TempPathFactory, role: Role, *, outbound: bool = False) -> Iterator[LiveApi]:
    """`outbound`: the test itself judges the addresses tried (public ones are allowed)."""
    with LiveApi(tmp_path_factory.mktemp(f"live-{role.value}"), role) as live:
        yield live
        assert outbound or live.fence.outbound == [], "a connection beyond loopback was attempted"


@pytest.fixture(scope="module", params=[Role.ADMIN, Role.PLATFORM], ids=["admin", "platform"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    yield from _live(tmp_path_factory, request.param)


@pytest.fixture(scope="module")
def admin_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    yield from _live(tmp_path_factory, Role.ADMIN)


@pytest.fixture(scope="module")
def platform_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    yield from _live(tmp_path_factory, Role.PLATFORM, outbound=True)


def test_the_document_is_openapi_3_1_and_its_webhooks_name_every_event_type() -> None:
    """openapi-spec-validator accepts /openapi.json as OpenAPI 3.1, its `webhooks` section has
    one entry per event type the agent sends, and only the test-send operation is skipped by
    the generated runs below."""
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.1")
    assert sorted(DOCUMENT["webhooks"]) == sorted(EVENT_TYPES)
    operations = {(m.upper(), p) for p, item in DOCUMENT["paths"].items() for m in item}
    assert operations >= SKIPPED
    generated = set()
    for result in SCHEMA.get_all_operations():
        assert isinstance(result, Ok), result  # an operation schemathesis cannot read is a failure
        operation = result.ok()
        generated.add((operation.method.upper(), operation.path))
    assert generated == operations - SKIPPED


@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_500_or_an_undeclared_answer(case: Any, live: LiveApi) -> None:
    """Generated valid and invalid requests, with an admin and with a platform token: never a
    server error; the status, content type and body are ones the operation declares."""
    case.call_and_validate(base_url=live.url, headers={"Authorization": f"Bearer {live.token}"}, checks=CHECKS)


def _post_paths() -> list[str]:
    return [r.path.replace("{id}", "1") for r in ROUTES if r.method == "POST"]


def _is_answer(sent: Sent) -> bool:
    """A success in JSON (or no body), or a refusal as a problem; never a server error."""
    if sent.status >= 500:
        return False
    if sent.status >= 400:
        return sent.content_type == PROBLEM_JSON and json.loads(sent.text)["status"] == sent.status
    return sent.content_type in ("application/json", "")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=latin-1", "text/plain", "multipart/form-data; boundary=b", ""]
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=JSON_VALUES, raw=st.binary(max_size=256), content_type=CONTENT_TYPES)
def test_any_body_to_any_post_route_is_answered_or_refused_as_a_problem(
    admin_live: LiveApi, value: Any, raw: bytes, content_type: str
) -> None:
    """Every POST route, sent an arbitrary JSON value and an arbitrary byte string (under
    several content types): each answer is a success or an RFC 9457 problem, never a 500."""
    wrong: list[str] = []
    for path in _post_paths():
        for data, headers in ((json.dumps(value).encode(), JSON_HEADERS), (raw, {"Content-Type": content_type})):
            sent = admin_live.send("POST", path, data, headers)
            if not _is_answer(sent):
                wrong.append(f"POST {path} {headers} {data[:80]!r}: {sent.status} {sent.content_type}")
    assert wrong == []


def _ip_url(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, scheme: str, port: int) -> str:
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"{scheme}://{host}:{port}/hook"


# 0.0.0.0 (S104) is a destination the guard must refuse here, never an address bound.
FORBIDDEN_IPS = st.sampled_from(
    ["127.0.0.1", "10.0.0.1", "169.254.169.254", "192.168.1.1", "172.16.0.1", "0.0.0.0", "::1", "fd00::1"],  # noqa: S104
).map(ipaddress.ip_address)
URLS = st.one_of(
    urls(),
    st.builds(
        _ip_url,
        st.one_of(st.ip_addresses(), FORBIDDEN_IPS),
        st.sampled_from(["http", "https"]),
        st.integers(1, 65535),
    ),
)


@settings(max_examples=EXAMPLES * 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(url=URLS)
def test_generated_webhook_urls_and_gateways_never_reach_a_forbidden_address(platform_live: LiveApi, url: str) -> None:
    """A platform subscribes any URL and tests it, and scans through it as a gateway: a
    private, loopback or link-local address is refused (422) before any connection, and the
    only addresses the agent ever tries are public ones (which the fence then refuses)."""
    live = platform_live
    before = len(live.fence.connections)
    body = json.dumps({"url": url}).encode()
    subscribed = live.send("POST", "/v1/webhooks", body, JSON_HEADERS)
    assert _is_answer(subscribed), subscribed
    if subscribed.status == 201:
        tested = live.send("POST", f"/v1/webhooks/{json.loads(subscribed.text)['id']}/test")
        assert tested.status == 200 and not json.loads(tested.text)["delivered"]
    scan = json.dumps({"target": f"ipfs://{CID}", "gateways": [url]})
    scanned = live.send("POST", "/v1/scans", scan.encode(), JSON_HEADERS)
    assert _is_answer(scanned), scanned
    own_port = int(live.url.rsplit(":", 1)[1])
    tried = [(host, port) for host, port in live.fence.connections[before:] if port != own_port]
    assert [(h, p) for h, p in tried if classify_ip(h.split("%")[0]) is not None] == []


def test_the_fence_refuses_names_and_public_addresses(tmp_path: Path) -> None:
    """The fence the generated runs rely on: a subscription to a public address, tested, is
    not delivered (the connection is refused and recorded, nothing sent), and a host name
    is never looked up beyond the test (recorded, answered "unknown")."""
    with LiveApi(tmp_path, Role.PLATFORM) as live:
        body = json.dumps({"url": "https://93.184.215.14/hook"}).encode()
        made = live.send("POST", "/v1/webhooks", body, JSON_HEADERS)
        assert made.status == 201
        tested = live.send("POST", f"/v1/webhooks/{json.loads(made.text)['id']}/test")
        assert tested.status == 200 and json.loads(tested.text)["delivered"] is False
        assert live.fence.outbound == ["93.184.215.14:443"]
        named = json.dumps({"url": "https://hooks.example.org/x"}).encode()
        assert live.send("POST", "/v1/webhooks", named, JSON_HEADERS).status == 201
        assert "hooks.example.org" in live.fence.lookups
