"""Reading a request: its JSON body and its query string, into the route's pydantic models.

A body is JSON only (415 otherwise), at most [api] max_body_bytes (413, checked on the
declared Content-Length and again while reading, since a chunked body declares none),
valid JSON (400) and valid against the model (422 naming every bad field). A query
names only the model's parameters, each once (400 otherwise).

No string may carry a NUL or a lone surrogate: PostgreSQL refuses both in text, so such
a value would fail in the store instead of being refused here (422)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from agent.api.problems import FieldError, Problem

M = TypeVar("M", bound=BaseModel)
JSON_TYPE = "application/json"
_READ_CHUNK = 64 * 1024


def field_name(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a caller reads it: `gateways[0]`, `signals[2].value`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def _errors(exc: ValidationError, prefix: Sequence[str] = ()) -> list[FieldError]:
    return [FieldError(field=field_name([*prefix, *e["loc"]]), message=e["msg"]) for e in exc.errors(include_url=False)]


def _unstorable(value: object, loc: tuple[int | str, ...] = ()) -> Iterator[tuple[int | str, ...]]:
    if isinstance(value, str):
        if "\x00" in value or not _encodable(value):
            yield loc
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _unstorable(key, (*loc, str(key)))
            yield from _unstorable(item, (*loc, str(key)))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _unstorable(item, (*loc, i))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_unstorable(data: Any, prefix: Sequence[str] = ()) -> None:
    bad = [
        FieldError(field=field_name([*prefix, *loc]), message="must not contain NUL or a lone surrogate")
        for loc in _unstorable(data)
    ]
    if bad:
        raise Problem(422, "the request has characters no field may hold", errors=bad)


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, f"the request body is {request.content_length} bytes; at most {limit} are accepted")
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"the request body is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def parse_body(request: web.Request, model: type[M], limit: int) -> M:
    """The body as `model`, or a Problem (415, 413, 400, 422)."""
    if request.content_type != JSON_TYPE:
        raise Problem(415, f"send the body as {JSON_TYPE}, not {request.content_type or 'nothing'}")
    raw = await read_body(request, limit)
    try:
        parsed = model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise Problem(400, "the body is not valid JSON") from None
        raise Problem(422, "the body does not match the schema", errors=_errors(exc)) from None
    _refuse_unstorable(parsed.model_dump(mode="python"))
    return parsed


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string as `model` (its values are strings, converted by the model's types)."""
    names = list(request.query.keys())
    known = {f.alias or name for name, f in model.model_fields.items()}
    unknown = sorted({n for n in names if n not in known})
    if unknown:
        errors = [FieldError(field=n, message="unknown query parameter") for n in unknown]
        raise Problem(400, f"unknown query parameter: {', '.join(unknown)}", errors=errors)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        errors = [FieldError(field=n, message="given more than once") for n in repeated]
        raise Problem(400, f"query parameter given more than once: {', '.join(repeated)}", errors=errors)
    values = dict(request.query)
    _refuse_unstorable(values)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise Problem(422, "the query does not match the schema", errors=_errors(exc)) from None
