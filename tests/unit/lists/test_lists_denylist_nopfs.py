"""Every expectation of the nopfs reference tester holds for its test.deny.

Expectations are read from the transcription in tests/fixtures, one test
id per expectation. Besides blocked/allowed, the deciding rule must be the one
the tester names (found by its `# ruleN` comment), so a block for the wrong
reason fails too."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from agent.lists.denylist import Denylist, parse_denylist
from tests.conftest import FIXTURES

DENY = FIXTURES / "ipfs" / "denylists" / "nopfs-test.deny"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "ipfs" / "denylists" / "nopfs-test.expected.json").read_text())

# The tester's rule11 cases "/ipfs/<cid>" and "/ipfs/<cid>/" are labelled
# "rule 11 (and 10)" in tester.go: the legacy anchor of rule10 is what blocks
# the CID without a path.
ALSO_DECIDED_BY = {"rule11": {"rule10"}}


def _sections(path: Path) -> dict[int, str]:
    section = ""
    out: dict[int, str] = {}
    for number, line in enumerate(path.read_text().split("\n"), start=1):
        if m := re.fullmatch(r"#\s*(rule\d+)\s*", line):
            section = m.group(1)
        out[number] = section
    return out


@pytest.fixture(scope="module")
def denylist() -> Denylist:
    parsed = parse_denylist(DENY.read_bytes(), source=str(DENY))
    assert parsed.problems == ()
    return Denylist(parsed.rules)


SECTIONS = _sections(DENY)


def _check_rule(decision_line: int, rule: str) -> None:
    assert SECTIONS[decision_line] in {rule} | ALSO_DECIDED_BY.get(rule, set())


@pytest.mark.parametrize(
    "case",
    EXPECTED["cids"],
    ids=[f"{c['rule']}-{'blocked' if c['blocked'] else 'allowed'}-{c['cid']}" for c in EXPECTED["cids"]],
)
def test_cid_expectation(denylist: Denylist, case: dict[str, Any]) -> None:
    decision = denylist.check_cid(case["cid"])
    assert bool(decision and decision.blocked) is case["blocked"]
    if case["blocked"]:
        assert decision is not None
        _check_rule(decision.line, case["rule"])


@pytest.mark.parametrize(
    "case",
    EXPECTED["paths"],
    ids=[
        f"{i:02d}-{c['rule']}-{'blocked' if c['blocked'] else 'allowed'}-{c['path']}"
        for i, c in enumerate(EXPECTED["paths"])
    ],
)
def test_path_expectation(denylist: Denylist, case: dict[str, Any]) -> None:
    decision = denylist.check(case["path"])
    assert bool(decision and decision.blocked) is case["blocked"]
    if decision is not None:
        # Blocked, or allowed by an exception rule: either way the rule that
        # decided belongs to the case.
        _check_rule(decision.line, case["rule"])


def test_fixture_has_every_rule_kind(denylist: Denylist) -> None:
    assert len(EXPECTED["cids"]) == 13 and len(EXPECTED["paths"]) == 65
    assert len(denylist) == 28
