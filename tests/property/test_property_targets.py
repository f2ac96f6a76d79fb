"""Scan target strings: TargetError (a clear message, exit 2) or a target."""

from __future__ import annotations

from hypothesis import given

from tests.property.targets import TARGETS

TARGET = TARGETS["target"]


@given(TARGET.strategy)
def test_target_strings_raise_only_target_error(text: str) -> None:
    TARGET.check(text)
