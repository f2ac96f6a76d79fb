"""CID parsing with the checks an untrusted input needs.

The `multiformats` library does the encoding work; this module adds the limits
and the error messages a user can act on, and the multihash key under which
blocks are stored (a CIDv0 and a CIDv1 of the same bytes name the same block).
"""

from __future__ import annotations

from multiformats import CID, multibase, multicodec, multihash

from agent.ipfs.errors import InvalidCid

__all__ = ["CID", "parse_cid", "cid_from_prefix", "block_key", "cid_text", "IDENTITY_MAX_DIGEST"]

# Kubo and boxo refuse identity CIDs whose digest exceeds 128 bytes: an inlined
# "block" that large is a way to smuggle data past block-level checks.
IDENTITY_MAX_DIGEST = 128
IDENTITY_CODE = 0x00
_MAX_CID_TEXT = 1024
_SUPPORTED_BASES = {"base32", "base32upper", "base58btc", "base36", "base36upper", "base16", "base16upper", "base64", "base64url"}


def _check(cid: CID) -> CID:
    code, digest = split_multihash(cid)
    if code == IDENTITY_CODE and len(digest) > IDENTITY_MAX_DIGEST:
        raise InvalidCid(
            f"identity CID carries {len(digest)} bytes inline; at most {IDENTITY_MAX_DIGEST} are allowed"
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


def _uvarint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode an unsigned varint at `pos`; returns (value, next position).

    Hand-rolled because multiformats' decoder runs a runtime type validator on
    every call, which dominated the cost of reading a CAR (measured: ~60%)."""
    value = 0
    for shift in range(0, 63, 7):
        if pos >= len(buf):
            raise InvalidCid("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise InvalidCid("varint longer than 9 bytes")


_BASE58 = multibase.get("base58btc")
# Multicodec and Multihash objects by code: the set of codes is small and fixed.
_CODECS: dict[int, multicodec.Multicodec] = {}
_HASHES: dict[int, multihash.Multihash] = {}


def _codec(code: int) -> multicodec.Multicodec:
    found = _CODECS.get(code)
    if found is None:
        try:
            found = _CODECS[code] = multicodec.get(code=code)
        except Exception as exc:
            raise InvalidCid(f"unknown multicodec 0x{code:x}") from exc
    return found


def _hashfun(code: int) -> multihash.Multihash:
    found = _HASHES.get(code)
    if found is None:
        try:
            found = _HASHES[code] = multihash.get(code=code)
        except Exception as exc:
            raise InvalidCid(f"unknown multihash function 0x{code:x}") from exc
    return found


def encode_uvarint(value: int) -> bytes:
    """Unsigned LEB128, as multiformats, CAR and protobuf write lengths and codes."""
    if value < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def cid_from_prefix(data: bytes | memoryview) -> tuple[CID, int]:
    """Read a binary CID at the start of `data`; return it and its length in bytes.

    Used for CAR sections and dag-pb links, once per block and link: the
    library's own decoder validates every argument at run time, which cost
    more than hashing the block, so known codecs take a direct path."""
    buf = memoryview(data)
    if len(buf) >= 34 and buf[0] == 0x12 and buf[1] == 0x20:
        version, codec, hash_code, start, end = 0, 0x70, 0x12, 0, 34  # CIDv0: a bare sha2-256 multihash
    else:
        version, pos = _uvarint(buf, 0)
        if version != 1:
            raise InvalidCid(f"binary CID version {version} is not supported")
        codec, pos = _uvarint(buf, pos)
        start = pos
        hash_code, pos = _uvarint(buf, pos)
        length, pos = _uvarint(buf, pos)
        end = pos + length
        if end > len(buf):
            raise InvalidCid(f"binary CID declares a {length}-byte digest but only {len(buf) - pos} bytes follow")
    new_instance = getattr(CID, "_new_instance", None)
    if new_instance is not None:
        cid = new_instance(CID, _BASE58, version, _codec(codec), _hashfun(hash_code), bytes(buf[start:end]))
        return _check(cid), end
    try:
        return _check(CID.decode(bytes(buf[:end]))), end
    except InvalidCid:
        raise
    except Exception as exc:
        raise InvalidCid(f"malformed binary CID: {exc}") from exc


def split_multihash(cid: CID) -> tuple[int, bytes]:
    """(hash function code, raw digest) without going through the validating accessors."""
    mh = cid.digest
    code, pos = _uvarint(mh, 0)
    length, pos = _uvarint(mh, pos)
    if len(mh) - pos != length:
        raise InvalidCid(f"multihash declares a {length}-byte digest but carries {len(mh) - pos}")
    return code, bytes(mh[pos:])


def block_key(cid: CID) -> bytes:
    """The multihash bytes: the identity of a block regardless of CID version or codec."""
    return bytes(cid.digest)


def cid_text(cid: CID) -> str:
    """The canonical spelling: base58btc for CIDv0, base32 for CIDv1 (as Kubo prints them)."""
    return str(cid) if cid.version == 0 else cid.encode("base32")
