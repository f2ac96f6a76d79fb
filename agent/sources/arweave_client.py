"""Arweave through a gateway: GraphQL tag queries, resumable polling, and data fetches
checked against the gateway's digest.

Query schema: the Arweave GraphQL API as arweave.net, ar.io gateways and Goldsky
serve it: `transactions(tags: [TagFilter!], block: BlockFilter, first: Int,
after: String, sort: SortOrder)` returning a connection of
`{pageInfo {hasNextPage} edges {cursor node {...}}}`; `data.size` is a
String (it can exceed 2^53), `block` is null while a transaction is pending.

Integrity, honestly stated: ar.io gateways send `X-AR-IO-Digest`, the
base64url SHA-256 of the bytes (empty when the gateway has not cached them).
Checking it catches corruption in transit or in a cache; it does not prove the
gateway tells the truth about the chain, since the same gateway supplied both.
When no digest header came, the content is returned with `digest_checked=False`
so a report can say so."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from agent.net.retry_after import parse_retry_after
from agent.sources.arweave_types import (
    MAX_PAGE_SIZE,
    ArweaveBlocked,
    ArweaveContent,
    ArweaveGatewayError,
    ArweaveIntegrityError,
    ArweaveNotFound,
    ArweavePage,
    ArweaveQueryError,
    ArweaveRateLimited,
    ArweaveTooLarge,
    ArweaveTx,
    InvalidTxid,
    check_txid,
    int_or_none,
)

_MAX_ERROR_BODY = 4096

_NODE_FIELDS = "id owner { address } data { size type } tags { name value } block { height timestamp }"


def _build_query(*, with_block: bool, with_after: bool) -> str:
    """The transactions query with only the arguments in use declared: some gateways
    reject a null they do not expect more readily than an absent argument."""
    decls = ["$tags: [TagFilter!]", "$first: Int"]
    args = ["tags: $tags", "first: $first"]
    if with_block:
        decls.append("$block: BlockFilter")
        args.append("block: $block")
    if with_after:
        decls.append("$after: String")
        args.append("after: $after")
    args.append("sort: HEIGHT_ASC")  # oldest first: a saved cursor then marks "everything up to here"
    return (
        f"query Transactions({', '.join(decls)}) {{ transactions({', '.join(args)}) "
        f"{{ pageInfo {{ hasNextPage }} edges {{ cursor node {{ {_NODE_FIELDS} }} }} }} }}"
    )


def _b64_digest(text: str) -> bytes | None:
    """32 bytes from a base64 or base64url SHA-256, padded or not; None if it is not one."""
    text = text.strip()
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def announced_digests(headers: Mapping[str, str]) -> list[tuple[str, bytes | None]]:
    """(header, sha-256 digest or None when unparseable) for every digest the response carries:
    `X-AR-IO-Digest` (ar.io), `Digest: sha-256=<b64>` (RFC 3230), `Content-Digest: sha-256=:<b64>:` (RFC 9530)."""
    found: list[tuple[str, bytes | None]] = []
    ario = headers.get("X-AR-IO-Digest", "").strip()
    if ario:  # empty means "not cached here", not a claim
        found.append(("X-AR-IO-Digest", _b64_digest(ario)))
    for header in ("Digest", "Content-Digest"):
        for part in headers.get(header, "").split(","):
            algo, sep, value = part.strip().partition("=")
            if sep and algo.strip().lower() == "sha-256":
                found.append((header, _b64_digest(value.strip().strip(":"))))
    return found


class ArweaveClient:
    def __init__(
        self,
        gateway_url: str,
        session: aiohttp.ClientSession,
        *,
        graphql_path: str = "/graphql",
        timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        max_graphql_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        parts = urlsplit(gateway_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{gateway_url!r} is not an http(s) gateway URL")
        self.gateway = gateway_url.strip().rstrip("/")
        self._graphql_url = self.gateway + "/" + graphql_path.lstrip("/")
        self._session = session
        self._timeout_s = timeout_s
        self._call_timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=timeout_s)
        self._max_graphql = max_graphql_bytes

    def __repr__(self) -> str:
        return f"ArweaveClient({self.gateway!r})"

    def _transport_error(self, exc: BaseException) -> ArweaveGatewayError:
        if isinstance(exc, asyncio.TimeoutError):
            return ArweaveGatewayError(self.gateway, f"no answer within {self._timeout_s:g}s")
        return ArweaveGatewayError(self.gateway, f"{type(exc).__name__}: {exc}".rstrip(": "))

    async def _check_status(self, resp: aiohttp.ClientResponse, what: str) -> None:
        if resp.status == 200:
            return
        if resp.status == 404:
            raise ArweaveNotFound(self.gateway, f"{what}: 404 Not Found", 404)
        if resp.status in (410, 451):
            raise ArweaveBlocked(self.gateway, f"{what}: {resp.status} {resp.reason or ''}".strip(), resp.status)
        if resp.status == 429:
            raise ArweaveRateLimited(self.gateway, parse_retry_after(resp.headers.get("Retry-After")))
        if 300 <= resp.status < 400:
            where = resp.headers.get("Location", "nowhere")[:200]
            raise ArweaveGatewayError(
                self.gateway, f"{what}: redirected ({resp.status}) to {where}; not followed", resp.status
            )
        try:
            body = (await resp.content.read(_MAX_ERROR_BODY)).decode("utf-8", "replace").strip()
        except (TimeoutError, aiohttp.ClientError):
            body = ""
        raise ArweaveGatewayError(self.gateway, f"{what}: HTTP {resp.status} {body[:200]}".strip(), resp.status)

    async def _read(self, resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
        declared = resp.content_length
        if declared is not None and declared > limit:
            raise ArweaveTooLarge(f"{self.gateway} offers {declared} bytes for {what}; the limit is {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > limit:
                raise ArweaveTooLarge(f"{self.gateway} sent more than {limit} bytes for {what}")
            chunks.append(chunk)
        return b"".join(chunks)

    async def graphql(self, query: str, variables: Mapping[str, Any]) -> Any:
        """POST a GraphQL query; returns `data`, raises on transport or GraphQL errors."""
        try:
            async with self._session.post(
                self._graphql_url,
                json={"query": query, "variables": dict(variables)},
                headers={"Accept": "application/json"},
                timeout=self._call_timeout,
                allow_redirects=False,
            ) as resp:
                if resp.status in (400, 422, 500):
                    # GraphQL servers (Apollo on ar.io) answer a rejected query with 4xx/5xx and
                    # a JSON `errors` list: that message is the useful part.
                    body = await self._read(resp, _MAX_ERROR_BODY * 16, "a GraphQL error")
                    self._raise_graphql_errors(body, resp.status)
                await self._check_status(resp, "GraphQL")
                body = await self._read(resp, self._max_graphql, "a GraphQL answer")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc) from exc
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ArweaveGatewayError(self.gateway, f"GraphQL answer is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ArweaveGatewayError(self.gateway, "GraphQL answer is not an object")
        self._raise_errors(value, 200)
        return value.get("data")

    def _raise_graphql_errors(self, body: bytes, status: int) -> None:
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            text = body.decode("utf-8", "replace").strip()[:200]
            raise ArweaveGatewayError(self.gateway, f"GraphQL: HTTP {status} {text}".strip(), status) from None
        if isinstance(value, dict):
            self._raise_errors(value, status)
        raise ArweaveGatewayError(self.gateway, f"GraphQL: HTTP {status}", status)

    def _raise_errors(self, value: dict[str, Any], status: int) -> None:
        errors = value.get("errors")
        if errors:
            listed = errors if isinstance(errors, list) else [errors]
            messages = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in listed]
            raise ArweaveQueryError(self.gateway, f"GraphQL error: {'; '.join(messages)[:500]}", status)

    async def query(
        self,
        tags: Mapping[str, Sequence[str]],
        *,
        min_block_height: int | None = None,
        after: str | None = None,
        first: int = 100,
    ) -> ArweavePage:
        """One page of transactions carrying all of `tags` (each with any of its values),
        oldest block first, starting after `after`."""
        if not 1 <= first <= MAX_PAGE_SIZE:
            raise ValueError(f"first must be between 1 and {MAX_PAGE_SIZE}")
        tag_filters = [{"name": name, "values": list(values)} for name, values in tags.items()]
        if any(not f["values"] for f in tag_filters):
            raise ValueError("every tag filter needs at least one value")
        variables: dict[str, Any] = {"tags": tag_filters, "first": first}
        if min_block_height is not None:
            variables["block"] = {"min": min_block_height}
        if after is not None:
            variables["after"] = after
        query = _build_query(with_block=min_block_height is not None, with_after=after is not None)
        data = await self.graphql(query, variables)
        return self._page(data)

    def _page(self, data: Any) -> ArweavePage:
        conn = data.get("transactions") if isinstance(data, dict) else None
        if not isinstance(conn, dict) or not isinstance(conn.get("edges"), list):
            raise ArweaveGatewayError(self.gateway, "GraphQL answer has no transactions.edges")
        txs: list[ArweaveTx] = []
        for edge in conn["edges"]:
            try:
                txs.append(self._tx(edge))
            except (KeyError, TypeError, AttributeError, InvalidTxid) as exc:
                raise ArweaveGatewayError(self.gateway, f"malformed transaction edge: {exc!r}"[:300]) from None
        page_info = conn.get("pageInfo")
        has_next = bool(page_info.get("hasNextPage")) if isinstance(page_info, dict) else False
        return ArweavePage(txs, has_next)

    def _tx(self, edge: Any) -> ArweaveTx:
        node = edge["node"]
        cursor = edge["cursor"]
        if not isinstance(cursor, str) or not cursor:
            raise TypeError("edge without a cursor")
        owner = node.get("owner") or {}
        data = node.get("data") or {}
        block = node.get("block")  # null while pending
        tags = tuple((str(t["name"]), str(t["value"])) for t in node.get("tags") or [])
        return ArweaveTx(
            id=check_txid(node["id"]),
            owner=str(owner.get("address") or ""),
            tags=tags,
            data_size=int_or_none(data.get("size")) or 0,
            data_type=data.get("type") or None,
            block_height=int_or_none(block.get("height")) if isinstance(block, dict) else None,
            block_timestamp=int_or_none(block.get("timestamp")) if isinstance(block, dict) else None,
            cursor=cursor,
        )

    async def fetch(self, txid: str, *, max_bytes: int) -> ArweaveContent:
        """The transaction's data from `GET /raw/<txid>` (no manifest resolution), at most
        `max_bytes`, checked against every SHA-256 digest header the gateway sent."""
        check_txid(txid)
        url = f"{self.gateway}/raw/{txid}"
        hasher = hashlib.sha256()
        try:
            # No redirects, as for IPFS gateways: the bytes must come from the gateway we name
            # in the report, and a redirect could point anywhere (the SSRF guard is upstream).
            async with self._session.get(url, timeout=self._stream_timeout, allow_redirects=False) as resp:
                await self._check_status(resp, f"/raw/{txid}")
                data = await self._read(resp, max_bytes, f"/raw/{txid}")
                headers = resp.headers
                content_type = headers.get("Content-Type")
                digests = announced_digests(headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc) from exc
        hasher.update(data)
        actual = hasher.digest()
        for header, expected in digests:
            if expected is None:
                raise ArweaveIntegrityError(self.gateway, txid, f"{header} is not a SHA-256 digest")
            if expected != actual:
                shown = base64.urlsafe_b64encode(expected).rstrip(b"=").decode()
                got = base64.urlsafe_b64encode(actual).rstrip(b"=").decode()
                raise ArweaveIntegrityError(self.gateway, txid, f"{header} announces {shown}, the bytes hash to {got}")
        return ArweaveContent(
            txid=txid,
            data=data,
            sha256=actual.hex(),
            digest_checked=bool(digests),
            gateway=self.gateway,
            content_type=content_type,
        )
