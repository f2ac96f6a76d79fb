"""Scans queued in the store for the agent to run: what the API's /v1/scans routes call.

An API caller is not the operator: everything it names is checked before the job is queued.
The target must be content on the network (ipfs://, /ipfs/, a CID, an IPNS name or DNSLink
domain, a gateway URL), never a path on the agent's host, and every gateway and list URL passes the SSRF guard, its host
resolved now as well as when the scan fetches (agent.runtime.scan_jobs uses the same guard
inside its session, so a name rebound to a private address later is refused then too).
Each refusal is an Invalid whose message starts with the field it is about
("target: ...", "gateways[1]: ...", "lists[0]: ...", "mode: ...")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from agent.services.errors import Invalid, NotFound

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver

    from agent.config import Settings
    from agent.model.jobs import ScanJobRow
    from agent.model.target import Target
    from agent.net.guard import NetGuard
    from agent.store import Store

# More than any real scan needs; each one is resolved at submit time, so the bound is the work.
MAX_GATEWAYS: Final = 16
MAX_LISTS: Final = 16
_SCHEME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,31}://")
_NETWORK_ONLY: Final = (
    "the API scans network targets only (ipfs://CID[/path], /ipfs/CID[/path], a CID, ipns://NAME[/path], "
    "/ipns/NAME[/path], dnslink://DOMAIN[/path] or a gateway URL), "
    "never a file or directory on the agent's host"
)


@dataclass(frozen=True, slots=True)
class ScanJobRequest:
    target: str
    gateways: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    mode: Literal["car", "raw"] = "car"


def network_target(text: str) -> Target:
    """The target an API caller named, if it is content on the network; Invalid("target: ...") if not.

    A string that is not a URL, /ipfs/ path or CID is refused before parse_target sees it, since
    parse_target would look for it on disk: the answer must not depend on what files exist."""
    from agent.ipfs.cid import parse_cid
    from agent.ipfs.errors import InvalidCid
    from agent.model.target import TargetError, TargetKind
    from agent.sources.targets import MAX_TARGET_CHARS, parse_target, quoted

    raw = text.strip()
    spelled_as_network = bool(raw) and (_SCHEME.match(raw) is not None or raw.startswith(("/ipfs/", "/ipns/")))
    if raw and not spelled_as_network:
        if len(raw) > MAX_TARGET_CHARS or any(c in raw for c in "/\\.~") or raw.startswith("-"):
            raise Invalid(f"target: {quoted(raw)}: {_NETWORK_ONLY}")
        try:
            parse_cid(raw)
        except InvalidCid as exc:
            raise Invalid(f"target: {quoted(raw)} is not a CID ({exc}); {_NETWORK_ONLY}") from exc
    try:
        target = parse_target(raw)
    except TargetError as exc:
        raise Invalid(f"target: {exc}") from exc
    named = target.kind in (TargetKind.IPNS, TargetKind.DNSLINK)  # resolved when the scan runs
    if target.kind in (TargetKind.LOCAL, TargetKind.CAR_FILE) or (target.cid is None and not named):
        # A CID-shaped name that happens to exist as a file here: still never read.
        raise Invalid(f"target: {quoted(raw)}: {_NETWORK_ONLY}")
    return target


class ScanJobsService:
    """Submit, read and cancel queued scans; the agent's ScanJobRunner runs them."""

    def __init__(self, store: Store, settings: Settings, *, resolver: AbstractResolver | None = None) -> None:
        self._store = store
        self._settings = settings
        # The resolver names are checked with (None: the system's); tests pass a table.
        self._resolver = resolver

    async def submit(self, request: ScanJobRequest, requested_by: str | None) -> ScanJobRow:
        from agent.model.jobs import JobOptions
        from agent.model.target import TargetError
        from agent.sources.targets import parse_gateway_url

        target = network_target(request.target)
        if request.mode not in ("car", "raw"):
            raise Invalid(f"mode: {request.mode!r} is not a retrieval mode (car or raw)")
        if len(request.gateways) > MAX_GATEWAYS:
            raise Invalid(f"gateways: at most {MAX_GATEWAYS} gateways")
        if len(request.lists) > MAX_LISTS:
            raise Invalid(f"lists: at most {MAX_LISTS} lists")
        guard = self._guard()
        if target.gateway_hint is not None and not request.gateways:
            # Only asked when no gateway is given: the scan then fetches from the target's own.
            await self._check_url(guard, target.gateway_hint, "target")
        gateways: list[str] = []
        for i, given in enumerate(request.gateways):
            try:
                url = parse_gateway_url(given)
            except TargetError as exc:
                raise Invalid(f"gateways[{i}]: {exc}") from exc
            await self._check_url(guard, url, f"gateways[{i}]")
            gateways.append(url)
        for i, source in enumerate(request.lists):
            if not source.lower().startswith(("http://", "https://")):
                raise Invalid(f"lists[{i}]: only http(s) list URLs; the API never reads files on the agent's host")
            await self._check_url(guard, source, f"lists[{i}]")
        options = JobOptions(gateways=tuple(dict.fromkeys(gateways)), lists=tuple(request.lists), mode=request.mode)
        return await self._store.jobs.submit(target.text, options, requested_by)

    async def get(self, job_id: int) -> ScanJobRow:
        row = await self._store.jobs.get(job_id)
        if row is None:
            raise NotFound(f"no scan {job_id}")
        return row

    async def page(self, limit: int, before_id: int | None = None, requested_by: str | None = None) -> list[ScanJobRow]:
        """Newest first; `before_id` is the cursor (the last id of the previous page)."""
        return await self._store.jobs.page(limit=limit, before_id=before_id, requested_by=requested_by)

    async def cancel(self, job_id: int) -> ScanJobRow:
        """A queued scan is cancelled now, a running one when its runner next renews its
        lease (within [api] scan_lease_s / 3); a finished one comes back unchanged."""
        row = await self._store.jobs.cancel(job_id)
        if row is None:
            raise NotFound(f"no scan {job_id}")
        return row

    def _guard(self) -> NetGuard:
        from agent.services.untrusted import api_guard

        return api_guard(self._settings)

    async def _check_url(self, guard: NetGuard, url: str, field: str) -> None:
        """Refuse `url` unless the guard allows it and its host resolves to allowed addresses."""
        from agent.services.untrusted import refusal

        if (refused := await refusal(guard, url, resolver=self._resolver)) is not None:
            raise Invalid(f"{field}: {refused.url}: {refused.reason}")
