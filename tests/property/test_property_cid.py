"""CIDs from text and from bytes: only InvalidCid comes out, and what bytes
give is a CID that text parsing accepts too (one set of rules)."""

from __future__ import annotations

from hypothesis import given

from tests.property.targets import TARGETS

TEXT = TARGETS["cid-text"]
BYTES = TARGETS["cid-bytes"]


@given(TEXT.strategy)
def test_cid_text_raises_only_invalid_cid(text: str) -> None:
    TEXT.check(text)


@given(BYTES.strategy)
def test_cid_bytes_raise_only_invalid_cid_and_agree_with_text_parsing(data: bytes) -> None:
    BYTES.check(data)
