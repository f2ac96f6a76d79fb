"""A real Delegated Routing V1 server (aiohttp, 127.0.0.1) answering provider lookups.

Follows https://specs.ipfs.tech/routing/http-routing-v1/ for
`GET /routing/v1/providers/{cid}`: `{"Providers": [...]}` as application/json,
one record per line as application/x-ndjson when the client asks for it, and
404 when no record matches. Records are looked up by the CID's multihash, so a
test may register a CIDv0 and the client may ask with CIDv1 (as the spec says
clients do). Knobs make it fail; every request is recorded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aiohttp import web

from agent.ipfs.cid import block_key, parse_cid
from agent.ipfs.errors import InvalidCid
from tests.support.http import serve_app

ProviderRecord = dict[str, object]

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def peer_record(n: int, *, addrs: list[str] | None = None) -> ProviderRecord:
    """A `peer` schema record with a distinct, Ed25519-looking peer ID (opaque to clients)."""
    suffix = ""
    value = n + 1
    while value:
        value, digit = divmod(value, 58)
        suffix = _B58[digit] + suffix
    return {
        "Schema": "peer",
        "ID": "12D3KooW" + suffix.rjust(44, "A"),
        "Addrs": addrs if addrs is not None else [f"/ip4/127.0.0.1/tcp/{4001 + n}"],
        "Protocols": ["transport-bitswap"],
    }


@dataclass
class RoutingServer:
    # CID text (any version/base) -> provider records; mutate freely between checks.
    providers: dict[str, list[ProviderRecord]] = field(default_factory=dict)
    # Answer every lookup with this status (e.g. 500) instead of records.
    fail_with: int | None = None
    # Answer ndjson when the client's Accept asks for it (a streaming-capable router).
    streaming: bool = True
    # (path cid, Accept header) of every lookup
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    def _records_for(self, cid_text: str) -> list[ProviderRecord]:
        key = block_key(parse_cid(cid_text))
        found: list[ProviderRecord] = []
        for registered, records in self.providers.items():
            if block_key(parse_cid(registered)) == key:
                found.extend(records)
        return found

    async def handle_providers(self, request: web.Request) -> web.StreamResponse:
        cid_text = request.match_info["cid"]
        accept = request.headers.get("Accept", "")
        self.requests.append((cid_text, accept))
        if self.fail_with is not None:
            return web.json_response({"Message": "router failure (test knob)"}, status=self.fail_with)
        try:
            records = self._records_for(cid_text)
        except InvalidCid as exc:
            return web.json_response({"Message": f"invalid CID: {exc}"}, status=400)
        if not records:
            return web.json_response({"Message": "no matching records"}, status=404)
        if self.streaming and "application/x-ndjson" in accept:
            resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await resp.prepare(request)
            for record in records:
                await resp.write(json.dumps(record).encode() + b"\n")
            await resp.write_eof()
            return resp
        return web.json_response({"Providers": records})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/routing/v1/providers/{cid}", self.handle_providers)
        self._runner, self.url = await serve_app(app)
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
