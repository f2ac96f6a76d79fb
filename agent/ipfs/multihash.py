"""Check that bytes hash to a CID's multihash.

Hashing is done with hashlib/blake3 directly rather than through the
multiformats wrappers: this is the hottest loop of verified retrieval."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import blake3

from agent.ipfs.cid import CID, IDENTITY_CODE, check_digest, split_multihash
from agent.ipfs.errors import BlockMismatch, UnsupportedHash

_HASHERS: dict[int, Callable[[bytes | memoryview], bytes]] = {
    0x11: lambda b: hashlib.sha1(b).digest(),
    0x12: lambda b: hashlib.sha256(b).digest(),
    0x13: lambda b: hashlib.sha512(b).digest(),
    0x14: lambda b: hashlib.sha3_512(b).digest(),
    0x16: lambda b: hashlib.sha3_256(b).digest(),
    0x1E: lambda b: blake3.blake3(b).digest(),
    0xB220: lambda b: hashlib.blake2b(b, digest_size=32).digest(),
}


def verify_block(cid: CID, data: bytes | memoryview, source: str | None = None) -> None:
    """Raise BlockMismatch unless `data` is exactly the content `cid` names; InvalidCid if
    `cid` cannot name content safely (see agent.ipfs.cid.check_digest)."""
    code, expected = split_multihash(cid)
    # Refused before hashing, as InvalidCid: a CID that names no content (a 0-byte
    # digest matches any bytes) is the link's fault, never the gateway's.
    check_digest(code, len(expected))
    if code == IDENTITY_CODE:
        ok = bytes(data) == expected
    else:
        hasher = _HASHERS.get(code)
        if hasher is None:
            raise UnsupportedHash(f"{cid}: hash function 0x{code:x} cannot be verified")
        digest = hasher(data)
        # Multihash allows truncated digests; a longer-than-full digest is malformed.
        ok = len(expected) <= len(digest) and digest[: len(expected)] == expected
    if not ok:
        raise BlockMismatch(str(cid), source)
