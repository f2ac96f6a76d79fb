"""Every list a scan matches against, loaded from files, directories and URLs.

Immutable once built: reloading builds a new catalog and the caller swaps the
reference, so matching never sees a half-applied update."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from agent.lists.denylist import Denylist
from agent.lists.fetch import ListTooLarge, fetch_list
from agent.lists.limits import DEFAULT_LIMITS, ParseLimits, ProblemLog, problem_total
from agent.lists.load import LoadResult, load_list, parse_list_bytes
from agent.lists.matcher import MatchIndex
from agent.lists.model import HashList, ParseProblem
from agent.model.signals import SignalType


class ListLoadError(Exception):
    """A list source could not be read at all (missing file, failed download)."""


@dataclass(frozen=True)
class ListSummary:
    name: str
    source: str
    entries: int
    deny_rules: int
    problems: int


@dataclass(frozen=True)
class ListCatalog:
    index: MatchIndex
    denylist: Denylist
    summaries: tuple[ListSummary, ...] = ()
    # The first problems of all lists (a Problems tuple: `.total` counts them all).
    problems: tuple[ParseProblem, ...] = field(default=(), repr=False)

    @property
    def problem_count(self) -> int:
        """Every problem of every list, including those not kept."""
        return problem_total(self.problems)

    @classmethod
    def empty(cls) -> ListCatalog:
        return cls(MatchIndex([]), Denylist())


def _load_local(source: str, name: str, limits: ParseLimits) -> LoadResult:
    return load_list(Path(source).expanduser(), name=name, limits=limits)


def name_for(source: str) -> str:
    if source.startswith(("http://", "https://")):
        tail = Path(urlsplit(source).path).name
        return Path(tail).stem or urlsplit(source).netloc
    path = Path(source)
    return path.stem if path.is_file() else path.name or str(path)


@dataclass(frozen=True)
class Thresholds:
    """Overrides for one list; None keeps the list's default."""

    pdq_distance: int | None = None
    pdq_min_quality: int | None = None
    imagehash_distance: Mapping[SignalType, int] = field(default_factory=dict)
    vpdq_match_percent: float | None = None
    vpdq_compared_percent: float | None = None

    def apply(self, hash_list: HashList) -> HashList:
        changes: dict[str, object] = {}
        for name in ("pdq_distance", "pdq_min_quality", "vpdq_match_percent", "vpdq_compared_percent"):
            value = getattr(self, name)
            if value is not None:
                changes[name] = value
        if self.imagehash_distance:
            changes["imagehash_distance"] = {**hash_list.imagehash_distance, **self.imagehash_distance}
        return replace(hash_list, **changes) if changes else hash_list  # type: ignore[arg-type]


async def load_catalog(
    sources: Sequence[str],
    *,
    http: aiohttp.ClientSession | None = None,
    max_bytes: int = DEFAULT_LIMITS.max_bytes,
    thresholds: Mapping[str, Thresholds] | None = None,
) -> ListCatalog:
    """Load every source. A malformed line is a problem, not a failure; a source
    that cannot be read at all raises ListLoadError naming it."""
    limits = ParseLimits(
        max_bytes=max_bytes, max_line_length=DEFAULT_LIMITS.max_line_length, max_entries=DEFAULT_LIMITS.max_entries
    )
    lists: list[HashList] = []
    denylists: list[Denylist] = []
    summaries: list[ListSummary] = []
    problems = ProblemLog()
    for source in sources:
        name = name_for(source)
        result: LoadResult
        if source.startswith(("http://", "https://")):
            if http is None:
                raise ListLoadError(f"{source}: a URL list needs an HTTP session")
            try:
                data = await fetch_list(source, http, max_bytes)
            except (aiohttp.ClientError, ListTooLarge, TimeoutError) as exc:
                raise ListLoadError(f"{source}: {exc}") from exc
            result = parse_list_bytes(data, source=source, name=name, limits=limits)
        else:
            try:
                # A local list can be a directory of large files: read and parse it off the loop.
                result = await asyncio.to_thread(_load_local, source, name, limits)
            except OSError as exc:
                raise ListLoadError(f"{source}: {exc.strerror or exc}") from exc
        hash_list = result.list
        if thresholds and name in thresholds:
            hash_list = thresholds[name].apply(hash_list)
        lists.append(hash_list)
        denylists.append(result.denylist)
        problems.extend(result.problems)
        summaries.append(
            ListSummary(
                name,
                source,
                len(result.list.live_entries()),
                len(result.denylist.rules),
                problem_total(result.problems),
            )
        )
    return ListCatalog(MatchIndex(lists), Denylist.combine(denylists), tuple(summaries), problems.result())
