"""What an API caller may not make the agent do: read the host's files, or fetch from the
agent's own machine, its private network or a metadata service (by address, by a name that
resolves there at submit time, or by one rebound there when the scan runs). Names resolve
through a table; nothing is ever connected to but 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from agent.config import Settings
from agent.model.jobs import JobStatus
from agent.runtime.scan_jobs import ScanJobRunner
from agent.services.errors import Invalid
from agent.services.scan_jobs import ScanJobRequest, ScanJobsService
from agent.store import Store
from tests.integration.scan_jobs.harness import StoreScanners, finished, tree, with_api
from tests.support.agent import settings_for
from tests.support.gateway import FixtureGateway
from tests.support.resolver import FakeResolver

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
CID = "bafkreihszaw6zxlrqhhzrfczfgtclgg3pzvuo7qr63qowcxjoaqo74krvu"
NAMES = {"evil.test": ["10.0.0.1"], "meta.test": ["169.254.169.254"], "public.test": ["93.184.216.34"]}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}") as opened:
        yield opened


def service(store: Store, settings: Settings) -> ScanJobsService:
    return ScanJobsService(store, settings, resolver=FakeResolver(NAMES))


async def refused(svc: ScanJobsService, request: ScanJobRequest) -> str:
    with pytest.raises(Invalid) as caught:
        await svc.submit(request, "mallory")
    return caught.value.message


async def test_local_paths_directories_and_car_files_are_refused_whether_or_not_they_exist(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No target text that names the agent's own files is queued, and the answer does not say
    whether the file exists: an existing .car file, a directory, a missing path, a home path,
    a file:// URL, and even a file named exactly like a CID in the working directory."""
    svc = service(store, settings_for(tmp_path, "https://gw.example"))
    car = tmp_path / "secret.car"
    car.write_bytes(b"not really a car")
    (tmp_path / "secret.txt").write_text("s3cret")
    shown_for_existing = await refused(svc, ScanJobRequest(str(tmp_path / "secret.txt")))
    shown_for_missing = await refused(svc, ScanJobRequest(str(tmp_path / "absent.txt")))
    assert shown_for_existing.startswith("target: ") and "never a file or directory" in shown_for_existing
    assert shown_for_missing.replace("absent", "secret") == shown_for_existing, "existence must not show"
    for text in (str(car), str(tmp_path), "./secret.txt", "~/secret.txt", "../etc/passwd", "C:\\x", "-rf"):
        assert (await refused(svc, ScanJobRequest(text))).startswith("target: "), text
    assert (await refused(svc, ScanJobRequest("file:///etc/passwd"))).startswith("target: ")
    monkeypatch.chdir(tmp_path)
    (tmp_path / CID).write_text("a file, not content")
    assert "never a file or directory" in await refused(svc, ScanJobRequest(CID))
    assert await store.jobs.page(limit=10) == []


@pytest.mark.parametrize(
    "gateway",
    [
        "http://127.0.0.1:8080",
        "http://10.0.0.1",
        "http://169.254.169.254",
        "http://localhost:8080",
        "http://[::1]:8080",
        "http://evil.test",
        "http://meta.test:8080",
    ],
)
async def test_a_gateway_on_a_private_or_loopback_address_or_a_name_resolving_to_one_is_refused(
    store: Store, tmp_path: Path, gateway: str
) -> None:
    """A scan gateway at loopback, a private address, the metadata service, a localhost name or a
    name that resolves to one of them is refused, naming the field; nothing is queued."""
    svc = service(store, settings_for(tmp_path, "https://gw.example"))
    message = await refused(svc, ScanJobRequest(CID, gateways=("https://public.test", gateway)))
    assert message.startswith("gateways[1]: "), message
    assert await store.jobs.page(limit=10) == []


async def test_list_urls_must_be_http_and_pass_the_guard_and_the_targets_own_gateway_too(
    store: Store, tmp_path: Path
) -> None:
    """A list is an http(s) URL only (never a path on the host) and goes through the guard; a
    gateway-URL target whose gateway is private is refused as the target; mode is checked."""
    svc = service(store, settings_for(tmp_path, "https://gw.example"))
    for source in ("/etc/passwd", "lists/local.txt", "file:///etc/passwd"):
        assert (await refused(svc, ScanJobRequest(CID, lists=(source,)))).startswith("lists[0]: only http(s)")
    for source in ("http://169.254.169.254/latest/meta-data", "http://evil.test/list.txt"):
        message = await refused(svc, ScanJobRequest(CID, lists=("https://public.test/a.txt", source)))
        assert message.startswith("lists[1]: "), message
    for target in (f"http://10.0.0.1/ipfs/{CID}", f"http://evil.test:8080/ipfs/{CID}", f"http://{CID}.ipfs.localhost"):
        assert (await refused(svc, ScanJobRequest(target))).startswith("target: "), target
    assert (await refused(svc, ScanJobRequest(CID, mode="tar"))).startswith("mode: ")  # type: ignore[arg-type]
    assert await store.jobs.page(limit=10) == []


async def test_hosts_the_operator_allows_and_its_own_gateways_pass(store: Store, tmp_path: Path) -> None:
    """[api] allow_hosts and the hosts of [gateways] urls are trusted, public names pass; the
    queued job keeps the normalised gateways, the lists and the mode."""
    settings = with_api(settings_for(tmp_path, "http://127.0.0.1:8080"), allow_hosts=["10.0.0.1", "evil.test"])
    svc = service(store, settings)
    job = await svc.submit(
        ScanJobRequest(
            f"ipfs://{CID}",
            gateways=("http://127.0.0.1:9999/", "http://10.0.0.1", "http://evil.test", "https://public.test"),
            lists=("https://public.test/list.txt",),
            mode="raw",
        ),
        "alice",
    )
    assert job.status is JobStatus.QUEUED and job.requested_by == "alice" and job.target == f"ipfs://{CID}"
    assert job.options.gateways == (
        "http://127.0.0.1:9999",
        "http://10.0.0.1",
        "http://evil.test",
        "https://public.test",
    )
    assert job.options.lists == ("https://public.test/list.txt",) and job.options.mode == "raw"
    assert [j.id for j in await svc.page(10)] == [job.id]
    assert (await svc.get(job.id)) == job


async def test_a_name_rebound_to_loopback_after_the_submit_is_refused_when_the_scan_fetches(
    make_gateway: MakeGateway, store: Store, tmp_path: Path
) -> None:
    """A gateway or list name that resolved to a public address at submit time but to 127.0.0.1
    when the scan runs is never connected to (the gateway listening there gets no request): the
    job fails naming it."""
    gw = await make_gateway()
    root, blocks = tree({"a.txt": b"alpha\n"})
    gw.add_blocks(blocks)
    port = gw.url.rsplit(":", 1)[1]
    settings = with_api(settings_for(tmp_path, "https://gw.example"), scan_lease_s=3)
    svc = ScanJobsService(store, settings, resolver=FakeResolver({"rebind.test": ["93.184.216.34"]}))
    by_gateway = await svc.submit(ScanJobRequest(f"ipfs://{root}", gateways=(f"http://rebind.test:{port}",)), None)
    by_list = await svc.submit(ScanJobRequest(f"ipfs://{root}", lists=(f"http://rebind.test:{port}/list.txt",)), None)
    runner = ScanJobRunner(
        settings,
        store,
        "node-a",
        StoreScanners(settings, store),
        resolver=FakeResolver({"rebind.test": ["127.0.0.1"]}),
    )
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))
    try:
        runner.wake()
        for job in (by_gateway, by_list):
            done = await finished(svc, job.id)
            assert done.status is JobStatus.FAILED, done
            assert done.error is not None and "rebind.test" in done.error and "forbidden" in done.error
    finally:
        stop.set()
        await running
    assert sum(gw.requests.values()) == 0
