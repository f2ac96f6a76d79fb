"""CID parsing with the checks an untrusted input needs.

The `multiformats` library does the encoding work; this module adds the limits
and the error messages a user can act on, and the multihash key under which
blocks are stored (a CIDv0 and a CIDv1 of the same bytes name the same block).
"""

from __future__ import annotations

from multiformats import CID, multibase, varint

from agent.ipfs.errors import InvalidCid

__all__ = ["CID", "parse_cid", "cid_from_prefix", "block_key", "cid_text", "IDENTITY_MAX_DIGEST"]

# Kubo and boxo refuse identity CIDs whose digest exceeds 128 bytes: an inlined
# "block" that large is a way to smuggle data past block-level checks.
IDENTITY_MAX_DIGEST = 128
IDENTITY_CODE = 0x00
_MAX_CID_TEXT = 1024
_SUPPORTED_BASES = {"base32", "base32upper", "base58btc", "base36", "base36upper", "base16", "base16upper", "base64", "base64url"}


def _check(cid: CID) -> CID:
    if cid.hashfun.code == IDENTITY_CODE and len(cid.raw_digest) > IDENTITY_MAX_DIGEST:
        raise InvalidCid(
            f"identity CID carries {len(cid.raw_digest)} bytes inline; at most {IDENTITY_MAX_DIGEST} are allowed"
        )
    return cid


def parse_cid(text: str) -> CID:
    """Parse a CID string (v0 base58btc, or v1 in base32/base58btc/base36/base16/base64)."""
    text = text.strip()
    if not text:
        raise InvalidCid("empty CID")
    if len(text) > _MAX_CID_TEXT:
        raise InvalidCid(f"CID string is {len(text)} characters long; refusing anything over {_MAX_CID_TEXT}")
    if not (text.startswith("Qm") and len(text) == 46):
        try:
            base = multibase.from_str(text)
        except (KeyError, ValueError) as exc:
            raise InvalidCid(f"{text!r} is not a CID: unknown multibase prefix {text[:1]!r}") from exc
        if base.name not in _SUPPORTED_BASES:
            raise InvalidCid(f"{text!r}: multibase {base.name} is not accepted for CIDs")
    try:
        cid = CID.decode(text)
    except Exception as exc:  # the library raises several unrelated types for bad input
        raise InvalidCid(f"{text!r} is not a valid CID: {exc}") from exc
    return _check(cid)


def cid_from_prefix(data: bytes | memoryview) -> tuple[CID, int]:
    """Read a binary CID at the start of `data`; return it and its length in bytes.

    Used for CAR sections, where the CID is followed directly by the block."""
    buf = memoryview(data)
    if len(buf) >= 34 and buf[0] == 0x12 and buf[1] == 0x20:
        end = 34  # CIDv0: a bare sha2-256 multihash
    else:
        try:
            pos = 0
            for _ in range(3):  # version, codec, hash function
                _, n, _ = varint.decode_raw(buf[pos:])
                pos += n
            length, n, _ = varint.decode_raw(buf[pos:])
        except Exception as exc:
            raise InvalidCid(f"malformed binary CID: {exc}") from exc
        end = pos + n + length
        if end > len(buf):
            raise InvalidCid(f"binary CID declares a {length}-byte digest but only {len(buf) - pos - n} bytes follow")
    try:
        cid = CID.decode(bytes(buf[:end]))
    except Exception as exc:
        raise InvalidCid(f"malformed binary CID: {exc}") from exc
    return _check(cid), end


def block_key(cid: CID) -> bytes:
    """The multihash bytes: the identity of a block regardless of CID version or codec."""
    return bytes(cid.digest)


def cid_text(cid: CID) -> str:
    """The canonical spelling: base58btc for CIDv0, base32 for CIDv1 (as Kubo prints them)."""
    return str(cid) if cid.version == 0 else cid.encode("base32")
