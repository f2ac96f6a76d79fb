"""A fake Kubo RPC API (aiohttp, 127.0.0.1) speaking Kubo's wire formats over fixture blocks.

What it imitates, from https://docs.ipfs.tech/reference/kubo/rpc/ and go-ipfs-cmds:
POST only (anything else is `405 - Method Not Allowed`); `arg=` query
arguments; errors as HTTP 500 (400 for a missing argument) with
`{"Message", "Code", "Type": "error"}`; `pin/ls` as `{"Keys": {...}}` or, with
`stream=true`, NDJSON `{"Cid", "Type"}` lines sent in ragged chunks;
`dag/export` as a CARv1 whose stream simply stops where a block is missing
(the real node reports that only in an HTTP trailer). Pins and IPNS names live
in plain dicts a test can change between calls; every request is counted."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from agent.ipfs.car import encode_car_header, encode_car_section, read_car_file
from agent.ipfs.cid import CID, block_key, cid_text, parse_cid
from agent.ipfs.dagpb import DAG_CBOR, DAG_JSON, DAG_PB, RAW, UnixFSType, decode_pbnode, decode_unixfs
from agent.ipfs.documents import decode_document, document_links
from agent.ipfs.errors import DagError, InvalidCid
from tests.support.http import serve_app

_DOC_CODECS = (DAG_CBOR, DAG_JSON, 0x51, 0x0200)
KUBO_VERSION = {"Version": "0.39.0", "Commit": "2b7f57a", "Repo": "18", "System": "amd64/linux", "Golang": "go1.25.4"}


def _error(message: str, status: int = 500, code: int = 0) -> web.Response:
    return web.json_response({"Message": message, "Code": code, "Type": "error"}, status=status)


@dataclass
class FakeKubo:
    blocks: dict[bytes, bytes] = field(default_factory=dict)
    cids: dict[bytes, CID] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)  # cid text -> "recursive" | "direct" | "indirect"
    names: dict[str, str] = field(default_factory=dict)  # IPNS name -> "/ipfs/<cid>"
    corrupt: set[bytes] = field(default_factory=set)  # serve wrong bytes for these blocks
    stream_chunk: int = 37  # NDJSON is written in chunks of this size, so lines straddle reads
    stream_error: str | None = None  # end the pin/ls stream with this error object, as a failing node does
    hang: set[str] = field(default_factory=set)  # commands that never answer (until stop)
    requests: Counter[str] = field(default_factory=Counter)
    log: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # (method, command, query)
    url: str = ""
    _runner: web.AppRunner | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    # -- content --
    def add_blocks(self, blocks: list[tuple[CID, bytes]]) -> None:
        for cid, data in blocks:
            self.blocks[block_key(cid)] = data
            self.cids[block_key(cid)] = cid

    async def load_car(self, path: Path, *, pin: bool = False) -> list[CID]:
        header, blocks = await read_car_file(path)
        self.add_blocks([(b.cid, b.data) for b in blocks])
        if pin:
            for root in header.roots:
                self.pins[cid_text(root)] = "recursive"
        return list(header.roots)

    def remove_block(self, cid: CID) -> None:
        self.blocks.pop(block_key(cid), None)

    def _data(self, cid: CID) -> bytes:
        data = self.blocks[block_key(cid)]
        if block_key(cid) in self.corrupt:
            return b"\x00corrupted in the blockstore\x00" + data[::-1]
        return data

    def _children(self, cid: CID) -> list[CID]:
        data = self.blocks[block_key(cid)]
        codec = cid.codec.code
        try:
            if codec == DAG_PB:
                return [link.cid for link in decode_pbnode(data).links]
            if codec in _DOC_CODECS:
                return [c for _, c in document_links(decode_document(codec, data))]
        except DagError:  # an undecodable block is still exported; the client must judge it
            return []
        return []

    def export_order(self, root: CID) -> tuple[list[CID], bool]:
        """Every block under `root`, depth first, each once (Kubo's dag export walks
        links only once); the bool says whether the DAG was complete."""
        order: list[CID] = []
        seen: set[bytes] = set()
        stack = [root]
        while stack:
            cid = stack.pop()
            if cid.hashfun.code == 0:
                continue
            key = block_key(cid)
            if key in seen:
                continue
            if key not in self.blocks:
                return order, False
            seen.add(key)
            order.append(cid)
            stack.extend(reversed(self._children(cid)))
        return order, True

    # -- HTTP --
    async def handle(self, request: web.Request) -> web.StreamResponse:
        command = request.match_info["command"]
        self.requests[command] += 1
        self.log.append((request.method, command, dict(request.query)))
        if request.method != "POST":
            # go-ipfs-cmds refuses every other method: browsers can be tricked into GETs.
            return web.Response(status=405, text="405 - Method Not Allowed\n")
        handler = {
            "version": self._version,
            "pin/ls": self._pin_ls,
            "ls": self._ls,
            "dag/export": self._dag_export,
            "block/get": self._block_get,
            "name/resolve": self._name_resolve,
        }.get(command)
        if handler is None:
            return web.Response(status=404, text="404 page not found\n")
        if command in self.hang:
            await self._released.wait()
        return await handler(request)

    def _arg(self, request: web.Request, name: str) -> str | web.Response:
        args = request.query.getall("arg", [])
        if not args:
            return _error(f'argument "{name}" is required', status=400, code=1)
        return args[0]

    def _cid(self, text: str) -> CID | web.Response:
        try:
            return parse_cid(text.removeprefix("/ipfs/").split("/")[0])
        except InvalidCid as exc:
            return _error(f"invalid path {text!r}: {exc}")

    def _missing(self, cid: CID, request: web.Request) -> web.Response:
        offline = request.query.get("offline") == "true"
        prefix = "block was not found locally (offline): " if offline else ""
        return _error(f"{prefix}ipld: could not find {cid}")

    async def _version(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(KUBO_VERSION)

    async def _pin_ls(self, request: web.Request) -> web.StreamResponse:
        wanted = request.query.get("type", "all")
        if wanted not in ("direct", "indirect", "recursive", "all"):
            return _error(f"invalid type '{wanted}', must be one of {{direct, indirect, recursive, all}}")
        pins = [(c, t) for c, t in list(self.pins.items()) if wanted == "all" or t == wanted]
        if request.query.get("stream") != "true":
            return web.json_response({"Keys": {c: {"Type": t} for c, t in pins}})
        resp = web.StreamResponse(
            headers={"Content-Type": "application/json", "X-Chunked-Output": "1", "Trailer": "X-Stream-Error"}
        )
        await resp.prepare(request)
        body = b"".join(json.dumps({"Cid": c, "Type": t}).encode() + b"\n" for c, t in pins)
        if self.stream_error is not None:
            body += json.dumps({"Message": self.stream_error, "Code": 0, "Type": "error"}).encode() + b"\n"
        for start in range(0, len(body), self.stream_chunk):
            await resp.write(body[start : start + self.stream_chunk])
        await resp.write_eof()
        return resp

    async def _ls(self, request: web.Request) -> web.StreamResponse:
        arg = self._arg(request, "ipfs-path")
        if isinstance(arg, web.Response):
            return arg
        cid = self._cid(arg)
        if isinstance(cid, web.Response):
            return cid
        if block_key(cid) not in self.blocks:
            return self._missing(cid, request)
        links: list[dict[str, Any]] = []
        if cid.codec.code == DAG_PB:
            node = decode_pbnode(self.blocks[block_key(cid)])
            unixfs = decode_unixfs(node.data) if node.data is not None else None
            if unixfs is not None and unixfs.type == UnixFSType.HAMT_SHARD:
                return _error("this test node does not list HAMT-sharded directories")
            if unixfs is None or unixfs.type == UnixFSType.DIRECTORY:
                for link in node.links:
                    links.append(self._ls_link(link.name or "", link.cid))
        return web.json_response({"Objects": [{"Hash": arg, "Links": links}]})

    def _ls_link(self, name: str, cid: CID) -> dict[str, Any]:
        kind, size, target = UnixFSType.FILE, 0, ""
        data = self.blocks.get(block_key(cid))
        if cid.codec.code == RAW and data is not None:
            size = len(data)
        elif cid.codec.code == DAG_PB and data is not None:
            node = decode_pbnode(data)
            unixfs = decode_unixfs(node.data) if node.data is not None else None
            if unixfs is not None and unixfs.type in (UnixFSType.DIRECTORY, UnixFSType.HAMT_SHARD):
                kind = UnixFSType.DIRECTORY
            elif unixfs is not None and unixfs.type == UnixFSType.SYMLINK:
                kind, target = UnixFSType.SYMLINK, (unixfs.data or b"").decode("utf-8", "replace")
                size = len(target)
            elif unixfs is not None:
                size = unixfs.filesize if unixfs.filesize is not None else len(unixfs.data or b"")
        link: dict[str, Any] = {"Name": name, "Hash": cid_text(cid), "Size": size, "Type": int(kind)}
        if target:
            link["Target"] = target
        return link

    async def _dag_export(self, request: web.Request) -> web.StreamResponse:
        arg = self._arg(request, "root")
        if isinstance(arg, web.Response):
            return arg
        cid = self._cid(arg)
        if isinstance(cid, web.Response):
            return cid
        if block_key(cid) not in self.blocks:
            return self._missing(cid, request)
        order, _complete = self.export_order(cid)
        resp = web.StreamResponse(
            headers={"Content-Type": "text/plain", "X-Stream-Output": "1", "Trailer": "X-Stream-Error"}
        )
        await resp.prepare(request)
        await resp.write(encode_car_header([cid]))
        for block_cid in order:
            await resp.write(encode_car_section(block_cid, self._data(block_cid)))
        await resp.write_eof()  # an incomplete DAG just ends: Kubo names the error only in a trailer
        return resp

    async def _block_get(self, request: web.Request) -> web.StreamResponse:
        arg = self._arg(request, "cid")
        if isinstance(arg, web.Response):
            return arg
        cid = self._cid(arg)
        if isinstance(cid, web.Response):
            return cid
        if block_key(cid) not in self.blocks:
            return self._missing(cid, request)
        return web.Response(body=self._data(cid), content_type="text/plain")

    async def _name_resolve(self, request: web.Request) -> web.StreamResponse:
        arg = self._arg(request, "name")
        if isinstance(arg, web.Response):
            return arg
        name = arg.removeprefix("/ipns/")
        path = self.names.get(name)
        if path is None:
            return _error(f"could not resolve name: {name}")
        return web.json_response({"Path": path})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/api/v0/{command:.+}", self.handle)
        self._runner, self.url = await serve_app(app)
        return self.url

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
