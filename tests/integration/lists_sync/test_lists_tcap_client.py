"""TcapClient against a real TCAP-like API on 127.0.0.1: paging, checkpoints,
deletions that stop matching, refusals, rate limits, server errors, and a
token that never leaks."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import AsyncIterator

import aiohttp
import pytest
import structlog

from agent.lists.matcher import MatchIndex
from agent.lists.model import HashList
from agent.lists.tcap_client import ListSyncError, TcapClient, TcapPull
from agent.model.signals import Signal, SignalType
from tests.support.media_dag import expected_pdq, hamming
from tests.support.tcap_server import TcapServer

ORIGINAL = "pdq/bridge-mods/aaa-orig.jpg"
EDITED = "pdq/bridge-mods/blur-a-lot.jpg"  # a near copy of ORIGINAL: what a platform would see
ROTATED = ("pdq/dihedral/bridge-2-rotate-90.jpg", "pdq/dihedral/bridge-3-rotate-180.jpg")


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
async def server() -> AsyncIterator[TcapServer]:
    srv = TcapServer(page_size=2)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Sleeps:
    """Records the delays the client asks for instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def seed(server: TcapServer) -> dict[str, int]:
    """Six records: three pages of two."""
    pdq = expected_pdq()
    return {
        "original": server.add(pdq[ORIGINAL][0], "PDQ"),
        "md5-a": server.add(md5("a"), "MD5", file_type="mp4"),
        "sha-b": server.add(sha256("b"), "SHA256", ideology="Far-Right", file_type="pdf"),
        "rot90": server.add(pdq[ROTATED[0]][0], "PDQ"),
        "md5-c": server.add(md5("c"), "MD5", file_type="mp4"),
        "rot180": server.add(pdq[ROTATED[1]][0], "PDQ"),
    }


def query_signal() -> Signal:
    value, quality = expected_pdq()[EDITED]
    return Signal(SignalType.PDQ, value, quality=quality)


async def test_first_pull_pages_through_everything_and_the_next_only_gets_changes_incl_a_deletion(
    server: TcapServer, http: aiohttp.ClientSession
) -> None:
    ids = seed(server)
    client = TcapClient(server.url, server.token, http, sleep=Sleeps())

    first = await client.pull(HashList("tcap"), None)

    assert first.pages == 3 and first.complete
    assert len(first.list.live_entries()) == 6 and len(first.added) == 6 and first.removed == ()
    assert first.checkpoint == f"{server.records[ids['rot180']]['updated_on']},{ids['rot180']}"
    assert [r.query.get("after") for r in server.requests] == [None, None, None]
    assert [r.query.get("offset") for r in server.requests] == [None, "2", "4"]
    assert all(r.query.get("order") == "asc" for r in server.requests)
    original = next(e for e in first.list.entries if e.entry_id == f"tcap:{ids['original']}")
    assert original.labels == ("ideology:Islamist", "file_type:png")
    # The edited copy matches the original's entry at its true distance.
    pdq = expected_pdq()
    matches = MatchIndex([first.list]).match([query_signal()])
    assert [(m.entry_id, m.distance) for m in matches] == [
        (f"tcap:{ids['original']}", hamming(pdq[EDITED][0], pdq[ORIGINAL][0]))
    ]

    server.delete(ids["original"])
    new_id = server.add(md5("d"), "MD5", file_type="mp4")
    server.requests.clear()

    second = await client.pull(first.list, first.checkpoint)

    assert [r.query.get("after") for r in server.requests] == [first.checkpoint]
    assert second.pages == 1
    assert [e.entry_id for e in second.added] == [f"tcap:{new_id}"]
    assert second.removed == (f"tcap:{ids['original']}",)
    assert len(second.list.live_entries()) == 6
    assert second.checkpoint == f"{server.records[new_id]['updated_on']},{new_id}"
    assert MatchIndex([second.list]).match([query_signal()]) == []

    # Nothing changed since: one request, nothing added or removed, checkpoint kept.
    server.requests.clear()
    third = await client.pull(second.list, second.checkpoint)
    assert (third.pages, third.added, third.removed, third.checkpoint) == (1, (), (), second.checkpoint)


async def test_keyset_paging_sends_each_pages_checkpoint_and_sees_the_same_list(
    server: TcapServer, http: aiohttp.ClientSession
) -> None:
    seed(server)
    by_next = await TcapClient(server.url, server.token, http).pull(HashList("tcap"), None)
    server.requests.clear()
    by_key = await TcapClient(server.url, server.token, http, paging="checkpoint").pull(HashList("tcap"), None)
    assert by_key.pages == 3 and set(by_key.list.entries) == set(by_next.list.entries)
    assert by_key.checkpoint == by_next.checkpoint
    afters = [r.query.get("after") for r in server.requests]
    assert afters[0] is None and all(afters[1:]) and all("offset" not in r.query for r in server.requests)


async def test_a_checkpoint_only_on_the_last_page_is_enough_when_following_next(
    http: aiohttp.ClientSession,
) -> None:
    srv = TcapServer(page_size=2, checkpoint_every_page=False)
    await srv.start()
    try:
        ids = seed(srv)
        pull = await TcapClient(srv.url, srv.token, http).pull(HashList("tcap"), None)
        assert pull.pages == 3
        assert pull.checkpoint == f"{srv.records[ids['rot180']]['updated_on']},{ids['rot180']}"
    finally:
        await srv.stop()


def _assert_no_token(token: str, *texts: str) -> None:
    for text in texts:
        assert token not in text


async def test_a_refused_token_says_so_and_the_token_never_appears_anywhere(
    server: TcapServer, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    seed(server)
    wrong = "wrong-token-SECRET-9f8e7d"
    client = TcapClient(server.url, wrong, http)
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs, pytest.raises(ListSyncError) as raised:
        await client.pull(HashList("tcap"), None)

    assert str(raised.value) == "TCAP refused the token (401)"
    assert raised.value.__cause__ is None
    assert server.requests[-1].status == 401
    _assert_no_token(wrong, str(raised.value), repr(raised.value), repr(client), caplog.text, repr(logs))

    # A good pull logs too; the real token is not in those lines either.
    good = TcapClient(server.url, server.token, http)
    with structlog.testing.capture_logs() as logs:
        await good.pull(HashList("tcap"), None)
    assert logs and any(entry["event"] == "tcap.pulled" for entry in logs)
    _assert_no_token(server.token, repr(logs), caplog.text, repr(good))


async def test_a_server_error_mid_pull_raises_and_nothing_is_lost(
    server: TcapServer, http: aiohttp.ClientSession
) -> None:
    ids = seed(server)
    client = TcapClient(server.url, server.token, http)
    first = await client.pull(HashList("tcap"), None)
    for key in ("md5-a", "sha-b", "md5-c"):
        server.delete(ids[key])  # three changes: two pages
    server.fail_500_at_offset = 2

    with pytest.raises(ListSyncError, match=r"server error \(500\); checkpoint kept") as raised:
        await client.pull(first.list, first.checkpoint)
    assert server.token not in str(raised.value)

    # The caller still holds first.list and first.checkpoint: retrying from
    # them picks up every change, including those on the page that was read.
    server.fail_500_at_offset = None
    retry = await client.pull(first.list, first.checkpoint)
    assert sorted(retry.removed) == sorted(f"tcap:{ids[k]}" for k in ("md5-a", "sha-b", "md5-c"))
    assert len(retry.list.live_entries()) == 3


async def test_a_429_is_retried_after_the_servers_delay_and_a_long_delay_is_an_error(
    server: TcapServer, http: aiohttp.ClientSession
) -> None:
    seed(server)
    sleeps = Sleeps()
    server.rate_limit_once = "7"
    pull = await TcapClient(server.url, server.token, http, sleep=sleeps).pull(HashList("tcap"), None)
    assert sleeps.delays == [7.0]
    assert [r.status for r in server.requests] == [429, 200, 200, 200]
    assert isinstance(pull, TcapPull) and len(pull.list.entries) == 6

    server.rate_limit_once = "3600"
    sleeps.delays.clear()
    with pytest.raises(ListSyncError, match="asked to wait 3600s"):
        await TcapClient(server.url, server.token, http, sleep=sleeps, max_retry_after=60).pull(HashList("tcap"), None)
    assert sleeps.delays == []


async def test_a_429_without_retry_after_backs_off_by_the_shared_policy(
    server: TcapServer, http: aiohttp.ClientSession
) -> None:
    """No Retry-After: the first retry waits the policy's base (1 s) plus its jitter, drawn from the injected rng."""
    seed(server)
    sleeps = Sleeps()
    server.rate_limit_once = ""  # an empty Retry-After is no Retry-After
    rng = random.Random(3)
    expected = 1.0 * (1 + random.Random(3).uniform(0, 0.25))
    pull = await TcapClient(server.url, server.token, http, sleep=sleeps, rng=rng).pull(HashList("tcap"), None)
    assert sleeps.delays == [expected]
    assert 1.0 <= expected <= 1.25
    assert isinstance(pull, TcapPull) and len(pull.list.entries) == 6


async def test_next_links_to_another_host_are_not_followed_with_the_token(
    http: aiohttp.ClientSession,
) -> None:
    srv = TcapServer(page_size=2, next_host="collector.invalid")
    await srv.start()
    try:
        seed(srv)
        with pytest.raises(ListSyncError, match="another host") as raised:
            await TcapClient(srv.url, srv.token, http).pull(HashList("tcap"), None)
        assert srv.token not in str(raised.value)
        assert len(srv.requests) == 1
    finally:
        await srv.stop()


async def test_a_200_that_is_not_a_page_is_an_error_not_an_empty_change_set(
    server: TcapServer, http: aiohttp.ClientSession
) -> None:
    seed(server)
    server.serve_html = True
    client = TcapClient(server.url, server.token, http)
    with pytest.raises(ListSyncError, match="bad page: not valid JSON"):
        await client.pull(HashList("tcap"), "1704900001.25,1001")
    assert server.requests[-1].query["after"] == "1704900001.25,1001"
