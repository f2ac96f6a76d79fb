"""GET /v1/lists: every list the agent has loaded, as the store's list versions know it
(name, source, content hash, counts, when it became current), with what the running
agent's catalog adds: entries by signal type and the first problems of each list."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from agent.api.routing import READERS, Call, Route
from agent.api.schemas import Out
from agent.services.lists import MAX_PROBLEM_LINES


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


async def list_lists(call: Call) -> ListsOut:
    # Assembled by the service, so the console's lists page says what this route says.
    overviews = await call.context.services.lists.overview(call.context.matcher.catalog())
    out = [
        ListOut(
            name=o.version.name,
            source=o.version.source,
            version=o.version.content_hash,
            loaded_at=o.version.loaded_at,
            entries=o.version.entries,
            deny_rules=o.version.deny_rules,
            problems=o.version.problems,
            entries_by_type=dict(o.entries_by_type) if o.entries_by_type is not None else None,
            problem_lines=list(o.problem_lines),
        )
        for o in overviews
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
