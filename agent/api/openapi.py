"""The OpenAPI 3.1 document, built from the route table (the one source of the routes)
and, for its `webhooks` section, from agent/defaults/events.schema.json (the one source of
the events; docs/events.schema.json is a copy a test keeps identical).

Schemas come from the pydantic models (`models_json_schema`, refs under
#/components/schemas); every /v1 operation carries the bearer scheme and declares the
problems the pipeline in agent.api.app may answer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from agent import __version__
from agent.api.problems import PROBLEM_JSON, ProblemDetail
from agent.api.routing import Route
from agent.api.schemas import MAX_ID

EVENTS_SCHEMA_PATH = Path(__file__).resolve().parent.parent / "defaults" / "events.schema.json"
REF = "#/components/schemas/{model}"
_EVENT_PREFIX = "Event_"
_PROBLEMS = {
    400: "The request cannot be read (unknown query parameter, body not JSON)",
    401: "No valid API token (none, malformed, unknown or revoked)",
    403: "The token's role may not do this",
    404: "No such resource",
    422: "A field is invalid; `errors` names each",
    429: "Too many requests for this token; see Retry-After",
}
_BODY_PROBLEMS = {
    413: "The body is larger than [api] max_body_bytes",
    415: "The body is not application/json",
}


@cache
def events_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(EVENTS_SCHEMA_PATH.read_text())
    return loaded


def _event_refs(node: Any) -> Any:
    """The events schema's `#/$defs/x` refs as refs into the document's components."""
    if isinstance(node, dict):
        return {
            k: (v.replace("#/$defs/", f"#/components/schemas/{_EVENT_PREFIX}") if k == "$ref" else _event_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_event_refs(v) for v in node]
    return node


def _webhooks(components: dict[str, Any]) -> dict[str, Any]:
    schema = events_schema()
    for name, definition in schema["$defs"].items():
        components[_EVENT_PREFIX + name] = _event_refs(definition)
    hooks: dict[str, Any] = {}
    for rule in schema["allOf"]:
        event = rule["if"]["properties"]["type"]["const"]
        data_ref = _event_refs(rule["then"]["properties"]["data"])
        body = {
            "type": "object",
            "required": schema["required"],
            "additionalProperties": False,
            "properties": {**_event_refs(schema["properties"]), "type": {"const": event}, "data": data_ref},
        }
        hooks[event] = {
            "post": {
                "summary": f"{event}: {schema['title']}",
                "description": schema["description"],
                "operationId": "event_" + event.replace(".", "_"),
                "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                "responses": {"2XX": {"description": "Received; any other answer is retried"}},
            }
        }
    return hooks


Refs = dict[tuple[type[BaseModel], JsonSchemaMode], Any]


def _schemas(routes: Sequence[Route]) -> tuple[Refs, dict[str, Any]]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ProblemDetail, "serialization")]
    for route in routes:
        if route.body is not None:
            wanted.append((route.body, "validation"))
        wanted += [(m, "serialization") for m in route.responses.values() if m is not None]
    unique = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(unique, ref_template=REF)
    out: Refs = {(m, mode): s for (m, mode), s in refs.items() if isinstance(m, type) and issubclass(m, BaseModel)}
    return out, dict(top.get("$defs", {}))


def _parameters(route: Route, components: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
        }
        for name in route.params
    ]
    query = route.query.model_json_schema(ref_template=REF)
    components.update(query.get("$defs", {}))  # the enums a parameter refers to
    required = set(query.get("required", []))
    for name, prop in query.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            param["description"] = description
        params.append(param)
    return params


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF.format(model="ProblemDetail")}}},
    }


def _operation(route: Route, refs: Refs, components: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, model in route.responses.items():
        answer: dict[str, Any] = {"description": _describe(status)}
        if model is not None:
            answer["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
        responses[str(status)] = answer
    problems = dict(_PROBLEMS)
    if route.body is not None or route.upload is not None:
        problems.update(_BODY_PROBLEMS)
    for status, text in sorted(problems.items()):
        responses.setdefault(str(status), _problem(text))
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "security": [{"bearer": []}],
        "parameters": _parameters(route, components),
        "responses": responses,
        "x-roles": sorted(r.value for r in route.roles),
    }
    if route.description:
        op["description"] = route.description
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
        }
    elif route.upload is not None:
        op["requestBody"] = {"required": True, "content": dict(route.upload)}
    return op


def _describe(status: int) -> str:
    words: dict[int, Literal["OK", "Created", "Accepted", "No content"]] = {
        200: "OK",
        201: "Created",
        202: "Accepted",
        204: "No content",
    }
    return words.get(status, "OK")


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    refs, components = _schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs, components)
    webhooks = _webhooks(components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dweb-agent",
            "version": __version__,
            "description": "The agent's HTTP API. Every /v1 route needs `Authorization: Bearer <token>` "
            "(`dweb-agent tokens add --role ROLE`); errors are RFC 9457 problem details.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "webhooks": webhooks,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
