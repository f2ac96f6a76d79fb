"""Console pages (being written)."""

from __future__ import annotations

from agent.console.routing import Page

PAGES: list[Page] = []
