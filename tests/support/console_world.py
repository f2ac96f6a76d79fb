"""The world the console's browser tests run in, all on 127.0.0.1: a real agent, a test gateway
serving DAGs with a real photo under a hostile name, a ThreatExchange list whose label is
hostile too, and a webhook receiver subscribed before anything is scanned.

    async with console_world(tmp_path) as world:
        root = world.new_dag()                       # a fresh photo variant: a new finding
        finding = await world.finding_by_scan(root)  # queued through the API, run by the agent
        await world.login(page, world.investigator)  # through the login form

Each DAG holds a different variant of one photo (tests/fixtures/media/pdq/bridge-mods), all
within the list's PDQ threshold of the listed hash, so every DAG makes a finding of its own
and a test never shares one with another; the unrelated images beside it match nothing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Page

from agent.model.access import Role
from tests.conftest import MEDIA_FIXTURES
from tests.support.agent_process import AgentProcess, config_toml
from tests.support.gateway import FixtureGateway
from tests.support.media_dag import expected_pdq, hamming, serve_files
from tests.support.wait import until
from tests.support.webhook_receiver import Received, WebhookReceiver

HOSTILE_NAME = "<img src=x onerror=alert(1)>.jpg"
HOSTILE_LABEL = "<script>alert(1)</script>"
NORMAL_LABEL = "violent-extremism"
LIST_NAME = "te-hashes"  # the list file's stem: the name findings, filters and webhooks use
LISTED_PHOTO = "pdq/bridge-mods/square-512x512.jpg"
# The listed photo first (distance 0), then variants of it: each a different item (other bytes,
# another CID) within the PDQ threshold, so each DAG gives a finding of its own.
PHOTO_VARIANTS = (
    LISTED_PHOTO,
    "pdq/bridge-mods/square-256x256.jpg",
    "pdq/bridge-mods/square-128x128.jpg",
    "pdq/bridge-mods/shrink-a-little.jpg",
    "pdq/bridge-mods/blur-a-lot.jpg",
    "pdq/bridge-mods/shrink-a-lot.jpg",
    "pdq/bridge-mods/blur-a-little.jpg",
)
# Photos of other things: far from the listed hash, they are scanned and match nothing. Every
# file sits in the root directory: a subdirectory the agent has seen before is not listed again
# item by item, and a test must find every path of its DAG in the report whichever ran first.
UNRELATED = {"unrelated-q2821.jpg": "pdq/low-quality/q2821.jpg", "unrelated-wee.jpg": "pdq/low-quality/wee.jpg"}
README = "readme.txt"
# The listed hash's unrelated neighbour in the list: a list of one entry proves less.
_OTHER_ENTRY = "f" * 16 + "0" * 48
# A scan of a few small files on a busy 2-core machine: generous, each polled.
SCAN_S = 120.0
WEBHOOK_S = 90.0
_API_S = 60.0


def photo_pdq(relative: str = LISTED_PHOTO) -> str:
    return expected_pdq()[relative][0]


def list_csv() -> str:
    """The ThreatExchange CSV list: the listed photo's PDQ labelled with a script tag and a normal
    label (tags are space-separated), and one entry that matches nothing here."""
    assert hamming(photo_pdq(), _OTHER_ENTRY) > 64
    return (
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{photo_pdq()},,,{HOSTILE_LABEL} {NORMAL_LABEL}\n"
        f"pdq,{_OTHER_ENTRY},,,spam\n"
    )


@dataclass(frozen=True)
class Dag:
    root: str
    photo: str  # the fixture the hostile-named entry holds
    paths: tuple[str, ...]  # every file in it


@dataclass
class ConsoleWorld:
    agent: AgentProcess
    gateway: FixtureGateway
    receiver: WebhookReceiver
    subscription_id: int
    admin: str  # tokens
    investigator: str
    viewer: str
    http: aiohttp.ClientSession
    _variants: Iterator[str] = field(default_factory=lambda: iter(PHOTO_VARIANTS))

    @property
    def hook_path(self) -> str:
        return "/hook"

    def new_dag(self) -> Dag:
        """A DAG served by the gateway: the next photo variant under the hostile name, the
        unrelated images and a text file. Raises StopIteration when the variants run out."""
        photo = next(self._variants)
        files = {HOSTILE_NAME: (MEDIA_FIXTURES / photo).read_bytes()}
        files |= {name: (MEDIA_FIXTURES / rel).read_bytes() for name, rel in UNRELATED.items()}
        files[README] = b"Nothing to see here.\n"
        return Dag(str(serve_files(self.gateway, files)), photo, tuple(files))

    def gateway_requests(self) -> int:
        """Block and CAR requests the gateway has answered (or is holding) so far."""
        return self.gateway.requests["car"] + self.gateway.requests["raw"]

    def hold_gateway(self) -> int:
        """Hold every further block or CAR request until `gateway.release()` (a scan then stays
        running for as long as the test needs to see it so); returns the requests so far."""
        held = self.gateway_requests()
        # release() leaves its event set; a second hold must start from an unset one.
        self.gateway._released.clear()
        self.gateway.hold_after = held
        return held

    # ------------------------------------------------------------------ the API, as an admin

    async def api(self, method: str, path: str, body: Any = None, *, token: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token or self.admin}", "Accept": "application/json"}
        async with self.http.request(
            method, self.agent.api_url + path, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=_API_S)
        ) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None

    async def scan(self, dag: Dag) -> dict[str, Any]:
        """Queue a scan of `dag` through the API and return the finished job (done, or the test fails)."""
        status, job = await self.api("POST", "/v1/scans", {"target": f"ipfs://{dag.root}"})
        assert status == 202, job
        return await self.finished_scan(int(job["id"]))

    async def finished_scan(self, job_id: int) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def finished() -> bool:
            status, job = await self.api("GET", f"/v1/scans/{job_id}")
            assert status == 200, job
            seen.update(job)
            return job["status"] in ("done", "failed", "cancelled")

        await until(finished, SCAN_S, lambda: f"scan {job_id} did not finish within {SCAN_S} s: {seen}")
        assert seen["status"] == "done", seen
        return seen

    async def findings_of(self, dag: Dag) -> list[dict[str, Any]]:
        """The findings recorded for items under `dag`'s root (API view, newest first)."""
        status, page = await self.api("GET", f"/v1/findings?list={LIST_NAME}&limit=100")
        assert status == 200, page
        return [f for f in page["findings"] if f["provenance"]["root_cid"] == dag.root]

    async def finding_by_scan(self, dag: Dag) -> dict[str, Any]:
        """Scan `dag` and return its one finding: the hostile-named photo matched the list."""
        await self.scan(dag)
        found = await self.findings_of(dag)
        assert len(found) == 1, found
        assert found[0]["provenance"]["path"] == HOSTILE_NAME, found
        return found[0]

    async def finding(self, finding_id: int) -> dict[str, Any]:
        """One finding in full (reviews, retraction, deliveries) through the API."""
        status, detail = await self.api("GET", f"/v1/findings/{finding_id}")
        assert status == 200, detail
        return dict(detail)

    # ---------------------------------------------------------------------- the webhooks

    def events(self, event_type: str, finding_id: int) -> list[Received]:
        """What the receiver got of `event_type` about finding `finding_id`, in arrival order."""
        out: list[Received] = []
        for received in self.receiver.at(self.hook_path):
            with contextlib.suppress(ValueError):
                body = json.loads(received.body)
                finding = body.get("data", {}).get("finding", {}) if isinstance(body, dict) else {}
                if body.get("type") == event_type and isinstance(finding, dict) and finding.get("id") == finding_id:
                    out.append(received)
        return out

    async def event(self, event_type: str, finding_id: int) -> Received:
        """The first `event_type` delivery about `finding_id`, once it arrived (polled with a deadline)."""
        await until(
            lambda: bool(self.events(event_type, finding_id)),
            WEBHOOK_S,
            lambda: (
                f"no {event_type} for finding {finding_id} within {WEBHOOK_S} s; got "
                + "; ".join(r.body[:200] for r in self.receiver.received)
            ),
        )
        return self.events(event_type, finding_id)[0]

    # ----------------------------------------------------------------------- the browser

    async def login(self, page: Page, token: str) -> None:
        """Log in through the console's form as a person does: type the token, press Enter."""
        await page.goto(self.agent.ui_url + "login")
        field = page.get_by_label("API token")
        await field.fill(token)
        async with page.expect_navigation(url="**/ui/findings**"):
            await field.press("Enter")


@contextlib.asynccontextmanager
async def console_world(tmp_path: Path, *, database_url: str = "") -> AsyncIterator[ConsoleWorld]:
    """The world above (see the module docstring), torn down in reverse at exit; `database_url`
    empty: the agent's own SQLite file, else that PostgreSQL database."""
    gateway = FixtureGateway()
    await gateway.start()
    listing = tmp_path / f"{LIST_NAME}.csv"
    listing.write_text(list_csv())
    text = config_toml(
        tmp_path / "data",
        gateways=[gateway.url],
        lists=[listing],
        database_url=database_url,
        settings={"gateways": {"read_timeout_s": 30}},
    )
    try:
        async with (
            WebhookReceiver([]) as receiver,
            AgentProcess.start(tmp_path, config_text=text) as agent,
            aiohttp.ClientSession() as http,
        ):
            added = await agent.cli("webhooks", "add", receiver.url("/hook"), "--format", "json")
            assert added.code == 0, added.stderr
            subscription = json.loads(added.stdout)
            receiver.secrets.append(subscription["secret"])
            yield ConsoleWorld(
                agent=agent,
                gateway=gateway,
                receiver=receiver,
                subscription_id=int(subscription["id"]),
                admin=await agent.token(Role.ADMIN, "ada-admin"),
                investigator=await agent.token(Role.INVESTIGATOR, "ivy-investigator"),
                viewer=await agent.token(Role.VIEWER, "vic-viewer"),
                http=http,
            )
    finally:
        await gateway.stop()
