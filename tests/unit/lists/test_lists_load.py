"""Loading list files and directories, format detection, and bounded download."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agent.lists.detect import ListFormat, detect_format
from agent.lists.fetch import ListTooLarge, fetch_list
from agent.lists.limits import ParseLimits
from agent.lists.load import load_list, parse_list_bytes
from agent.model.signals import SignalType
from tests.conftest import FIXTURES as FIXTURES_ROOT

FIXTURES = FIXTURES_ROOT
PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
CID = "bafybeihvvulpp4evxj7x7armbqcyg6uezzuig6jp3lktpbovlqfkuqeuoq"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("x.deny", "anything", ListFormat.DENYLIST),
        ("x.csv", "anything", ListFormat.TE_CSV),
        ("x.json", "anything", ListFormat.TCAP_JSON),
        ("list.txt", f"# c\npdq {PDQ}\n", ListFormat.PLAIN),
        ("list.txt", f"{PDQ}\n", ListFormat.PLAIN),
        ("list.txt", f"pdq,{PDQ},c,cat,tags\n", ListFormat.TE_CSV),
        ("list.txt", "signal_type,signal_str,collab,category,tags\n", ListFormat.TE_CSV),
        ("video.txt", f"0,100,{PDQ},0.000\n", ListFormat.VPDQ),
        ("rules", f"/ipfs/{CID}\n", ListFormat.DENYLIST),
        ("rules", "version: 1\nname: x\n---\n", ListFormat.DENYLIST),
        ("page", ' {"results": []}', ListFormat.TCAP_JSON),
    ],
)
def test_detect_format(name: str, content: str, expected: ListFormat) -> None:
    assert detect_format(name, content.encode()) is expected


def test_load_the_reference_denylist_file() -> None:
    result = load_list(FIXTURES / "ipfs" / "denylists" / "nopfs-test.deny")
    assert result.problems == () and result.list.entries == ()
    assert result.list.name == "nopfs-test"
    decision = result.denylist.check_cid("QmesfgDQ3q6prBy2Kg2gKbW4MAGuWiRP2DVuGA5MZSERLo")
    assert decision is not None and decision.blocked


def test_load_a_directory_of_mixed_lists(tmp_path: Path) -> None:
    (tmp_path / "a-te.csv").write_text(f"signal_type,signal_str,collab,category,tags\npdq,{PDQ},g,t,x\n")
    (tmp_path / "b-hma.txt").write_text(f"md5 {MD5}\nmd5 bad\n")
    page = {
        "count": 1,
        "next": None,
        "checkpoint": "c",
        "results": [{"id": 9, "hash_digest": "ab" * 32, "algorithm": "SHA256", "deleted": False}],
    }
    (tmp_path / "c-tcap.json").write_text(json.dumps(page))
    (tmp_path / "d-bad.deny").write_text(f"/ipfs/{CID}\n/ipfs/nope\n")
    (tmp_path / "README.md").write_text("pdq not-a-hash\n")
    (tmp_path / ".hidden.txt").write_text("garbage\n")

    result = load_list(tmp_path, name="partner")
    assert result.list.name == "partner"
    assert sorted((e.signal_type, e.source.rsplit("/", 1)[-1]) for e in result.list.entries) == [
        (SignalType.MD5, "b-hma.txt"),
        (SignalType.PDQ, "a-te.csv"),
        (SignalType.SHA256, "c-tcap.json"),
    ]
    assert all(e.list_name == "partner" for e in result.list.entries)
    assert [(Path(p.source).name, p.line) for p in result.problems] == [("b-hma.txt", 2), ("d-bad.deny", 2)]
    assert result.denylist.check_cid(CID) is not None


def test_bare_values_with_default_type(tmp_path: Path) -> None:
    path = tmp_path / "pdq-hashes.txt"
    path.write_text(f"{PDQ}\n")
    result = load_list(path, default_type=SignalType.PDQ)
    assert [(e.signal_type, e.value, e.line) for e in result.list.entries] == [(SignalType.PDQ, PDQ, 1)]


def test_oversized_file_is_a_problem_and_the_rest_still_loads(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text(f"md5 {MD5}\n" * 100)
    (tmp_path / "small.txt").write_text(f"pdq {PDQ}\n")
    result = load_list(tmp_path, limits=ParseLimits(max_bytes=1000))
    assert [e.signal_type for e in result.list.entries] == [SignalType.PDQ]
    assert Path(result.problems[0].source).name == "big.txt" and "1000" in result.problems[0].message


def test_missing_path_raises_an_error_that_says_what_is_missing(tmp_path: Path) -> None:
    # The daemon's list sync logs str(exc): it must say more than the bare name.
    with pytest.raises(FileNotFoundError) as caught:
        load_list(tmp_path / "nope")
    assert str(caught.value) == f"[Errno 2] no such file or directory: '{tmp_path / 'nope'}'"


def test_parse_downloaded_bytes() -> None:
    result = parse_list_bytes(f"md5,{MD5},c,,\n".encode(), source="https://lists.example/te.csv", name="te")
    assert [e.value for e in result.list.entries] == [MD5]


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    async def small(request: web.Request) -> web.Response:
        return web.Response(body=f"md5 {MD5}\n".encode())

    async def declared_big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    async def streamed_big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length to trust
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"y" * 1000)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/small.txt", small)
    app.router.add_get("/big", declared_big)
    app.router.add_get("/stream", streamed_big)
    srv = TestServer(app, host="127.0.0.1")
    async with srv:  # __aenter__ is typed as returning the base class
        yield srv


async def test_fetch_list_returns_body_within_limit(server: TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        body = await fetch_list(str(server.make_url("/small.txt")), session, max_bytes=1000)
    assert body == f"md5 {MD5}\n".encode()


@pytest.mark.parametrize("path", ["/big", "/stream"])
async def test_fetch_list_stops_past_the_limit(server: TestServer, path: str) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ListTooLarge):
            await fetch_list(str(server.make_url(path)), session, max_bytes=4096)


async def test_fetch_list_raises_on_http_error(server: TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientResponseError):
            await fetch_list(str(server.make_url("/missing")), session, max_bytes=4096)
