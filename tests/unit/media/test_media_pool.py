"""MediaHasher: hashing off the event loop, dispatch by type, and recovery from
bad items, hung workers and crashed workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import pytest

from agent.media.errors import (
    CorruptMedia,
    DecodeTimeout,
    EmptyContent,
    HashingFailed,
    MediaTooLarge,
    NoDecodableFrames,
    WorkerCrashed,
    WorkerStartTimeout,
)
from agent.media.image import image_signals
from agent.media.limits import MediaLimits
from agent.media.pool import MediaHasher
from agent.model.signals import SignalType
from tests.conftest import MEDIA_FIXTURES
from tests.support.media import bomb_png
from tests.support.processes import descendants, processes, wait_until_gone

MEDIA = MEDIA_FIXTURES
PHOTO = MEDIA / "pdq" / "bridge-mods" / "aaa-orig.jpg"
SMALL = MEDIA / "pdq" / "bridge-mods" / "square-128x128.jpg"
ORIGINAL_PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


async def test_images_hash_in_workers_from_bytes_or_path() -> None:
    async with MediaHasher(workers=2) as hasher:
        from_bytes, from_path = await asyncio.gather(hasher.hash_image(PHOTO.read_bytes()), hasher.hash_image(PHOTO))
    assert from_bytes == from_path == image_signals(PHOTO.read_bytes())
    assert from_bytes.pdq.value == ORIGINAL_PDQ


async def test_signals_for_dispatches_on_media_kind() -> None:
    async with MediaHasher(workers=2) as hasher:
        image = await hasher.signals_for(PHOTO.read_bytes(), "image/jpeg")
        video = await hasher.signals_for(MEDIA / "video" / "doorknob-hd-no-bar.mp4", "video/mp4")
        pdf = await hasher.signals_for(MEDIA / "docs" / "test_pdf_half.pdf", "application/pdf")
    assert image.kind == "image" and image.signals[0].type == SignalType.PDQ
    assert image.image is not None and image.signals == image.image.signals
    assert image.video_frames == ()
    assert video.kind == "video" and [f.frame for f in video.video_frames] == [0, 30, 60, 90]
    assert video.signals == () and not video.truncated
    assert pdf.kind == "document" and pdf.signals == () and pdf.video_frames == ()


async def test_event_loop_keeps_running_while_a_worker_decodes() -> None:
    async with MediaHasher(workers=1) as hasher:
        await hasher.hash_image(SMALL)  # worker started
        big = asyncio.create_task(hasher.hash_image(MEDIA / "pdq" / "exif-rotn-6.jpg"))
        ticks = 0
        while not big.done():
            ticks += 1
            await asyncio.sleep(0)
        result = await big
    # A 12-megapixel photo takes a worker a second or more; the loop kept turning meanwhile.
    assert ticks > 100
    assert result.width == 3024


@pytest.mark.parametrize(
    ("data", "media_type", "error", "message"),
    [
        (b"", "image/png", EmptyContent, "0 bytes"),
        (os.urandom(5000), "image/png", CorruptMedia, "not a decodable image"),
        (PHOTO.read_bytes()[:100_000], "image/jpeg", CorruptMedia, "truncated"),
        (
            (MEDIA / "video" / "chair-19-sd-bar.mp4").read_bytes()[:21514] + bytes(50_000),
            "video/mp4",
            NoDecodableFrames,
            "no decodable video frames",
        ),
    ],
)
async def test_bad_items_fail_alone_and_the_pool_carries_on(
    data: bytes, media_type: str, error: type[Exception], message: str
) -> None:
    async with MediaHasher(workers=1) as hasher:
        with pytest.raises(error, match=message):
            await hasher.signals_for(data, media_type)
        good = await hasher.signals_for(SMALL, "image/jpeg")
        assert good.signals[0].quality == 100
        assert hasher.rebuilds == 0


async def test_decompression_bomb_through_the_pool() -> None:
    async with MediaHasher(workers=1) as hasher:
        with pytest.raises(MediaTooLarge, match="PNG declares 30000x30000 = 900000000 pixels"):
            await hasher.hash_image(bomb_png(30_000))
        assert (await hasher.hash_image(PHOTO)).pdq.value == ORIGINAL_PDQ


async def test_hung_worker_is_killed_and_the_pool_rebuilt() -> None:
    # The items after the hung one are trivial (micro- to milliseconds against
    # the 1 s limit), and the limit counts from the moment a worker begins an
    # item, not from the new worker's start-up: a loaded machine slows both
    # down, but cannot make them time out.
    async with MediaHasher(MediaLimits(timeout_s=1.0), workers=1) as hasher:
        hung = await hasher.run(os.getpid)
        with pytest.raises(DecodeTimeout, match="longer than 1 s"):
            await hasher.run(time.sleep, 3600)
        assert hasher.rebuilds == 1
        assert await wait_until_gone(lambda: [p for p in processes() if p.pid == hung]) == []
        assert await hasher.run(os.getpid) != hung
        assert (await hasher.hash_image(SMALL)).signals[0].quality == 100
        assert hasher.rebuilds == 1


def _forkserver_children() -> list[int]:
    """Media workers of this test process: children of its forkserver."""
    mine = descendants(os.getpid())
    servers = {p.pid for p in mine if "multiprocessing.forkserver" in p.cmdline}
    return [p.pid for p in mine if p.ppid in servers]


async def _new_worker(known: set[int]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        fresh = set(_forkserver_children()) - known
        if fresh:
            return fresh.pop()
        await asyncio.sleep(0)
    raise AssertionError("no new media worker appeared")


async def test_a_slow_worker_start_does_not_time_out_the_next_item() -> None:
    """A new worker held up for three times the item timeout before it can even
    import its decoders (as on a machine whose cores are busy) still runs the
    item: the item's clock starts when the worker begins it."""
    limits = MediaLimits(timeout_s=1.0)
    async with MediaHasher(limits, workers=1) as hasher:
        hung = await hasher.run(os.getpid)
        with pytest.raises(DecodeTimeout):
            await hasher.run(time.sleep, 3600)  # the pool is rebuilt: the next item needs a new worker
        job = asyncio.create_task(hasher.run(os.getpid))
        worker = await _new_worker({hung})
        os.kill(worker, signal.SIGSTOP)
        resume = asyncio.get_running_loop().call_later(3 * limits.timeout_s, os.kill, worker, signal.SIGCONT)
        try:
            assert await job == worker
        finally:
            resume.cancel()
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGCONT)
        assert hasher.rebuilds == 1


async def test_a_worker_that_cannot_start_is_bounded_separately_and_replaced() -> None:
    limits = MediaLimits(timeout_s=30.0, worker_start_timeout_s=1.0)
    async with MediaHasher(limits, workers=1) as hasher:
        job = asyncio.create_task(hasher.run(os.getpid))
        worker = await _new_worker(set())
        os.kill(worker, signal.SIGSTOP)  # never continued: it is killed by the pool
        with pytest.raises(WorkerStartTimeout, match=r"within 1 s \(\[media\] worker_start_timeout_s\)"):
            await job
        assert hasher.rebuilds == 1
        assert await hasher.run(os.getpid) != worker


async def test_crashing_worker_fails_only_its_own_item() -> None:
    async with MediaHasher(workers=2) as hasher:
        crash, innocent = await asyncio.gather(
            hasher.run(os._exit, 3), hasher.hash_image(PHOTO), return_exceptions=True
        )
        assert isinstance(crash, WorkerCrashed)
        assert "died" in str(crash)
        assert not isinstance(innocent, BaseException) and innocent.pdq.value == ORIGINAL_PDQ
        assert hasher.rebuilds >= 1
        assert (await hasher.hash_image(SMALL)).signals[0].quality == 100


async def test_unexpected_worker_errors_become_media_errors() -> None:
    async with MediaHasher(workers=1) as hasher:
        with pytest.raises(HashingFailed, match="FileNotFoundError"):
            await hasher.hash_image(MEDIA / "no-such-file.jpg")
