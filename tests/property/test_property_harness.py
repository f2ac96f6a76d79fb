"""The harness itself: an undocumented error, a hang and unbounded memory are
each reported, so a parser regression cannot pass the property suite."""

from __future__ import annotations

import contextlib

import pytest

from tests.property.harness import CallHung, MemoryUnbounded, MiB, UndocumentedError, bounded_call


def test_documented_errors_are_returned_and_others_fail() -> None:
    def bad() -> None:
        raise ValueError("documented")

    def lookup() -> int:
        table: dict[str, int] = {}
        return table["missing"]

    assert isinstance(bounded_call(bad, (ValueError,)), ValueError)
    with pytest.raises(UndocumentedError, match="KeyError"):
        bounded_call(lookup, (ValueError,))


def test_a_call_that_never_returns_is_interrupted() -> None:
    def spin() -> None:
        while True:
            # A parser's catch-all (`except Exception`) must not swallow the watchdog.
            with contextlib.suppress(Exception):
                pass

    with pytest.raises(CallHung):
        bounded_call(spin, (), max_seconds=0.5, trace_memory=False)


def test_memory_over_the_bound_is_reported() -> None:
    with pytest.raises(MemoryUnbounded):
        bounded_call(lambda: bytearray(8 * MiB), (), max_memory=4 * MiB)
    assert bounded_call(lambda: bytearray(1 * MiB), (), max_memory=4 * MiB) is None
