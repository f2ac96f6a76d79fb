"""CID parsing with the checks an untrusted input needs.

One set of rules for every CID the agent meets, whether it was typed (a
target, a denylist line), read from bytes (a CAR section, a dag-pb link) or
decoded by a library (dag-cbor links): `_validate` below. A CID that breaks a
rule is an `InvalidCid` wherever it comes from, so a gateway cannot slip past
the walker a CID that the denylist checker or the report would later choke on.

The `multiformats` library does the encoding work; this module adds the limits
and the error messages a user can act on, and the multihash key under which
blocks are stored (a CIDv0 and a CIDv1 of the same bytes name the same block).
"""

from __future__ import annotations

from collections.abc import Callable

from multiformats import CID, multibase, multicodec, multihash

from agent.ipfs.errors import InvalidCid
from agent.ipfs.multihash import SHA2_256, check_digest, read_multihash_header, split_multihash
from agent.ipfs.varint import VarintError, encode_uvarint, read_uvarint

# encode_uvarint stays importable from here for tests that write binary CIDs by hand.
__all__ = ["CID", "block_key", "check_cid", "cid_from_prefix", "cid_text", "encode_uvarint", "parse_cid"]

_DAG_PB = 0x70
_MAX_CID_TEXT = 1024
_SUPPORTED_BASES = {
    "base32",
    "base32upper",
    "base58btc",
    "base36",
    "base36upper",
    "base16",
    "base16upper",
    "base64",
    "base64url",
}


def _validate(version: int, codec: int, hash_code: int, digest_len: int) -> None:
    """The rules every CID must meet, from text or from bytes."""
    if version not in (0, 1):
        raise InvalidCid(f"CID version {version} does not exist (only 0 and 1 do)")
    if version == 0 and (codec != _DAG_PB or hash_code != SHA2_256 or digest_len != 32):
        raise InvalidCid("a CIDv0 is always dag-pb with a 32-byte sha2-256 digest")
    _codec(codec)
    check_digest(hash_code, digest_len)


def parse_cid(text: str) -> CID:
    """Parse a CID string (v0 base58btc, or v1 in base32/base58btc/base36/base16/base64)."""
    text = text.strip()
    if not text:
        raise InvalidCid("empty CID")
    if len(text) > _MAX_CID_TEXT:
        raise InvalidCid(f"CID string is {len(text)} characters long; refusing anything over {_MAX_CID_TEXT}")
    base_name = "base58btc"
    if text.startswith("Qm") and len(text) == 46:
        raw = _decode_text(text, base_name, lambda t: bytes(_BASE58.decode("z" + t)))
    else:
        try:
            base = multibase.from_str(text)
        except (KeyError, ValueError) as exc:
            raise InvalidCid(f"{text!r} is not a CID: unknown multibase prefix {text[:1]!r}") from exc
        if base.name not in _SUPPORTED_BASES:
            raise InvalidCid(f"{text!r}: multibase {base.name} is not accepted for CIDs")
        base_name = base.name
        raw = _decode_text(text, base_name, lambda t: bytes(multibase.decode(t)))
    try:
        cid, used = cid_from_prefix(raw)
    except InvalidCid as exc:
        raise InvalidCid(f"{text!r} is not a valid CID: {exc}") from exc
    if used != len(raw):
        raise InvalidCid(f"{text!r} is not a valid CID: {len(raw) - used} bytes follow the digest")
    # Printed back as given (a report shows the user's spelling); gateway URLs use cid_text.
    return cid if cid.version == 0 or base_name == "base58btc" else cid.set(base=base_name)


def _decode_text(text: str, base: str, decode: Callable[[str], bytes]) -> bytes:
    try:
        return bytes(decode(text))
    except Exception as exc:  # the library raises several unrelated types for bad input
        raise InvalidCid(f"{text!r} is not a valid CID: it is not well-formed {base} text ({exc})") from exc


_BASE58 = multibase.get("base58btc")
# Multicodec and Multihash objects by code: the set of codes is small and fixed.
_CODECS: dict[int, multicodec.Multicodec] = {}
_HASHES: dict[int, multihash.Multihash] = {}


def _codec(code: int) -> multicodec.Multicodec:
    found = _CODECS.get(code)
    if found is None:
        try:
            found = multicodec.get(code=code)
        except Exception as exc:
            raise InvalidCid(f"unknown multicodec 0x{code:x}") from exc
        if found.tag != "ipld":
            raise InvalidCid(f"multicodec 0x{code:x} ({found.name}) is not an IPLD codec; no CID uses it")
        _CODECS[code] = found
    return found


def _hashfun(code: int) -> multihash.Multihash:
    found = _HASHES.get(code)
    if found is None:
        try:
            found = _HASHES[code] = multihash.get(code=code)
        except Exception as exc:
            raise InvalidCid(f"unknown multihash function 0x{code:x}") from exc
    return found


def cid_from_prefix(data: bytes | memoryview) -> tuple[CID, int]:
    """Read a binary CID at the start of `data`; return it and its length in bytes.

    Used for CAR sections and dag-pb links, once per block and link: the
    library's own decoder validates every argument at run time, which cost
    more than hashing the block, so known codecs take a direct path."""
    buf = memoryview(data)
    if len(buf) >= 34 and buf[0] == 0x12 and buf[1] == 0x20:
        version, codec, hash_code, start, end = 0, _DAG_PB, SHA2_256, 0, 34  # CIDv0: a bare sha2-256 multihash
        length = 32
    else:
        try:
            version, pos = read_uvarint(buf, 0, "CID version")
            if version != 1:
                if version == 0x12:
                    raise InvalidCid("truncated CIDv0: a sha2-256 multihash needs 34 bytes")
                raise InvalidCid(f"binary CID version {version} is not supported")
            codec, start = read_uvarint(buf, pos, "CID codec")
        except VarintError as exc:
            raise InvalidCid(str(exc)) from None
        hash_code, length, pos = read_multihash_header(buf, start)
        end = pos + length
        if end > len(buf):
            raise InvalidCid(f"binary CID declares a {length}-byte digest but only {len(buf) - pos} bytes follow")
    _validate(version, codec, hash_code, length)
    new_instance = getattr(CID, "_new_instance", None)
    if new_instance is not None:
        return new_instance(CID, _BASE58, version, _codec(codec), _hashfun(hash_code), bytes(buf[start:end])), end
    try:
        return CID.decode(bytes(buf[:end])), end
    except Exception as exc:
        raise InvalidCid(f"malformed binary CID: {exc}") from exc


def check_cid(cid: CID) -> CID:
    """Apply the same rules to a CID made elsewhere (a dag-cbor link, a CAR header root)."""
    code, digest = split_multihash(cid.digest)
    _validate(cid.version, cid.codec.code, code, len(digest))
    return cid


def block_key(cid: CID) -> bytes:
    """The multihash bytes: the identity of a block regardless of CID version or codec."""
    return bytes(cid.digest)


def cid_text(cid: CID) -> str:
    """The canonical spelling: base58btc for CIDv0, base32 for CIDv1 (as Kubo prints them)."""
    return str(cid) if cid.version == 0 else cid.encode("base32")
