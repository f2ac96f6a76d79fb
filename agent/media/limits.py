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
    # Wall-clock time per item in the process pool; the worker is killed after it.
    timeout_s: float = 120.0
    # PDQ hashes per second of video (vPDQ "seconds per hash" = 1 / this).
    # 0 hashes every frame, which is what the ThreatExchange reference files hold.
    video_fps_sample: float = 1.0
    # Frames of an animated GIF/WebP/PNG hashed with PDQ, spread evenly, first included.
    animated_frame_samples: int = 8

    def __post_init__(self) -> None:
        if self.max_pixels <= 0 or self.max_frames <= 0 or self.max_bytes <= 0:
            raise ValueError("max_pixels, max_frames and max_bytes must be positive")
        if self.timeout_s <= 0 or self.max_video_seconds <= 0:
            raise ValueError("timeout_s and max_video_seconds must be positive")
        if self.video_fps_sample < 0:
            raise ValueError("video_fps_sample must be >= 0 (0 = every frame)")
        if self.animated_frame_samples < 1:
            raise ValueError("animated_frame_samples must be >= 1")
