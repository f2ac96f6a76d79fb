"""The CAR reader: every fixture made by Kubo/boxo reads and verifies; broken CARs fail precisely."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from multiformats import CID, multihash

from agent.ipfs.car import BytesStream, CarReader, read_car_file
from agent.ipfs.cid import parse_cid
from agent.ipfs.errors import BlockMismatch, BlockTooLarge, CarError
from agent.ipfs.varint import encode_uvarint
from tests.conftest import IPFS_FIXTURES
from tests.support.gateway import car_header, car_section

ALL_CARS = sorted(IPFS_FIXTURES.rglob("*.car"))


def test_fixture_set_is_present() -> None:
    assert len(ALL_CARS) >= 30


@pytest.mark.parametrize("path", ALL_CARS, ids=lambda p: str(p.relative_to(IPFS_FIXTURES)))
async def test_every_fixture_car_reads_and_every_block_verifies(path: Path) -> None:
    header, blocks = await read_car_file(path)
    assert header.roots, "every fixture names a root"
    assert blocks
    # read_car_file verifies each block against its CID; a mismatch would have raised.
    assert len({b.key for b in blocks}) <= len(blocks)


async def test_carv2_is_unwrapped_to_its_v1_payload() -> None:
    path = IPFS_FIXTURES / "extras" / "kubo-dag-stat-carv2.car"
    assert path.read_bytes()[:11] == bytes.fromhex("0aa16776657273696f6e02")
    header, blocks = await read_car_file(path)
    assert header.version == 1
    assert str(header.roots[0]) == "zdpuAxMxKXB7Xs1vYVPkHdo67AxZY1VqqrgA3AuHdvdbUieTM"
    assert len(blocks) == 4


async def test_sha2_512_blocks_verify() -> None:
    _, blocks = await read_car_file(IPFS_FIXTURES / "gateway-conformance" / "subdomain_gateway" / "fixtures.car")
    assert any(b.cid.hashfun.name == "sha2-512" for b in blocks)


def _car(*sections: bytes, root: str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku") -> bytes:
    return car_header([parse_cid(root)]) + b"".join(sections)


async def _read_all(data: bytes, **kw: int) -> list[bytes]:
    reader = CarReader(BytesStream(data), **kw)  # type: ignore[arg-type]
    return [b.data async for b in reader]


def _raw_cid(data: bytes) -> CID:
    return CID("base32", 1, "raw", multihash.digest(data, "sha2-256"))


HELLO = _raw_cid(b"hello world\n")


async def test_a_block_whose_bytes_do_not_match_its_cid_is_rejected() -> None:
    with pytest.raises(BlockMismatch, match="does not match"):
        await _read_all(_car(car_section(HELLO, b"hello world")))  # missing newline: wrong bytes
    assert await _read_all(_car(car_section(HELLO, b"hello world\n"))) == [b"hello world\n"]


async def test_truncated_car_names_the_section_and_the_shortfall() -> None:
    whole = _car(car_section(HELLO, b"hello world\n"))
    with pytest.raises(CarError, match=r"truncated CAR: section 1 declares \d+ bytes, \d+ arrived"):
        await _read_all(whole[:-5])


async def test_truncated_header_is_reported() -> None:
    whole = _car()
    with pytest.raises(CarError, match="truncated CAR"):
        await _read_all(whole[:10])


async def test_empty_input_is_not_a_car() -> None:
    with pytest.raises(CarError, match="empty CAR"):
        await _read_all(b"")


async def test_garbage_header_is_reported() -> None:
    with pytest.raises(CarError, match="malformed CAR header"):
        await _read_all(b"\x05hello")


async def test_oversized_block_is_refused_before_it_is_read() -> None:
    big = parse_cid("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
    header = _car()
    # Declare a 3 MiB section but send nothing: the reader must refuse on the length alone.
    declared = 3 * 1024 * 1024
    prefix = bytearray()
    n = declared
    while True:
        b = n & 0x7F
        n >>= 7
        prefix.append(b | (0x80 if n else 0))
        if not n:
            break
    with pytest.raises(BlockTooLarge, match="declares 3145728 bytes"):
        await _read_all(header + bytes(prefix) + bytes(big))


async def test_reader_is_streaming_and_memory_does_not_grow_with_the_car() -> None:
    """A 64 MiB CAR of identical-size blocks is read while holding one block at a time."""
    import tracemalloc

    block = b"\xab" * (256 * 1024)
    cid = _raw_cid(block)
    section = car_section(cid, block)
    count = 256

    class Repeating:
        def __init__(self) -> None:
            self.buf = car_header([cid])
            self.sent = 0

        async def readexactly(self, n: int) -> bytes:
            while len(self.buf) < n and self.sent < count:
                self.buf += section
                self.sent += 1
            if len(self.buf) < n:
                partial, self.buf = self.buf, b""
                raise asyncio.IncompleteReadError(partial, n)
            out, self.buf = self.buf[:n], self.buf[n:]
            return out

    tracemalloc.start()
    reader = CarReader(Repeating())
    total = 0
    async for b in reader:
        total += len(b.data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == count * len(block)
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while reading {total}"


@pytest.mark.parametrize(("digest", "reason"), [(b"", "0 bytes is too short"), (b"\xb9", "1 bytes is too short")])
async def test_a_section_whose_cid_has_a_short_digest_is_an_error_never_a_verified_block(
    digest: bytes, reason: str
) -> None:
    short = CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256"))
    with pytest.raises(CarError, match=f"section 1: .*{reason}"):
        await _read_all(_car(car_section(short, b"any bytes at all")))
    with pytest.raises(CarError, match=f"root .*{reason}"):
        await _read_all(car_header([short]))


async def test_a_section_with_a_non_cryptographic_hash_is_refused_as_cid_text_is() -> None:
    murmur = bytes.fromhex("01552208") + b"\x01" * 8  # CIDv1, raw, murmur3-x64-64
    section = encode_uvarint(len(murmur) + 3) + murmur + b"abc"
    with pytest.raises(CarError, match=r"0x22 .*murmur3.* cannot|0x22 .*not one whose blocks can be verified"):
        await _read_all(_car(section))
