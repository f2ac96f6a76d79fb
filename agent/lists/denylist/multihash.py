"""The few multihash and CID operations IPIP-383 matching needs.

Rules and lookups are keyed by raw multihash bytes, so every CID version,
codec and multibase of the same multihash meets the same rule."""

from __future__ import annotations

from multiformats import CID, multibase

from agent.ipfs.multihash import BLAKE3, HASH_FUNCTIONS, SHA2_256, encode_multihash, split_multihash

__all__ = [
    "SUPPORTED_DOUBLE_HASH_CODES",
    "b58_multihash",
    "cid_multihash",
    "cid_v1_base32",
    "decode_b58_multihash",
    "decode_cid",
    "double_hash",
    "name_multihash",
]

# The double-hash functions IPIP-383 rules use; nopfs uses each one's default
# length (32 bytes for both), as agent.ipfs.multihash's table does.
SUPPORTED_DOUBLE_HASH_CODES = frozenset({SHA2_256, BLAKE3})


def double_hash(code: int, data: bytes) -> bytes:
    """The multihash of `data` under hash function `code` (one of SUPPORTED_DOUBLE_HASH_CODES)."""
    if code not in SUPPORTED_DOUBLE_HASH_CODES:
        raise KeyError(code)
    return encode_multihash(code, HASH_FUNCTIONS[code].digest(data))


def b58_multihash(mh: bytes) -> str:
    """base58btc without the multibase prefix: the CIDv0-style form IPIP-383
    hashes for modern double-hash rules."""
    return str(multibase.encode(mh, "base58btc"))[1:]


def decode_b58_multihash(text: str) -> bytes:
    """Raises ValueError unless `text` is a base58btc multihash (split_multihash's error is one)."""
    try:
        raw = bytes(multibase.decode("z" + text))
    except Exception:  # noqa: BLE001  (hostile list text: multiformats/bases raise undocumented types, IndexError seen)
        raise ValueError("not base58btc") from None
    split_multihash(raw)
    return raw


def decode_cid(text: str) -> CID:
    """Parse a CID string (v0 or v1, any multibase); raises ValueError."""
    try:
        return CID.decode(text)
    except Exception as exc:  # noqa: BLE001  (hostile list text: KeyError/ValueError/IndexError from multiformats)
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
