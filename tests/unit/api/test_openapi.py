"""/openapi.json: a valid OpenAPI 3.1 document of every route in the table, with the
bearer scheme, the problems each route may answer, and every webhook event of the
packaged events schema, which docs/events.schema.json copies byte for byte."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate

from agent.api.openapi import EVENTS_SCHEMA_PATH, events_schema, openapi_document
from agent.api.routes import ROUTES

REPO = Path(__file__).resolve().parents[3]


def test_the_document_is_valid_openapi_3_1_and_names_every_route() -> None:
    """openapi-spec-validator accepts it; each route of the table is an operation with its
    roles, the bearer security and the 401/403/429 problems."""
    document = openapi_document(ROUTES)
    validate(document)
    assert document["openapi"] == "3.1.0"
    ops = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert ops == {(r.method, r.path) for r in ROUTES}
    assert document["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    for route in ROUTES:
        op = document["paths"][route.path][route.method.lower()]
        assert op["security"] == [{"bearer": []}]
        assert {"401", "403", "429"} <= set(op["responses"])
        assert op["x-roles"] == sorted(r.value for r in route.roles)
        if route.body is not None:
            assert {"413", "415", "422"} <= set(op["responses"])


def test_the_webhooks_section_holds_every_event_of_the_events_schema() -> None:
    """One webhook per event type the agent sends, its body the events schema's for that type."""
    document = openapi_document(ROUTES)
    events = [rule["if"]["properties"]["type"]["const"] for rule in events_schema()["allOf"]]
    assert sorted(document["webhooks"]) == sorted(events)
    created = document["webhooks"]["finding.created"]["post"]["requestBody"]["content"]["application/json"]
    assert created["schema"]["properties"]["data"] == {"$ref": "#/components/schemas/Event_findingCreated"}
    assert "Event_finding" in document["components"]["schemas"]


def test_docs_events_schema_is_the_packaged_one() -> None:
    """The schema the docs publish and the one the agent ships (and serves) are the same bytes."""
    assert EVENTS_SCHEMA_PATH.read_bytes() == (REPO / "docs" / "events.schema.json").read_bytes()
