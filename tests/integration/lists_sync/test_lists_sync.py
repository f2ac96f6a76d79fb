"""ListSyncer over real files, a real HTTP list server and a real TCAP-like API
on 127.0.0.1: what changed is reported, unchanged sources cost nothing, and a
failing source keeps its last good list."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import structlog
from aiohttp import web

from agent.lists.catalog import Thresholds, load_catalog
from agent.lists.sync import ListSyncer
from agent.lists.sync_state import MemorySyncStateStore, SyncState, TcapSourceConfig, content_hash
from agent.model.signals import Signal, SignalType
from tests.support.media_dag import expected_pdq
from tests.support.tcap_server import TcapServer

ORIGINAL = "pdq/bridge-mods/aaa-orig.jpg"
EDITED = "pdq/bridge-mods/blur-a-lot.jpg"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def md5_signal(text: str) -> Signal:
    return Signal(SignalType.MD5, md5(text))


def plain(*words: str) -> str:
    return "".join(f"md5 {md5(w)}\n" for w in words)


def bump_mtime(path: Path) -> None:
    """A touch that certainly changes mtime, whatever the clock resolution."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


@dataclass
class ListServer:
    """Serves one list body with an ETag and Last-Modified; honours
    If-None-Match; can be told to fail."""

    body: bytes = b""
    fail: int | None = None
    requests: int = 0
    conditional: int = 0
    not_modified: int = 0
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.seen_headers.append(dict(request.headers))
        if self.fail is not None:
            return web.Response(status=self.fail, text="down")
        if "If-None-Match" in request.headers:
            self.conditional += 1
            if request.headers["If-None-Match"] == self.etag:
                self.not_modified += 1
                return web.Response(status=304, headers={"ETag": self.etag})
        return web.Response(
            body=self.body, headers={"ETag": self.etag, "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/lists/shared.txt", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/lists/shared.txt"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def list_server() -> AsyncIterator[ListServer]:
    srv = ListServer(body=plain("a", "b").encode())
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def tcap_server() -> AsyncIterator[TcapServer]:
    srv = TcapServer(page_size=2)
    await srv.start()
    yield srv
    await srv.stop()


async def test_a_file_edit_is_reloaded_and_reported_and_a_touch_is_not(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text(plain("a", "b"))
    state = MemorySyncStateStore()
    syncer = ListSyncer([str(path)], [], state=state)

    first = await syncer.refresh()
    assert first.changed and first.errors == []
    assert sorted(e.value for e in first.added["mine"]) == sorted([md5("a"), md5("b")])
    assert first.catalog.index.match([md5_signal("a")])
    assert first.catalog.summaries[0].entries == 2 and syncer.catalog is first.catalog
    assert state.states["mine"].content_hash == first.versions[0].content_hash

    path.write_text(plain("a", "b", "c"))
    bump_mtime(path)
    added = await syncer.refresh()
    assert added.changed and [e.value for e in added.added["mine"]] == [md5("c")] and added.removed == {}
    assert added.catalog is not first.catalog
    assert added.catalog.index.match([md5_signal("c")]) and not first.catalog.index.match([md5_signal("c")])

    path.write_text(plain("c", "a"))
    bump_mtime(path)
    removed = await syncer.refresh()
    assert removed.changed and removed.added == {} and removed.removed == {"mine": (f"md5:{md5('b')}",)}
    assert not removed.catalog.index.match([md5_signal("b")])

    puts = state.puts
    bump_mtime(path)  # touched, same bytes
    touched = await syncer.refresh()
    assert not touched.changed and touched.catalog is removed.catalog
    assert touched.added == {} and touched.removed == {} and state.puts == puts

    path.write_text(plain("a", "c", "a"))  # reordered and duplicated: same set
    bump_mtime(path)
    reordered = await syncer.refresh()
    assert not reordered.changed and reordered.catalog is removed.catalog
    assert not reordered.versions[0].changed


async def test_a_directory_of_lists_syncs_as_one_list(tmp_path: Path) -> None:
    folder = tmp_path / "partner"
    folder.mkdir()
    (folder / "one.txt").write_text(plain("a"))
    (folder / "block.deny").write_text("//d9d295bde21f422d471a90f2a37ec53049fdf3e5fa3ee2e8f20e10003da429e7\n")
    (folder / "README.md").write_text("not a list")
    syncer = ListSyncer([str(folder)], [], state=MemorySyncStateStore())

    first = await syncer.refresh()
    assert [e.value for e in first.added["partner"]] == [md5("a")]
    assert len(first.catalog.denylist.rules) == 1
    assert (first.versions[0].entries, first.versions[0].deny_rules) == (1, 1)

    (folder / "two.txt").write_text(plain("b"))
    second = await syncer.refresh()
    assert second.changed and [e.value for e in second.added["partner"]] == [md5("b")]

    (folder / "one.txt").unlink()
    third = await syncer.refresh()
    assert third.removed == {"partner": (f"md5:{md5('a')}",)}
    assert third.catalog.index.match([md5_signal("b")]) and not third.catalog.index.match([md5_signal("a")])

    # A denylist change alone is a change too (no hash entry moved).
    (folder / "block.deny").write_text("")
    bump_mtime(folder / "block.deny")
    fourth = await syncer.refresh()
    assert fourth.changed and fourth.added == {} and fourth.removed == {}
    assert len(fourth.catalog.denylist.rules) == 0


async def test_a_url_list_is_fetched_conditionally_and_304_keeps_it(
    list_server: ListServer, http: aiohttp.ClientSession
) -> None:
    state = MemorySyncStateStore()
    syncer = ListSyncer([list_server.url], [], http=http, state=state)

    first = await syncer.refresh()
    assert sorted(e.value for e in first.added["shared"]) == sorted([md5("a"), md5("b")])
    assert list_server.conditional == 0
    assert state.states["shared"].etag == list_server.etag
    assert state.states["shared"].last_modified == "Mon, 01 Jan 2024 00:00:00 GMT"

    for _ in range(2):
        again = await syncer.refresh()
        assert not again.changed and again.catalog is first.catalog and again.errors == []
    assert (list_server.requests, list_server.conditional, list_server.not_modified) == (3, 2, 2)
    assert list_server.seen_headers[-1]["If-Modified-Since"] == "Mon, 01 Jan 2024 00:00:00 GMT"

    list_server.body = plain("b", "c").encode()
    changed = await syncer.refresh()
    assert changed.changed and [e.value for e in changed.added["shared"]] == [md5("c")]
    assert changed.removed == {"shared": (f"md5:{md5('a')}",)}
    assert state.states["shared"].etag == list_server.etag


async def test_a_failing_url_keeps_the_last_good_list_and_reports_the_error(
    list_server: ListServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    local = tmp_path / "local.txt"
    local.write_text(plain("x"))
    syncer = ListSyncer([list_server.url + "?key=s3cret", str(local)], [], http=http, state=MemorySyncStateStore())
    first = await syncer.refresh()
    assert first.errors == []

    list_server.fail = 503
    local.write_text(plain("x", "y"))
    bump_mtime(local)
    second = await syncer.refresh()
    assert len(second.errors) == 1 and "HTTP 503" in second.errors[0] and "s3cret" not in second.errors[0]
    # The other source still updates, and the failed one still matches.
    assert second.changed and [e.value for e in second.added["local"]] == [md5("y")]
    assert "shared" not in second.added and "shared" not in second.removed
    assert second.catalog.index.match([md5_signal("a")])
    shared = next(v for v in second.versions if v.name == "shared")
    assert shared.error is not None and shared.entries == 2 and not shared.changed


async def test_a_source_that_never_loaded_is_an_error_not_a_crash(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text(plain("a"))
    syncer = ListSyncer([str(tmp_path / "missing.txt"), str(good)], [], state=MemorySyncStateStore())
    result = await syncer.refresh()
    assert len(result.errors) == 1 and "missing.txt" in result.errors[0]
    assert result.catalog.index.match([md5_signal("a")])
    missing = next(v for v in result.versions if v.name == "missing")
    assert (missing.content_hash, missing.entries, missing.error is not None) == (None, 0, True)


async def test_a_tcap_source_stays_current_and_a_deleted_entry_stops_matching(
    tcap_server: TcapServer, http: aiohttp.ClientSession
) -> None:
    pdq = expected_pdq()
    original_id = tcap_server.add(pdq[ORIGINAL][0], "PDQ")
    for word in ("a", "b", "c", "d"):
        tcap_server.add(md5(word), "MD5", file_type="mp4")
    config = TcapSourceConfig("tcap", "tcap+" + tcap_server.url, tcap_server.token)
    assert config.url == tcap_server.url and tcap_server.token not in repr(config)
    state = MemorySyncStateStore()
    syncer = ListSyncer([], [config], http=http, state=state, thresholds={"tcap": Thresholds(pdq_distance=20)})
    edited = Signal(SignalType.PDQ, pdq[EDITED][0], quality=pdq[EDITED][1])

    first = await syncer.refresh()
    assert first.errors == [] and len(first.added["tcap"]) == 5
    assert [m.entry_id for m in first.catalog.index.match([edited])] == [f"tcap:{original_id}"]
    checkpoint = state.states["tcap"].checkpoint
    assert checkpoint == f"{tcap_server.records[original_id + 4]['updated_on']},{original_id + 4}"

    tcap_server.delete(original_id)
    tcap_server.requests.clear()
    second = await syncer.refresh()
    assert [r.query.get("after") for r in tcap_server.requests] == [checkpoint]
    assert second.changed and second.removed == {"tcap": (f"tcap:{original_id}",)} and second.added == {}
    assert second.catalog.index.match([edited]) == []
    assert first.catalog.index.match([edited])  # a scan still holding the old catalog is unaffected
    kept = state.states["tcap"].checkpoint
    assert kept != checkpoint

    tcap_server.fail_500 = True
    new_id = tcap_server.add(md5("e"), "MD5")
    with structlog.testing.capture_logs() as logs:
        third = await syncer.refresh()
    assert any(entry["event"] == "lists.sync_failed" for entry in logs)
    assert tcap_server.token not in repr(logs)
    assert not third.changed and third.catalog is second.catalog
    assert third.errors and "checkpoint kept" in third.errors[0] and tcap_server.token not in third.errors[0]
    assert state.states["tcap"].checkpoint == kept and third.versions[0].entries == 4

    tcap_server.fail_500 = False
    fourth = await syncer.refresh()
    assert fourth.errors == [] and [e.entry_id for e in fourth.added["tcap"]] == [f"tcap:{new_id}"]
    assert fourth.catalog.index.match([md5_signal("e")])


async def test_state_from_a_previous_run_is_reported_and_the_first_fetch_is_unconditional(
    list_server: ListServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    path = tmp_path / "mine.txt"
    path.write_text(plain("a"))
    state = MemorySyncStateStore()
    await state.put(SyncState("shared", list_server.url, etag=list_server.etag, content_hash="0" * 64))
    await state.put(SyncState("mine", str(path), content_hash=(await load_hash(path))))
    syncer = ListSyncer([list_server.url, str(path)], [], http=http, state=state)

    result = await syncer.refresh()
    # A saved ETag without the list in memory must not produce a 304 and an empty list.
    assert list_server.conditional == 0 and result.catalog.index.match([md5_signal("a")])
    by_name = {v.name: v for v in result.versions}
    assert by_name["mine"].previous_content_hash == by_name["mine"].content_hash
    assert by_name["shared"].previous_content_hash == "0" * 64 != by_name["shared"].content_hash


async def load_hash(path: Path) -> str:
    catalog = await load_catalog([str(path)])
    return content_hash(catalog.index.lists[0], catalog.denylist)
