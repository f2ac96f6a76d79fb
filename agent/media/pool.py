"""A process pool that hashes media without blocking the event loop.

Decoders run in worker processes: they are CPU-bound, they hold the GIL, and
they are the code most exposed to hostile input. A worker that hangs is
killed when the per-item timeout expires; a worker that dies takes only its
own item down (others caught in the crash are retried alone). Either way the
pool is rebuilt and the agent carries on."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from agent.media.errors import DecodeTimeout, HashingFailed, MediaError, WorkerCrashed
from agent.media.image import ImageResult
from agent.media.limits import MediaLimits
from agent.media.sniff import MediaKind, media_kind
from agent.media.video import VideoHashes
from agent.media.worker import hash_image_job, hash_video_job
from agent.signals import Signal, VideoFrameHash

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class MediaResult:
    """Perceptual hashing outcome for one item (crypto digests are computed
    while fetching, see CryptoHasher).

    Images fill `signals` (and `image`); videos fill `video_frames` (vPDQ).
    Other kinds have nothing to hash perceptually and come back empty."""

    media_type: str
    kind: MediaKind
    signals: tuple[Signal, ...] = ()
    video_frames: tuple[VideoFrameHash, ...] = ()
    image: ImageResult | None = None
    video: VideoHashes | None = None

    @property
    def truncated(self) -> bool:
        """True when limits cut the video short (its hash covers a prefix)."""
        return self.video is not None and self.video.truncated


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class MediaHasher:
    """Async front of a ProcessPoolExecutor for image and video hashing.

    Use as `async with MediaHasher() as hasher: await hasher.signals_for(...)`.
    At most `workers` items run at once; the timeout counts from the moment an
    item starts in a worker, so a busy pool does not time items out."""

    def __init__(
        self,
        limits: MediaLimits | None = None,
        *,
        workers: int | None = None,
        start_method: str = "forkserver",
    ) -> None:
        self.limits = limits or MediaLimits()
        self.workers = workers or _default_workers()
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        # fork is unsafe next to asyncio and threads (locks copied mid-use);
        # forkserver/spawn start clean interpreters.
        if start_method not in multiprocessing.get_all_start_methods():
            start_method = "spawn"
        self._context = multiprocessing.get_context(start_method)
        self._executor: ProcessPoolExecutor | None = None
        self._generation = 0
        self._slots = asyncio.Semaphore(self.workers)
        self._rebuilds = 0
        # Crash isolation (see run): _open is cleared while one item is
        # retried alone; _idle is set when no item is in a worker.
        self._isolation = asyncio.Lock()
        self._open = asyncio.Event()
        self._open.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._in_flight = 0

    @property
    def rebuilds(self) -> int:
        """How often the pool was torn down after a timeout or crash."""
        return self._rebuilds

    async def __aenter__(self) -> MediaHasher:
        self._ensure_executor()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if self._in_flight:
            # Items still running (e.g. their callers were cancelled) may be
            # hung; waiting for them could take forever.
            _kill_workers(executor)
        # Waiting for workers to exit is blocking: do it off the loop.
        await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    async def hash_image(self, data: bytes | Path) -> ImageResult:
        """Perceptual signals of an image given as bytes or as a file path."""
        return await self.run(hash_image_job, data, self.limits)

    async def hash_video(self, path: Path | bytes) -> list[VideoFrameHash]:
        """vPDQ frame hashes of a video file (or its bytes)."""
        return list((await self.run(hash_video_job, path, self.limits)).frames)

    async def signals_for(self, data_or_path: bytes | Path, media_type: str) -> MediaResult:
        """Hash one item according to its (sniffed) media type."""
        kind = media_kind(media_type)
        if kind == "image":
            image = await self.run(hash_image_job, data_or_path, self.limits)
            return MediaResult(media_type, kind, signals=image.signals, image=image)
        if kind == "video":
            video = await self.run(hash_video_job, data_or_path, self.limits)
            return MediaResult(media_type, kind, video_frames=video.frames, video=video)
        return MediaResult(media_type, kind)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a picklable top-level function in a worker under the pool's
        timeout and crash policy; MediaErrors raised there propagate as is."""
        call = functools.partial(fn, *args, **kwargs)
        async with self._slots:
            try:
                return await self._attempt(call, gated=True)
            except BrokenProcessPool:
                pass
        # A dead worker (or one killed after a timeout) breaks every item in
        # flight, not only its own. So an item hit by a broken pool is retried
        # once, alone: nothing else runs meanwhile, and if the pool breaks
        # again this item is the one that crashed it.
        async with self._isolation:
            self._open.clear()
            try:
                await self._idle.wait()
                try:
                    return await self._attempt(call, gated=False)
                except BrokenProcessPool:
                    raise WorkerCrashed(
                        "worker process died while hashing this item, also when run "
                        "alone: the decoder probably crashed on it"
                    ) from None
            finally:
                self._open.set()

    async def _attempt(self, call: Callable[[], T], *, gated: bool) -> T:
        if gated:
            await self._open.wait()
        executor = self._ensure_executor()
        generation = self._generation
        self._in_flight += 1
        self._idle.clear()
        try:
            future: Future[T] = executor.submit(call)
            return await asyncio.wait_for(asyncio.wrap_future(future), self.limits.timeout_s)
        except TimeoutError:
            self._rebuild(generation)
            raise DecodeTimeout(
                f"hashing took longer than {self.limits.timeout_s:g} s; worker killed"
            ) from None
        except BrokenProcessPool:
            self._rebuild(generation)
            raise
        except MediaError:
            raise
        except Exception as exc:
            raise HashingFailed(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    def _ensure_executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=self._context
            )
        return self._executor

    def _rebuild(self, generation: int) -> None:
        """Kill the workers of pool `generation` and start a new pool.

        Several items may fail together; only the first one rebuilds."""
        if generation != self._generation or self._executor is None:
            return
        old = self._executor
        self._executor = None
        self._generation += 1
        self._rebuilds += 1
        _kill_workers(old)
        self._ensure_executor()


def _kill_workers(executor: ProcessPoolExecutor) -> None:
    # A hung worker never returns, and shutdown() cannot interrupt a running
    # task, so the processes are killed. Python 3.14 has kill_workers(); on
    # older versions the process table is the private _processes mapping.
    kill: Any = getattr(executor, "kill_workers", None)
    if callable(kill):
        kill()
    else:
        processes: Any = getattr(executor, "_processes", None) or {}
        for process in list(processes.values()):
            if process.is_alive():
                process.kill()
    executor.shutdown(wait=False, cancel_futures=True)
