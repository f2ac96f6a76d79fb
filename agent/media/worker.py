"""Functions run inside the pool's worker processes.

They take paths rather than bytes where they can, so that large files are
read by the worker and never block the event loop or cross the pipe twice."""

from __future__ import annotations

from pathlib import Path

from agent.media.errors import MediaTooLarge
from agent.media.image import ImageResult, image_signals
from agent.media.limits import MediaLimits
from agent.media.video import VideoHashes, video_hashes


def hash_image_job(source: bytes | Path, limits: MediaLimits) -> ImageResult:
    return image_signals(_read_bounded(source, limits.max_bytes), limits)


def hash_video_job(source: bytes | Path, limits: MediaLimits) -> VideoHashes:
    return video_hashes(source, limits)


def _read_bounded(source: bytes | Path, max_bytes: int) -> bytes:
    if isinstance(source, bytes):
        return source
    size = source.stat().st_size
    if size > max_bytes:
        raise MediaTooLarge(f"{source.name} is {size} bytes, limit {max_bytes}")
    return source.read_bytes()
