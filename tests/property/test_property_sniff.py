"""The media sniffer never raises, whatever the first bytes are."""

from __future__ import annotations

from hypothesis import given

from tests.property.targets import TARGETS

SNIFF = TARGETS["sniff"]


@given(SNIFF.strategy)
def test_sniffer_never_raises(head: bytes) -> None:
    SNIFF.check(head)
