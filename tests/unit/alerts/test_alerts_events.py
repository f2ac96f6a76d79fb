"""Every event the agent can send validates against docs/events.schema.json, and
recipients follow the subscriptions' filters."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from agent.alerts.events import (
    content_changed,
    finding_created,
    finding_retracted,
    label_key,
    normalise_label,
    subscribed,
)
from agent.alerts.events import (
    test_event as make_test_event,
)
from agent.lists.formats.tcap import parse_tcap_page
from agent.model.events import EventType, ItemContext
from agent.model.records import FindingRow, NewEvent, SubscriptionRow
from agent.model.signals import ItemSignals, Signal, SignalType
from tests.conftest import REPO

SCHEMA = json.loads((REPO / "docs" / "events.schema.json").read_text())
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FINDING = FindingRow(
    item_key="1220ab",
    list_name="tcap",
    entry_id="tcap:11",
    entry_value="f8f8f0ce",
    signal_type=SignalType.PDQ,
    distance=6.0,
    labels=("ideology:far-right",),
    query="f8f8f0cf",
    created_at=NOW,
    id=7,
)
ITEM = ItemContext(
    key="1220ab",
    cid="bafkreiexample",
    path="dir/a b.jpg",
    root="bafybeiroot",
    target_id=3,
    target_url="ipns://k51example",
    size=1234,
    media_type="image/jpeg",
    signals=ItemSignals((Signal(SignalType.MD5, "0" * 32), Signal(SignalType.PDQ, "f8f8f0cf", quality=100))),
)


def sub(i: int, **filters: tuple[object, ...]) -> SubscriptionRow:
    return SubscriptionRow(id=i, url=f"https://hooks.example/{i}", secret="whsec_x", **filters)  # type: ignore[arg-type]


def envelope(event: NewEvent) -> dict[str, object]:
    return {"type": event.type, "timestamp": "2026-11-23T12:00:00Z", "data": event.payload}


def validate(event: NewEvent) -> None:
    jsonschema.validate(envelope(event), SCHEMA, format_checker=jsonschema.FormatChecker())


def test_finding_created_validates_and_names_list_entry_distance_labels_and_links() -> None:
    event = finding_created(FINDING, ITEM, ["https://gw.example"], [sub(1)])
    assert event is not None and event.type == EventType.FINDING_CREATED and event.subscription_ids == (1,)
    validate(event)
    data = event.payload
    assert data["finding"]["list"] == "tcap" and data["finding"]["distance"] == 6.0
    assert data["links"] == [
        "https://gw.example/ipfs/bafybeiroot/dir/a%20b.jpg",
        "https://gw.example/ipfs/bafkreiexample",
    ]
    assert event.id.startswith("evt_") and event.finding_id == 7


def test_an_event_with_media_bytes_would_not_validate() -> None:
    event = finding_created(FINDING, ITEM, [], [sub(1)])
    assert event is not None
    bad = envelope(event)
    bad["data"]["item"]["signals"]["bytes"] = "aGVsbG8="  # type: ignore[index]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)


def test_retraction_and_content_events_validate() -> None:
    retracted = finding_retracted(FINDING, "false_positive", "a bridge, not propaganda", [sub(1), sub(2)], [1], NOW)
    assert (
        retracted is not None and retracted.type == EventType.FINDING_RETRACTED and retracted.subscription_ids == (1,)
    )
    validate(retracted)
    gone = content_changed(
        "1220ab",
        "bafkreiexample",
        False,
        NOW - timedelta(hours=5),
        NOW,
        {
            "gateways": {"https://gw": {"status": 410, "verdict": "blocked"}},
            "providers": 0,
            "reason": "410 at https://gw",
        },
        [sub(1)],
        [1],
    )
    assert gone is not None and gone.type == EventType.CONTENT_UNAVAILABLE
    assert gone.payload["time_to_removal_s"] == 5 * 3600
    validate(gone)
    back = content_changed("1220ab", "bafkreiexample", True, NOW - timedelta(hours=5), NOW, {}, [sub(1)], [1])
    assert back is not None and "time_to_removal_s" not in back.payload
    validate(back)
    validate(make_test_event(sub(4)))


def test_follow_ups_go_only_to_those_alerted_and_still_subscribed() -> None:
    only_created = sub(2, event_types=(EventType.FINDING_CREATED,))
    assert finding_retracted(FINDING, "entry_deleted", None, [only_created], [2], NOW) is None
    assert finding_retracted(FINDING, "entry_deleted", None, [sub(1)], [], NOW) is None


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, True),
        ({"lists": ("tcap",)}, True),
        ({"lists": ("other",)}, False),
        ({"labels": ("ideology:far-right", "x")}, True),
        ({"labels": ("far-right",)}, False),
        ({"labels": ("x",)}, False),
        ({"targets": (3,)}, True),
        ({"targets": (4,)}, False),
        ({"event_types": (EventType.FINDING_RETRACTED,)}, False),
    ],
)
def test_subscription_filters(filters: dict[str, tuple[object, ...]], expected: bool) -> None:
    assert (
        subscribed(sub(1, **filters), EventType.FINDING_CREATED, list_name="tcap", labels=FINDING.labels, target_id=3)
        is expected
    )
    event = finding_created(FINDING, ITEM, [], [sub(1, **filters)])
    assert event is not None and (event.subscription_ids == (1,)) is expected


def tcap_entry_labels() -> tuple[str, ...]:
    """Labels as the real TCAP parser stores them for a record with an ideology."""
    page = parse_tcap_page(
        json.dumps(
            {
                "count": 1,
                "next": None,
                "checkpoint": "c1",
                "results": [
                    {
                        "id": 11,
                        "hash_digest": "0" * 32,
                        "algorithm": "MD5",
                        "ideology": "far-right",
                        "file_type": "image",
                        "deleted": False,
                    }
                ],
            }
        ),
        list_name="tcap",
        source="tcap.json",
    )
    (entry,) = page.entries
    return entry.labels


@pytest.mark.parametrize("typed", ["ideology:far-right", "ideology=far-right", "Ideology=Far-Right"])
def test_a_label_filter_typed_from_the_readme_fires_for_a_tcap_entry(typed: str) -> None:
    labels = tcap_entry_labels()
    assert "ideology:far-right" in labels, labels
    stored = normalise_label(typed)
    assert stored == typed.replace("=", ":")
    finding = FindingRow(
        item_key="1220ab",
        list_name="tcap",
        entry_id="tcap:11",
        entry_value="0" * 32,
        signal_type=SignalType.MD5,
        distance=0.0,
        labels=labels,
        created_at=NOW,
        id=8,
    )
    event = finding_created(finding, ITEM, [], [sub(1, labels=(stored,)), sub(2, labels=("far-right",))])
    assert event is not None and event.subscription_ids == (1,)


def test_label_comparison_ignores_case_and_the_separator_only() -> None:
    # Denylist hints are stored key=value: a key:value filter matches them too.
    assert label_key("reason=terrorism") == label_key("Reason:terrorism")
    assert label_key("a:b=c") == "a:b=c" and normalise_label("a:b=c") == "a:b=c"
    assert label_key("far-right") != label_key("ideology:far-right")
    assert normalise_label("=x") == "=x"
