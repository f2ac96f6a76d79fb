"""Watch targets: the one place that adds, lists, enables and removes them.

The CLI (`dweb-agent targets`) and the daemon (targets declared in the config) both
add through `TargetsService.add`, so a target added twice is handled one way:
the existing row comes back, flagged as not created.

A target an API caller adds (`untrusted=True`) must not make the agent fetch from its own
host or private network: the URLs it names (a Kubo RPC, a gateway, an Arweave gateway)
pass the SSRF guard, host names resolved now; [api] allow_hosts and the hosts of the
configured [gateways] urls are allowed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.services.errors import Invalid, NotFound

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.model.records import TargetRow
    from agent.model.target import Target
    from agent.store import Store


def classify(url: str) -> Target:
    """The watch target a URL names (its canonical URL and kind), or Invalid with the reason."""
    from agent.model.target import TargetError
    from agent.sources.targets import parse_watch_target

    try:
        return parse_watch_target(url)
    except TargetError as exc:
        raise Invalid(str(exc), field="url") from exc


@dataclass(frozen=True, slots=True)
class AddedTarget:
    """The stored target and whether this call created it (False: it was watched already)."""

    target: TargetRow
    created: bool


def fetched_urls(target: Target) -> list[str]:
    """The URLs watching `target` makes the agent fetch beyond the configured gateways."""
    from agent.model.target import TargetKind

    if target.kind in (TargetKind.KUBO, TargetKind.ARWEAVE):
        return [target.name]
    return [target.gateway_hint] if target.gateway_hint else []


async def refuse_guarded(settings: Settings | None, urls: list[str]) -> None:
    """Invalid unless every URL passes the API's SSRF guard (agent.services.untrusted)."""
    from agent.config import Settings as DefaultSettings
    from agent.services.untrusted import api_guard, refusal

    guard = api_guard(settings if settings is not None else DefaultSettings())
    for url in urls:
        if (refused := await refusal(guard, url)) is not None:
            raise Invalid(
                f"{refused.url}: {refused.reason} (an operator may allow the host in [api] allow_hosts)", field="url"
            )


class TargetsService:
    def __init__(self, store: Store, default_interval_s: int, settings: Settings | None = None) -> None:
        self._store = store
        self._default_interval_s = default_interval_s
        self._settings = settings

    async def add(self, url: str, interval_s: int | None = None, *, untrusted: bool = False) -> AddedTarget:
        """Watch URL. A URL watched already is left as it is (its interval too) and returned.
        `untrusted`: an API caller's, so its URLs pass the SSRF guard first."""
        from agent.store import DuplicateTarget

        spec = classify(url)
        if untrusted:
            await refuse_guarded(self._settings, fetched_urls(spec))
        existing = await self._store.targets.get(spec.url)
        if existing is not None:
            return AddedTarget(existing, created=False)
        try:
            row = await self._store.targets.add(spec.url, spec.kind.value, interval_s or self._default_interval_s)
        except DuplicateTarget:
            # Added by another agent or command between the look-up and the insert.
            raced = await self._store.targets.get(spec.url)
            if raced is None:  # ... and removed again before this look-up
                raise NotFound(f"{spec.url} was added and removed meanwhile") from None
            return AddedTarget(raced, created=False)
        return AddedTarget(row, created=True)

    async def all(self, *, enabled_only: bool = False) -> list[TargetRow]:
        return list(await self._store.targets.all(enabled_only=enabled_only))

    async def get(self, target_id: int) -> TargetRow:
        row = await self._store.targets.get(target_id)
        if row is None:
            raise NotFound(f"no target {target_id}")
        return row

    async def set_enabled(self, target: str, enabled: bool) -> None:
        if not await self._store.targets.set_enabled(self._key(target), enabled):
            raise NotFound(f"no target {target}")

    async def remove(self, target: str) -> None:
        """Stop watching TARGET (its id or URL, in any spelling the parser accepts). Findings stay."""
        if not await self._store.targets.remove(self._key(target)):
            raise NotFound(f"no target {target}")

    @staticmethod
    def _key(target: str) -> int | str:
        if target.isdigit():
            return int(target)
        try:
            return classify(target).url
        except Invalid:
            return target  # not a target URL: looked up as given, and not found
