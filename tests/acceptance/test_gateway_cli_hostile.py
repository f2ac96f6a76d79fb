"""The real `dweb-agent scan` against CIDs and gateways a hostile party crafted (issue 9 items 2, 9).

A link whose CID breaks the rules CID text parsing enforces (a non-cryptographic
hash, a non-minimal varint, a non-IPLD codec, a short digest) is an item error
and exit 2, with a denylist loaded as without: exit 1 means "matched", and no
gateway or publisher may make a scan say that."""

from __future__ import annotations

import json
import resource
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from multiformats import CID, multihash

from agent.ipfs.varint import encode_uvarint
from tests.support.cli import run_cli
from tests.support.gateway import FixtureGateway, car_header, car_section

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
HELLO = b"hello world\n"
HELLO_CID = CID("base32", 1, "raw", multihash.digest(HELLO, "sha2-256"))
UNRELATED = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"  # a denylist rule matching nothing here
DIGEST = b"\x07" * 32
BAD_LINKS = {
    "murmur3": (
        bytes.fromhex("01552208") + b"\x07" * 8,
        "0x22 (murmur3-x64-64) is not one whose blocks can be verified",
    ),
    "non-minimal-codec": (b"\x01\xd5\x00\x12\x20" + DIGEST, "CID codec is not minimally encoded"),
    "non-ipld-codec": (b"\x01\x50\x12\x20" + DIGEST, "multicodec 0x50 (protobuf) is not an IPLD codec"),
    "empty-digest": (bytes.fromhex("01551200"), "digest of 0 bytes is too short"),
}


def _pb_bytes(field: int, data: bytes) -> bytes:
    return encode_uvarint(field << 3 | 2) + encode_uvarint(len(data)) + data


def directory(links: list[tuple[bytes, str, int]]) -> bytes:
    """A dag-pb UnixFS directory whose links carry raw CID bytes as given (the encoder in
    agent.ipfs.dagpb takes CID objects, and no library makes a murmur3 one)."""
    out = b""
    for raw_cid, name, size in links:
        out += _pb_bytes(
            2, _pb_bytes(1, raw_cid) + _pb_bytes(2, name.encode()) + encode_uvarint(3 << 3) + encode_uvarint(size)
        )
    return out + _pb_bytes(1, b"\x08\x01")  # Data: UnixFS Type=Directory


@pytest.mark.parametrize("kind", sorted(BAD_LINKS))
async def test_a_link_with_a_cid_text_parsing_refuses_is_an_item_error_and_exit_2(tmp_path: Path, kind: str) -> None:
    raw_link, reason = BAD_LINKS[kind]
    node = directory([(bytes(HELLO_CID), "hello.txt", len(HELLO)), (raw_link, "crafted", 8)])
    root = CID("base32", 1, "dag-pb", multihash.digest(node, "sha2-256"))
    car = tmp_path / "crafted.car"
    car.write_bytes(car_header([root]) + car_section(root, node) + car_section(HELLO_CID, HELLO))
    deny = tmp_path / "any.deny"
    deny.write_text(f"/ipfs/{UNRELATED}\n")
    result = await run_cli("scan", str(car), "--list", str(deny), "--format", "json", "--no-media")
    assert result.code == 2, (result.code, result.stderr[-2000:])
    report = json.loads(result.stdout)
    (item,) = report["items"]
    assert item["status"] == "error" and item["path"] == "" and item["cid"] == str(root)
    assert reason in item["error"] and "dag-pb link" in item["error"], item["error"]
    assert report["summary"]["findings"] == 0


async def test_a_flooding_gateway_is_named_in_the_report_and_the_scan_exits_2(make_gateway: MakeGateway) -> None:
    leaves = [bytes([i]) * 4096 for i in (1, 2)]
    leaf_cids = [CID("base32", 1, "raw", multihash.digest(d, "sha2-256")) for d in leaves]
    from tests.support.dagpb import pbnode, unixfs

    node = pbnode([(c, "", 4096) for c in leaf_cids], unixfs(2, filesize=8192, blocksizes=[4096, 4096]))
    root = CID("base32", 1, "dag-pb", multihash.digest(node, "sha2-256"))
    flood = await make_gateway(misbehave="endless-unneeded", car_bytes_cap=64 * 1024 * 1024)
    flood.add_blocks([(root, node), *zip(leaf_cids, leaves, strict=True)])
    env = {
        "DWEB_AGENT_LIMITS_MAX_BUFFERED_BYTES": str(256 * 1024),
        "DWEB_AGENT_LIMITS_MAX_UNREQUESTED_BYTES": str(2 * 1024 * 1024),
    }
    result = await run_cli("scan", f"ipfs://{root}", "--gateway", flood.url, "--format", "json", "--no-media", env=env)
    assert result.code == 2, result.stderr[-2000:]
    report = json.loads(result.stdout)
    (item,) = report["items"]
    assert item["status"] == "incomplete" and flood.url in item["error"]
    (gw,) = report["gateways"]
    assert gw["url"] == flood.url and "did not ask for" in gw["last_error"] and gw["trusted"] is False
    assert gw["bytes_received"] <= 2 * 1024 * 1024 + 64 * 1024
    # Peak RSS of any child this test process waited for (an upper bound for this one).
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    measured = f"{gw['bytes_received']} bytes read, children's peak RSS {peak_mib:.0f} MiB"
    print(f"flooding gateway via the CLI: {measured}")  # noqa: T201 -- the measured peak is this test's report (pytest -s)
    assert peak_mib < 512
