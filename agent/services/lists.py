"""The names of the hash lists and denylists: configured, and synced into the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.model.records import ListVersionRow
    from agent.store import Store


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

    async def known_names(self) -> list[str]:
        """Lists a subscription can name: the configured ones, and every list the store has a
        version of (loaded by an agent, possibly with another configuration)."""
        names = set(configured_list_names(self._settings))
        names.update(v.name for v in await self.versions())
        return sorted(names)
