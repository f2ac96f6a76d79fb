"""Moved: the poll is agent.services.polling; the target model agent.model.target, parsed by
agent.sources.targets; `examined` is agent.pipeline.item_examined. Nothing but shims here."""

from __future__ import annotations

from agent.model.target import Target, TargetKind
from agent.pipeline import item_examined
from agent.services.polling import PollContext, PollOutcome, poll
from agent.sources.targets import parse_watch_target

__all__ = ["PollContext", "PollOutcome", "WatchKind", "WatchTarget", "classify_target", "examined", "poll"]

WatchTarget = Target  # shim: issue-10 integration removes
WatchKind = TargetKind  # shim: issue-10 integration removes
classify_target = parse_watch_target  # shim: issue-10 integration removes
examined = item_examined  # shim: issue-10 integration removes
