"""The daemon against real loopback peers: a trustless gateway serving IPNS records and
DAGs, a Kubo RPC server, lists that change. Each test counts what was fetched."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.ipfs.cid import CID, cid_text, parse_cid
from agent.runtime.agent import Agent
from tests.conftest import IPFS_FIXTURES, MEDIA_FIXTURES
from tests.support.agent import settings_for
from tests.support.gateway import FixtureGateway
from tests.support.ipns import IpnsPublisher
from tests.support.kubo_server import FakeKubo
from tests.support.media_dag import expected_pdq
from tests.support.unixfs_builder import UnixFSBuilder
from tests.support.wait import until

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
DIR_WITH_FILES = IPFS_FIXTURES / "gateway-conformance" / "path_gateway_unixfs" / "dir-with-files.car"


def fetched_cids(gw: FixtureGateway) -> set[str]:
    """What was fetched, by multihash (the log keeps each CID as the client spelled it)."""
    return {parse_cid(cid).digest.hex() for fmt, cid, _ in gw.log if fmt in ("car", "raw")}


def key(cid: CID) -> str:
    return bytes(cid.digest).hex()


def tree(files: dict[str, bytes]) -> tuple[CID, dict[str, CID], list[tuple[CID, bytes]]]:
    builder = UnixFSBuilder()
    file_cids = {name: builder.add_file(data)[0] for name, data in files.items()}
    root, _ = builder.add_directory({name: (cid, len(files[name])) for name, cid in file_cids.items()})
    return root, file_cids, builder.blocks


async def test_an_ipns_name_updated_between_polls_is_rescanned_and_only_new_items_are_fetched(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    gw = await make_gateway()
    first, first_files, blocks = tree({"a.txt": b"alpha\n", "b.txt": b"beta\n"})
    second, second_files, more = tree({"a.txt": b"alpha\n", "b.txt": b"beta\n", "c.txt": b"gamma\n"})
    gw.add_blocks(blocks + more)
    ipns = IpnsPublisher(gw)
    ipns.publish(first)
    async with Agent(settings_for(tmp_path, gw.url)) as agent:
        target = await agent.add_target(f"ipns://{ipns.name}", 60)
        assert (await agent.poll_target(target.id, scheduled=False)).ok
        assert {key(first_files["a.txt"]), key(first_files["b.txt"])} <= fetched_cids(gw)
        assert await agent.store.items.count() == 2

        gw.log.clear()
        again = await agent.poll_target(target.id, scheduled=False)
        assert again.ok and "unchanged" in again.note
        assert fetched_cids(gw) == set(), "an unchanged name fetches nothing"

        ipns.publish(second)
        gw.log.clear()
        assert (await agent.poll_target(target.id, scheduled=False)).ok
        fetched = fetched_cids(gw)
        assert key(second_files["c.txt"]) in fetched
        assert not fetched & {key(first_files["a.txt"]), key(first_files["b.txt"])}
        assert await agent.store.items.count() == 3
        row = await agent.store.targets.get(target.id)
        assert row is not None and row.state["root"] == str(second) and row.state["sequence"] == 2


async def test_a_list_update_finds_an_image_seen_earlier_without_fetching_anything(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    gw = await make_gateway()
    photo = (MEDIA_FIXTURES / "pdq" / "bridge-mods" / "blur-a-lot.jpg").read_bytes()
    root, _, blocks = tree({"photo.jpg": photo, "note.txt": b"nothing\n"})
    gw.add_blocks(blocks)
    listing = tmp_path / "watchlist.txt"
    listing.write_text("# nothing yet\n")
    async with Agent(settings_for(tmp_path, gw.url, lists=[str(listing)])) as agent:
        await agent.refresh_lists()
        target = await agent.add_target(f"ipfs://{root}", 60)
        assert (await agent.poll_target(target.id, scheduled=False)).ok
        assert await agent.store.findings.count() == 0
        requests = sum(gw.requests.values())

        original = expected_pdq()["pdq/bridge-mods/aaa-orig.jpg"][0]
        listing.write_text(f"pdq {original}\n")
        await agent.refresh_lists()

        findings = await agent.store.findings.recent()
        assert [(f.list_name, f.signal_type, f.entry_value, f.retroactive) for f in findings] == [
            ("watchlist", "pdq", original, True)
        ]
        assert 0 < findings[0].distance <= 31
        assert sum(gw.requests.values()) == requests, "retroactive matching must not fetch"
        await agent.refresh_lists()  # the same list again: nothing new, nothing duplicated
        assert await agent.store.findings.count() == 1


async def test_a_restarted_agent_fetches_nothing_twice_and_loses_no_finding(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    gw = await make_gateway()
    photos = {
        f"{i}.jpg": p.read_bytes() for i, p in enumerate(sorted((MEDIA_FIXTURES / "pdq" / "bridge-mods").iterdir()))
    }
    root, file_cids, blocks = tree(photos)
    gw.add_blocks(blocks)
    listing = tmp_path / "list.txt"
    listing.write_text(f"pdq {expected_pdq()['pdq/bridge-mods/aaa-orig.jpg'][0]}\n")
    settings = settings_for(tmp_path, gw.url, lists=[str(listing)])

    # First run: stopped after a few items (the poll is cancelled mid-scan, as a stop past the grace period does).
    async with Agent(settings) as agent:
        await agent.refresh_lists()
        target = await agent.add_target(f"ipfs://{root}", 60)
        gate = __import__("asyncio").Event()
        recorded = 0
        original_record = agent.store.items.record

        async def record_then_maybe_stop(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal recorded
            new = await original_record(*args, **kwargs)
            recorded += 1
            if recorded == 4:
                gate.set()
            return new

        agent.store.items.record = record_then_maybe_stop  # type: ignore[method-assign]
        import asyncio

        poll = asyncio.create_task(agent.poll_target(target.id, scheduled=False))
        await asyncio.wait_for(gate.wait(), 60)
        poll.cancel()
        with pytest.raises(asyncio.CancelledError):
            await poll
        done_before = await agent.store.items.count()
        findings_before = await agent.store.findings.count()
    assert 4 <= done_before < len(photos)

    gw.log.clear()
    async with Agent(settings) as agent:
        await agent.refresh_lists()
        assert (await agent.poll_target(target.id, scheduled=False)).ok
        refetched = fetched_cids(gw) & {key(c) for c in file_cids.values()}
        assert len(refetched) == len(photos) - done_before, "items recorded before the stop are not fetched again"
        assert await agent.store.items.count() == len(photos)
        findings = await agent.store.findings.recent(limit=1000)
        assert len(findings) == len(photos), "every edited copy matches once"
        assert len({f.item_key for f in findings}) == len(findings) >= findings_before
        scans = await agent.store.scans.recent(10)
        assert [s.status for s in scans][-1:] == ["interrupted"] or "interrupted" in [s.status for s in scans]


async def test_new_kubo_pins_are_scanned_once(tmp_path: Path) -> None:
    kubo = FakeKubo()
    await kubo.load_car(DIR_WITH_FILES, pin=True)
    await kubo.start()
    try:
        async with Agent(settings_for(tmp_path, "http://127.0.0.1:9")) as agent:
            target = await agent.add_target(f"kubo://{kubo.url.split('://', 1)[1]}", 60)
            assert (await agent.poll_target(target.id, scheduled=False)).ok
            assert await agent.store.items.count() == 3  # ascii.txt and ascii-copy.txt are one item
            block_gets = kubo.requests["block/get"]
            assert block_gets > 0

            (extra,) = await kubo.load_car(
                IPFS_FIXTURES / "gateway-conformance" / "path_gateway_unixfs" / "symlink.car", pin=True
            )
            assert (await agent.poll_target(target.id, scheduled=False)).ok
            row = await agent.store.targets.get(target.id)
            assert row is not None and cid_text(extra) in row.state["pins_done"]
            assert await agent.store.items.count() == 5  # + the symlink and the file it names
            before = kubo.requests["block/get"]
            assert (await agent.poll_target(target.id, scheduled=False)).ok
            assert kubo.requests["block/get"] == before, "pins already scanned are not walked again"
    finally:
        await kubo.stop()


async def test_a_failing_target_backs_off_and_never_stops_the_others(make_gateway: MakeGateway, tmp_path: Path) -> None:
    gw = await make_gateway(DIR_WITH_FILES)
    async with Agent(settings_for(tmp_path, gw.url)) as agent:
        good = await agent.add_target("ipfs://bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy", 60)
        bad = await agent.add_target("dnslink://no-such-name.invalid", 60)
        failed = await agent.poll_target(bad.id, scheduled=False)
        assert not failed.ok and failed.error
        assert (await agent.poll_target(good.id, scheduled=False)).ok
        row = await agent.store.targets.get(bad.id)
        assert row is not None and row.consecutive_failures == 1 and row.last_error
        assert row.next_run_at is not None and row.next_run_at > datetime.now(UTC) + timedelta(seconds=50)
        await agent.poll_target(bad.id, scheduled=False)
        row2 = await agent.store.targets.get(bad.id)
        assert row2 is not None and row2.consecutive_failures == 2
        assert row2.next_run_at is not None and row2.next_run_at > row.next_run_at


async def test_arweave_transactions_across_two_pages_are_scanned_once_and_new_ones_later(tmp_path: Path) -> None:
    from agent.config import ArweaveSettings
    from tests.support.arweave_server import FakeArweave

    arweave = FakeArweave(max_first=2)
    photos = sorted((MEDIA_FIXTURES / "pdq" / "bridge-mods").iterdir())[:3]
    for height, photo in enumerate(photos, start=100):
        arweave.add(photo.read_bytes(), {"Content-Type": "image/jpeg", "App-Name": "test-app"}, height)
    arweave.add(b"not an image", {"Content-Type": "text/plain", "App-Name": "test-app"}, 104)
    await arweave.start()
    try:
        listing = tmp_path / "list.txt"
        listing.write_text(f"pdq {expected_pdq()['pdq/bridge-mods/aaa-orig.jpg'][0]}\n")
        settings = settings_for(tmp_path, "http://127.0.0.1:9", lists=[str(listing)])
        settings = settings.model_copy(update={"arweave": ArweaveSettings(page_size=2, max_pages_per_poll=10)})
        async with Agent(settings) as agent:
            await agent.refresh_lists()
            target = await agent.add_target(f"arweave+{arweave.url}/graphql?Content-Type=image/jpeg&App-Name=test-app")
            assert (await agent.poll_target(target.id, scheduled=False)).ok
            assert arweave.requests["graphql"] >= 2, "three transactions at two per page"
            assert await agent.store.items.count() == 3
            assert await agent.store.findings.count() == 3
            raw = arweave.requests["raw"]

            assert (await agent.poll_target(target.id, scheduled=False)).ok
            assert arweave.requests["raw"] == raw, "nothing fetched twice"

            late = arweave.add(
                photos[0].read_bytes()[:20000], {"Content-Type": "image/jpeg", "App-Name": "test-app"}, 110
            )
            assert (await agent.poll_target(target.id, scheduled=False)).ok
            assert arweave.requests["raw"] == raw + 1
            items = await agent.store.items.get_many([f"ar:{late.id}"])
            assert items[f"ar:{late.id}"].status == "error"  # a truncated JPEG: its digests are kept, the error said
    finally:
        await arweave.stop()


async def test_a_dnslink_domain_is_resolved_through_the_configured_resolver(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    from agent.config import DnslinkSettings
    from tests.support.dns_server import TestDnsServer

    gw = await make_gateway()
    first, _first_files, blocks = tree({"a.txt": b"one\n"})
    second, second_files, more = tree({"a.txt": b"one\n", "b.txt": b"two\n"})
    gw.add_blocks(blocks + more)
    async with TestDnsServer() as dns:
        dns.set("_dnslink.example.test", f"dnslink=/ipfs/{first}")
        settings = settings_for(tmp_path, gw.url)
        settings = settings.model_copy(
            update={"dnslink": DnslinkSettings(nameservers=["127.0.0.1"], port=dns.port, timeout_s=2)}
        )
        async with Agent(settings) as agent:
            target = await agent.add_target("dnslink://example.test", 60)
            assert (await agent.poll_target(target.id, scheduled=False)).ok
            dns.set("_dnslink.example.test", f"dnslink=/ipfs/{second}")
            gw.log.clear()
            assert (await agent.poll_target(target.id, scheduled=False)).ok
            assert fetched_cids(gw) & {key(c) for c in second_files.values()} == {key(second_files["b.txt"])}
            assert dns.queries["_dnslink.example.test"] >= 2


async def test_the_schedule_polls_targets_added_while_running_and_stops_cleanly(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    import asyncio

    from agent.config import ScheduleSettings

    gw = await make_gateway(DIR_WITH_FILES)
    settings = settings_for(tmp_path, gw.url)
    settings = settings.model_copy(
        update={"schedule": ScheduleSettings(reconcile_interval_s=1, lists_interval_s=60, jitter_fraction=0)}
    )
    async with Agent(settings) as agent:
        stop = asyncio.Event()
        serving = asyncio.create_task(agent.serve(stop))
        target = await agent.add_target("ipfs://bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy", 3600)

        async def polled() -> bool:
            row = await agent.store.targets.get(target.id)
            return row is not None and row.last_success_at is not None

        await until(polled, seconds=30)
        assert await agent.store.items.count() == 3
        stop.set()
        await asyncio.wait_for(serving, 30)
        scans = await agent.store.scans.recent(5)
        assert [s.status for s in scans] == ["ok"]


async def test_a_retroactive_pass_cut_short_is_done_again_after_a_restart(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    gw = await make_gateway()
    photo = (MEDIA_FIXTURES / "pdq" / "bridge-mods" / "blur-a-lot.jpg").read_bytes()
    root, _, blocks = tree({"photo.jpg": photo})
    gw.add_blocks(blocks)
    listing = tmp_path / "watchlist.txt"
    listing.write_text("# nothing yet\n")
    settings = settings_for(tmp_path, gw.url, lists=[str(listing)])
    async with Agent(settings) as agent:
        await agent.refresh_lists()
        target = await agent.add_target(f"ipfs://{root}", 60)
        await agent.poll_target(target.id, scheduled=False)
        listing.write_text(f"pdq {expected_pdq()['pdq/bridge-mods/aaa-orig.jpg'][0]}\n")

        async def dies(*_args: object, **_kwargs: object) -> list[object]:
            raise RuntimeError("the agent died here")

        agent.store.findings.add = dies  # type: ignore[method-assign,assignment]
        with pytest.raises(RuntimeError):
            await agent.refresh_lists()
    async with Agent(settings) as restarted:
        await restarted.refresh_lists()
        assert await restarted.store.findings.count() == 1, "the new list version is matched again, nothing lost"


async def test_content_that_cannot_be_decoded_is_not_fetched_again_on_every_poll(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    gw = await make_gateway()
    broken = (MEDIA_FIXTURES / "pdq" / "bridge-mods" / "aaa-orig.jpg").read_bytes()[:5000]
    root, files, blocks = tree({"broken.jpg": broken, "fine.txt": b"fine\n"})
    gw.add_blocks(blocks)
    async with Agent(settings_for(tmp_path, gw.url)) as agent:
        target = await agent.add_target(f"ipfs://{root}", 60)
        first = await agent.poll_target(target.id, scheduled=False)
        assert first.ok
        item = (await agent.store.items.get_many([key(files["broken.jpg"])]))[key(files["broken.jpg"])]
        assert item.status == "error" and item.signals.to_view()["sha256"]
        gw.log.clear()
        again = await agent.poll_target(target.id, scheduled=False)
        assert again.ok and "unchanged" in again.note
        assert fetched_cids(gw) == set(), "verified bytes that failed to decode are not fetched again"
