"""Polls: what one poll of a watched target runs (the scheduler's timing is agent.runtime's).

A poll asks the target kind's Source (agent.sources.registry) what to scan now,
scans only what was never examined (the store answers `known`), and returns the
state to keep for the next poll (the Source's cursor, in the targets.state
JSON keys earlier versions wrote)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from agent.config import Settings
from agent.model.item_key import ItemKey
from agent.model.report import ItemStatus, ScanReport
from agent.model.target import Target, TargetError
from agent.pipeline import Scanner, item_examined
from agent.sources.base import Discovery, Scanned, SourceEnv
from agent.sources.registry import SOURCES


@dataclass
class PollOutcome:
    state: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)
    reports: list[ScanReport] = field(default_factory=list)
    note: str = ""

    @property
    def failed(self) -> str | None:
        """Why this poll must count as a failure (scan-level errors), or None."""
        errors = [e for r in self.reports for e in r.errors]
        return "; ".join(errors) if errors else None


def _complete(report: ScanReport) -> bool:
    """A root is done when every item was examined (blocked and denylisted count as examined)."""
    return not report.errors and all(
        item_examined(i.status, i.signals)
        or i.status == ItemStatus.BLOCKED
        or (i.status == ItemStatus.SKIPPED and i.findings)
        for i in report.items
    )


@dataclass
class PollContext:
    settings: Settings
    http: aiohttp.ClientSession
    # A Scanner for this target: its store hooks and the lists current when called.
    new_scanner: Callable[[], Scanner]
    # The store's record of an item key, None when it has none: what is known is not fetched again.
    known: Callable[[ItemKey], Awaitable[object | None]]


async def poll(ctx: PollContext, target: Target, state: dict[str, Any]) -> PollOutcome:
    factory = SOURCES.get(target.kind)
    if factory is None:
        raise TargetError(f"{target.url}: {target.kind} targets are scanned with `dweb-agent scan`, not watched")

    async def known(key: ItemKey) -> bool:
        return await ctx.known(key) is not None

    source = factory(SourceEnv(ctx.http, ctx.settings, known))
    discovery = await source.discover(target, source.read_cursor(state))
    outcome = PollOutcome(dict(state))
    settled = discovery.settle(await _scan(ctx, target, discovery, outcome))
    # Merged over the stored state, as earlier versions updated it: keys of no cursor's stay.
    outcome.state = {**state, **settled.cursor.to_state()}
    outcome.note = settled.note
    return outcome


async def _scan(ctx: PollContext, target: Target, discovery: Discovery[Any], outcome: PollOutcome) -> Scanned:
    """Scan what `discovery` names, each root or pin through a fresh Scanner; the store makes it incremental."""
    root_complete, root_summary = False, ""
    if discovery.root is not None:
        report = await ctx.new_scanner().scan(discovery.root.url)
        outcome.reports.append(report)
        root_complete, root_summary = _complete(report), f"{report.summary()}"
    pins_complete: set[str] = set()
    for pin in discovery.pins:
        report = await ctx.new_scanner().scan_source(pin.source, pin.cid, pin.label)
        outcome.reports.append(report)
        if _complete(report):
            pins_complete.add(pin.key)
    if discovery.blobs is not None:
        scanner = ctx.new_scanner()
        async with aclosing(discovery.blobs) as blobs:
            async for blob in blobs:
                outcome.reports.append(
                    await scanner.examine_bytes(target.url, blob.key, blob.data, blob.source, key=blob.key)
                )
    return Scanned(root_complete, root_summary, frozenset(pins_complete))
