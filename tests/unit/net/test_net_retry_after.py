"""Retry-After in both of its forms, and what is not one."""

from __future__ import annotations

import pytest

from agent.net.retry_after import parse_retry_after


@pytest.mark.parametrize(("value", "expected"), [("120", 120.0), (" 0 ", 0.0), ("1.5", 1.5), ("-3", 0.0)])
def test_delta_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value) == expected


def test_http_date_is_measured_from_now() -> None:
    now = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
    assert parse_retry_after("Tue, 14 Nov 2023 22:15:20 GMT", now=now) == 120.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:10:00 GMT", now=now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "Tue, 99 Nov"])
def test_unusable_values_give_none(value: str | None) -> None:
    assert parse_retry_after(value) is None
