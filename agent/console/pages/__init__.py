"""Every console page, by area: each module holds its `PAGES`."""

from __future__ import annotations

from agent.console.pages import findings, lists, report, scans, settings, targets, webhooks
from agent.console.routing import Page

PAGES: list[Page] = [
    *findings.PAGES,
    *scans.PAGES,
    *targets.PAGES,
    *webhooks.PAGES,
    *lists.PAGES,
    *report.PAGES,
    *settings.PAGES,
]
