"""The few multihash and CID operations IPIP-383 matching needs.

Rules and lookups are keyed by raw multihash bytes, so every CID version,
codec and multibase of the same multihash meets the same rule."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from types import MappingProxyType

import blake3
from multiformats import CID, multibase, varint

SHA2_256 = 0x12
BLAKE3 = 0x1E
IDENTITY = 0x00

# Double-hash functions we can compute. nopfs uses the multihash default
# length for each (32 bytes for both).
_DOUBLE_HASH_FUNCS: Mapping[int, Callable[[bytes], bytes]] = MappingProxyType(
    {
        SHA2_256: lambda data: hashlib.sha256(data).digest(),
        BLAKE3: lambda data: blake3.blake3(data).digest(),
    }
)
SUPPORTED_DOUBLE_HASH_CODES = frozenset(_DOUBLE_HASH_FUNCS)


def encode_multihash(code: int, digest: bytes) -> bytes:
    return bytes(varint.encode(code)) + bytes(varint.encode(len(digest))) + digest


def split_multihash(mh: bytes) -> tuple[int, bytes]:
    """(code, digest) of well-formed multihash bytes; raises ValueError."""
    try:
        code, n1, _ = varint.decode_raw(mh)
        length, n2, _ = varint.decode_raw(mh[n1:])
    except Exception as exc:  # multiformats raises its own error classes
        raise ValueError(f"not a multihash: {exc}") from None
    digest = mh[n1 + n2 :]
    if len(digest) != length:
        raise ValueError("multihash length does not match its digest")
    return code, digest


def double_hash(code: int, data: bytes) -> bytes:
    """The multihash of `data` under hash function `code`."""
    return encode_multihash(code, _DOUBLE_HASH_FUNCS[code](data))


def b58_multihash(mh: bytes) -> str:
    """base58btc without the multibase prefix: the CIDv0-style form IPIP-383
    hashes for modern double-hash rules."""
    return str(multibase.encode(mh, "base58btc"))[1:]


def decode_b58_multihash(text: str) -> bytes:
    """Raises ValueError unless `text` is a base58btc multihash."""
    try:
        raw = bytes(multibase.decode("z" + text))
    except Exception:
        raise ValueError("not base58btc") from None
    split_multihash(raw)
    return raw


def decode_cid(text: str) -> CID:
    """Parse a CID string (v0 or v1, any multibase); raises ValueError."""
    try:
        return CID.decode(text)
    except Exception as exc:  # KeyError/ValueError subclasses from multiformats
        raise ValueError(f"not a CID: {text[:80]!r}: {exc}") from None


def cid_multihash(cid: CID) -> bytes:
    return bytes(cid.digest)


def cid_v1_base32(cid: CID) -> str:
    """The legacy badbits anchor form: CIDv1 (same codec) in base32."""
    return str(cid.set(version=1).encode("base32"))


def name_multihash(name: str) -> bytes | None:
    """The multihash inside an IPNS name that is a CID (k51..., bafzaa...) or a
    base58 multihash / peer id (12D3Koo..., Qm...); None for a DNS name."""
    try:
        return cid_multihash(decode_cid(name))
    except ValueError:
        pass
    if "." in name:
        return None
    try:
        return decode_b58_multihash(name)
    except ValueError:
        return None
