"""A fake Arweave gateway (aiohttp, 127.0.0.1): a GraphQL endpoint and `/raw/<txid>`.

The GraphQL side really parses the query it is sent (operation, variable
definitions, inline or `$variable` arguments, nested selections), checks every
argument and field against the Arweave schema (the one the public Arweave and ar.io
serve), filters by tags (all filters must match; any value within one) and by
block height, sorts by height, paginates with opaque cursors and returns only
the fields that were selected, so a misspelt field fails here as it would there.
Pending transactions (no block) are listed only when no block filter is given
and sort after every mined one, as on ar.io.

`/raw/<txid>` serves the bytes with `X-AR-IO-Digest` (base64url SHA-256). Knobs:
a lying digest, a missing digest, an RFC 3230 `Digest` header instead, cursors
refused, and transactions added or mined between polls."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.http import serve_app


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class FakeTx:
    id: str
    owner: str
    tags: list[tuple[str, str]]
    data: bytes
    height: int | None  # None: pending
    content_type: str | None = None
    timestamp: int | None = None

    @property
    def digest(self) -> str:
        return b64url(hashlib.sha256(self.data).digest())


def make_txid(seed: bytes) -> str:
    return b64url(hashlib.sha256(seed).digest())  # 43 characters, like a real id


# -- a small GraphQL parser: enough of the spec (June 2018) for Arweave queries --

_TOKEN = re.compile(
    r"""
    (?P<ws>[\s,\ufeff]+|\#[^\n]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$():=@\[\]{}|])
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
""",
    re.VERBOSE,
)


class GraphQLError(Exception):
    pass


@dataclass
class Var:
    name: str


@dataclass
class Enum:
    value: str


@dataclass
class Field:
    name: str
    alias: str | None
    args: dict[str, Any]
    selections: list[Field] | None


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                raise GraphQLError(f"Syntax Error: Unexpected character {text[pos]!r}.")
            pos = m.end()
            kind = m.lastgroup or ""
            if kind != "ws":
                self.tokens.append((kind, m.group()))
        self.i = 0

    def peek(self, value: str | None = None) -> bool:
        if self.i >= len(self.tokens):
            return False
        return value is None or self.tokens[self.i][1] == value

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        if self.i >= len(self.tokens):
            raise GraphQLError("Syntax Error: Unexpected <EOF>.")
        k, v = self.tokens[self.i]
        if (value is not None and v != value) or (kind is not None and k != kind):
            raise GraphQLError(f"Syntax Error: Expected {value or kind}, found {v!r}.")
        self.i += 1
        return v

    def document(self) -> tuple[dict[str, Any], list[Field]]:
        var_defs: dict[str, Any] = {}
        if self.peek("query"):
            self.take("query")
            if self.i < len(self.tokens) and self.tokens[self.i][0] == "name":
                self.take(kind="name")
            if self.peek("("):
                self.take("(")
                while not self.peek(")"):
                    self.take("$")
                    name = self.take(kind="name")
                    self.take(":")
                    var_defs[name] = self.type_ref()
                    if self.peek("="):
                        self.take("=")
                        self.value(const=True)
                self.take(")")
        selections = self.selection_set()
        if self.i != len(self.tokens):
            raise GraphQLError(f"Syntax Error: Unexpected {self.tokens[self.i][1]!r}.")
        return var_defs, selections

    def type_ref(self) -> str:
        if self.peek("["):
            self.take("[")
            inner = self.type_ref()
            self.take("]")
            text = f"[{inner}]"
        else:
            text = self.take(kind="name")
        if self.peek("!"):
            self.take("!")
            text += "!"
        return text

    def selection_set(self) -> list[Field]:
        self.take("{")
        fields: list[Field] = []
        while not self.peek("}"):
            name = self.take(kind="name")
            alias = None
            if self.peek(":"):
                self.take(":")
                alias, name = name, self.take(kind="name")
            args: dict[str, Any] = {}
            if self.peek("("):
                self.take("(")
                while not self.peek(")"):
                    arg = self.take(kind="name")
                    self.take(":")
                    args[arg] = self.value(const=False)
                self.take(")")
            sub = self.selection_set() if self.peek("{") else None
            fields.append(Field(name, alias, args, sub))
        self.take("}")
        return fields

    def value(self, const: bool) -> Any:
        kind, text = self.tokens[self.i] if self.i < len(self.tokens) else ("", "")
        if text == "$" and not const:
            self.take("$")
            return Var(self.take(kind="name"))
        if text == "[":
            self.take("[")
            items = []
            while not self.peek("]"):
                items.append(self.value(const))
            self.take("]")
            return items
        if text == "{":
            self.take("{")
            obj = {}
            while not self.peek("}"):
                key = self.take(kind="name")
                self.take(":")
                obj[key] = self.value(const)
            self.take("}")
            return obj
        self.i += 1
        if kind == "string":
            return json.loads(text)
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "name":
            if text in ("true", "false", "null"):
                return {"true": True, "false": False, "null": None}[text]
            return Enum(text)
        raise GraphQLError(f"Syntax Error: Unexpected {text!r}.")


# Field -> type, for the part of the Arweave schema a transactions query can reach.
SCHEMA: dict[str, dict[str, str | None]] = {
    "Query": {"transactions": "TransactionConnection"},
    "TransactionConnection": {"pageInfo": "PageInfo", "edges": "TransactionEdge"},
    "PageInfo": {"hasNextPage": None},
    "TransactionEdge": {"cursor": None, "node": "Transaction"},
    "Transaction": {
        "id": None,
        "anchor": None,
        "signature": None,
        "recipient": None,
        "owner": "Owner",
        "fee": "Amount",
        "quantity": "Amount",
        "data": "MetaData",
        "tags": "Tag",
        "block": "Block",
        "bundledIn": "Bundle",
    },
    "Owner": {"address": None, "key": None},
    "Amount": {"winston": None, "ar": None},
    "MetaData": {"size": None, "type": None},
    "Tag": {"name": None, "value": None},
    "Block": {"id": None, "timestamp": None, "height": None, "previous": None},
    "Bundle": {"id": None},
}
TRANSACTIONS_ARGS = {
    "ids": "[ID!]",
    "owners": "[String!]",
    "recipients": "[String!]",
    "tags": "[TagFilter!]",
    "bundledIn": "[ID!]",
    "block": "BlockFilter",
    "first": "Int",
    "after": "String",
    "sort": "SortOrder",
}


def _check_selection(type_name: str, fields: list[Field]) -> None:
    for f in fields:
        known = SCHEMA[type_name]
        if f.name not in known:
            raise GraphQLError(f'Cannot query field "{f.name}" on type "{type_name}".')
        child = known[f.name]
        if child is None and f.selections is not None:
            raise GraphQLError(f'Field "{f.name}" must not have a selection since type "String" has no subfields.')
        if child is not None:
            if f.selections is None:
                raise GraphQLError(f'Field "{f.name}" of type "{child}" must have a selection of subfields.')
            _check_selection(child, f.selections)


def _resolve_vars(value: Any, variables: dict[str, Any], declared: dict[str, Any]) -> Any:
    if isinstance(value, Var):
        if value.name not in declared:
            raise GraphQLError(f'Variable "${value.name}" is not defined.')
        return variables.get(value.name)
    if isinstance(value, list):
        return [_resolve_vars(v, variables, declared) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_vars(v, variables, declared) for k, v in value.items()}
    return value


def _encode_cursor(tx: FakeTx) -> str:
    return b64url(json.dumps([tx.height, tx.id]).encode())


@dataclass
class FakeArweave:
    txs: list[FakeTx] = field(default_factory=list)
    max_first: int = 100
    lie_digest: set[str] = field(default_factory=set)  # announce a digest of other bytes for these
    no_digest: set[str] = field(default_factory=set)  # send no digest header at all
    rfc3230: set[str] = field(default_factory=set)  # send `Digest: sha-256=<base64>` instead of X-AR-IO-Digest
    refuse_cursors: bool = False
    redirect: set[str] = field(default_factory=set)  # answer 302 to a sandbox host for these
    requests: Counter[str] = field(default_factory=Counter)
    queries: list[dict[str, Any]] = field(default_factory=list)  # resolved transactions() arguments
    url: str = ""
    _runner: web.AppRunner | None = None

    def add(
        self,
        data: bytes,
        tags: dict[str, str] | list[tuple[str, str]],
        height: int | None,
        *,
        content_type: str | None = None,
        seed: bytes | None = None,
    ) -> FakeTx:
        pairs = list(tags.items()) if isinstance(tags, dict) else list(tags)
        txid = make_txid(seed or (data + json.dumps(pairs).encode() + str(len(self.txs)).encode()))
        tx = FakeTx(
            txid,
            make_txid(b"owner" + txid.encode()),
            pairs,
            data,
            height,
            content_type=content_type,
            timestamp=None if height is None else 1_700_000_000 + height * 120,
        )
        self.txs.append(tx)
        return tx

    def mine(self, tx: FakeTx, height: int) -> None:
        tx.height = height
        tx.timestamp = 1_700_000_000 + height * 120

    def get(self, txid: str) -> FakeTx | None:
        return next((t for t in self.txs if t.id == txid), None)

    # -- GraphQL --
    async def graphql(self, request: web.Request) -> web.StreamResponse:
        self.requests["graphql"] += 1
        if request.method != "POST":
            return web.json_response({"errors": [{"message": "this test gateway takes POST only"}]}, status=400)
        try:
            body = await request.json()
            data = self.execute(body.get("query", ""), body.get("variables") or {})
        except GraphQLError as exc:
            return web.json_response({"errors": [{"message": str(exc)}]}, status=400)
        except (ValueError, AttributeError) as exc:
            return web.json_response({"errors": [{"message": f"bad request: {exc}"}]}, status=400)
        return web.json_response({"data": data})

    def execute(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        declared, selections = _Parser(query).document()
        for name in variables:
            if name not in declared:
                raise GraphQLError(f'Variable "${name}" is never used.')
        _check_selection("Query", selections)
        out: dict[str, Any] = {}
        for f in selections:
            args = {k: _resolve_vars(v, variables, declared) for k, v in f.args.items()}
            for k in args:
                if k not in TRANSACTIONS_ARGS:
                    raise GraphQLError(f'Unknown argument "{k}" on field "Query.transactions".')
            self.queries.append(args)
            assert f.selections is not None
            out[f.alias or f.name] = self._transactions(args, f.selections)
        return out

    def _matches(self, tx: FakeTx, args: dict[str, Any]) -> bool:
        tag_filters = args.get("tags") or []
        if isinstance(tag_filters, dict):  # GraphQL input coercion: a single object for a list
            tag_filters = [tag_filters]
        for flt in tag_filters:
            if set(flt) - {"name", "values", "op"}:
                raise GraphQLError(f"unknown TagFilter fields {sorted(set(flt) - {'name', 'values', 'op'})}")
            values = flt.get("values") or []
            values = [values] if isinstance(values, str) else values
            op = flt.get("op")
            op = op.value if isinstance(op, Enum) else (op or "EQ")
            hit = any(n == flt.get("name") and v in values for n, v in tx.tags)
            if hit != (op == "EQ"):
                return False
        block = args.get("block")
        if block is not None:
            if set(block) - {"min", "max"}:
                raise GraphQLError(f"unknown BlockFilter fields {sorted(set(block) - {'min', 'max'})}")
            if tx.height is None:
                return False
            if block.get("min") is not None and tx.height < block["min"]:
                return False
            if block.get("max") is not None and tx.height > block["max"]:
                return False
        ids = args.get("ids")
        return not ids or tx.id in ids

    def _transactions(self, args: dict[str, Any], selections: list[Field]) -> dict[str, Any]:
        sort = args.get("sort")
        sort = sort.value if isinstance(sort, Enum) else (sort or "HEIGHT_DESC")
        if sort not in ("HEIGHT_ASC", "HEIGHT_DESC"):
            raise GraphQLError(f'Value "{sort}" does not exist in "SortOrder" enum.')
        first = args.get("first")
        first = 10 if first is None else first
        if not isinstance(first, int) or first < 0 or first > self.max_first:
            raise GraphQLError(f"first must be between 0 and {self.max_first}")
        big = 1 << 62

        def key(t: FakeTx) -> tuple[int, str]:
            return (t.height if t.height is not None else big, t.id)

        matching = sorted((t for t in self.txs if self._matches(t, args)), key=key, reverse=sort == "HEIGHT_DESC")
        after = args.get("after")
        if after:
            if self.refuse_cursors:
                raise GraphQLError("Invalid cursor")
            try:
                height, txid = json.loads(base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)))
            except (ValueError, TypeError):  # bad base64/JSON/UTF-8 (ValueErrors), or not a pair
                raise GraphQLError("Invalid cursor") from None
            mark = (height if height is not None else big, txid)
            matching = [t for t in matching if (key(t) > mark if sort == "HEIGHT_ASC" else key(t) < mark)]
        page = matching[:first]
        conn = {
            "pageInfo": {"hasNextPage": len(matching) > first},
            "edges": [{"cursor": _encode_cursor(t), "node": self._node(t)} for t in page],
        }
        selected: dict[str, Any] = _select(conn, selections)
        return selected

    def _node(self, tx: FakeTx) -> dict[str, Any]:
        return {
            "id": tx.id,
            "anchor": "",
            "signature": "",
            "recipient": "",
            "owner": {"address": tx.owner, "key": ""},
            "fee": {"winston": "0", "ar": "0"},
            "quantity": {"winston": "0", "ar": "0"},
            "data": {"size": str(len(tx.data)), "type": tx.content_type},
            "tags": [{"name": n, "value": v} for n, v in tx.tags],
            "block": None
            if tx.height is None
            else {
                "id": make_txid(str(tx.height).encode()),
                "timestamp": tx.timestamp,
                "height": tx.height,
                "previous": make_txid(str(tx.height - 1).encode()),
            },
            "bundledIn": None,
        }

    # -- data --
    async def raw(self, request: web.Request) -> web.StreamResponse:
        self.requests["raw"] += 1
        tx = self.get(request.match_info["txid"])
        if tx is None:
            return web.Response(status=404, text="Not found")
        if tx.id in self.redirect:
            raise web.HTTPFound(f"http://sandbox.invalid/raw/{tx.id}")
        headers = {"Content-Type": tx.content_type or "application/octet-stream"}
        digest = (
            b64url(hashlib.sha256(b"not these bytes" + tx.data).digest()) if tx.id in self.lie_digest else tx.digest
        )
        if tx.id in self.rfc3230:
            headers["Digest"] = "sha-256=" + base64.b64encode(base64.urlsafe_b64decode(digest + "=")).decode()
        elif tx.id not in self.no_digest:
            headers["X-AR-IO-Digest"] = digest
            headers["ETag"] = f'"{digest}"'
        return web.Response(body=tx.data, headers=headers)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/graphql", self.graphql)
        app.router.add_get("/raw/{txid}", self.raw)
        self._runner, self.url = await serve_app(app)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _select(value: Any, selections: list[Field] | None) -> Any:
    """Only what was asked for, under the names (aliases) it was asked for."""
    if selections is None or value is None:
        return value
    if isinstance(value, list):
        return [_select(v, selections) for v in value]
    return {(f.alias or f.name): _select(value.get(f.name), f.selections) for f in selections}
