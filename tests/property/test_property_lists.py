"""Every hash-list format and the detector: a bad line is a problem, never
an exception (TooLarge over max_bytes only)."""

from __future__ import annotations

from hypothesis import example, given

from tests.property.targets import TARGETS

FORMATS = TARGETS["list-formats"]
LOAD = TARGETS["list-load"]


@given(FORMATS.strategy)
@example(b"md5,0a21c3d4e5\rf60718293a4b5c6d7e8f90,,,\n")  # issue 8 item 10: a stray CR
def test_list_formats_report_problems_and_never_raise(data: bytes) -> None:
    FORMATS.check(data)


@given(LOAD.strategy)
@example(("x.csv", b'md5,"x\n'))
def test_detect_and_load_report_problems_and_never_raise(value: tuple[str, bytes]) -> None:
    LOAD.check(value)
