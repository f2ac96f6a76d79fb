"""IPNS records (valid ones, mutated) and names: only IpnsError comes out."""

from __future__ import annotations

from hypothesis import given

from tests.property.targets import TARGETS

RECORD = TARGETS["ipns-record"]
NAME = TARGETS["ipns-name"]


@given(RECORD.strategy)
def test_ipns_record_verification_raises_only_ipns_errors(record: bytes) -> None:
    RECORD.check(record)


@given(NAME.strategy)
def test_ipns_names_raise_only_invalid_name(text: str) -> None:
    NAME.check(text)
