"""The names of the hash lists and denylists: configured, and synced into the store; and
each list as readers see it (GET /v1/lists, the console's lists page): its stored version
with what the running agent's catalog adds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.lists.catalog import ListCatalog
    from agent.lists.model import HashList
    from agent.model.records import ListVersionRow
    from agent.store import Store

# A list's problems shown inline; its version's `problems` counts them all.
MAX_PROBLEM_LINES = 20


@dataclass(frozen=True, slots=True)
class MatchThresholds:
    """How closely the running agent matches one loaded list's perceptual entries."""

    pdq_distance: int
    pdq_min_quality: int
    # Max distance per imagehash type; a type absent here is not matched at all.
    imagehash_distance: tuple[tuple[str, int], ...]
    vpdq_match_percent: float
    vpdq_compared_percent: float

    @classmethod
    def of(cls, hash_list: HashList) -> MatchThresholds:
        return cls(
            pdq_distance=hash_list.pdq_distance,
            pdq_min_quality=hash_list.pdq_min_quality,
            imagehash_distance=tuple(sorted((t.value, d) for t, d in hash_list.imagehash_distance.items())),
            vpdq_match_percent=hash_list.vpdq_match_percent,
            vpdq_compared_percent=hash_list.vpdq_compared_percent,
        )


@dataclass(frozen=True, slots=True)
class ListOverview:
    """One list's stored version, and what the running agent's catalog says of it: live
    entries by signal type and its thresholds (None: this agent has not loaded the list),
    and its first problems (at most MAX_PROBLEM_LINES, each with its line)."""

    version: ListVersionRow
    entries_by_type: Mapping[str, int] | None
    problem_lines: tuple[str, ...]
    thresholds: MatchThresholds | None


def configured_list_names(settings: Settings) -> list[str]:
    """The names the list syncer gives the configured [lists] sources and TCAP lists."""
    # The syncer's own naming functions, so a name accepted here is the name
    # findings will carry (a file's stem, a URL's last segment, `-2` suffixes).
    from agent.lists.sync_sources import source_name, unique_names

    specs = [(source_name(source), source, "", None) for source in settings.lists.sources]
    specs += [(tcap.name, tcap.url, "tcap", None) for tcap in settings.lists.tcap]
    return [src.name for src in unique_names(specs)]


class ListsService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    async def versions(self) -> list[ListVersionRow]:
        """The newest stored version of every list an agent has loaded."""
        return list(await self._store.lists.latest_versions())

    async def overview(self, catalog: ListCatalog) -> list[ListOverview]:
        """Every list the store has a version of, by name, with what `catalog` (the lists
        matched against now) adds to it."""
        loaded = {s.name for s in catalog.summaries}
        by_name = {hash_list.name: hash_list for hash_list in catalog.index.lists}
        out: list[ListOverview] = []
        for version in await self.versions():
            hash_list = by_name.get(version.name) if version.name in loaded else None
            counts = Counter(e.signal_type.value for e in hash_list.live_entries()) if hash_list is not None else {}
            problems = [str(p) for p in catalog.problems if p.source == version.source][:MAX_PROBLEM_LINES]
            out.append(
                ListOverview(
                    version=version,
                    entries_by_type=dict(sorted(counts.items())) if version.name in loaded else None,
                    problem_lines=tuple(problems),
                    thresholds=MatchThresholds.of(hash_list) if hash_list is not None else None,
                )
            )
        return out

    async def known_names(self) -> list[str]:
        """Lists a subscription can name: the configured ones, and every list the store has a
        version of (loaded by an agent, possibly with another configuration)."""
        names = set(configured_list_names(self._settings))
        names.update(v.name for v in await self.versions())
        return sorted(names)
