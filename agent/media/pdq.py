"""PDQ of an RGB pixel array, in the ThreatExchange text format, and Hamming distance."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pdqhash

from agent.model.signals import Signal, SignalType


def pdq_of_rgb(rgb: npt.NDArray[np.uint8]) -> tuple[str, int]:
    """(64 lower-case hex chars, quality 0-100) of an H x W x 3 uint8 RGB array.

    pdqhash returns the 256 hash bits most significant first; packing them
    big-endian gives exactly the hex that the reference C++ tools print."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb, dtype=np.uint8))
    hex_value = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()
    return hex_value, int(quality)


def pdq_signal(rgb: npt.NDArray[np.uint8]) -> Signal:
    value, quality = pdq_of_rgb(rgb)
    return Signal(SignalType.PDQ, value, quality)


def hamming_hex(a: str, b: str) -> int:
    """Bits that differ between two hex hashes of the same length."""
    if len(a) != len(b):
        raise ValueError(f"hash lengths differ: {len(a)} vs {len(b)} hex chars")
    return (int(a, 16) ^ int(b, 16)).bit_count()
