"""Signals: the hashes of one piece of content, shared by hashers (agent.media),
lists (agent.lists), the pipeline and the store.

Signal type names follow ThreatExchange / HMA so that lists exchanged with
other tools need no translation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class SignalType(StrEnum):
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    PDQ = "pdq"
    PHASH = "phash"
    DHASH = "dhash"
    AHASH = "ahash"
    WHASH = "whash"
    COLORHASH = "colorhash"
    VPDQ = "vpdq"


# Matched by equality of the (lower-case hex) value.
EXACT_TYPES = frozenset({SignalType.MD5, SignalType.SHA1, SignalType.SHA256})
# Matched by Hamming distance; the value is a hex string of this many bits.
PERCEPTUAL_BITS: dict[SignalType, int] = {
    SignalType.PDQ: 256,
    SignalType.PHASH: 64,
    SignalType.DHASH: 64,
    SignalType.AHASH: 64,
    SignalType.WHASH: 64,
}


@dataclass(frozen=True, slots=True)
class Signal:
    """One hash of one piece of content. `quality` is set for PDQ (0-100)."""

    type: SignalType
    value: str
    quality: int | None = None


@dataclass(frozen=True, slots=True)
class VideoFrameHash:
    """One vPDQ frame, as in the reference output `frame,quality,pdq_hex,timestamp`."""

    frame: int
    quality: int
    pdq_hex: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class VideoSummary:
    """What the report says of a video's vPDQ hash: how many frames, at what rate."""

    frames: int
    frame_rate: float
    truncated: bool


@dataclass(frozen=True, slots=True)
class ItemSignals:
    """Every signal computed for one item, typed from the hasher to the store and back.

    `hashes` holds each value in the order the hashers gave them (the stored
    orientation first, then further frames or orientations); `frames` are the vPDQ
    frames of a video (kept for retroactive matching, not shown in the report)."""

    hashes: tuple[Signal, ...] = ()
    video: VideoSummary | None = None
    frames: tuple[VideoFrameHash, ...] = ()

    def of(self, kind: SignalType) -> Signal | None:
        """The first value of one type, or None."""
        return next((s for s in self.hashes if s.type is kind), None)

    @property
    def has_digests(self) -> bool:
        """Whether the bytes were read whole: their sha256 is known."""
        return self.of(SignalType.SHA256) is not None

    def to_view(self) -> dict[str, Any]:
        """The report's (and the webhook payload's) `signals` object, a public shape:
        the first value of each type by name, PDQ quality beside it, further values
        under `more`, and a vPDQ summary for videos."""
        view: dict[str, Any] = {}
        more: list[dict[str, Any]] = []
        for sig in self.hashes:
            if sig.type.value not in view:
                view[sig.type.value] = sig.value
                if sig.type is SignalType.PDQ:
                    view["pdq_quality"] = sig.quality
            elif sig.value != view[sig.type.value]:
                more.append({"type": sig.type.value, "value": sig.value, "quality": sig.quality})
        if more:
            view["more"] = more
        if self.video is not None:
            view["vpdq"] = {
                "frames": self.video.frames,
                "frame_rate": round(self.video.frame_rate, 3),
                "truncated": self.video.truncated,
            }
        return view

    @classmethod
    def from_view(cls, view: Mapping[str, Any], frames: Sequence[VideoFrameHash] = ()) -> ItemSignals:
        """Read back a `signals` object written by `to_view` (what the store holds).
        Unknown keys and malformed entries are ignored: a stored row written by an
        older agent must not stop a re-match."""
        hashes: list[Signal] = []
        for kind in SignalType:
            value = view.get(kind.value)
            if isinstance(value, str):
                quality = view.get("pdq_quality") if kind is SignalType.PDQ else None
                hashes.append(Signal(kind, value, quality if isinstance(quality, int) else None))
        for extra in view.get("more", []) or []:
            try:
                quality = extra.get("quality")
                hashes.append(
                    Signal(
                        SignalType(extra["type"]), str(extra["value"]), quality if isinstance(quality, int) else None
                    )
                )
            except (KeyError, ValueError, TypeError, AttributeError):
                continue
        video = None
        summary = view.get("vpdq")
        if isinstance(summary, Mapping):
            try:
                video = VideoSummary(int(summary["frames"]), float(summary["frame_rate"]), bool(summary["truncated"]))
            except (KeyError, ValueError, TypeError):
                video = None
        return cls(tuple(hashes), video, tuple(frames))
