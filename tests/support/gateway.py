"""A real trustless gateway (aiohttp, 127.0.0.1) serving fixture blocks.

Follows https://specs.ipfs.tech/http-gateways/trustless-gateway/ : raw blocks
(`?format=raw` / `Accept: application/vnd.ipld.raw`) and CARs
(`?format=car`, `dag-scope=block|entity|all`, DFS order, `dups=y|n`). A block
it does not have ends a CAR stream early, as a real gateway's does. Knobs let a
test make it lie, block, rate-limit or fail, and every request is counted.

Hostile behaviours for CAR responses (`misbehave`): "endless-unneeded" sends the
entity's root, then distinct valid blocks nobody asked for, for ever;
"repeat-block" sends the first two blocks, then the second again and again for
ever; "trickle" sends the CAR one byte every `trickle_interval_s`. With
`strict_cids`, a CID not spelled canonically in the path (base32 CIDv1,
base58btc CIDv0) gets 400, as some real gateways do."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from aiohttp import web
from multiformats import multihash

from agent.ipfs.car import encode_car_header, encode_car_section, read_car_file
from agent.ipfs.cid import CID, block_key, parse_cid
from agent.ipfs.cid import cid_text as canonical_text
from agent.ipfs.dagpb import DAG_CBOR, DAG_JSON, DAG_PB, UnixFSType, decode_pbnode, decode_unixfs
from agent.ipfs.documents import decode_document, document_links
from agent.ipfs.errors import DagError, InvalidCid
from tests.support.http import serve_app

_DOC_CODECS = (DAG_CBOR, DAG_JSON, 0x51, 0x0200)


car_header = encode_car_header
car_section = encode_car_section


@dataclass
class FixtureGateway:
    blocks: dict[bytes, bytes] = field(default_factory=dict)
    cids: dict[bytes, CID] = field(default_factory=dict)
    lie_about: set[bytes] = field(default_factory=set)  # serve corrupted bytes for these
    blocked: dict[bytes, int] = field(default_factory=dict)  # answer 410/451 for these roots
    rate_limit: dict[bytes, int] = field(default_factory=dict)  # answer 429 this many times first
    retry_after: str = "0"
    hide: set[bytes] = field(default_factory=set)  # act as if these blocks were missing
    honour_dups: bool = True
    requests: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, str, str]] = field(default_factory=list)  # (format, cid, scope)
    url: str = ""
    _runner: web.AppRunner | None = None
    _sections: dict[bytes, bytes] = field(default_factory=dict)
    # After this many CAR requests, hold further ones until `release()` (a stalled gateway).
    hold_after: int | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    # Signed IPNS records served at /ipns/<name> (application/vnd.ipfs.ipns-record).
    ipns_records: dict[str, bytes] = field(default_factory=dict)
    misbehave: Literal["endless-unneeded", "repeat-block", "trickle"] | None = None
    trickle_interval_s: float = 1.0
    unneeded_block_bytes: int = 1024
    strict_cids: bool = False
    car_bytes_sent: int = 0  # CAR bytes handed to the transport (the client may have read fewer)
    car_bytes_cap: int | None = None  # end any CAR response after this many bytes (keeps old code bounded)

    def add_blocks(self, blocks: list[tuple[CID, bytes]]) -> None:
        for cid, data in blocks:
            self.blocks[block_key(cid)] = data
            self.cids[block_key(cid)] = cid

    async def load_car(self, path: Path) -> list[CID]:
        header, blocks = await read_car_file(path)
        self.add_blocks([(b.cid, b.data) for b in blocks])
        return list(header.roots)

    def has(self, cid: CID) -> bool:
        key = block_key(cid)
        return key in self.blocks and key not in self.hide

    def data_for(self, cid: CID) -> bytes:
        data = self.blocks[block_key(cid)]
        if block_key(cid) in self.lie_about:
            return b"\x00not the real bytes\x00" + data[::-1]
        return data

    def _section(self, cid: CID) -> bytes:
        key = block_key(cid)
        if key in self.lie_about:
            return car_section(cid, self.data_for(cid))
        section = self._sections.get(key)
        if section is None:  # encoded once: keeps the server from being the benchmark's bottleneck
            section = self._sections[key] = car_section(cid, self.blocks[key])
        return section

    # -- DAG traversal in the order the spec asks for (DFS, links in order) --
    def _children(self, cid: CID, scope: str, is_root: bool) -> list[CID]:
        try:
            return self._decode_children(cid, scope)
        except DagError:  # the decoders' one documented error (the property suite holds them to it)
            return []  # an undecodable block is still served; the client must judge it

    def _decode_children(self, cid: CID, scope: str) -> list[CID]:
        data = self.blocks[block_key(cid)]
        codec = cid.codec.code
        if codec == DAG_PB:
            node = decode_pbnode(data)
            unixfs = decode_unixfs(node.data) if node.data is not None else None
            if scope == "all":
                return [link.cid for link in node.links]
            if unixfs is None:
                return []
            if unixfs.type in (UnixFSType.FILE, UnixFSType.RAW):
                return [link.cid for link in node.links]
            if unixfs.type == UnixFSType.HAMT_SHARD:
                pad = len(format((unixfs.fanout or 256) - 1, "X"))
                return [link.cid for link in node.links if len(link.name or "") == pad]
            return []
        if codec in _DOC_CODECS and scope == "all":
            return [c for _, c in document_links(decode_document(codec, data))]
        return []

    def dag_order(self, root: CID, scope: str, dups: bool) -> tuple[list[CID], bool]:
        """Blocks in DFS order, and whether the DAG was complete."""
        order: list[CID] = []
        seen: set[bytes] = set()
        stack: list[tuple[CID, bool]] = [(root, True)]
        while stack:
            cid, is_root = stack.pop()
            if cid.hashfun.code == 0:
                continue  # identity: inline, never sent
            key = block_key(cid)
            if not self.has(cid):
                return order, False
            if key in seen and not dups:
                continue
            seen.add(key)
            order.append(cid)
            if scope == "block":
                continue
            stack.extend((c, False) for c in reversed(self._children(cid, scope, is_root)))
        return order, True

    # -- HTTP --
    async def handle(self, request: web.Request) -> web.StreamResponse:
        cid_text = request.match_info["cid"]
        accept = request.headers.get("Accept", "")
        fmt = request.query.get("format") or (
            "car" if "vnd.ipld.car" in accept else "raw" if "vnd.ipld.raw" in accept else ""
        )
        self.requests[fmt] += 1
        scope = request.query.get("dag-scope", "all")
        self.log.append((fmt, cid_text, scope))
        try:
            cid = parse_cid(cid_text)
        except InvalidCid as exc:
            return web.Response(status=400, text=f"invalid CID: {exc}")
        if self.strict_cids and cid_text != canonical_text(cid):
            return web.Response(status=400, text="this gateway only accepts canonical CIDs (base32 v1, base58btc v0)")
        key = block_key(cid)
        if key in self.blocked:
            return web.Response(status=self.blocked[key], text="blocked by this gateway's denylist")
        if self.rate_limit.get(key, 0) > 0:
            self.rate_limit[key] -= 1
            return web.Response(status=429, headers={"Retry-After": self.retry_after}, text="slow down")
        if fmt not in ("raw", "car"):
            return web.Response(status=406, text="this test gateway only answers trustless requests")
        if self.hold_after is not None and self.requests["car"] + self.requests["raw"] > self.hold_after:
            await self._released.wait()
        if not self.has(cid):
            return web.Response(status=404, text="block not found")
        if fmt == "raw":
            return web.Response(body=self.data_for(cid), content_type="application/vnd.ipld.raw")
        dups = self.honour_dups and "dups=y" in accept
        order, _complete = self.dag_order(cid, scope, dups)
        resp = web.StreamResponse(
            headers={"Content-Type": f"application/vnd.ipld.car; version=1; order=dfs; dups={'y' if dups else 'n'}"}
        )
        await resp.prepare(request)
        try:
            await self._write_car(resp, cid, order)
        except (ConnectionError, asyncio.CancelledError):
            return resp  # the client gave up on an endless or slow stream: that is the point
        # An incomplete DAG simply ends early, as boxo's streaming responses do.
        await resp.write_eof()
        return resp

    def _car_body(self, order: list[CID]) -> itertools.chain[bytes]:
        if self.misbehave == "endless-unneeded":
            return itertools.chain((self._section(c) for c in order[:1]), self._unneeded_sections())
        if self.misbehave == "repeat-block" and order:
            again = self._section(order[min(1, len(order) - 1)])
            return itertools.chain((self._section(c) for c in order[:2]), itertools.repeat(again))
        return itertools.chain(self._section(c) for c in order)

    def _unneeded_sections(self) -> itertools.chain[bytes]:
        def section(i: int) -> bytes:
            data = i.to_bytes(8, "big") * (self.unneeded_block_bytes // 8)
            return car_section(CID("base32", 1, "raw", multihash.wrap(hashlib.sha256(data).digest(), "sha2-256")), data)

        return itertools.chain(section(i) for i in itertools.count())

    async def _write_car(self, resp: web.StreamResponse, root: CID, order: list[CID]) -> None:
        sent = 0
        for chunk in itertools.chain([car_header([root])], self._car_body(order)):
            sent += len(chunk)
            if self.car_bytes_cap is not None and sent > self.car_bytes_cap:
                return
            if self.misbehave == "trickle":
                for i in range(len(chunk)):
                    await resp.write(chunk[i : i + 1])
                    self.car_bytes_sent += 1
                    await asyncio.sleep(self.trickle_interval_s)
                continue
            await resp.write(chunk)
            self.car_bytes_sent += len(chunk)

    async def handle_ipns(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.requests["ipns"] += 1
        self.log.append(("ipns", name, ""))
        if (
            "application/vnd.ipfs.ipns-record" not in request.headers.get("Accept", "")
            and request.query.get("format") != "ipns-record"
        ):
            return web.Response(status=406, text="this test gateway only answers trustless requests")
        record = self.ipns_records.get(name)
        if record is None:
            return web.Response(status=404, text="no record for this name")
        return web.Response(body=record, content_type="application/vnd.ipfs.ipns-record")

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/ipns/{name}", self.handle_ipns)
        app.router.add_get("/ipfs/{cid}", self.handle)
        app.router.add_get("/ipfs/{cid}/{path:.*}", self.handle)
        self._runner, self.url = await serve_app(app)
        return self.url

    def release(self) -> None:
        self.hold_after = None
        self._released.set()

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
