"""A finding: one item matched one list entry (a hash) or one denylist rule (a CID, a path).

Typed from the matcher to the store and the webhook; `to_view` is the JSON edge
(the report's `findings` objects, a public shape documented in the README)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agent.model.signals import SignalType


class DenyBasis(StrEnum):
    """What a denylist rule matched of an item (its `signal_type` in the report)."""

    CID = "cid"
    PATH = "path"


MatchedOn = SignalType | DenyBasis


def matched_on(text: str) -> MatchedOn:
    """A stored `signal_type` back as its type; raises ValueError for an unknown one."""
    try:
        return SignalType(text)
    except ValueError:
        return DenyBasis(text)


@dataclass(frozen=True, slots=True)
class Finding:
    """`distance` is 0 for exact types and denylist rules, the Hamming distance for
    perceptual ones, and for vPDQ the percentage of query frames matched
    (`compared_percent` then is the list video's share). `query` is the item's
    value that matched (a hash, a CID, a path)."""

    list_name: str
    entry: str
    entry_id: str
    signal_type: MatchedOn
    distance: float
    labels: tuple[str, ...] = ()
    query: str | None = None
    list_source: str | None = None
    list_line: int | None = None
    compared_percent: float | None = None

    @property
    def on_path(self) -> bool:
        """A denylist rule that named the item's path under its root (not its bytes)."""
        return self.signal_type is DenyBasis.PATH

    def to_view(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "list": self.list_name,
            "entry": self.entry,
            "entry_id": self.entry_id,
            "signal_type": self.signal_type.value,
            "distance": self.distance,
            "labels": list(self.labels),
            "query": self.query,
            "list_source": self.list_source,
            "list_line": self.list_line,
        }
        if self.compared_percent is not None:
            found["compared_percent"] = self.compared_percent
        return found
