"""Shared gateway distrust: a gateway one node caught serving a wrong block, as every node reads it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class GatewayMark:
    """A gateway distrusted by every node until `until`: `node` saw it serve a block not matching `cid`."""

    url: str
    reason: str
    cid: str
    node: str
    marked_at: datetime
    until: datetime
