"""Every target spelling the scan command documents."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from agent.model.target import TargetError, TargetKind
from agent.sources.targets import parse_gateway_url, parse_target, parse_watch_target

CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"


@pytest.mark.parametrize(
    ("text", "path", "hint"),
    [
        (f"ipfs://{CID}", (), None),
        (f"ipfs://{CID}/a/b.jpg", ("a", "b.jpg"), None),
        (f"/ipfs/{CID}/a", ("a",), None),
        (CID, (), None),
        (f"https://gw.example/ipfs/{CID}/x%20y.png", ("x y.png",), "https://gw.example"),
        (f"https://{CID}.ipfs.gw.example/dir/", ("dir",), "https://gw.example"),
        (f"http://{CID}.ipfs.localhost:8080/", (), "http://localhost:8080"),
    ],
)
def test_ipfs_target_forms(text: str, path: tuple[str, ...], hint: str | None) -> None:
    target = parse_target(text)
    assert target.kind == TargetKind.IPFS and str(target.cid) == CID
    assert target.path == path and target.gateway_hint == hint


K51 = "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8"


@pytest.mark.parametrize(
    ("text", "kind", "name", "path", "hint"),
    [
        (f"ipns://{K51}", TargetKind.IPNS, K51, (), None),
        (f"/ipns/{K51}/a/b.jpg", TargetKind.IPNS, K51, ("a", "b.jpg"), None),
        ("ipns://Docs.Example.org/x", TargetKind.DNSLINK, "docs.example.org", ("x",), None),
        ("dnslink://docs.example.org./a%20b", TargetKind.DNSLINK, "docs.example.org", ("a b",), None),
        (f"https://gw.example/ipns/{K51}/x", TargetKind.IPNS, K51, ("x",), "https://gw.example"),
        (f"http://{K51}.ipns.localhost:8080/d/", TargetKind.IPNS, K51, ("d",), "http://localhost:8080"),
        (
            "https://en-wikipedia--on--ipfs-org.ipns.gateway.example/",
            TargetKind.DNSLINK,
            "en.wikipedia-on-ipfs.org",
            (),
            "https://gateway.example",
        ),
    ],
)
def test_ipns_names_and_dnslink_domains_are_one_off_scan_targets(
    text: str, kind: TargetKind, name: str, path: tuple[str, ...], hint: str | None
) -> None:
    """A name or domain in any documented spelling is a target a scan resolves, not a refusal."""
    target = parse_target(text)
    assert (target.kind, target.name, target.path, target.gateway_hint) == (kind, name, path, hint)
    assert target.text == text and target.cid is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"ipns://{K51}/../etc", "not allowed"),
        ("ipns://", "no IPNS name or DNSLink domain"),
        (f"dnslink://{K51}", "is not a DNS name"),
        ("/ipns/exa%0Ample.org", "neither an IPNS key nor a DNS name"),
    ],
)
def test_a_name_target_that_names_nothing_is_refused_with_a_reason(text: str, message: str) -> None:
    """Bad names and content paths are refused before anything is resolved, in words."""
    with pytest.raises(TargetError, match=message):
        parse_target(text)


def test_local_car_and_local_paths(tmp_path: Path) -> None:
    car = tmp_path / "x.car"
    car.write_bytes(b"")
    assert parse_target(str(car)).kind == TargetKind.CAR_FILE
    assert parse_target(str(tmp_path)).kind == TargetKind.LOCAL


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("ipfs://nope", "not a valid CID"),
        (f"ipfs://{CID}/../etc", "not allowed"),
        ("https://example.org/some/page", "not a path"),
        ("ipns://not a name", "neither an IPNS key nor a DNS name"),
        ("/no/such/file.car", "no such file or directory"),
    ],
)
def test_unusable_targets_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        parse_target(text)


# -- hostile and mistyped strings: always a TargetError that says what is wrong, in words --

LONG = "a" * 300


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # issue 9 item 13: each of these used to end in a traceback
        ("http://[::1/ipfs/bafkqaaa", r"'\[' or '\]' in the host is not matched"),
        ("http://::1]/ipfs/bafkqaaa", r"'\[' or '\]' in the host is not matched"),
        ("http://[zz]/ipfs/bafkqaaa", "not an IPv6 address"),
        ("https://bafkqaaa.ipfs.example:99999/", "port 99999 is out of range"),
        ("http://127.0.0.1:99999/ipfs/bafkqaaa", "port 99999 is out of range"),
        ("http://127.0.0.1:0/ipfs/bafkqaaa", "port 0 is out of range"),
        ("http://127.0.0.1:abc/ipfs/bafkqaaa", "port 'abc' is not a number"),
        ("http://h:" + "9" * 5000 + "/ipfs/bafkqaaa", "out of range"),
        ("~nosuchuser/x.car", "no user 'nosuchuser'"),
        (LONG, "is not a valid CID"),
        ("./" + LONG + ".car", "too long to be a file name"),
        ("/tmp/" + LONG, "too long to be a file name"),
        # issue 8 item 12: the reason in words
        ("./nope.car", "no such file or directory"),
        ("nope.car", "no such file or directory"),
        ("bafyNOTACID", "not a valid CID .*do not end on a whole byte"),
        ("bafy-this-is-not-a-cid", r"character '-' \(position 5\) is not base32"),
        ("QmShort", "CIDv0 .* is exactly 46 base58btc characters; this one has 7"),
        ("QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rt0", "character '0' .* is not base58btc"),
        ("hello", "'h' is none of these"),
        ("k2abc", "too short to be a CID"),
        ("mAXASIA", "hash should be 32 bytes but 0 follow"),
        ("z" * 2000, "far longer than any CID"),
        (f"{CID}/a.jpg", "write ipfs://"),
        # more hostile spellings
        ("ipfs://", "no CID"),
        ("/ipfs/", "no CID"),
        ("http://127.0.0.1/ipfs/", "no CID"),
        ("https:///ipfs/bafkqaaa", "names no host"),
        ("http://exa mple/ipfs/bafkqaaa", "' ' cannot appear in a host name"),
        ("http://ex\uff0fample/ipfs/bafkqaaa", "Unicode normalisation"),
        (f"ipfs://{CID}/a%2Fb", "encoded '/'"),
        (f"ipfs://{CID}/a%00b", "control character"),
        (f"ipfs://{CID}/%2e%2e/x", "not allowed"),
        ("bafkqaaa\x00.car", "control character"),
        ("x\x1b[31mred", "control character"),
        ("file:///etc/passwd", "file:// is not a scheme"),
        ("kubo://127.0.0.1:5001", "watched by the daemon"),
        ("dnslink://not_a.domain", "is not a DNS name"),
        ("https://k51qzi5uqu5d.ipns.gw.example/", "IPNS"),
        ("http://127.0.0.1/ipns/k51qzi5uqu5d", "IPNS"),
        ("x" * 10_000, "at most 8192 characters"),
        ("~\ud800/x.car", "names no directory|home directory"),
        ("\udcff.car", "no such file"),  # how Python passes on a file name that is not UTF-8
    ],
)
def test_hostile_targets_are_refused_with_a_reason_in_words(text: str, message: str) -> None:
    with pytest.raises(TargetError, match=message) as caught:
        parse_target(text)
    # Quoted, escaped and cut: a message never carries raw control bytes or a huge argument back.
    assert len(str(caught.value)) < 600
    assert not any(ord(c) < 32 for c in str(caught.value))
    assert "Pad bits" not in str(caught.value) and "multibase prefix '.'" not in str(caught.value)


def test_devices_and_pipes_are_refused_not_read_for_ever(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.car"
    os.mkfifo(fifo)
    for special in (str(fifo), "/dev/zero"):
        with pytest.raises(TargetError, match="not a regular file or directory"):
            parse_target(special)


def test_a_path_gateway_under_an_ipfs_named_host_is_still_a_path_gateway() -> None:
    target = parse_target("https://gw.ipfs.example/ipfs/bafkqaaa/x")
    assert str(target.cid) == "bafkqaaa" and target.path == ("x",)
    assert target.gateway_hint == "https://gw.ipfs.example"


def test_ipv6_gateway_url_target_keeps_its_brackets() -> None:
    target = parse_target("http://[::1]:8080/ipfs/bafkqaaa")
    assert target.gateway_hint == "http://[::1]:8080"


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://gw.example/", "https://gw.example"),
        ("HTTP://[::1]:80", "http://[::1]:80"),
    ],
)
def test_gateway_urls_are_accepted(text: str, url: str) -> None:
    assert parse_gateway_url(text) == url


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not-a-url", "http:// or https:// URL"),
        ("127.0.0.1:8080", "http:// or https:// URL"),
        ("ftp://gw.example", "http:// or https:// URL"),
        ("https://gw.example/ipfs/", "only scheme://host"),
        ("http://gw.example?x=1", "only scheme://host"),
        ("http://user:secret@gw.example", "user name or password"),
        ("http://gw.example:99999", "out of range"),
        ("http://[::1", "not matched"),
        ("http://", "no host"),
    ],
)
def test_bad_gateway_urls_are_refused(text: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        parse_gateway_url(text)


def test_random_hostile_strings_only_ever_raise_target_error(tmp_path: Path) -> None:
    """Seeded, so a failure reproduces: strings built from the pieces that broke parsers before."""
    import random

    pieces = [
        "http://",
        "https://",
        "ipfs://",
        "/ipfs/",
        "ipns://",
        "[",
        "]",
        "::1",
        ":",
        ":99999",
        ":0",
        "@",
        "~",
        "~nosuchuser",
        "/",
        "%2F",
        "%00",
        "%",
        "..",
        ".",
        ".ipfs.",
        "bafkqaaa",
        "Qm",
        "k2",
        "z",
        "f01",
        "\uff0f",
        "\u00e9",
        "\x00",
        "\n",
        "?",
        "#",
        " ",
        "a" * 300,
        "9" * 50,
        CID,
        "-",
        "\ud800",
        "\udcff",
        "\u200b",
        "%ed%a0%80",
        "[::1]",
        "%25",
        ":8080",
        "m",
        "u",
        "B",
        "K",
    ]
    rng = random.Random(20261201)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        try:
            parse_target(text)
        except TargetError as exc:
            message = str(exc)
        else:
            continue
        assert len(message) < 600
        with contextlib.suppress(TargetError):
            parse_gateway_url(text)


# The url a watch target is stored under: rows written by earlier versions must keep matching.
@pytest.mark.parametrize(
    ("text", "kind", "url"),
    [
        ("kubo://127.0.0.1:5001", "kubo", "kubo://127.0.0.1:5001"),
        ("http://127.0.0.1:5001/api/v0", "kubo", "http://127.0.0.1:5001"),
        (
            "arweave+https://gw.example/graphql?Content-Type=image/png,image/jpeg&App-Name=X&min_height=5",
            "arweave",
            "arweave+https://gw.example/graphql?App-Name=X&Content-Type=image/jpeg,image/png&min_height=5",
        ),
        ("dnslink://Docs.Example.org./a/b/", "dnslink", "dnslink://docs.example.org/a/b"),
        ("/ipns/docs.example.org", "dnslink", "dnslink://docs.example.org"),
        (f"ipns://{CID}/x", "ipns", f"ipns://{CID}/x"),
        (f"/ipfs/{CID}/a/b", "ipfs", f"ipfs://{CID}/a/b"),
        (CID, "ipfs", f"ipfs://{CID}"),
    ],
)
def test_a_watch_target_keeps_its_stored_url_and_kind(text: str, kind: str, url: str) -> None:
    target = parse_watch_target(text)
    assert (target.kind.value, target.url) == (kind, url)


def test_an_arweave_target_reads_its_tags_and_block_floor() -> None:
    target = parse_watch_target("arweave+http://127.0.0.1:1984/gql?App-Name=a,b&min_height=12")
    assert target.name == "http://127.0.0.1:1984" and target.endpoint_path == "/gql"
    assert target.tags == {"App-Name": ["a", "b"]} and target.min_height == 12


@pytest.mark.parametrize(
    "text",
    [
        "arweave+https://gw.example/graphql",
        "arweave+https://gw.example/graphql?A=b&min_height=ten",
        "dnslink://not a name",
    ],
)
def test_a_watch_target_that_names_nothing_says_why(text: str) -> None:
    with pytest.raises(TargetError):
        parse_watch_target(text)


def test_local_files_are_not_watched(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="not watched"):
        parse_watch_target(str(tmp_path))
