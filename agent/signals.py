"""The vocabulary shared by hashers (agent.media) and lists (agent.lists).

Signal type names follow ThreatExchange / HMA so that lists exchanged with
other tools need no translation."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
