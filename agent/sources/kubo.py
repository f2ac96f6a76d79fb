"""A Kubo node's RPC API (`/api/v0`) over aiohttp, and the node as a verified BlockSource.

Wire format: https://docs.ipfs.tech/reference/kubo/rpc/ . Every command is a
POST (Kubo answers GET with 405, a CSRF guard); arguments go in the query
string as repeated `arg=`; failures come back as HTTP 4xx/5xx with a JSON body
`{"Message": str, "Code": int, "Type": "error"}` (go-ipfs-cmds). ipfshttpclient
is not used: it refuses every Kubo newer than 0.7 and is synchronous.

The node is trusted to *list* what it holds (pins, directory entries), never to
vouch for bytes: every block it hands over, from `block/get` or inside a
`dag/export` CAR, is hashed against its CID before anything reads it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from agent.ipfs.blocks import PrefetchingSession, Provenance, open_session
from agent.ipfs.car import CarReader
from agent.ipfs.cid import CID, block_key, cid_text
from agent.ipfs.errors import BlockMismatch, BlockTooLarge, CarError, MissingBlock, TooLarge
from agent.ipfs.multihash import verify_block
from agent.sources.kubo_wire import (
    MAX_ERROR_BODY,
    PIN_TYPES,
    KuboError,
    KuboLink,
    KuboVersion,
    LinkType,
    error_from_body,
    kubo_base_url,
    stream_error,
)

__all__ = [
    "KuboBlockSource",
    "KuboClient",
    "KuboError",
    "KuboLink",
    "KuboVersion",
    "LinkType",
    "kubo_base_url",
]


class _KuboStream:
    """The response body as a ByteStream for CarReader, with transport errors named as Kubo's."""

    def __init__(self, resp: aiohttp.ClientResponse, client: KuboClient, command: str) -> None:
        self._content = resp.content
        self._client = client
        self._command = command

    async def readexactly(self, n: int) -> bytes:
        try:
            return await self._content.readexactly(n)
        except asyncio.IncompleteReadError:
            raise  # a clean or truncated end: CarReader tells which
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._client._transport_error(self._command, exc) from exc


class KuboClient:
    """One Kubo node. `offline=True` (the default) asks the node to answer from its own
    blockstore only, so a missing block is an immediate error rather than a network hunt."""

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        *,
        timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        max_json_bytes: int = 64 * 1024 * 1024,
        max_block_bytes: int = 2 * 1024 * 1024,
        max_pins: int = 10_000_000,
        max_line_bytes: int = 1024 * 1024,
        offline: bool = True,
        auth: aiohttp.BasicAuth | None = None,
    ) -> None:
        self.url = kubo_base_url(url)
        self.label = f"kubo:{self.url}"
        self._session = session
        self._timeout_s = timeout_s
        # Whole-call limit for small answers; streams only bound the gap between reads.
        self._call_timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=timeout_s)
        self.max_json_bytes = max_json_bytes
        self.max_block_bytes = max_block_bytes
        self.max_pins = max_pins
        self.max_line_bytes = max_line_bytes
        self.offline = offline
        self._auth = auth

    def __repr__(self) -> str:
        return f"KuboClient({self.url!r})"

    # -- transport --

    def _transport_error(self, command: str, exc: BaseException) -> KuboError:
        if isinstance(exc, asyncio.TimeoutError):
            return KuboError(f"no answer within {self._timeout_s:g}s", url=self.url, command=command)
        return KuboError(f"{type(exc).__name__}: {exc}".rstrip(": "), url=self.url, command=command)

    def _params(self, args: list[str], options: Mapping[str, str | bool | int]) -> list[tuple[str, str]]:
        params = [("arg", a) for a in args]
        for key, value in options.items():
            params.append((key, ("true" if value else "false") if isinstance(value, bool) else str(value)))
        return params

    @asynccontextmanager
    async def _post(
        self,
        command: str,
        args: list[str] | None = None,
        options: Mapping[str, str | bool | int] | None = None,
        *,
        streaming: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST /api/v0/<command>; yields a 200 response, raises KuboError for anything else."""
        try:
            resp = await self._session.post(
                f"{self.url}/api/v0/{command}",
                params=self._params(args or [], options or {}),
                timeout=self._stream_timeout if streaming else self._call_timeout,
                allow_redirects=False,  # the RPC API never redirects; following one would leave the node
                auth=self._auth,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(command, exc) from exc
        try:
            if resp.status != 200:
                try:
                    body = await resp.content.read(MAX_ERROR_BODY)
                except (TimeoutError, aiohttp.ClientError):
                    body = b""
                message, code = error_from_body(resp.status, body)
                raise KuboError(message, code, status=resp.status, url=self.url, command=command)
            yield resp
        finally:
            resp.close()

    async def _read_limited(self, resp: aiohttp.ClientResponse, command: str, limit: int, what: str) -> bytes:
        declared = resp.content_length
        if declared is not None and declared > limit:
            raise TooLarge(f"{self.label} {command}: {what} of {declared} bytes exceeds the limit of {limit}")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in resp.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"{self.label} {command}: {what} exceeds the limit of {limit} bytes")
                chunks.append(chunk)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(command, exc) from exc
        return b"".join(chunks)

    async def _json(self, command: str, args: list[str] | None = None, **options: str | bool | int) -> Any:
        async with self._post(command, args, options) as resp:
            body = await self._read_limited(resp, command, self.max_json_bytes, "JSON answer")
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise KuboError(f"answer is not JSON: {exc}", url=self.url, command=command) from exc
        error = stream_error(value)
        if error is not None:
            raise KuboError(error[0], error[1], status=200, url=self.url, command=command)
        return value

    async def _ndjson(self, resp: aiohttp.ClientResponse, command: str) -> AsyncIterator[Any]:
        """Values of a newline-delimited JSON stream, read with bounded line length."""
        buffer = bytearray()

        def decode(line: bytes) -> Any:
            try:
                value = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise KuboError(f"malformed stream line: {exc}", url=self.url, command=command) from exc
            error = stream_error(value)
            if error is not None:  # the node failed after it had started answering
                raise KuboError(error[0], error[1], status=200, url=self.url, command=command)
            return value

        try:
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while True:
                    end = buffer.find(b"\n")
                    if end < 0:
                        break
                    line = bytes(buffer[:end]).strip()
                    del buffer[: end + 1]
                    if line:
                        yield decode(line)
                if len(buffer) > self.max_line_bytes:
                    raise TooLarge(f"{self.label} {command}: a stream line exceeds {self.max_line_bytes} bytes")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(command, exc) from exc
        tail = bytes(buffer).strip()
        if tail:
            yield decode(tail)

    def _offline(self) -> dict[str, bool]:
        return {"offline": True} if self.offline else {}

    # -- commands --

    async def version(self) -> KuboVersion:
        value = await self._json("version")
        if not isinstance(value, dict) or not isinstance(value.get("Version"), str):
            raise KuboError("version answer has no Version", url=self.url, command="version")
        return KuboVersion(
            version=value["Version"],
            commit=str(value.get("Commit") or ""),
            repo=str(value.get("Repo") or ""),
            system=str(value.get("System") or ""),
            golang=str(value.get("Golang") or ""),
        )

    async def iter_pins(self, type: str = "recursive") -> AsyncIterator[tuple[str, str]]:
        """(cid, pin type) as the node discovers them: `pin/ls?stream=true` NDJSON
        lines `{"Cid": ..., "Type": ...}`, so a pin set of millions never sits in one
        JSON document."""
        if type not in PIN_TYPES:
            raise ValueError(f"pin type {type!r} is not one of {', '.join(PIN_TYPES)}")
        async with self._post("pin/ls", None, {"type": type, "stream": True}, streaming=True) as resp:
            async for value in self._ndjson(resp, "pin/ls"):
                yield self._pin_entry(value)

    def _pin_entry(self, value: Any) -> tuple[str, str]:
        if not isinstance(value, dict) or not isinstance(value.get("Cid"), str):
            raise KuboError(f"pin/ls stream line is not a pin: {str(value)[:200]}", url=self.url, command="pin/ls")
        return value["Cid"], str(value.get("Type") or "")

    async def pin_ls(self, type: str = "recursive", *, stream: bool = True) -> dict[str, str]:
        """Every pin of `type`: {cid: pin type}. Streams by default (see iter_pins);
        `stream=False` reads the one-document form `{"Keys": {cid: {"Type": ...}}}`."""
        if type not in PIN_TYPES:
            raise ValueError(f"pin type {type!r} is not one of {', '.join(PIN_TYPES)}")
        pins: dict[str, str] = {}
        if stream:
            async for cid, pin_type in self.iter_pins(type):
                pins[cid] = pin_type
                if len(pins) > self.max_pins:
                    raise TooLarge(f"{self.label} holds more than {self.max_pins} {type} pins")
            return pins
        value = await self._json("pin/ls", type=type)
        keys = value.get("Keys") if isinstance(value, dict) else None
        if not isinstance(keys, dict):
            raise KuboError("pin/ls answer has no Keys", url=self.url, command="pin/ls")
        if len(keys) > self.max_pins:
            raise TooLarge(f"{self.label} holds more than {self.max_pins} {type} pins")
        for cid, info in keys.items():
            pins[cid] = str(info.get("Type") or "") if isinstance(info, dict) else ""
        return pins

    async def ls(self, cid: CID | str) -> list[KuboLink]:
        """Entries of a UnixFS directory (names, CIDs, sizes, types) as the node lists them."""
        arg = cid_text(cid) if isinstance(cid, CID) else cid
        value = await self._json("ls", [arg], **self._offline())
        objects = value.get("Objects") if isinstance(value, dict) else None
        if not isinstance(objects, list):
            raise KuboError("ls answer has no Objects", url=self.url, command="ls")
        links: list[KuboLink] = []
        for obj in objects:
            for raw in (obj.get("Links") or []) if isinstance(obj, dict) else []:
                if not isinstance(raw, dict) or not isinstance(raw.get("Hash"), str):
                    raise KuboError(f"ls link without a Hash: {str(raw)[:200]}", url=self.url, command="ls")
                size, kind = raw.get("Size", 0), raw.get("Type", 0)
                links.append(
                    KuboLink(
                        name=str(raw.get("Name") or ""),
                        hash=raw["Hash"],
                        size=size if isinstance(size, int) else 0,
                        type=kind if isinstance(kind, int) else 0,
                        target=str(raw.get("Target") or ""),
                    )
                )
        return links

    async def name_resolve(self, name: str, *, recursive: bool = True) -> str:
        """The path an IPNS name points at (`/ipfs/<cid>[/...]`), as the node resolved it."""
        value = await self._json("name/resolve", [name], recursive=recursive)
        path = value.get("Path") if isinstance(value, dict) else None
        if not isinstance(path, str):
            raise KuboError("name/resolve answer has no Path", url=self.url, command="name/resolve")
        return path

    async def block_get(self, cid: CID) -> bytes:
        """One block from the node's blockstore, verified against `cid` (BlockMismatch if not)."""
        async with self._post("block/get", [cid_text(cid)], self._offline()) as resp:
            declared = resp.content_length
            if declared is not None and declared > self.max_block_bytes:
                raise BlockTooLarge(
                    f"{self.label} offers {declared} bytes for block {cid}; limit {self.max_block_bytes}"
                )
            try:
                data = await self._read_limited(resp, "block/get", self.max_block_bytes, f"block {cid}")
            except TooLarge as exc:
                raise BlockTooLarge(str(exc)) from None
        verify_block(cid, data, self.label)
        return data

    @asynccontextmanager
    async def dag_export(self, cid: CID) -> AsyncIterator[CarReader]:
        """The whole DAG under `cid` as a CARv1 stream (`dag/export`); every block the
        reader yields has been checked against its CID. Iterate it inside the block:
        the response closes on exit."""
        options = {"progress": False, **self._offline()}
        async with self._post("dag/export", [cid_text(cid)], options, streaming=True) as resp:
            reader = CarReader(
                _KuboStream(resp, self, "dag/export"), max_block_bytes=self.max_block_bytes, source=self.label
            )
            header = await reader.read_header()
            if not any(block_key(root) == block_key(cid) for root in header.roots):
                raise CarError(f"{self.label} dag/export of {cid} names roots {[str(r) for r in header.roots]}")
            yield reader

    def block_source(self, *, prefetch: int = 8) -> KuboBlockSource:
        return KuboBlockSource(self, prefetch=prefetch)


class KuboBlockSource:
    """The node's blockstore as a BlockSource for the DAG walker: `block/get` per block,
    each verified, with a bounded read-ahead over the sibling leaves of a file."""

    def __init__(self, client: KuboClient, *, prefetch: int = 8) -> None:
        self.client = client
        self.label = client.label
        self.prefetch_window = max(0, prefetch)

    async def fetch(self, cid: CID, provenance: Provenance) -> bytes:
        try:
            data = await self.client.block_get(cid)
        except BlockMismatch:
            # The local node's store is corrupt (or it is not a Kubo): report, never believe.
            if self.label not in provenance.lied:
                provenance.lied.append(self.label)
            raise
        except KuboError as exc:
            raise MissingBlock(str(cid), f"{self.label}: {exc.message}") from exc
        provenance.served(self.label)
        return data

    async def open(self, cid: CID) -> tuple[bytes, PrefetchingSession]:
        return await open_session(PrefetchingSession(self.fetch, self.prefetch_window), cid)
