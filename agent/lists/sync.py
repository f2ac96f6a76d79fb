"""Keep the list catalog current: reload changed files, re-fetch changed URLs,
pull TCAP changes since the last checkpoint.

`ListSyncer.refresh()` returns a new immutable ListCatalog (and what changed);
the caller swaps its reference, so scans in flight finish on the catalog they
started with. A source that fails keeps its last good version: matching must
not stop, and must not silently lose entries, because a download broke.

Persistent state (ETags, checkpoints, content hashes) goes through the small
SyncStateStore protocol so that this package never imports the store."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import aiohttp
import structlog

from agent.lists.catalog import ListCatalog, ListSummary, Thresholds
from agent.lists.denylist import Denylist

# load.py's accumulator is reused so a directory parses exactly as load_list
# parses it (TCAP pages applied in name order, denylists combined), but from
# the bytes we hashed rather than from a second read that could differ.
from agent.lists.fetch import ListTooLarge, read_bounded
from agent.lists.limits import DEFAULT_LIMITS, ParseLimits, ProblemLog, problem_total
from agent.lists.load import parse_list_bytes
from agent.lists.matcher import MatchIndex
from agent.lists.model import HashList, ListEntry

# The state and result types live in sync_state, one source's versions and
# file loading in sync_sources; they stay importable from here.
from agent.lists.sync_sources import (
    ListSource,
    LoadedVersion,
    RefreshOutcome,
    load_files,
    source_name,
    state_of,
    unique_names,
    version_of,
)
from agent.lists.sync_state import (
    ListVersionInfo,
    SyncResult,
    SyncStateStore,
    TcapSourceConfig,
    content_hash,
)
from agent.lists.tcap_auth import TcapLogin, login_url_for
from agent.lists.tcap_client import ListSyncError, TcapClient, TokenSource, diff_entries, display_url

__all__ = [
    "ListSyncer",
]

log = structlog.get_logger(__name__)


class ListSyncer:
    def __init__(
        self,
        sources: Sequence[str],
        tcap: Sequence[TcapSourceConfig] = (),
        *,
        http: aiohttp.ClientSession | None = None,
        state: SyncStateStore,
        thresholds: Mapping[str, Thresholds] | None = None,
        max_bytes: int = DEFAULT_LIMITS.max_bytes,
        tcap_page_limit: int = 10_000,
    ) -> None:
        specs: list[tuple[str, str, str, TcapSourceConfig | None]] = []
        for source in sources:
            if source.startswith("tcap+"):
                raise ValueError(f"{display_url(source)}: a TCAP source needs a token; use TcapSourceConfig")
            kind = "url" if source.startswith(("http://", "https://")) else "file"
            specs.append((source_name(source), source, kind, None))
        for config in tcap:
            specs.append((config.name, config.url, "tcap", config))
        self._sources = unique_names(specs)
        self._http = http
        self._state = state
        self._thresholds = dict(thresholds or {})
        self._limits = ParseLimits(
            max_bytes=max_bytes, max_line_length=DEFAULT_LIMITS.max_line_length, max_entries=DEFAULT_LIMITS.max_entries
        )
        self._tcap_page_limit = tcap_page_limit
        # One login per TCAP source, kept across refreshes so its JWT is re-used until it expires.
        self._tcap_logins: dict[str, TcapLogin] = {}
        self._versions: dict[str, LoadedVersion] = {}
        self._previous_hash: dict[str, str | None] = {}
        self._catalog = ListCatalog.empty()
        self._refreshed = False
        self._lock = asyncio.Lock()

    @property
    def catalog(self) -> ListCatalog:
        """The catalog of the last refresh (empty before the first)."""
        return self._catalog

    async def refresh(self) -> SyncResult:
        """Bring every source up to date and build a new catalog if anything
        changed. Never raises for a failing source: it keeps its previous
        version and the error is in `errors`."""
        async with self._lock:  # two refreshes at once would race on the versions
            first = not self._refreshed
            outcomes = await asyncio.gather(*(self._refresh_one(s) for s in self._sources))
            changed = first
            added: dict[str, tuple[ListEntry, ...]] = {}
            removed: dict[str, tuple[str, ...]] = {}
            versions: list[ListVersionInfo] = []
            errors: list[str] = []
            for src, outcome in zip(self._sources, outcomes, strict=True):
                if outcome.error is not None:
                    errors.append(outcome.error)
                    log.warning("lists.sync_failed", list=src.name, source=display_url(src.source), error=outcome.error)
                prev = self._versions.get(src.name)
                list_changed = (
                    outcome.loaded
                    and outcome.version is not None
                    and (
                        prev is None
                        or prev.content_hash != outcome.version.content_hash
                        or bool(outcome.added or outcome.removed)
                    )
                )
                if list_changed:
                    changed = True
                    if outcome.added:
                        added[src.name] = outcome.added
                    if outcome.removed:
                        removed[src.name] = outcome.removed
                if outcome.version is not None:
                    self._versions[src.name] = outcome.version
                v = self._versions.get(src.name)
                versions.append(
                    ListVersionInfo(
                        name=src.name,
                        source=src.source,
                        content_hash=v.content_hash if v else None,
                        entries=len(v.hash_list.live_entries()) if v else 0,
                        deny_rules=len(v.denylist.rules) if v else 0,
                        problems=problem_total(v.problems) if v else 0,
                        changed=list_changed,
                        error=outcome.error,
                        previous_content_hash=self._previous_hash.get(src.name),
                    )
                )
            if changed:
                self._catalog = await asyncio.to_thread(self._build_catalog)
            self._refreshed = True
            log.info(
                "lists.synced",
                changed=changed,
                lists=len(versions),
                errors=len(errors),
                added=sum(map(len, added.values())),
                removed=sum(map(len, removed.values())),
            )
            return SyncResult(self._catalog, changed, added, removed, versions, errors)

    def _build_catalog(self) -> ListCatalog:
        lists: list[HashList] = []
        denylists: list[Denylist] = []
        summaries: list[ListSummary] = []
        problems = ProblemLog()
        for src in self._sources:
            v = self._versions.get(src.name)
            if v is None:
                continue
            hash_list = v.hash_list
            if src.name in self._thresholds:
                hash_list = self._thresholds[src.name].apply(hash_list)
            lists.append(hash_list)
            denylists.append(v.denylist)
            problems.extend(v.problems)
            summaries.append(
                ListSummary(
                    src.name,
                    src.source,
                    len(v.hash_list.live_entries()),
                    len(v.denylist.rules),
                    problem_total(v.problems),
                )
            )
        return ListCatalog(MatchIndex(lists), Denylist.combine(denylists), tuple(summaries), problems.result())

    async def _refresh_one(self, src: ListSource) -> RefreshOutcome:
        previous = self._versions.get(src.name)
        if previous is None and src.name not in self._previous_hash:
            stored = await self._state.get(src.name)
            self._previous_hash[src.name] = stored.content_hash if stored else None
        try:
            if src.kind == "file":
                outcome = await asyncio.to_thread(load_files, Path(src.source), src.name, self._limits, previous)
            elif src.kind == "url":
                outcome = await self._refresh_url(src, previous)
            else:
                outcome = await self._refresh_tcap(src, previous)
        except ListSyncError as exc:
            return RefreshOutcome(previous, loaded=False, error=str(exc))
        except OSError as exc:
            return RefreshOutcome(previous, loaded=False, error=f"{src.source}: {exc.strerror or exc}")
        except Exception as exc:
            log.exception("lists.sync_crashed", list=src.name)
            return RefreshOutcome(
                previous, loaded=False, error=f"{display_url(src.source)}: {type(exc).__name__}: {exc}"
            )
        if outcome.loaded and outcome.version is not None and src.kind != "tcap":
            old = previous.hash_list.live_entries() if previous else ()
            added, removed = diff_entries(old, outcome.version.hash_list.live_entries())
            outcome = replace(outcome, added=added, removed=removed)
        if outcome.version is not None and outcome.version is not previous:
            new_state = state_of(src, outcome.version)
            if previous is None or new_state != state_of(src, previous):
                await self._state.put(new_state)
        return outcome

    async def _refresh_url(self, src: ListSource, previous: LoadedVersion | None) -> RefreshOutcome:
        if self._http is None:
            raise ListSyncError(f"{display_url(src.source)}: a URL list needs an HTTP session")
        headers: dict[str, str] = {}
        # Conditional only when we hold the list in memory: after a restart a
        # 304 would leave us with nothing to match against.
        if previous is not None:
            if previous.etag:
                headers["If-None-Match"] = previous.etag
            if previous.last_modified:
                headers["If-Modified-Since"] = previous.last_modified
        shown = display_url(src.source)
        limit = self._limits.max_bytes
        try:
            async with self._http.get(src.source, headers=headers) as response:
                if response.status == 304 and previous is not None:
                    return RefreshOutcome(previous, loaded=False)
                if response.status != 200:
                    raise ListSyncError(f"{shown}: HTTP {response.status}")
                try:
                    data = await read_bounded(response, limit)
                except ListTooLarge as exc:
                    raise ListSyncError(f"{shown}: {exc}") from None
                etag = response.headers.get("ETag")
                last_modified = response.headers.get("Last-Modified")
        except aiohttp.ClientError as exc:
            raise ListSyncError(f"{shown}: {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise ListSyncError(f"{shown}: timed out") from None
        raw_digest = hashlib.sha256(data).hexdigest()
        if previous is not None and previous.raw_digest == raw_digest:
            # Same bytes under a new validator: keep the list, remember the validator.
            return RefreshOutcome(replace(previous, etag=etag, last_modified=last_modified), loaded=False)
        result = await asyncio.to_thread(parse_list_bytes, data, source=src.source, name=src.name, limits=self._limits)
        version = version_of(result, raw_digest, etag=etag, last_modified=last_modified)
        return RefreshOutcome(version, loaded=True)

    async def _refresh_tcap(self, src: ListSource, previous: LoadedVersion | None) -> RefreshOutcome:
        config = src.tcap
        if config is None:  # _refresh_one only sends TCAP sources here
            raise ListSyncError(f"{display_url(src.source)}: not a TCAP source")
        if self._http is None:
            raise ListSyncError(f"{display_url(src.source)}: a TCAP list needs an HTTP session")
        token: str | TokenSource = config.token
        if not config.token:
            if not (config.username and config.password):
                raise ListSyncError(f"{display_url(config.url)}: TCAP needs a token or a username and password")
            login = self._tcap_logins.get(src.name)
            if login is None:
                login = TcapLogin(self._http, login_url_for(config.url), config.username, config.password)
                self._tcap_logins[src.name] = login
            token = login
        client = TcapClient(
            config.url,
            token,
            self._http,
            page_limit=self._tcap_page_limit,
            max_page_bytes=self._limits.max_bytes,
            auth_scheme=config.auth_scheme,
            checkpoint_param=config.checkpoint_param,
            params=dict(config.params),
            paging=config.paging,
        )
        # Resume from the checkpoint only with the list it belongs to in memory.
        base = previous.hash_list if previous is not None else HashList(src.name)
        checkpoint = previous.checkpoint if previous is not None else None
        pull = await client.pull(base, checkpoint)
        if previous is not None and not pull.added and not pull.removed:
            if pull.checkpoint == previous.checkpoint:
                return RefreshOutcome(previous, loaded=False)
            return RefreshOutcome(replace(previous, checkpoint=pull.checkpoint), loaded=False)
        version = LoadedVersion(
            pull.list, Denylist(), pull.problems, content_hash(pull.list), checkpoint=pull.checkpoint
        )
        return RefreshOutcome(version, loaded=True, added=pull.added, removed=pull.removed)
