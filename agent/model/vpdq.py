"""vPDQ frame hashes as data: their text format and the comparison of two videos.

In the model (not agent.media) because both sides need it without the decoders:
agent.media writes frames, agent.lists reads list files of them and compares;
importing agent.media would load PyAV, Pillow and pdqhash. Pure computation on
values (numpy for the bit counts), no I/O.

Comparison reproduces python-threatexchange's vpdq brute matcher (the one the
ThreatExchange tools and HMA use): each side is deduplicated by hash value
(first occurrence kept), then frames below the quality threshold are dropped,
then a frame matches when some frame of the other side is within `distance`
bits (inclusive). The C++ matchTwoHashBrute differs (no dedup, strict "<"),
and pairwise-matches.tsv was produced the python way."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from agent.model.signals import VideoFrameHash


class VpdqTextError(ValueError):
    """A vPDQ text (`frame,quality,pdq_hex,timestamp` lines) is malformed.

    A ValueError: it is about a hash list, not media."""


DEFAULT_DISTANCE = 31
DEFAULT_QUALITY = 50

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# Rows of the query compared at once: bounds the XOR scratch to ~32 MiB.
_CHUNK_ROWS = 1024
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def parse_vpdq_text(text: str) -> list[VideoFrameHash]:
    """Parse `frame,quality,pdq_hex,timestamp` lines (blank lines ignored)."""
    frames: list[VideoFrameHash] = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            raise VpdqTextError(f"line {line_no}: expected frame,quality,pdq_hex,timestamp, got {len(parts)} fields")
        frame_s, quality_s, hex_s, time_s = parts
        try:
            frame, quality, timestamp = int(frame_s), int(quality_s), float(time_s)
        except ValueError:
            raise VpdqTextError(f"line {line_no}: non-numeric frame, quality or timestamp") from None
        if frame < 0 or not 0 <= quality <= 100 or not timestamp >= 0:
            raise VpdqTextError(
                f"line {line_no}: frame {frame}, quality {quality} or timestamp {timestamp} out of range"
            )
        if not _HEX64.fullmatch(hex_s):
            raise VpdqTextError(f"line {line_no}: PDQ hash must be 64 hex characters")
        frames.append(VideoFrameHash(frame, quality, hex_s.lower(), timestamp))
    return frames


def format_vpdq(frames: Iterable[VideoFrameHash]) -> str:
    """The reference text format: one `frame,quality,pdq_hex,timestamp` line per frame,
    timestamp with 3 decimals, newline-terminated."""
    return "".join(f"{f.frame},{f.quality},{f.pdq_hex},{f.timestamp:.3f}\n" for f in frames)


def dedupe(frames: Iterable[VideoFrameHash]) -> list[VideoFrameHash]:
    """Frames with a hash value not seen before, in order (first occurrence kept)."""
    seen: set[str] = set()
    unique: list[VideoFrameHash] = []
    for frame in frames:
        if frame.pdq_hex not in seen:
            seen.add(frame.pdq_hex)
            unique.append(frame)
    return unique


def comparable_frames(frames: Iterable[VideoFrameHash], quality: int = DEFAULT_QUALITY) -> list[VideoFrameHash]:
    """The frames that take part in a comparison: deduplicated, then quality >= threshold."""
    return [f for f in dedupe(frames) if f.quality >= quality]


def match_videos(
    query: Sequence[VideoFrameHash],
    compared: Sequence[VideoFrameHash],
    distance: int = DEFAULT_DISTANCE,
    quality: int = DEFAULT_QUALITY,
) -> tuple[float, float]:
    """(query_match_percent, compared_match_percent), each 0-100.

    query_match_percent is the share of the query's comparable frames that
    have a frame of `compared` within `distance`, and vice versa. A side with
    no comparable frame scores 0 (the reference divides by zero there)."""
    q_frames = comparable_frames(query, quality)
    c_frames = comparable_frames(compared, quality)
    if not q_frames or not c_frames:
        return 0.0, 0.0
    q_bits = _hash_matrix(q_frames)
    c_bits = _hash_matrix(c_frames)
    q_matched = np.zeros(len(q_frames), dtype=bool)
    c_matched = np.zeros(len(c_frames), dtype=bool)
    for start in range(0, len(q_frames), _CHUNK_ROWS):
        block = q_bits[start : start + _CHUNK_ROWS]
        within = _distances(block, c_bits) <= distance
        q_matched[start : start + len(block)] = within.any(axis=1)
        c_matched |= within.any(axis=0)
    return (
        float(q_matched.sum()) * 100.0 / len(q_frames),
        float(c_matched.sum()) * 100.0 / len(c_frames),
    )


def _hash_matrix(frames: Sequence[VideoFrameHash]) -> npt.NDArray[np.uint8]:
    """N x 32 bytes, one row per 256-bit hash."""
    joined = bytes.fromhex("".join(f.pdq_hex for f in frames))
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(frames), 32)


def _distances(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.int32]:
    """Hamming distance of every row of a to every row of b (len(a) x len(b))."""
    xor = np.bitwise_xor(a[:, None, :], b[None, :, :])
    counts: npt.NDArray[np.int32] = _POPCOUNT[xor].sum(axis=2, dtype=np.int32)
    return counts
