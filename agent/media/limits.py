"""Bounds on the work done for one piece of content."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """Bounds applied to every image or video hashed.

    Content from the decentralized web is untrusted and may be built to exhaust
    memory or CPU (decompression bombs, endless animations, hour-long videos),
    so every decoder call is bounded by these numbers."""

    # Pixels of one image or video frame (width x height). 50 MP covers
    # 8K video and large phone photos; a 30000x30000 bomb is far above it.
    max_pixels: int = 50_000_000
    # Video frames hashed, and animation frames walked through, per item.
    max_frames: int = 20_000
    # Size of the encoded content.
    max_bytes: int = 512 * 1024 * 1024
    # Video time decoded; beyond it the hash covers the first max_video_seconds.
    max_video_seconds: float = 4 * 3600.0
    # Wall-clock time per item in the process pool, counted from the moment a
    # worker begins it; the worker is killed after it.
    timeout_s: float = 120.0
    # Time for a worker to begin an item: a new worker starts a process and
    # imports the decoders first, which is slow on a loaded machine. Bounded
    # separately so that a slow start never times an item out.
    worker_start_timeout_s: float = 60.0
    # Address space of each worker process (RLIMIT_AS), 0 = unbounded. An item
    # needing more fails alone with MediaTooLarge; the pool goes on. A worker
    # peaks near 0.9 GB on a 12 MP photo (most of it reserved, not resident).
    max_worker_memory_bytes: int = 2 * 1024**3
    # Images with more pixels are hashed from a reduced copy (JPEG decoded at
    # 1/2, 1/4 or 1/8 scale, others box-reduced by an integer factor) of at most
    # this many pixels: PDQ's reference hasher itself works from 512 x 512, and
    # full-size copies of a 50 MP image cost gigabytes.
    max_hash_pixels: int = 4096 * 4096
    # PDQ hashes per second of video (vPDQ "seconds per hash" = 1 / this).
    # 0 hashes every frame, which is what the ThreatExchange reference files hold.
    video_fps_sample: float = 1.0
    # Frames of an animated GIF/WebP/PNG hashed with PDQ, spread evenly, first included.
    animated_frame_samples: int = 8

    def __post_init__(self) -> None:
        if self.max_pixels <= 0 or self.max_frames <= 0 or self.max_bytes <= 0:
            raise ValueError("max_pixels, max_frames and max_bytes must be positive")
        if self.timeout_s <= 0 or self.max_video_seconds <= 0 or self.worker_start_timeout_s <= 0:
            raise ValueError("timeout_s, worker_start_timeout_s and max_video_seconds must be positive")
        if self.max_worker_memory_bytes < 0:
            raise ValueError("max_worker_memory_bytes must be >= 0 (0 = unbounded)")
        if self.max_hash_pixels < 64 * 64:
            raise ValueError("max_hash_pixels must be >= 4096 (64 x 64)")
        if self.video_fps_sample < 0:
            raise ValueError("video_fps_sample must be >= 0 (0 = every frame)")
        if self.animated_frame_samples < 1:
            raise ValueError("animated_frame_samples must be >= 1")
