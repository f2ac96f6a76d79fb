"""Finding.to_view is the report's (and the README's) `findings[]` object: the keys,
their order and their JSON types are what other tools read."""

from __future__ import annotations

import json

from agent.model.finding import DenyBasis, Finding, matched_on
from agent.model.signals import SignalType


def test_a_hash_match_renders_every_documented_key_in_order() -> None:
    finding = Finding(
        list_name="partner",
        entry="f" * 64,
        entry_id="partner:3",
        signal_type=SignalType.PDQ,
        distance=12,
        labels=("csam", "severity=high"),
        query="e" * 64,
        list_source="partner.csv",
        list_line=3,
    )
    view = finding.to_view()
    assert list(view) == [
        "list",
        "entry",
        "entry_id",
        "signal_type",
        "distance",
        "labels",
        "query",
        "list_source",
        "list_line",
    ]
    assert view["signal_type"] == "pdq" and view["labels"] == ["csam", "severity=high"]
    assert json.loads(json.dumps(view)) == view
    assert not finding.on_path


def test_a_vpdq_match_adds_the_compared_percent() -> None:
    finding = Finding("videos", "vpdq:ab", "vpdq:ab", SignalType.VPDQ, 92.5, compared_percent=88.0)
    assert finding.to_view()["compared_percent"] == 88.0
    assert finding.to_view()["distance"] == 92.5


def test_a_denylist_rule_on_a_path_is_on_path_and_renders_its_basis() -> None:
    finding = Finding("own", "/ipfs/bafy/secret", "own:0123", DenyBasis.PATH, 0, query="secret")
    assert finding.on_path
    assert finding.to_view()["signal_type"] == "path"
    # Denylist findings have always shown distance 0 (an int), not 0.0.
    assert json.dumps(finding.to_view()["distance"]) == "0"
    assert "compared_percent" not in finding.to_view()


def test_a_stored_signal_type_reads_back_as_its_type() -> None:
    assert matched_on("pdq") is SignalType.PDQ
    assert matched_on("cid") is DenyBasis.CID
