"""IPNS names and libp2p keys: what a name is, which key it names, signatures with that key.

A name is the multihash of a serialized libp2p `PublicKey` protobuf (inlined for
short keys, sha2-256 otherwise); agent.sources.ipns_record verifies the records
signed with those keys. The IPNS errors live here, at the bottom of both."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from multiformats import CID, multibase

from agent.ipfs.errors import InvalidMultihash, IpfsError
from agent.ipfs.multihash import IDENTITY_CODE, IDENTITY_MAX_DIGEST, SHA2_256, encode_multihash, split_multihash
from agent.ipfs.protobuf import field_bytes, field_varint, read_fields

LIBP2P_KEY_CODEC = 0x72
# go-libp2p inlines a serialized public key in the peer ID (identity multihash)
# when it is at most this long, and hashes it with sha2-256 otherwise.
_MAX_INLINE_KEY = 42
_RSA_MIN_BITS, _RSA_MAX_BITS = 2048, 8192  # go-libp2p's bounds

KeyType = Literal["RSA", "Ed25519", "Secp256k1", "ECDSA"]
_KEY_TYPES: dict[int, KeyType] = {0: "RSA", 1: "Ed25519", 2: "Secp256k1", 3: "ECDSA"}
_KEY_CODES: dict[KeyType, int] = {v: k for k, v in _KEY_TYPES.items()}

PublicKey = ed25519.Ed25519PublicKey | rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class IpnsError(IpfsError):
    """Base of every IPNS failure: the record or name is not believed."""


class InvalidName(IpnsError):
    """The string is not an IPNS name (a libp2p key CID or a peer ID)."""


class RecordTooLarge(IpnsError):
    """The serialized record exceeds the size limit (10 KiB by the spec)."""


class MalformedRecord(IpnsError):
    """The bytes are not a well-formed IpnsEntry, or a mandatory field is missing or mistyped."""


class SignatureInvalid(IpnsError):
    """signatureV2 is missing or does not verify with the name's key."""


class V1Mismatch(IpnsError):
    """A legacy V1 protobuf field differs from its signed copy in `data`."""


class KeyMismatch(IpnsError):
    """The record's embedded public key does not hash to the name."""


class InvalidPublicKey(IpnsError):
    """A public key could not be decoded, or none is available for the name."""


class UnsupportedKey(IpnsError):
    """A key type or curve this verifier does not implement."""


class UnsupportedValidity(IpnsError):
    """ValidityType other than 0 (EOL), or an EOL that is not RFC 3339."""


class RecordExpired(IpnsError):
    """The record's EOL is before `now`."""

    def __init__(self, message: str, validity: datetime) -> None:
        self.validity = validity
        super().__init__(message)


class InvalidValue(IpnsError):
    """The signed value is not a UTF-8 /ipfs/ or /ipns/ path."""


@dataclass(frozen=True)
class IpnsName:
    """An IPNS name: the multihash of a serialized libp2p public key."""

    multihash: bytes

    @property
    def text(self) -> str:
        """The canonical spelling: CIDv1, libp2p-key codec, base36 (`k51...` for Ed25519), as Kubo prints it."""
        return CID("base36", 1, LIBP2P_KEY_CODEC, self.multihash).encode("base36")

    @property
    def inlined_key(self) -> bytes | None:
        """The serialized public key when the multihash is `identity` (Ed25519, secp256k1)."""
        code, digest = split_multihash(self.multihash)
        return digest if code == IDENTITY_CODE else None

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------- names ----


def _check_name_multihash(mh: bytes, text: str) -> IpnsName:
    try:
        code, digest = split_multihash(mh)
    except InvalidMultihash as exc:
        raise InvalidName(f"{text!r}: malformed multihash: {exc}") from None
    if code == IDENTITY_CODE:
        if len(digest) > IDENTITY_MAX_DIGEST:
            raise InvalidName(f"{text!r}: identity multihash of {len(digest)} bytes is not a key")
    elif code == SHA2_256:
        if len(digest) != 32:
            raise InvalidName(f"{text!r}: sha2-256 digest of {len(digest)} bytes")
    else:
        raise InvalidName(f"{text!r}: multihash 0x{code:x} is neither identity nor sha2-256, so not a libp2p key")
    return IpnsName(mh)


def parse_ipns_name(text: str) -> IpnsName:
    """Parse `k51...`/`bafz...` (CIDv1 libp2p-key, any multibase) or a base58btc peer ID (`12D3KooW...`, `Qm...`).

    A leading `/ipns/` or `ipns://` is accepted. Follows go-libp2p's peer.Decode:
    strings starting with `1` or `Qm` are bare base58btc multihashes, anything
    else must be a CID with the libp2p-key codec."""
    name = text.strip()
    for prefix in ("ipns://", "/ipns/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    name = name.rstrip("/")
    if not name:
        raise InvalidName("empty IPNS name")
    if len(name) > 256:
        raise InvalidName(f"IPNS name of {len(name)} characters is too long")
    if "/" in name or "." in name:
        raise InvalidName(f"{text!r} is not an IPNS key name (a domain is resolved through DNSLink)")
    if name.startswith(("1", "Qm")):
        try:
            mh = bytes(multibase.get("base58btc").raw_decoder(name))
        except Exception as exc:  # noqa: BLE001 - the decoder raises several unrelated types for bad input
            raise InvalidName(f"{text!r} is not a base58btc peer ID: {exc}") from None
        return _check_name_multihash(mh, text)
    try:
        cid = CID.decode(name)
    except Exception as exc:  # noqa: BLE001 - multiformats raises KeyError/ValueError/its own types
        raise InvalidName(f"{text!r} is not an IPNS name: {exc}") from None
    if cid.version != 1 or cid.codec.code != LIBP2P_KEY_CODEC:
        raise InvalidName(f"{text!r} is a CID with codec {cid.codec.name}, not libp2p-key (0x72): not an IPNS name")
    return _check_name_multihash(bytes(cid.digest), text)


# ----------------------------------------------------------------- keys ----


def _marshal_public_key(key_type: KeyType, data: bytes) -> bytes:
    """libp2p PublicKey protobuf: Type (field 1, varint, always written) + Data (field 2)."""
    return field_varint(1, _KEY_CODES[key_type]) + field_bytes(2, data)


def _key_data(key: PublicKey) -> tuple[KeyType, bytes]:
    """Key type and the canonical `Data` bytes go-libp2p would produce for this key."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if isinstance(key.curve, ec.SECP256K1):
        return "Secp256k1", key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    return "ECDSA", key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _name_multihash(serialized_key: bytes) -> bytes:
    if len(serialized_key) <= _MAX_INLINE_KEY:
        return encode_multihash(IDENTITY_CODE, serialized_key)
    return encode_multihash(SHA2_256, hashlib.sha256(serialized_key).digest())


def ipns_name_for_key(key: PublicKey | PrivateKey) -> IpnsName:
    """The IPNS name (peer ID) of a key, derived as go-libp2p's IDFromPublicKey."""
    public = (
        key
        if isinstance(key, (ed25519.Ed25519PublicKey, rsa.RSAPublicKey, ec.EllipticCurvePublicKey))
        else key.public_key()
    )
    key_type, data = _key_data(public)
    return IpnsName(_name_multihash(_marshal_public_key(key_type, data)))


def _unmarshal_public_key(serialized: bytes, where: str) -> tuple[KeyType, PublicKey]:
    try:
        fields = _read_protobuf(serialized, {1: 0, 2: 2}, "PublicKey")
    except MalformedRecord as exc:
        raise InvalidPublicKey(f"{where}: {exc}") from None
    code, data = fields.get(1), fields.get(2)
    if not isinstance(code, int) or not isinstance(data, bytes):
        raise InvalidPublicKey(f"{where}: PublicKey protobuf lacks its Type or Data field")
    key_type = _KEY_TYPES.get(code)
    if key_type is None:
        raise UnsupportedKey(f"{where}: unknown libp2p key type {code}")
    try:
        if key_type == "Ed25519":
            if len(data) != 32:
                raise InvalidPublicKey(f"{where}: Ed25519 key of {len(data)} bytes, expected 32")
            return key_type, ed25519.Ed25519PublicKey.from_public_bytes(data)
        if key_type == "Secp256k1":
            return key_type, ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), data)
        loaded = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidPublicKey(f"{where}: {key_type} key does not decode: {exc}") from None
    if key_type == "RSA":
        if not isinstance(loaded, rsa.RSAPublicKey):
            raise InvalidPublicKey(f"{where}: key typed RSA holds a {type(loaded).__name__}")
        if not _RSA_MIN_BITS <= loaded.key_size <= _RSA_MAX_BITS:
            raise UnsupportedKey(
                f"{where}: RSA key of {loaded.key_size} bits (accepted: {_RSA_MIN_BITS}-{_RSA_MAX_BITS})"
            )
        return key_type, loaded
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise InvalidPublicKey(f"{where}: key typed ECDSA holds a {type(loaded).__name__}")
    if not isinstance(loaded.curve, (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)):
        raise UnsupportedKey(f"{where}: ECDSA curve {loaded.curve.name} (go-libp2p accepts P-256/384/521)")
    return key_type, loaded


def _verify_signature(key: PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def _sign(key: PrivateKey, message: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(message, ec.ECDSA(hashes.SHA256()))


def _read_protobuf(buf: bytes, known: dict[int, int], what: str) -> dict[int, int | bytes]:
    """A flat protobuf message read by the one reader (agent.ipfs.protobuf), failing as MalformedRecord."""
    return read_fields(buf, known, what, MalformedRecord)
