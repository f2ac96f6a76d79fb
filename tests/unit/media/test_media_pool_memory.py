"""A worker's memory is bounded: a large image is hashed from a reduced copy,
and an item needing more than [media] max_worker_memory_bytes fails alone.

Peak memory is read inside the worker itself (/proc/self/status, VmHWM: the
resident high-water mark of that process), in a fresh pool per test."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from agent.media.errors import MediaTooLarge
from agent.media.limits import MediaLimits
from agent.media.pool import MediaHasher
from tests.conftest import MEDIA_FIXTURES
from tests.support.media import png_chunk

SMALL = MEDIA_FIXTURES / "pdq" / "bridge-mods" / "square-128x128.jpg"
SIDE = 7071  # 49,999,041 pixels: just under the default max_pixels of 50 MP
# Measured: 1.88 GB before images were reduced for hashing, 0.45 GB after.
PEAK_BOUND = 700 * 1024 * 1024


def gradient_png(side: int) -> bytes:
    """An 8-bit RGB PNG of side x side pixels (vertical ramps, bands every 64
    rows), compressed row by row: about 160 kB for 7071 x 7071, and the test
    never holds the pixels."""
    compressor = zlib.compressobj(9)
    parts = []
    for y in range(side):
        level = y * 255 // side
        parts.append(compressor.compress(b"\0" + bytes([level, 255 - level, (y // 64) % 2 * 255]) * side))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", b"".join(parts))
        + png_chunk(b"IEND", b"")
    )


def _status_kib(text: str, key: str) -> int:
    line = next(line for line in text.splitlines() if line.startswith(key + ":"))
    return int(line.split()[1])


async def _worker_status(hasher: MediaHasher) -> str:
    return await hasher.run(Path("/proc/self/status").read_text)


@pytest.fixture(scope="module")
def large_png() -> bytes:
    return gradient_png(SIDE)


async def test_an_image_just_under_max_pixels_is_hashed_under_a_stated_memory_bound(large_png: bytes) -> None:
    async with MediaHasher(MediaLimits(max_worker_memory_bytes=0), workers=1) as hasher:
        before = await _worker_status(hasher)
        result = await hasher.hash_image(large_png)
        after = await _worker_status(hasher)
        assert (await hasher.hash_image(SMALL)).signals[0].quality == 100  # the pool goes on
        assert hasher.rebuilds == 0
    peak = _status_kib(after, "VmHWM") * 1024
    assert _status_kib(before, "VmHWM") * 1024 < PEAK_BOUND  # the measure is of this item
    assert peak < PEAK_BOUND, f"worker peak RSS {peak / 2**20:.0f} MiB"
    assert (result.width, result.height) == (SIDE, SIDE)  # the image's own size, not the copy's
    assert result.pdq.quality is not None and result.pdq.quality >= 50


async def test_an_item_needing_more_than_the_worker_memory_limit_fails_alone(large_png: bytes) -> None:
    # The limit is set just above what a worker uses once it has hashed a small
    # image, so it is met on any machine, while decoding the large PNG alone
    # needs 200 MB (4 bytes a pixel).
    async with MediaHasher(MediaLimits(max_worker_memory_bytes=0), workers=1) as probe:
        await probe.hash_image(SMALL)
        settled = _status_kib(await _worker_status(probe), "VmSize") * 1024
    limit = settled + 64 * 1024 * 1024
    async with MediaHasher(MediaLimits(max_worker_memory_bytes=limit), workers=1) as hasher:
        await hasher.hash_image(SMALL)
        with pytest.raises(MediaTooLarge, match=rf"max_worker_memory_bytes = {limit}\)"):
            await hasher.hash_image(large_png)
        assert (await hasher.hash_image(SMALL)).signals[0].quality == 100
        assert _status_kib(await _worker_status(hasher), "VmPeak") * 1024 <= limit
