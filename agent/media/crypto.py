"""Cryptographic digests (md5, sha1, sha256) computed while bytes stream in."""

from __future__ import annotations

import hashlib

from agent.model.signals import Signal, SignalType


class CryptoHasher:
    """Feed content block by block with update(); signals() gives the digests.

    Lists match these by equality, so values are lower-case hex like every
    ThreatExchange / TCAP list."""

    __slots__ = ("_md5", "_sha1", "_sha256", "_size")

    def __init__(self) -> None:
        # usedforsecurity=False: md5/sha1 identify content here, they protect
        # nothing, and FIPS-mode Pythons refuse them otherwise.
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._size = 0

    def update(self, block: bytes | bytearray | memoryview) -> None:
        self._md5.update(block)
        self._sha1.update(block)
        self._sha256.update(block)
        self._size += len(block)

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    def signals(self) -> list[Signal]:
        """md5, sha1, sha256 of everything fed so far (more updates may follow)."""
        return [
            Signal(SignalType.MD5, self._md5.hexdigest()),
            Signal(SignalType.SHA1, self._sha1.hexdigest()),
            Signal(SignalType.SHA256, self._sha256.hexdigest()),
        ]


def crypto_signals(data: bytes) -> list[Signal]:
    """md5, sha1, sha256 of a whole byte string."""
    hasher = CryptoHasher()
    hasher.update(data)
    return hasher.signals()
