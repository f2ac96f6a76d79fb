"""TCAP hash list pages: problems, never exceptions."""

from __future__ import annotations

from hypothesis import example, given

from tests.property.targets import TARGETS

TCAP = TARGETS["tcap"]


@given(TCAP.strategy)
@example(b"[" * 100_000)
def test_tcap_pages_never_raise(data: bytes) -> None:
    TCAP.check(data)
