"""Where matches and denylist decisions become `Finding`s: the one place the
lists' results are turned into the report's (and the store's) vocabulary."""

from __future__ import annotations

from agent.lists.denylist import DenyDecision
from agent.lists.matcher import Match
from agent.model.finding import DenyBasis, Finding


def finding_from_match(match: Match) -> Finding:
    """A hash list entry matched by one of the item's signals (or its vPDQ frames)."""
    return Finding(
        list_name=match.list_name,
        entry=match.entry_value,
        entry_id=match.entry_id,
        signal_type=match.signal_type,
        distance=match.distance,
        labels=match.labels,
        query=match.signal.value if match.signal is not None else None,
        list_source=match.source or None,
        list_line=match.line,
        compared_percent=match.compared_percent,
    )


def finding_from_rule(decision: DenyDecision, basis: DenyBasis) -> Finding:
    """A denylist rule that blocks the item's CID or its path under the root."""
    rule = decision.rule
    return Finding(
        list_name=rule.list_name,
        entry=rule.raw,
        # The list name and a hash of the rule: no operator path, and stable
        # however the path was typed or the line moved (stored ids of the old
        # `path:line` form map over with agent.lists.denylist.migrated_entry_id).
        entry_id=rule.entry_id,
        signal_type=basis,
        # An int, as the report has always shown it (0, not 0.0).
        distance=0,
        labels=tuple(f"{k}={v}" for k, v in sorted(rule.hints.items())),
        query=decision.matched,
        list_source=rule.public_source,
        list_line=rule.line,
    )
