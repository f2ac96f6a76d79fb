"""A hurried stop cancels a poll while the media pool is still starting its job, then
closes the pool (killing the worker): nothing may be left behind that asyncio reports as
"Future exception was never retrieved: BrokenProcessPool" after agent.stopped."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import pytest

from agent.pipeline import media_hasher
from tests.conftest import MEDIA_FIXTURES
from tests.support.agent import settings_for

IMAGE = MEDIA_FIXTURES / "pdq" / "bridge-mods" / "aaa-orig.jpg"


async def test_a_media_job_cancelled_before_its_worker_began_leaves_no_unretrieved_exception(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        async with media_hasher(settings_for(tmp_path)) as media:
            job = asyncio.create_task(media.hash_image(IMAGE.read_bytes()))
            # One turn of the loop: the job is submitted and waits for a worker to begin it
            # (the pool's first worker is still starting), where a stop's cancel finds it.
            await asyncio.sleep(0)
            job.cancel()
            with pytest.raises(asyncio.CancelledError):
                await job
        # Closed with the job still on a worker: the pool is broken under it.
        del job
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert [c["message"] for c in reported] == []
