"""Moved: signals of local files are agent.pipeline.local."""

from __future__ import annotations

from agent.pipeline.local import FileSignals, hash_local_files  # shim: issue-10 integration removes

__all__ = ["FileSignals", "hash_local_files"]
