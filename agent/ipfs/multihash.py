"""Multihashes: the one table of hash functions, the one splitter, and block verification.

Every hash function the agent computes is in HASH_FUNCTIONS, once: CID
checking (which digests can ever be verified, and their full size), block
verification and the denylist's double hashes all read it.

Hashing is done with hashlib/blake3 directly rather than through the
multiformats wrappers: this is the hottest loop of verified retrieval."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import blake3
from multiformats import CID, multicodec

from agent.ipfs.errors import BlockMismatch, InvalidCid, InvalidMultihash, UnsupportedHash
from agent.ipfs.varint import VarintError, encode_uvarint, read_uvarint

__all__ = [
    "BLAKE3",
    "HASH_FUNCTIONS",
    "IDENTITY_CODE",
    "IDENTITY_MAX_DIGEST",
    "MIN_DIGEST_BYTES",
    "SHA2_256",
    "HashFunction",
    "check_digest",
    "encode_multihash",
    "read_multihash_header",
    "split_multihash",
    "verify_block",
]

IDENTITY_CODE = 0x00
SHA2_256 = 0x12
BLAKE3 = 0x1E
# Kubo and boxo refuse identity CIDs whose digest exceeds 128 bytes: an inlined
# "block" that large is a way to smuggle data past block-level checks.
IDENTITY_MAX_DIGEST = 128
# Kubo's verifcid refuses digests under 20 bytes: a 0-byte digest matches any
# bytes and a 1-byte one is a 1-in-256 guess, so a gateway could substitute content.
MIN_DIGEST_BYTES = 20


@dataclass(frozen=True, slots=True)
class HashFunction:
    name: str  # the multicodec name
    size: int  # the full digest, in bytes
    digest: Callable[[bytes | memoryview], bytes]


# The hash functions whose blocks can be verified. Anything else (murmur3, md5,
# unknown codes) can never be verified, so a CID using it is refused as soon as it is read.
HASH_FUNCTIONS: Mapping[int, HashFunction] = MappingProxyType(
    {
        # sha1 only checks that served bytes match a CID that chose it; nothing is secured by it here.
        0x11: HashFunction("sha1", 20, lambda b: hashlib.sha1(b).digest()),  # noqa: S324
        SHA2_256: HashFunction("sha2-256", 32, lambda b: hashlib.sha256(b).digest()),
        0x13: HashFunction("sha2-512", 64, lambda b: hashlib.sha512(b).digest()),
        0x14: HashFunction("sha3-512", 64, lambda b: hashlib.sha3_512(b).digest()),
        0x16: HashFunction("sha3-256", 32, lambda b: hashlib.sha3_256(b).digest()),
        BLAKE3: HashFunction("blake3", 32, lambda b: blake3.blake3(b).digest()),  # its default length
        0xB220: HashFunction("blake2b-256", 32, lambda b: hashlib.blake2b(b, digest_size=32).digest()),
    }
)


def read_multihash_header(buf: bytes | memoryview, pos: int = 0) -> tuple[int, int, int]:
    """(function code, declared digest length, position of the digest) of the multihash at `buf[pos]`.

    For a multihash inside a longer buffer (a binary CID); the caller checks the digest fits."""
    try:
        code, pos = read_uvarint(buf, pos, "multihash function code")
        length, pos = read_uvarint(buf, pos, "multihash digest length")
    except VarintError as exc:
        raise InvalidMultihash(str(exc)) from None
    return code, length, pos


def split_multihash(mh: bytes | memoryview) -> tuple[int, bytes]:
    """(function code, raw digest) of bytes that are exactly one multihash; InvalidMultihash otherwise."""
    code, length, pos = read_multihash_header(mh)
    if len(mh) - pos != length:
        raise InvalidMultihash(f"multihash declares a {length}-byte digest but carries {len(mh) - pos}")
    return code, bytes(mh[pos:])


def encode_multihash(code: int, digest: bytes) -> bytes:
    return encode_uvarint(code) + encode_uvarint(len(digest)) + digest


def _hash_name(code: int) -> str:
    known = HASH_FUNCTIONS.get(code)
    if known is not None:
        return known.name
    try:
        return str(multicodec.get(code=code).name)
    except Exception:  # noqa: BLE001  (the library raises several types for an unknown code)
        return "unknown"


def check_digest(hash_code: int, digest_len: int) -> None:
    """A multihash the agent can verify and that names one content: known function, 20+ bytes."""
    if hash_code == IDENTITY_CODE:
        if digest_len > IDENTITY_MAX_DIGEST:
            raise InvalidCid(
                f"identity CID carries {digest_len} bytes inline; at most {IDENTITY_MAX_DIGEST} are allowed"
            )
        return
    function = HASH_FUNCTIONS.get(hash_code)
    if function is None:
        raise InvalidCid(
            f"hash function 0x{hash_code:x} ({_hash_name(hash_code)}) is not one whose blocks can be verified"
            " (sha2-256, sha2-512, sha3-256, sha3-512, blake2b-256, blake3, sha1, identity)"
        )
    if digest_len < MIN_DIGEST_BYTES:
        raise InvalidCid(
            f"{function.name} digest of {digest_len} bytes is too short to identify content"
            f" (at least {MIN_DIGEST_BYTES} are required)"
        )
    if digest_len > function.size:
        raise InvalidCid(f"{function.name} digest of {digest_len} bytes is longer than the function's {function.size}")


def verify_block(cid: CID, data: bytes | memoryview, source: str | None = None) -> None:
    """Raise BlockMismatch unless `data` is exactly the content `cid` names; InvalidCid if
    `cid` cannot name content safely (see check_digest)."""
    code, expected = split_multihash(cid.digest)
    # Refused before hashing, as InvalidCid: a CID that names no content (a 0-byte
    # digest matches any bytes) is the link's fault, never the gateway's.
    check_digest(code, len(expected))
    if code == IDENTITY_CODE:
        ok = bytes(data) == expected
    else:
        function = HASH_FUNCTIONS.get(code)
        if function is None:
            raise UnsupportedHash(f"{cid}: hash function 0x{code:x} cannot be verified")
        digest = function.digest(data)
        # Multihash allows truncated digests; a longer-than-full digest is malformed.
        ok = len(expected) <= len(digest) and digest[: len(expected)] == expected
    if not ok:
        raise BlockMismatch(str(cid), source)
