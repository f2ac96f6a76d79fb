"""Errors the store raises for conditions callers are expected to handle."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for store errors."""


class DuplicateTarget(StoreError):
    """A target with this URL is already registered."""

    def __init__(self, url: str) -> None:
        super().__init__(f"target already exists: {url}")
        self.url = url


class SchemaTooNew(StoreError):
    """The database was migrated by a newer agent than this one."""
