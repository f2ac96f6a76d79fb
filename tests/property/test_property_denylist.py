"""Denylist rules and checks: parsing never raises; checks raise only ValueError."""

from __future__ import annotations

from hypothesis import example, given

from tests.property.targets import TARGETS

PARSE = TARGETS["denylist-parse"]
CHECK = TARGETS["denylist-check"]
# A base58 multihash of a hash function multiformats does not know (0x1234).
UNKNOWN_HASH_NAME = "2Yhsw66DG"


@given(PARSE.strategy)
def test_denylist_parsing_never_raises(data: bytes) -> None:
    PARSE.check(data)


@given(CHECK.strategy)
@example(("//QmbK7LDv5NNBvYQzNfm2eED17SNLt1yNMapcUhSuNLgkqz\n", [f"/ipns/{UNKNOWN_HASH_NAME}"]))  # issue 9 item 11
def test_denylist_checks_raise_only_value_error(value: tuple[str, list[str]]) -> None:
    CHECK.check(value)
