"""IPNS: record verification against the spec's vectors and our own signed records,
resolution through real HTTP gateways on 127.0.0.1 (honest, lying, stale), chains
through DNSLink, and Kubo's name/resolve over its RPC wire format."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import aiohttp
import dag_cbor
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from agent.ipfs.cid import parse_cid
from agent.sources import ipns_keys
from agent.sources import ipns_record as ir
from agent.sources.dnslink import DnslinkResolution, resolve_dnslink
from agent.sources.ipns import (
    IpnsChainError,
    IpnsResolutionError,
    KuboResolveError,
    resolve_ipns,
    resolve_via_kubo,
)
from agent.sources.ipns_keys import (
    InvalidName,
    InvalidPublicKey,
    IpnsError,
    KeyMismatch,
    MalformedRecord,
    RecordExpired,
    RecordTooLarge,
    SignatureInvalid,
    UnsupportedValidity,
    V1Mismatch,
    ipns_name_for_key,
    parse_ipns_name,
)
from agent.sources.ipns_record import IPNS_RECORD_TYPE, build_ipns_record, verify_ipns_record
from tests.conftest import IPFS_FIXTURES
from tests.support.dns_server import TestDnsServer

CONFORMANCE = IPFS_FIXTURES / "gateway-conformance"
TODAY = datetime(2026, 11, 23, tzinfo=UTC)
INSIDE = datetime(2100, 1, 1, tzinfo=UTC)  # inside every fixture record's validity (EOLs are 2123-2126)
AFTER = datetime(2200, 1, 1, tzinfo=UTC)  # after all of them
CID_A = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
CID_B = "bafybeiaysi4s6lnjev27ln5icwm6tueaw2vdykrtjkwiphwekaywqhcjze"
CID_C = "bafkqaddwgevxmmraojswg33smq"


def fixture_records() -> list[Path]:
    return sorted(CONFORMANCE.glob("**/*.ipns-record"))


def name_of(path: Path) -> str:
    return re.split(r"[_.]", path.name)[0]


# The spec's vectors (ipns_records/): verdict and the error that must explain a rejection.
SPEC_VECTORS: dict[str, type[IpnsError] | None] = {
    "v1": SignatureInvalid,  # V1-only: no signatureV2, never accepted
    "v1-v2": None,
    "v1-v2-broken-v1-value": V1Mismatch,  # both signatures fine, V1 value differs from signed data
    "v1-v2-broken-signature-v2": SignatureInvalid,
    "v1-v2-broken-signature-v1": None,  # V1 signature is never checked
    "v2": None,
}


# --------------------------------------------------------- verification ----


@pytest.mark.parametrize("suffix", sorted(SPEC_VECTORS))
def test_spec_vectors(suffix: str) -> None:
    [path] = [p for p in (CONFORMANCE / "ipns_records").glob("*.ipns-record") if p.stem.split("_", 1)[1] == suffix]
    expected = SPEC_VECTORS[suffix]
    data = path.read_bytes()
    if expected is None:
        record = verify_ipns_record(name_of(path), data, now=INSIDE)
        assert record.value.startswith("/ipfs/") and record.sequence == 0 and record.ttl_ns == 1_800_000_000_000
        assert record.validity == datetime(2123, 8, 14, 12, 17, 3, 694052, tzinfo=UTC)
        assert verify_ipns_record(name_of(path), data) == record  # real now: still valid for a century
        with pytest.raises(RecordExpired, match=r"expired at 2123-08-14T12:17:03.694052Z"):
            verify_ipns_record(name_of(path), data, now=AFTER)
    else:
        with pytest.raises(expected):
            verify_ipns_record(name_of(path), data, now=INSIDE)


def test_spec_vector_values() -> None:
    """The values the spec's appendix names for the valid vectors."""
    base = CONFORMANCE / "ipns_records"
    v1v2 = next(base.glob("*_v1-v2.ipns-record"))
    broken_v1 = next(base.glob("*_v1-v2-broken-signature-v1.ipns-record"))
    assert verify_ipns_record(name_of(v1v2), v1v2.read_bytes()).value == "/ipfs/bafkqaddwgevxmmraojswg33smq"
    assert verify_ipns_record(name_of(broken_v1), broken_v1.read_bytes()).value == (
        "/ipfs/bafkqahtwgevxmmrao5uxi2bamjzg623fnyqhg2lhnzqxi5lsmuqhmmi"
    )


@pytest.mark.parametrize(
    "path", [p for p in fixture_records() if p.parent.name != "ipns_records"], ids=lambda p: p.name[:24]
)
def test_other_fixture_records_are_valid(path: Path) -> None:
    record = verify_ipns_record(name_of(path), path.read_bytes(), now=TODAY)
    assert record.value.startswith("/ipfs/")
    assert record.validity.year >= 2123  # valid today; the EOL check is exercised with `now` below
    with pytest.raises(RecordExpired):
        verify_ipns_record(name_of(path), path.read_bytes(), now=AFTER)
    if path.name.startswith("Qm"):
        assert record.key_type == "RSA"  # a hashed key: verified with the record's embedded pubKey


@pytest.mark.parametrize("path", fixture_records(), ids=lambda p: p.name[:24])
def test_protobuf_roundtrip_is_byte_identical(path: Path) -> None:
    """Our protobuf reader and writer agree with Go's serializer on every fixture."""
    data = path.read_bytes()
    fields = ipns_keys._read_protobuf(data, ir._ENTRY_FIELDS, "IpnsEntry")
    assert ir._encode_entry(fields) == data


def test_builder_reproduces_the_fixture_layout() -> None:
    """Our builder lays out data and V1 fields exactly as boxo did for the spec vector
    (signatures differ: we do not hold that key, so they are dropped from the comparison)."""
    path = next((CONFORMANCE / "ipns_records").glob("*_v1-v2.ipns-record"))
    theirs = ipns_keys._read_protobuf(path.read_bytes(), ir._ENTRY_FIELDS, "IpnsEntry")
    ours_bytes = build_ipns_record(
        ed25519.Ed25519PrivateKey.generate(),
        "/ipfs/bafkqaddwgevxmmraojswg33smq",
        0,
        datetime(2123, 8, 14, 12, 17, 3, 694052, tzinfo=UTC),
        timedelta(minutes=30),
    )
    ours = ipns_keys._read_protobuf(ours_bytes, ir._ENTRY_FIELDS, "IpnsEntry")
    assert ours[9] == theirs[9]  # the signed DAG-CBOR, byte for byte
    strip = {2, 8}
    assert {k: v for k, v in ours.items() if k not in strip} == {k: v for k, v in theirs.items() if k not in strip}
    assert len(ours_bytes) == len(path.read_bytes())


def test_name_spellings_normalise_to_one_name() -> None:
    k51 = "k51qzi5uqu5dk3v4rmjber23h16xnr23bsggmqqil9z2gduiis5se8dht36dam"
    b58 = "12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d"
    bafz = "bafzaajaiaejcbhltvusd6q2t7tm3lmke4vu4lieeerm25eihikbh3ncjntnm6t6o"
    for spelling in (k51, b58, bafz, f"/ipns/{b58}", f"ipns://{k51}", k51.upper()):
        assert parse_ipns_name(spelling).text == k51
    rsa_name = parse_ipns_name("QmVujd5Vb7moysJj8itnGufN7MEtPRCNHkKpNuA4onsRa3")
    assert rsa_name.inlined_key is None and rsa_name.text.startswith("k2k4r8")
    for bad in ["", "example.org", CID_B, "QmNotBase58!!", "k51qzi5uqu5dk3v4rmjber23h16x"]:
        with pytest.raises(InvalidName):
            parse_ipns_name(bad)


def test_record_checked_against_the_right_name() -> None:
    path = next((CONFORMANCE / "ipns_records").glob("*_v2.ipns-record"))
    other = ipns_name_for_key(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(SignatureInvalid):
        verify_ipns_record(other, path.read_bytes())
    rsa_path = CONFORMANCE / "subdomain_gateway" / "QmVujd5Vb7moysJj8itnGufN7MEtPRCNHkKpNuA4onsRa3.ipns-record"
    with pytest.raises(KeyMismatch, match="belongs to k2k4r8"):
        verify_ipns_record(other, rsa_path.read_bytes())
    # A hashed (RSA) name whose record lacks the embedded key cannot be verified.
    fields = ipns_keys._read_protobuf(rsa_path.read_bytes(), ir._ENTRY_FIELDS, "IpnsEntry")
    del fields[7]
    with pytest.raises(InvalidPublicKey, match="carries no pubKey"):
        verify_ipns_record("QmVujd5Vb7moysJj8itnGufN7MEtPRCNHkKpNuA4onsRa3", ir._encode_entry(fields))


def _keys() -> list[ipns_keys.PrivateKey]:
    return [
        ed25519.Ed25519PrivateKey.generate(),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec.generate_private_key(ec.SECP256K1()),
        ec.generate_private_key(ec.SECP256R1()),
    ]


def test_own_records_for_every_key_type() -> None:
    for key, key_type, inline in zip(
        _keys(), ["Ed25519", "RSA", "Secp256k1", "ECDSA"], [True, False, True, False], strict=True
    ):
        name = ipns_name_for_key(key)
        assert (name.inlined_key is not None) == inline
        for v1 in (True, False):
            data = build_ipns_record(
                key, f"/ipfs/{CID_A}/x", 7, TODAY + timedelta(days=1), timedelta(minutes=5), v1_compatible=v1
            )
            record = verify_ipns_record(name.text, data, now=TODAY)
            assert (record.value, record.sequence, record.ttl_ns, record.key_type) == (
                f"/ipfs/{CID_A}/x",
                7,
                300_000_000_000,
                key_type,
            )
            assert record.has_v1_fields == v1
    assert ipns_name_for_key(ed25519.Ed25519PrivateKey.generate()).text.startswith("k51")


def test_tampering_is_caught() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    name = ipns_name_for_key(key)
    good = build_ipns_record(key, f"/ipfs/{CID_A}", 1, TODAY + timedelta(days=1), timedelta(minutes=5))
    fields = ipns_keys._read_protobuf(good, ir._ENTRY_FIELDS, "IpnsEntry")

    def with_(**changes: int | bytes) -> bytes:
        numbers = {"value": 1, "sig1": 2, "vtype": 3, "validity": 4, "seq": 5, "ttl": 6, "pub": 7, "sig2": 8, "data": 9}
        return ir._encode_entry({**fields, **{numbers[k]: v for k, v in changes.items()}})

    data = fields[9]
    assert isinstance(data, bytes)
    flipped = bytearray(data)
    flipped[data.index(b"bafk") + 5] ^= 0x01
    with pytest.raises(SignatureInvalid):
        verify_ipns_record(name, with_(data=bytes(flipped)), now=TODAY)
    with pytest.raises(V1Mismatch, match="value"):
        verify_ipns_record(name, with_(value=f"/ipfs/{CID_B}".encode()), now=TODAY)
    with pytest.raises(V1Mismatch, match="sequence"):
        verify_ipns_record(name, with_(seq=99), now=TODAY)
    with pytest.raises(SignatureInvalid, match="no signatureV2"):
        verify_ipns_record(name, with_(sig2=b""), now=TODAY)
    with pytest.raises(RecordTooLarge):
        verify_ipns_record(name, good + b"\x00" * 10240, now=TODAY)
    with pytest.raises(MalformedRecord, match="appears twice"):
        verify_ipns_record(name, good + ir._encode_entry({1: f"/ipfs/{CID_B}".encode()}), now=TODAY)
    with pytest.raises(MalformedRecord):
        verify_ipns_record(name, b"\x0a\xff\xff", now=TODAY)
    bad_data = b"\xa1\x61"
    with pytest.raises(MalformedRecord, match="DAG-CBOR"):
        verify_ipns_record(
            name, ir._encode_entry({9: bad_data, 8: ipns_keys._sign(key, ir.SIGNATURE_V2_PREFIX + bad_data)}), now=TODAY
        )
    # Unknown fields are ignored (forward compatibility), as protobuf requires.
    assert verify_ipns_record(name, good + ir._encode_entry({15: b"future"}), now=TODAY).sequence == 1
    # A signed record with ValidityType 1 is refused: there is no such validity.
    odd = dag_cbor.encode(
        {
            "Value": f"/ipfs/{CID_A}".encode(),
            "Validity": b"2999-01-01T00:00:00Z",
            "ValidityType": 1,
            "Sequence": 1,
            "TTL": 1,
        }
    )
    with pytest.raises(UnsupportedValidity):
        verify_ipns_record(
            name, ir._encode_entry({9: odd, 8: ipns_keys._sign(key, ir.SIGNATURE_V2_PREFIX + odd)}), now=TODAY
        )


def test_own_expired_record_is_refused_with_real_now() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    old = build_ipns_record(key, f"/ipfs/{CID_A}", 3, datetime(2024, 5, 1, 12, tzinfo=UTC), timedelta(hours=1))
    with pytest.raises(RecordExpired, match="expired at 2024-05-01T12:00:00Z") as exc:
        verify_ipns_record(ipns_name_for_key(key), old)
    assert exc.value.validity == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert verify_ipns_record(ipns_name_for_key(key), old, now=datetime(2024, 4, 30, tzinfo=UTC)).sequence == 3


def test_rfc3339_nanoseconds_and_offsets() -> None:
    assert ir.parse_rfc3339("2126-01-31T15:56:12.714899293Z") == datetime(2126, 1, 31, 15, 56, 12, 714899, tzinfo=UTC)
    assert ir.parse_rfc3339("2030-01-01T02:00:00+02:00") == datetime(2030, 1, 1, tzinfo=UTC)
    assert ir.format_rfc3339(datetime(2030, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)) == "2030-01-01T00:00:00.5Z"
    for bad in ["2030-01-01", "2030-13-01T00:00:00Z", "tomorrow"]:
        with pytest.raises(UnsupportedValidity):
            ir.parse_rfc3339(bad)


# ----------------------------------------------------------- resolution ----


@dataclass
class RecordGateway:
    """A trustless gateway that serves IPNS records (whatever bytes it is given: it may lie)."""

    records: dict[str, bytes] = field(default_factory=dict)  # canonical k51 name -> record bytes
    content_type: str = IPNS_RECORD_TYPE
    status: int = 200
    requests: Counter[str] = field(default_factory=Counter)
    url: str = ""
    _runner: web.AppRunner | None = None

    def put(self, name: str, record: bytes) -> None:
        self.records[parse_ipns_name(name).text] = record

    async def handle(self, request: web.Request) -> web.Response:
        name = parse_ipns_name(request.match_info["name"]).text  # any spelling, as real gateways do
        self.requests[name] += 1
        if IPNS_RECORD_TYPE not in request.headers.get("Accept", ""):
            return web.Response(status=406, text="trustless requests only")
        if self.status != 200:
            return web.Response(status=self.status, text="nope")
        record = self.records.get(name)
        if record is None:
            return web.Response(status=404, text="no record")
        return web.Response(body=record, headers={"Content-Type": self.content_type})

    async def start(self) -> RecordGateway:
        app = web.Application()
        app.router.add_get("/ipns/{name}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def gateways() -> AsyncIterator[Callable[[], Awaitable[RecordGateway]]]:
    started: list[RecordGateway] = []

    async def factory() -> RecordGateway:
        gw = await RecordGateway().start()
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        await gw.stop()


def _fixture(suffix: str) -> tuple[str, bytes]:
    path = next((CONFORMANCE / "ipns_records").glob(f"*_{suffix}.ipns-record"))
    return name_of(path), path.read_bytes()


def _flip_in_value(record: bytes) -> bytes:
    """Flip one byte inside the V1 value and the signed data's Value (a gateway rewriting where a name points)."""
    out = bytearray(record)
    for start in [m.start() for m in re.finditer(rb"/ipfs/bafk", record)]:
        out[start + 12] ^= 0x01
    return bytes(out)


async def test_tampered_record_is_rejected_and_honest_gateway_used(
    session: aiohttp.ClientSession, gateways: Callable[[], Awaitable[RecordGateway]]
) -> None:
    name, record = _fixture("v1-v2")
    liar, honest = await gateways(), await gateways()
    liar.put(name, _flip_in_value(record))
    honest.put(name, record)
    got = await resolve_ipns(name, [liar.url, honest.url], session)
    assert got.cid == parse_cid(CID_C) and got.path == "" and got.gateway == honest.url and got.verified
    assert got.value == f"/ipfs/{CID_C}" and got.sequence == 0
    [rejection] = got.rejected
    assert rejection.gateway == liar.url and rejection.name == name and "SignatureInvalid" in rejection.reason
    # Only liars: nothing is believed, and the error says who lied.
    with pytest.raises(IpnsResolutionError, match="no gateway served a valid record") as exc:
        await resolve_ipns(name, [liar.url], session)
    assert exc.value.rejected[0].gateway == liar.url


async def test_spec_vectors_through_a_gateway(
    session: aiohttp.ClientSession, gateways: Callable[[], Awaitable[RecordGateway]]
) -> None:
    gw = await gateways()
    for suffix, expected in SPEC_VECTORS.items():
        name, record = _fixture(suffix)
        gw.put(name, record)
        if expected is None:
            assert (await resolve_ipns(name, [gw.url], session)).verified
        else:
            with pytest.raises(IpnsResolutionError, match=expected.__name__):
                await resolve_ipns(name, [gw.url], session)


async def test_highest_sequence_wins_and_updates_are_seen(
    session: aiohttp.ClientSession, gateways: Callable[[], Awaitable[RecordGateway]]
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    name = ipns_name_for_key(key).text
    eol = TODAY + timedelta(days=2)
    stale, fresh = await gateways(), await gateways()
    stale.put(name, build_ipns_record(key, f"/ipfs/{CID_A}", 1, eol, timedelta(minutes=5)))
    fresh.put(name, build_ipns_record(key, f"/ipfs/{CID_B}/site", 2, eol, timedelta(minutes=5)))
    first = await resolve_ipns(name, [stale.url, fresh.url], session, now=TODAY)
    assert (first.cid, first.path, first.sequence, first.gateway) == (parse_cid(CID_B), "/site", 2, fresh.url)
    # The publisher moves the name: the next poll sees the new value.
    stale.put(name, build_ipns_record(key, f"/ipfs/{CID_C}", 3, eol, timedelta(minutes=5)))
    second = await resolve_ipns(name, [stale.url, fresh.url], session, now=TODAY)
    assert (second.cid, second.sequence, second.gateway) == (parse_cid(CID_C), 3, stale.url)
    # A watcher that already saw sequence 3 refuses anything older (rollback / replay).
    stale.put(name, build_ipns_record(key, f"/ipfs/{CID_A}", 1, eol, timedelta(minutes=5)))
    with pytest.raises(IpnsResolutionError, match="stale record: sequence 2 < 3"):
        await resolve_ipns(name, [stale.url, fresh.url], session, now=TODAY, min_sequence=3)
    assert stale.requests[name] == 3 and fresh.requests[name] == 3


async def test_expired_records_are_not_believed(
    session: aiohttp.ClientSession, gateways: Callable[[], Awaitable[RecordGateway]]
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    name = ipns_name_for_key(key).text
    gw = await gateways()
    gw.put(name, build_ipns_record(key, f"/ipfs/{CID_A}", 5, TODAY - timedelta(days=1), timedelta(minutes=5)))
    with pytest.raises(IpnsResolutionError, match="RecordExpired") as exc:
        await resolve_ipns(name, [gw.url], session, now=TODAY)
    assert exc.value.rejected[0].gateway == gw.url
    ok = await resolve_ipns(name, [gw.url], session, now=TODAY - timedelta(days=2))
    assert ok.sequence == 5


async def test_gateway_failures_are_reported(
    session: aiohttp.ClientSession, gateways: Callable[[], Awaitable[RecordGateway]]
) -> None:
    name, record = _fixture("v2")
    html, missing, down, huge, good = [await gateways() for _ in range(5)]
    html.put(name, record)
    html.content_type = "text/html"
    down.status = 502
    huge.put(name, record + b"\x00" * 20000)
    good.put(name, record)
    urls = [html.url, missing.url, down.url, huge.url]
    with pytest.raises(IpnsResolutionError) as exc:
        await resolve_ipns(name, urls, session)
    answers = exc.value.answers
    assert "not application/vnd.ipfs.ipns-record" in answers[html.url]
    assert "404" in answers[missing.url] and "502" in answers[down.url]
    assert "limit 10240" in answers[huge.url]
    assert (await resolve_ipns(name, [*urls, good.url], session)).gateway == good.url


async def test_peer_id_spellings_and_rsa_names(
    session: aiohttp.ClientSession, gateways: Callable[[], Awaitable[RecordGateway]]
) -> None:
    gw = await gateways()
    for path in (CONFORMANCE / "subdomain_gateway").glob("*.ipns-record"):
        gw.put(name_of(path), path.read_bytes())
    ed = await resolve_ipns("12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d", [gw.url], session)
    assert ed.name == "k51qzi5uqu5dk3v4rmjber23h16xnr23bsggmqqil9z2gduiis5se8dht36dam"
    assert ed.cid == parse_cid(CID_A)
    rsa_res = await resolve_ipns("/ipns/QmVujd5Vb7moysJj8itnGufN7MEtPRCNHkKpNuA4onsRa3", [gw.url], session)
    assert rsa_res.cid == parse_cid(CID_A) and rsa_res.name.startswith("k2k4r8")


@pytest.fixture
async def dns_server() -> AsyncIterator[TestDnsServer]:
    async with TestDnsServer() as server:
        yield server


def _dnslink(server: TestDnsServer) -> Callable[[str], Awaitable[DnslinkResolution]]:
    return partial(resolve_dnslink, nameservers=["127.0.0.1"], port=server.port, timeout=2.0)


async def test_chains_through_names_and_dnslink(
    session: aiohttp.ClientSession, gateways: Callable[[], Awaitable[RecordGateway]], dns_server: TestDnsServer
) -> None:
    k1, k2, k3 = (ed25519.Ed25519PrivateKey.generate() for _ in range(3))
    n1, n2, n3 = (ipns_name_for_key(k).text for k in (k1, k2, k3))
    eol, ttl = TODAY + timedelta(days=1), timedelta(minutes=5)
    gw = await gateways()
    gw.put(n1, build_ipns_record(k1, f"/ipns/{n2}/a", 4, eol, ttl))
    gw.put(n2, build_ipns_record(k2, "/ipns/chain.example.org/b", 1, eol, ttl))
    dns_server.set("_dnslink.chain.example.org", f"dnslink=/ipns/{n3}/c")
    gw.put(n3, build_ipns_record(k3, f"/ipfs/{CID_B}/d", 9, eol, ttl))
    got = await resolve_ipns(n1, [gw.url], session, now=TODAY, dnslink=_dnslink(dns_server))
    assert got.cid == parse_cid(CID_B) and got.path == "/d/c/b/a"
    assert got.value == f"/ipns/{n2}/a" and got.sequence == 4  # what the first name's own record says
    assert got.chain == (
        f"/ipns/{n1}",
        f"/ipns/{n2}",
        "/ipns/chain.example.org",
        f"/ipns/{n3}",
        f"/ipfs/{CID_B}/d/c/b/a",
    )
    # A domain can be the starting point too.
    by_domain = await resolve_ipns("chain.example.org", [gw.url], session, now=TODAY, dnslink=_dnslink(dns_server))
    assert by_domain.cid == parse_cid(CID_B) and by_domain.path == "/d/c" and by_domain.sequence is None
    with pytest.raises(IpnsChainError, match="longer than 2"):
        await resolve_ipns(n1, [gw.url], session, now=TODAY, dnslink=_dnslink(dns_server), max_depth=2)
    gw.put(n3, build_ipns_record(k3, f"/ipns/{n1}", 10, eol, ttl))
    with pytest.raises(IpnsChainError, match="loops"):
        await resolve_ipns(n1, [gw.url], session, now=TODAY, dnslink=_dnslink(dns_server))


# ----------------------------------------------------------------- Kubo ----


@dataclass
class KuboRpc:
    """Kubo's RPC as it speaks on the wire: POST only, JSON answers, errors as HTTP 500 + {Message, Code, Type}."""

    paths: dict[str, str] = field(default_factory=dict)  # '/ipns/<name>' -> '/ipfs/...'
    calls: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def resolve(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405, text="405 - Method Not Allowed")
        self.calls.append(dict(request.query))
        path = self.paths.get(request.query.get("arg", ""))
        if path is None:
            return web.json_response({"Message": "could not resolve name", "Code": 0, "Type": "error"}, status=500)
        return web.json_response({"Path": path})

    async def start(self) -> KuboRpc:
        app = web.Application()
        app.router.add_route("*", "/api/v0/name/resolve", self.resolve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def test_kubo_name_resolve(session: aiohttp.ClientSession) -> None:
    kubo = await KuboRpc().start()
    try:
        k51 = "k51qzi5uqu5dk3v4rmjber23h16xnr23bsggmqqil9z2gduiis5se8dht36dam"
        kubo.paths[f"/ipns/{k51}"] = f"/ipfs/{CID_B}/wiki/index.html"
        kubo.paths["/ipns/en.wikipedia-on-ipfs.example.org"] = f"/ipfs/{CID_B}"
        got = await resolve_via_kubo("12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d", kubo.url, session)
        assert (got.cid, got.path, got.verified, got.gateway, got.sequence) == (
            parse_cid(CID_B),
            "/wiki/index.html",
            False,
            kubo.url,
            None,
        )
        assert kubo.calls[0] == {"arg": f"/ipns/{k51}", "recursive": "true"}
        assert (await resolve_via_kubo("En.Wikipedia-on-IPFS.example.org", kubo.url, session)).cid == parse_cid(CID_B)
        with pytest.raises(KuboResolveError, match="could not resolve name") as exc:
            await resolve_via_kubo("k51qzi5uqu5dlkw8pxuw9qmqayfdeh4kfebhmreauqdc6a7c3y7d5i9fi8mk9w", kubo.url, session)
        assert exc.value.status == 500 and exc.value.code == 0
        async with session.get(f"{kubo.url}/api/v0/name/resolve", params={"arg": f"/ipns/{k51}"}) as resp:
            assert resp.status == 405  # the server is faithful: Kubo's RPC refuses GET
        kubo.paths[f"/ipns/{k51}"] = "/ipns/not-resolved.example.org"
        with pytest.raises(KuboResolveError, match="ended at"):
            await resolve_via_kubo(k51, kubo.url, session)
    finally:
        await kubo.stop()
    with pytest.raises(KuboResolveError):
        await resolve_via_kubo("12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d", kubo.url, session)
