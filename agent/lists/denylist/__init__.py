"""IPIP-383 denylists: parsing `.deny` files and checking CIDs, paths and names."""

from agent.lists.denylist.checker import Denylist
from agent.lists.denylist.ids import deny_entry_id, migrated_entry_id, public_source
from agent.lists.denylist.parser import DENYLIST_LIMITS, DenylistParse, parse_denylist
from agent.lists.denylist.rules import DenyDecision, DenylistHeader, DenyRule, RuleKind

__all__ = [
    "DENYLIST_LIMITS",
    "DenyDecision",
    "DenyRule",
    "Denylist",
    "DenylistHeader",
    "DenylistParse",
    "RuleKind",
    "deny_entry_id",
    "migrated_entry_id",
    "parse_denylist",
    "public_source",
]
