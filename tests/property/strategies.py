"""Hypothesis strategies for hostile inputs: random bytes, and valid
structures (CIDs, CARs, dag-pb nodes, documents, records, list files) that
are then mutated, so the fuzzing reaches past the first length check."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import dag_cbor
from dag_cbor.encoding import CBOREncodingError
from hypothesis import strategies as st
from multiformats import CID, multihash

from agent.ipfs.car import CARV2_PRAGMA, encode_car_header, encode_car_section
from agent.ipfs.dagpb import UnixFSType, encode_pbnode, encode_unixfs

# ------------------------------------------------------------ mutation ----


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes], max_ops: int = 4) -> bytes:
    """`base` with a few byte-level edits: flips, truncation, insertion,
    deletion, duplication of a span."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, max_ops))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "duplicate"]))
        at = draw(st.integers(0, len(data))) if data else 0
        if op == "flip" and data:
            i = min(at, len(data) - 1)
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[min(at, len(data) - 1)] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "duplicate" and data:
            end = min(len(data), at + draw(st.integers(1, 64)))
            data[at:at] = data[at:end]
    return bytes(data)


@st.composite
def mutated_text(draw: st.DrawFn, base: st.SearchStrategy[str], alphabet: str | None = None) -> str:
    text = list(draw(base))
    pool = st.sampled_from(list(alphabet)) if alphabet else st.characters()
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(text)))
        if op == "replace" and text:
            text[min(at, len(text) - 1)] = draw(pool)
        elif op == "insert":
            text.insert(at, draw(pool))
        elif op == "delete" and text:
            del text[min(at, len(text) - 1)]
        elif op == "truncate":
            del text[at:]
    return "".join(text)


# ----------------------------------------------------------------- CIDs ----

CODECS = ["raw", "dag-pb", "dag-cbor", "dag-json", "libp2p-key"]
HASHES = ["sha2-256", "sha2-512", "blake2b-256", "sha3-256", "identity"]
BASES = ["base32", "base58btc", "base36", "base16", "base64url", "base32upper"]


@st.composite
def cids(draw: st.DrawFn, codecs: list[str] | None = None) -> CID:
    data = draw(st.binary(max_size=40))
    codec = draw(st.sampled_from(codecs or CODECS))
    hashfun = draw(st.sampled_from(HASHES))
    if draw(st.booleans()) and codec == "dag-pb":
        return CID("base58btc", 0, "dag-pb", multihash.digest(data, "sha2-256"))
    return CID("base32", 1, codec, multihash.digest(data, hashfun))


@st.composite
def cid_strings(draw: st.DrawFn) -> str:
    cid = draw(cids())
    if cid.version == 0:
        return str(cid)
    return str(cid.encode(draw(st.sampled_from(BASES))))


def cid_of(data: bytes, codec: str = "dag-pb") -> CID:
    return CID("base32", 1, codec, multihash.digest(data, "sha2-256"))


# ------------------------------------------------------- dag-pb / UnixFS ----

link_names = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", ".", "..", "../x", "a/b", "/", "\x00", "a.jpg", "con", "x" * 300]),
)


@st.composite
def unixfs_data(draw: st.DrawFn) -> bytes:
    type_ = draw(st.sampled_from(list(UnixFSType)))
    blocksizes = draw(st.lists(st.integers(0, 1 << 20), max_size=6))
    data = draw(st.one_of(st.none(), st.binary(max_size=64)))
    filesize = draw(st.one_of(st.none(), st.integers(0, 1 << 40)))
    kwargs: dict[str, Any] = {"data": data, "filesize": filesize, "blocksizes": blocksizes}
    if type_ == UnixFSType.HAMT_SHARD:
        kwargs["hash_type"] = draw(st.sampled_from([0x22, 0x12, 0]))
        kwargs["fanout"] = draw(st.sampled_from([256, 16, 3, 0, 2048]))
    try:
        return encode_unixfs(type_, **kwargs)
    except TypeError:  # an encoder without the HAMT keywords
        return encode_unixfs(type_, data=data, filesize=filesize, blocksizes=blocksizes)


@st.composite
def pbnodes(draw: st.DrawFn) -> bytes:
    links = draw(st.lists(st.tuples(cids(), link_names, st.integers(0, 1 << 40)), max_size=5))
    data = draw(st.one_of(st.none(), unixfs_data(), st.binary(max_size=32)))
    return encode_pbnode(links, data)


# ------------------------------------------------------------ documents ----

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 64), 1 << 64),
    st.text(max_size=8),
    st.floats(allow_nan=False, allow_infinity=False),
)
document_keys = st.one_of(st.text(max_size=8), link_names)


def ipld_values() -> st.SearchStrategy[Any]:
    leaves = st.one_of(json_scalars, st.binary(max_size=16), cids())
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(document_keys, children, max_size=4)
        ),
        max_leaves=20,
    )


def _json_ready(value: Any) -> Any:
    if isinstance(value, CID):
        return {"/": str(value)}
    if isinstance(value, bytes):
        return {"/": {"bytes": value.hex()}}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return value


@st.composite
def dag_cbor_blocks(draw: st.DrawFn) -> bytes:
    value = draw(ipld_values())
    try:
        return dag_cbor.encode(value)
    except CBOREncodingError:  # integers past 64 bits dag-cbor refuses: fall back to a map of links
        return dag_cbor.encode({"a": draw(cids())})


@st.composite
def dag_json_blocks(draw: st.DrawFn) -> bytes:
    return json.dumps(_json_ready(draw(ipld_values()))).encode()


# ----------------------------------------------------------------- CARs ----


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[CID], list[tuple[CID, bytes]]]:
    """A small DAG of raw leaves, dag-pb files and directories and dag-cbor
    documents, with its root(s) and blocks."""
    blocks: list[tuple[CID, bytes]] = []
    made: list[tuple[CID, int]] = []
    for payload in draw(st.lists(st.binary(max_size=48), min_size=1, max_size=4)):
        cid = cid_of(payload, "raw")
        blocks.append((cid, payload))
        made.append((cid, len(payload)))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["file", "dir", "cbor", "hamt"]))
        children = draw(st.lists(st.sampled_from(made), min_size=1, max_size=3))
        if kind == "file":
            node = encode_pbnode(
                [(c, "", n) for c, n in children],
                encode_unixfs(
                    UnixFSType.FILE, filesize=sum(n for _, n in children), blocksizes=[n for _, n in children]
                ),
            )
            codec = "dag-pb"
        elif kind == "dir":
            names = draw(st.lists(link_names, min_size=len(children), max_size=len(children)))
            node = encode_pbnode(
                sorted(((c, name, n) for (c, n), name in zip(children, names, strict=True)), key=lambda link: link[1]),
                encode_unixfs(UnixFSType.DIRECTORY),
            )
            codec = "dag-pb"
        elif kind == "hamt":
            prefixes = draw(
                st.lists(st.sampled_from(["00", "0A", "FF", "1"]), min_size=len(children), max_size=len(children))
            )
            names = [p + draw(link_names) for p in prefixes]
            data = encode_unixfs(UnixFSType.HAMT_SHARD, data=b"\x01", hash_type=0x22, fanout=256)
            node = encode_pbnode([(c, name, n) for (c, n), name in zip(children, names, strict=True)], data)
            codec = "dag-pb"
        else:
            node = dag_cbor.encode({draw(document_keys): c for c, _ in children})
            codec = "dag-cbor"
        cid = cid_of(node, codec)
        blocks.append((cid, node))
        made.append((cid, len(node) + sum(n for _, n in children)))
    roots = [made[-1][0], *draw(st.lists(st.sampled_from([c for c, _ in made]), max_size=1))]
    return roots, blocks


def car_v1(roots: list[CID], blocks: list[tuple[CID, bytes]]) -> bytes:
    return encode_car_header(roots) + b"".join(encode_car_section(c, d) for c, d in blocks)


def car_v2(payload: bytes, *, padding: int = 0) -> bytes:
    data_offset = len(CARV2_PRAGMA) + 40 + padding
    header = bytes(16) + struct.pack("<QQQ", data_offset, len(payload), 0)
    return CARV2_PRAGMA + header + bytes(padding) + payload


@st.composite
def car_bytes(draw: st.DrawFn) -> bytes:
    """Valid CARs (v1 or v2) of a generated DAG, then mutated."""
    roots, blocks = draw(dags())
    payload = car_v1(roots, blocks)
    data = car_v2(payload, padding=draw(st.integers(0, 8))) if draw(st.booleans()) else payload
    return draw(mutated(st.just(data)))


@st.composite
def car_with_mutated_root(draw: st.DrawFn) -> bytes:
    """A DAG whose root block was mutated and re-addressed: it verifies, so the
    walker (not the verifier) meets the malformed node."""
    _, blocks = draw(dags())
    cid, data = blocks[-1]
    bad = draw(mutated(st.just(data)))
    bad_cid = cid_of(bad, cid.codec.name)
    return car_v1([bad_cid], [*blocks[:-1], (bad_cid, bad)])


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
