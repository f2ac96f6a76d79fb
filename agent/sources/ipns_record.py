"""IPNS records: parse, verify and build them, following the IPNS spec.

Spec: https://specs.ipfs.tech/ipns/ipns-record/ (Record Verification), with
boxo's `ipns` package as the reference where the spec is silent. A record is
believed only after every rule below held, checked in the spec's order and
failing on the first error:

1. the serialized IpnsEntry is at most 10 KiB (checked before parsing);
2. `signatureV2` and `data` are present and not empty;
3. the public key comes from `pubKey` (and must hash to the name) or, when
   absent, from the name's identity multihash;
4. `data` is a DAG-CBOR map;
5/6. `signatureV2` verifies over b"ipns-signature:" + data;
7. when `signatureV1` or `value` is present, every V1 protobuf field equals its
   copy in `data` (a V1 field is never used otherwise);
8. ValidityType is 0 (EOL) and the RFC 3339 EOL is not before `now`.

`signatureV1` is never verified: the spec forbids relying on it, so a broken
V1 signature beside a good V2 signature is a valid record.

Key types: Ed25519, RSA (PKCS#1 v1.5 over SHA-256, 2048-8192 bits, as
go-libp2p), secp256k1 and ECDSA (P-256/384/521), both DER signatures over
SHA-256. Keys are serialized as libp2p `PublicKey` protobufs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import dag_cbor

from agent.ipfs.protobuf import field_bytes, field_varint
from agent.sources.ipns_keys import (
    _MAX_INLINE_KEY,
    InvalidPublicKey,
    InvalidValue,
    IpnsName,
    KeyMismatch,
    KeyType,
    MalformedRecord,
    PrivateKey,
    PublicKey,
    RecordExpired,
    RecordTooLarge,
    SignatureInvalid,
    UnsupportedValidity,
    V1Mismatch,
    _key_data,
    _marshal_public_key,
    _name_multihash,
    _read_protobuf,
    _sign,
    _unmarshal_public_key,
    _verify_signature,
    parse_ipns_name,
)

__all__ = [
    "IPNS_RECORD_TYPE",
    "MAX_RECORD_BYTES",
    "IpnsRecord",
    "build_ipns_record",
    "format_rfc3339",
    "parse_rfc3339",
    "verify_ipns_record",
]

# The spec's size limit: implementations MUST accept records up to 10 KiB and
# MAY ignore larger ones; anything bigger is a way to waste our memory.
MAX_RECORD_BYTES = 10 * 1024
IPNS_RECORD_TYPE = "application/vnd.ipfs.ipns-record"
SIGNATURE_V2_PREFIX = b"ipns-signature:"


@dataclass(frozen=True)
class IpnsRecord:
    """What a verified record says. Only ever built from a record that passed every check."""

    value: str  # '/ipfs/<cid>[/path]' or '/ipns/<name>[/path]'
    sequence: int
    validity: datetime  # the EOL, UTC (nanoseconds truncated to microseconds)
    ttl_ns: int
    key_type: KeyType = "Ed25519"
    has_v1_fields: bool = False


# ------------------------------------------------------------- protobuf ----

# IpnsEntry field numbers and their wire types (0 varint, 2 length-delimited).
_ENTRY_FIELDS = {1: 2, 2: 2, 3: 0, 4: 2, 5: 0, 6: 0, 7: 2, 8: 2, 9: 2}
_FIELD_NAMES = {
    1: "value",
    2: "signatureV1",
    3: "validityType",
    4: "validity",
    5: "sequence",
    6: "ttl",
    7: "pubKey",
    8: "signatureV2",
    9: "data",
}


def _encode_entry(fields: dict[int, int | bytes]) -> bytes:
    """Fields in number order, as Go's protobuf marshaller writes them."""
    out = bytearray()
    for number in sorted(fields):
        value = fields[number]
        out += field_varint(number, value) if isinstance(value, int) else field_bytes(number, value)
    return bytes(out)


# ----------------------------------------------------------------- time ----

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\Z")


def parse_rfc3339(text: str) -> datetime:
    """RFC 3339 with up to nanosecond precision (Go's RFC3339Nano), as UTC.

    Python keeps microseconds, so extra digits are truncated: an EOL can look
    up to 999 ns earlier than it is, never later."""
    match = _RFC3339.match(text)
    if match is None:
        raise UnsupportedValidity(f"validity {text!r} is not an RFC 3339 timestamp")
    year, month, day, hour, minute, second, frac, zone = match.groups()
    micro = int((frac or "").ljust(6, "0")[:6])
    try:
        if zone == "Z":
            tz = UTC
        else:
            sign = 1 if zone[0] == "+" else -1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        stamp = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
        return stamp.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise UnsupportedValidity(f"validity {text!r} is not a real time: {exc}") from None


def format_rfc3339(when: datetime) -> str:
    """Go's time.RFC3339Nano for a UTC time: fraction without trailing zeros."""
    if when.tzinfo is None:
        raise ValueError("validity must be timezone-aware")
    when = when.astimezone(UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += "." + f"{when.microsecond:06d}".rstrip("0")
    return text + "Z"


# --------------------------------------------------------------- verify ----


def _cbor_bytes(data: Mapping[str, object], key: str) -> bytes:
    value = data.get(key)
    if not isinstance(value, bytes):
        raise MalformedRecord(f"data[{key}] is {'missing' if value is None else type(value).__name__}, expected bytes")
    return value


def _cbor_uint(data: Mapping[str, object], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedRecord(
            f"data[{key}] is {'missing' if value is None else type(value).__name__}, expected an integer"
        )
    if not 0 <= value < 1 << 63:  # boxo reads these as int64
        raise MalformedRecord(f"data[{key}] = {value} is outside 0..2^63-1")
    return value


def _public_key_for(name: IpnsName, pub_key_field: bytes | None) -> tuple[KeyType, PublicKey]:
    if pub_key_field:
        key_type, key = _unmarshal_public_key(pub_key_field, "record pubKey")
        expected = _name_multihash(_marshal_public_key(*_key_data(key)))
        if expected != name.multihash:
            raise KeyMismatch(
                f"the record's {key_type} public key belongs to {IpnsName(expected).text}, not to {name.text}"
            )
        return key_type, key
    inline = name.inlined_key
    if inline is None:
        raise InvalidPublicKey(
            f"{name.text} is a hash of its key (RSA/ECDSA) and the record carries no pubKey: cannot verify"
        )
    return _unmarshal_public_key(inline, f"key inlined in {name.text}")


def verify_ipns_record(
    name: str | IpnsName,
    record: bytes,
    *,
    now: datetime | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> IpnsRecord:
    """Verify a serialized IpnsEntry for `name`; return what it says, or raise an IpnsError subclass.

    `now` (timezone-aware) is the time the EOL is compared with; real time when None."""
    ipns_name = parse_ipns_name(name) if isinstance(name, str) else name
    # (1) size, before any parsing.
    if len(record) > max_record_bytes:
        raise RecordTooLarge(f"record of {len(record)} bytes exceeds the {max_record_bytes}-byte limit")
    fields = _read_protobuf(bytes(record), _ENTRY_FIELDS, "IpnsEntry")
    # (2) V2 signature and data are mandatory.
    signature_v2 = fields.get(8)
    data_bytes = fields.get(9)
    if not isinstance(data_bytes, bytes) or not data_bytes:
        if fields.get(2):
            raise SignatureInvalid("V1-only record (no signatureV2/data): V1 signatures are not accepted")
        raise MalformedRecord("record has no data field")
    if not isinstance(signature_v2, bytes) or not signature_v2:
        raise SignatureInvalid("record has no signatureV2")
    # (3) the key, bound to the name.
    pub_key_field = fields.get(7)
    key_type, key = _public_key_for(ipns_name, pub_key_field if isinstance(pub_key_field, bytes) else None)
    # (4) data is DAG-CBOR (strict: canonical key order, no trailing bytes).
    try:
        data = dag_cbor.decode(data_bytes)
    except Exception as exc:  # noqa: BLE001 - dag_cbor raises its own error types per failure
        raise MalformedRecord(f"data is not valid DAG-CBOR: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedRecord(f"data is a DAG-CBOR {type(data).__name__}, expected a map")
    # (5, 6) signatureV2 over the prefixed data.
    if not _verify_signature(key, signature_v2, SIGNATURE_V2_PREFIX + data_bytes):
        raise SignatureInvalid(f"signatureV2 does not verify with the {key_type} key of {ipns_name.text}")
    value_bytes = _cbor_bytes(data, "Value")
    validity_bytes = _cbor_bytes(data, "Validity")
    validity_type = _cbor_uint(data, "ValidityType")
    sequence = _cbor_uint(data, "Sequence")
    ttl = _cbor_uint(data, "TTL")
    # (7) legacy V1 copies must equal the signed values (a missing field counts as its default, as in boxo).
    has_v1 = bool(fields.get(2)) or bool(fields.get(1))
    if has_v1:
        checks: list[tuple[str, object, object]] = [
            ("value", fields.get(1, b""), value_bytes),
            ("validity", fields.get(4, b""), validity_bytes),
            ("validityType", fields.get(3, 0), validity_type),
            ("sequence", fields.get(5, 0), sequence),
            ("ttl", fields.get(6, 0), ttl),
        ]
        for field_name, v1, v2 in checks:
            if v1 != v2:
                raise V1Mismatch(f"V1 field {field_name} = {v1!r} differs from the signed data ({v2!r})")
    # (8) validity.
    if validity_type != 0:
        raise UnsupportedValidity(f"ValidityType {validity_type} is not supported (only 0, EOL)")
    try:
        validity_text = validity_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise UnsupportedValidity("validity is not ASCII") from None
    validity = parse_rfc3339(validity_text)
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if moment > validity:
        raise RecordExpired(
            f"record for {ipns_name.text} expired at {validity_text} (now {moment.isoformat()})", validity
        )
    try:
        value = value_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidValue("signed value is not UTF-8") from None
    if not value.startswith(("/ipfs/", "/ipns/")) or len(value) <= 6:
        raise InvalidValue(f"signed value {value[:100]!r} is not an /ipfs/ or /ipns/ path")
    return IpnsRecord(value, sequence, validity, ttl, key_type, has_v1)


# ---------------------------------------------------------------- build ----


def build_ipns_record(
    private_key: PrivateKey,
    value: str,
    sequence: int,
    validity: datetime,
    ttl: timedelta,
    *,
    v1_compatible: bool = True,
    embed_public_key: bool | None = None,
) -> bytes:
    """Create and sign a serialized IpnsEntry, as boxo's NewRecord does.

    `data` is canonical DAG-CBOR of Value, Validity, ValidityType=0, Sequence
    and TTL (ns); signatureV2 signs b"ipns-signature:" + data. With
    `v1_compatible` the legacy V1 copies and signatureV1 (over value +
    validity + b"0") are added. The public key is embedded when it cannot be
    inlined in the name (RSA, ECDSA) unless `embed_public_key` says otherwise."""
    if sequence < 0 or sequence >= 1 << 63:
        raise ValueError("sequence must be in 0..2^63-1")
    ttl_ns = (ttl.days * 86_400 + ttl.seconds) * 1_000_000_000 + ttl.microseconds * 1_000
    if ttl_ns < 0:
        raise ValueError("ttl must not be negative")
    value_bytes = value.encode("utf-8")
    validity_bytes = format_rfc3339(validity).encode("ascii")
    data = dag_cbor.encode(
        {"Value": value_bytes, "Validity": validity_bytes, "ValidityType": 0, "Sequence": sequence, "TTL": ttl_ns}
    )
    fields: dict[int, int | bytes] = {9: data, 8: _sign(private_key, SIGNATURE_V2_PREFIX + data)}
    if v1_compatible:
        fields.update({1: value_bytes, 3: 0, 4: validity_bytes, 5: sequence, 6: ttl_ns})
        fields[2] = _sign(private_key, value_bytes + validity_bytes + b"0")
    key_type, key_data = _key_data(private_key.public_key())
    serialized = _marshal_public_key(key_type, key_data)
    embed = embed_public_key if embed_public_key is not None else len(serialized) > _MAX_INLINE_KEY
    if embed:
        fields[7] = serialized
    record = _encode_entry(fields)
    if len(record) > MAX_RECORD_BYTES:
        raise ValueError(f"record would be {len(record)} bytes, over the {MAX_RECORD_BYTES}-byte limit")
    return record
