"""Every parser of untrusted bytes as a fuzz target: its input strategy, the
call, and the error types its documentation allows.

The property tests (test_property_*.py) run each target for the profile's
number of examples; bench/fuzz.py runs one for as long as asked. A target's
`allowed` errors come from the module's docstrings / errors.py; anything else
that escapes is a bug to report, never a reason to widen `allowed`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import strategies as st

from agent.ipfs.car import BytesStream, CarReader
from agent.ipfs.carfile import CarFileBlockSource
from agent.ipfs.cid import cid_from_prefix, cid_text, parse_cid
from agent.ipfs.dag import DagWalker
from agent.ipfs.dagpb import DAG_CBOR, DAG_JSON, decode_pbnode, decode_unixfs
from agent.ipfs.documents import decode_document, document_link_segments
from agent.ipfs.entries import EntryKind
from agent.ipfs.errors import DagError, InvalidCid, IpfsError, PathEscape
from agent.ipfs.paths import safe_join_all
from agent.lists.denylist import Denylist, parse_denylist
from agent.lists.detect import detect_format
from agent.lists.formats.plain import parse_plain
from agent.lists.formats.tcap import apply_tcap_page, parse_tcap_page
from agent.lists.formats.te_csv import parse_te_csv
from agent.lists.formats.vpdq_text import parse_vpdq_file
from agent.lists.limits import ParseLimits, TooLarge
from agent.lists.load import parse_list_bytes
from agent.lists.model import HashList
from agent.media.sniff import media_kind, sniff_media_type
from agent.model.signals import SignalType
from agent.model.target import TargetError
from agent.sources.ipns_keys import IpnsError, ipns_name_for_key, parse_ipns_name
from agent.sources.ipns_record import build_ipns_record, verify_ipns_record
from agent.sources.targets import parse_target
from tests.property import strategies as s
from tests.property.harness import MiB, bounded_call

# Small limits so that a generated input can cross them (TooLarge is documented).
LIST_LIMITS = ParseLimits(max_bytes=64 * 1024, max_line_length=2048, max_entries=500)


@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy[Any]
    call: Callable[[Any], None]
    allowed: tuple[type[BaseException], ...]
    doc: str
    max_memory: int = 64 * MiB

    def check(self, value: Any) -> BaseException | None:
        return bounded_call(lambda: self.call(value), self.allowed, max_memory=self.max_memory)


# ------------------------------------------------------------------ CAR ----


async def _read_car(data: bytes) -> None:
    reader = CarReader(BytesStream(data), max_block_bytes=64 * 1024, source="fuzz")
    await reader.read_header()
    async for _block in reader:
        pass


def car(data: bytes) -> None:
    asyncio.run(_read_car(data))


async def _walk_car_file(path: Path) -> None:
    source = await CarFileBlockSource.index(path, max_block_bytes=64 * 1024)
    try:
        for root in source.header.roots[:3]:
            walker = DagWalker(source, max_depth=32, max_items=200, max_nodes=2_000, max_file_blocks=200)
            async for entry in walker.walk(root):
                if not isinstance(entry.error, PathEscape):
                    # A refused link is reported under the name it gave, so the
                    # operator sees it; it is never followed.
                    _check_confined(entry.path)
                try:
                    if entry.kind is EntryKind.FILE:
                        async for _chunk in walker.read_file(entry, max_bytes=1 * MiB):
                            pass
                finally:
                    await entry.release()
    finally:
        source.close()


def _check_confined(path: str) -> None:
    # Every item path stays under the root, whatever the link names or
    # document keys said (issue 9 item 10: the same rule for every codec).
    parts = path.split("/") if path else []
    if path.startswith("/") or any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts):
        raise AssertionError(f"item path {path!r} is not confined to the root")


def carfile(data: bytes) -> None:
    fd, name = tempfile.mkstemp(suffix=".car", prefix="dweb-fuzz-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        asyncio.run(_walk_car_file(Path(name)))
    finally:
        os.unlink(name)


# --------------------------------------------------------------- dag-pb ----


def dagpb(data: bytes) -> None:
    node = decode_pbnode(data)
    if node.data is not None:
        decode_unixfs(node.data)


def unixfs(data: bytes) -> None:
    decode_unixfs(data)


# ------------------------------------------------- dag-cbor / dag-json ----


def document(value: tuple[int, bytes]) -> None:
    codec, block = value
    node = decode_document(codec, block)
    for segments, _cid in document_link_segments(node):
        with contextlib.suppress(DagError):  # PathEscape: confinement refuses the key, as documented
            safe_join_all("", segments)


# ----------------------------------------------------------------- CIDs ----


def cid_text_target(text: str) -> None:
    parse_cid(text)


def cid_bytes_target(data: bytes) -> None:
    cid, _used = cid_from_prefix(data)
    # One set of rules for CIDs from bytes and from text (issue 9 item 9):
    # what bytes give must parse back from its canonical text.
    again = parse_cid(cid_text(cid))
    if bytes(again) != bytes(cid):
        raise AssertionError(f"{cid_text(cid)} does not round-trip: {bytes(again).hex()} != {bytes(cid).hex()}")


# ----------------------------------------------------------------- IPNS ----

_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
_NAME = ipns_name_for_key(_KEY)
_NOW = datetime(2030, 1, 1, tzinfo=UTC)


@st.composite
def _ipns_records(draw: st.DrawFn) -> bytes:
    value = draw(st.one_of(st.just("/ipfs/bafkqaaa"), st.text(max_size=40)))
    validity = _NOW + timedelta(seconds=draw(st.integers(-(10**6), 10**9)))
    try:
        record = build_ipns_record(
            _KEY,
            value,
            draw(st.integers(0, 1 << 62)),
            validity,
            timedelta(seconds=draw(st.integers(0, 10**6))),
            v1_compatible=draw(st.booleans()),
            embed_public_key=draw(st.booleans()),
        )
    except ValueError:
        record = b""
    return draw(s.mutated(st.just(record)))


def ipns_record(record: bytes) -> None:
    verify_ipns_record(_NAME, record, now=_NOW)


def ipns_name(text: str) -> None:
    parse_ipns_name(text)


# ---------------------------------------------------------------- lists ----

_LIST_TOKENS = st.sampled_from(
    [
        "md5",
        "sha1",
        "sha256",
        "pdq",
        "phash",
        "vpdq",
        "colorhash",
        "signal_type",
        ",",
        ",,",
        " ",
        "\t",
        "\r",
        "\n",
        "\r\n",
        "\x00",
        "\ufeff",
        '"',
        "'",
        "#",
        "0x",
        "a" * 32,
        "f" * 64,
        "0" * 40,
        "zz",
        "/ipfs/",
        "/ipns/",
        "//",
        "!",
        "---",
        "version: 1",
        "name: x",
        "{",
        "}",
        "[",
        "]",
        ":",
        "1,100," + "ab" * 32 + ",0.5",
        "\u2028",
        "\x85",
        "é",
        "x" * 3000,
    ]
)
list_text = st.lists(_LIST_TOKENS, max_size=60).map("".join)
list_bytes = st.one_of(
    st.binary(max_size=2048),
    list_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    s.mutated(list_text.map(str.encode)),
)


def list_formats(data: bytes) -> None:
    parsers: tuple[Callable[[], object], ...] = (
        lambda: parse_plain(data, list_name="x", source="x.txt", default_type=SignalType.MD5, limits=LIST_LIMITS),
        lambda: parse_plain(data, list_name="x", source="x.txt", limits=LIST_LIMITS),
        lambda: parse_te_csv(data, list_name="x", source="x.csv", limits=LIST_LIMITS),
        lambda: parse_vpdq_file(data, list_name="x", source="x.txt", limits=LIST_LIMITS),
    )
    for parse in parsers:
        with contextlib.suppress(TooLarge):
            parse()


def list_detect_and_load(value: tuple[str, bytes]) -> None:
    name, data = value
    detect_format(name, data)
    parse_list_bytes(data, source=name, name="x", limits=LIST_LIMITS)


# ------------------------------------------------------------ denylists ----

_DENY_TOKENS = st.one_of(
    st.sampled_from(
        [
            "/ipfs/",
            "/ipns/",
            "/ipld/",
            "//",
            "!",
            "/",
            "*",
            "/*",
            "%",
            "%2A",
            "%zz",
            " ",
            "\t",
            "\n",
            "\r\n",
            "#",
            "---\n",
            "version: 1\n",
            "version: x\n",
            "hints:\n",
            "  a: b\n",
            "reason=x",
            "a:b",
            "example.com",
            "my--site-example",
            "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8",
            "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
            "QmbK7LDv5NNBvYQzNfm2eED17SNLt1yNMapcUhSuNLgkqz",
            "bafkqaaa",
            "d" * 64,
            "\x00",
            "\ufeff",
        ]
    ),
    s.cid_strings(),
)
deny_text = st.lists(_DENY_TOKENS, max_size=40).map("".join)


def denylist_parse(data: bytes) -> None:
    with contextlib.suppress(TooLarge):
        parse_denylist(data, source="x.deny", limits=LIST_LIMITS)


def denylist_check(value: tuple[str, list[str]]) -> None:
    rules_text, queries = value
    dl = Denylist(parse_denylist(rules_text, source="x.deny", limits=LIST_LIMITS).rules)
    for query in queries:
        head, _, tail = query.partition("/")
        checks: tuple[Callable[[], object], ...] = (
            partial(dl.check, query),
            partial(dl.check_cid, query.strip("/")),
            partial(dl.check_path, head, tail),
            partial(dl.check_ipns, head, tail),
        )
        for check in checks:
            with contextlib.suppress(ValueError):  # documented: not a CID / not a content path
                check()


# ----------------------------------------------------------------- TCAP ----

_TCAP_KEYS = st.sampled_from(
    [
        "count",
        "next",
        "checkpoint",
        "results",
        "id",
        "hash_digest",
        "algorithm",
        "ideology",
        "deleted",
        "file_type",
        "created_on",
        "updated_on",
        "x",
    ]
)
_TCAP_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    st.floats(),
    st.sampled_from(["PDQ", "MD5", "SHA256", "pdq", "", "f" * 64, "a" * 32]),
    st.text(max_size=10),
)
_json_values = st.recursive(
    _TCAP_VALUES,
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(_TCAP_KEYS, c, max_size=6)),
    max_leaves=30,
)


def _tcap_json(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


tcap_pages = st.one_of(
    st.binary(max_size=512),
    st.fixed_dictionaries(
        {"results": st.lists(st.dictionaries(_TCAP_KEYS, _json_values, max_size=8), max_size=6)},
        optional={"count": _json_values, "next": _json_values, "checkpoint": _json_values},
    ).map(_tcap_json),
    s.mutated(_json_values.map(_tcap_json)),
    st.integers(1, 5000).map(lambda n: b"[" * n),  # nesting
)


def tcap(data: bytes) -> None:
    try:
        page = parse_tcap_page(data, list_name="tcap", source="p.json", limits=LIST_LIMITS)
    except TooLarge:
        return
    listed = apply_tcap_page(HashList("tcap"), page)
    apply_tcap_page(listed, page)


# ---------------------------------------------------------------- media ----

_MAGIC = st.sampled_from(
    [
        b"\xff\xd8\xff",
        b"\x89PNG\r\n\x1a\n",
        b"GIF89a",
        b"RIFF\x00\x00\x00\x00WEBP",
        b"BM",
        b"II*\x00",
        b"MM\x00*",
        b"\x00\x00\x00\x18ftyp",
        b"\x00\x00\x00\x00moov",
        b"\x1aE\xdf\xa3",
        b"RIFF\x00\x00\x00\x00AVI ",
        b"%PDF-",
        b"PK\x03\x04",
        b"\xef\xbb\xbf",
        b"\xff\xfe",
        b"\xfe\xff",
        b"",
    ]
)
sniff_heads = st.one_of(
    st.binary(max_size=5000),
    st.tuples(_MAGIC, st.binary(max_size=64)).map(lambda t: t[0] + t[1]),
    s.mutated(st.tuples(_MAGIC, st.binary(max_size=32)).map(lambda t: t[0] + t[1])),
)


def sniff(head: bytes) -> None:
    mime = sniff_media_type(head)
    media_kind(mime)


# -------------------------------------------------------------- targets ----

_TARGET_TOKENS = st.one_of(
    st.sampled_from(
        [
            "ipfs://",
            "ipns://",
            "/ipfs/",
            "/ipns/",
            "http://",
            "https://",
            "[",
            "]",
            "::1",
            "[::1",
            ".ipfs.",
            "example",
            ":",
            ":99999",
            ":0",
            ":-1",
            "/",
            "..",
            "~",
            "~nosuchuser",
            ".car",
            "?",
            "#",
            "%",
            "%2e%2e",
            "@",
            " ",
            "\x00",
            "bafkqaaa",
            "x" * 300,
            "\\",
        ]
    ),
    s.cid_strings(),
)
target_strings = st.one_of(st.text(max_size=60), st.lists(_TARGET_TOKENS, max_size=10).map("".join))


def target(text: str) -> None:
    parse_target(text)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target(
            "car",
            st.one_of(st.binary(max_size=1024), s.car_bytes()),
            car,
            (IpfsError,),
            "CarReader (v1/v2) over in-memory bytes; IpfsError subclasses only (agent.ipfs.errors)",
        ),
        Target(
            "carfile",
            st.one_of(s.car_bytes(), s.car_with_mutated_root()),
            carfile,
            (IpfsError,),
            "CarFileBlockSource.index + DagWalker.walk/read_file of every root; IpfsError only",
        ),
        Target(
            "dagpb",
            st.one_of(st.binary(max_size=512), s.mutated(s.pbnodes())),
            dagpb,
            (DagError,),
            "decode_pbnode + decode_unixfs; DagError only",
        ),
        Target(
            "unixfs",
            st.one_of(st.binary(max_size=256), s.mutated(s.unixfs_data())),
            unixfs,
            (DagError,),
            "decode_unixfs; DagError only",
        ),
        Target(
            "document",
            st.one_of(
                st.tuples(st.sampled_from([DAG_CBOR, DAG_JSON]), st.binary(max_size=512)),
                st.tuples(st.just(DAG_CBOR), s.mutated(s.dag_cbor_blocks())),
                st.tuples(st.just(DAG_JSON), s.mutated(s.dag_json_blocks())),
            ),
            document,
            (DagError,),
            "decode_document + document_link_segments + safe_join_all; DagError only",
        ),
        Target(
            "cid-text",
            st.one_of(st.text(max_size=120), s.mutated_text(s.cid_strings())),
            cid_text_target,
            (InvalidCid,),
            "parse_cid; InvalidCid only",
        ),
        Target(
            "cid-bytes",
            st.one_of(st.binary(max_size=80), s.mutated(s.cids().map(bytes))),
            cid_bytes_target,
            (InvalidCid,),
            "cid_from_prefix, and its result parses back from text; InvalidCid only",
        ),
        Target(
            "ipns-record",
            st.one_of(st.binary(max_size=512), _ipns_records()),
            ipns_record,
            (IpnsError,),
            "verify_ipns_record; IpnsError subclasses only",
        ),
        Target(
            "ipns-name",
            st.one_of(st.text(max_size=80), s.mutated_text(st.just(_NAME.text))),
            ipns_name,
            (IpnsError,),
            "parse_ipns_name; InvalidName (IpnsError) only",
        ),
        Target("list-formats", list_bytes, list_formats, (), "plain, TE CSV, vPDQ parsers: problems, never errors"),
        Target(
            "list-load",
            st.tuples(st.sampled_from(["x.txt", "x.csv", "x.json", "x.deny", "x", "x.TXT"]), list_bytes),
            list_detect_and_load,
            (),
            "detect_format + parse_list_bytes: problems, never errors",
        ),
        Target(
            "denylist-parse",
            st.one_of(st.binary(max_size=1024), deny_text.map(str.encode), s.mutated(deny_text.map(str.encode))),
            denylist_parse,
            (),
            "parse_denylist: problems, never errors (TooLarge over max_bytes)",
        ),
        Target(
            "denylist-check",
            st.tuples(deny_text, st.lists(st.one_of(deny_text, st.text(max_size=30)), max_size=4)),
            denylist_check,
            (),
            "Denylist.check/check_cid/check_path/check_ipns: ValueError only",
        ),
        Target("tcap", tcap_pages, tcap, (), "parse_tcap_page + apply_tcap_page: problems, never errors"),
        Target("sniff", sniff_heads, sniff, (), "sniff_media_type + media_kind: never raise"),
        Target("target", target_strings, target, (TargetError,), "parse_target: TargetError only"),
    ]
}
