"""An IPNS name that tests publish to a test gateway: a fresh Ed25519 key, and
records signed with it (sequence numbers increasing, valid for a day)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.ipfs.cid import CID
from agent.sources.ipns_keys import ipns_name_for_key
from agent.sources.ipns_record import build_ipns_record
from tests.support.gateway import FixtureGateway


class IpnsPublisher:
    def __init__(self, gw: FixtureGateway) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.name = ipns_name_for_key(self.key).text
        self.gw = gw
        self.sequence = 0

    def publish(self, root: CID) -> None:
        self.sequence += 1
        self.gw.ipns_records[self.name] = build_ipns_record(
            self.key, f"/ipfs/{root}", self.sequence, datetime.now(UTC) + timedelta(days=1), timedelta(minutes=1)
        )
