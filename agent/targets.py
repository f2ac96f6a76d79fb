"""Moved: target parsing is agent.sources.targets, the model agent.model.target."""

from __future__ import annotations

from agent.sources.targets import (  # shim: issue-10 integration removes
    MAX_TARGET_CHARS,
    Target,
    TargetError,
    TargetKind,
    explain_invalid_cid,
    parse_gateway_url,
    parse_target,
    parse_watch_target,
    quoted,
)

__all__ = [
    "MAX_TARGET_CHARS",
    "Target",
    "TargetError",
    "TargetKind",
    "explain_invalid_cid",
    "parse_gateway_url",
    "parse_target",
    "parse_watch_target",
    "quoted",
]
