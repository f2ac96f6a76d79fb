"""GET /v1/lists: every list the agent has loaded, as the store's list versions know it
(name, source, content hash, counts, when it became current), with what the running
agent's catalog adds: entries by signal type and the first problems of each list."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from pydantic import Field

from agent.api.routing import READERS, Call, Route
from agent.api.schemas import Out
from agent.lists.catalog import ListCatalog

# A list's problems shown inline; `problems` counts them all.
MAX_PROBLEM_LINES = 20


class ListOut(Out):
    name: str
    source: str
    version: str = Field(description="the SHA-256 of the list's content (it changes with each new version)")
    loaded_at: datetime = Field(
        description="when this content became the list's current one (its last sync that changed it)"
    )
    entries: int
    deny_rules: int
    problems: int = Field(description="lines skipped when the list was loaded")
    entries_by_type: dict[str, int] | None = Field(
        description="live entries by signal type, from the running agent's lists; null: not loaded here"
    )
    problem_lines: list[str] = Field(description=f"the first (at most {MAX_PROBLEM_LINES}) problems, with line")


class ListsOut(Out):
    lists: list[ListOut]


def _by_type(catalog: ListCatalog) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for hash_list in catalog.index.lists:
        counts = Counter(e.signal_type.value for e in hash_list.live_entries())
        out[hash_list.name] = dict(sorted(counts.items()))
    return out


def _problem_lines(catalog: ListCatalog, source: str) -> list[str]:
    return [str(p) for p in catalog.problems if p.source == source][:MAX_PROBLEM_LINES]


async def list_lists(call: Call) -> ListsOut:
    catalog = call.context.matcher.catalog()
    by_type = _by_type(catalog)
    loaded = {s.name for s in catalog.summaries}
    out = [
        ListOut(
            name=v.name,
            source=v.source,
            version=v.content_hash,
            loaded_at=v.loaded_at,
            entries=v.entries,
            deny_rules=v.deny_rules,
            problems=v.problems,
            entries_by_type=by_type.get(v.name, {}) if v.name in loaded else None,
            problem_lines=_problem_lines(catalog, v.source),
        )
        for v in await call.context.services.lists.versions()
    ]
    return ListsOut(lists=out)


ROUTES = [
    Route(
        "GET",
        "/v1/lists",
        list_lists,
        READERS,
        "The hash lists and denylists, with versions and counts",
        "lists",
        responses={200: ListsOut},
    ),
]
