"""The typed payloads render exactly the `data` objects docs/events.schema.json
documents (receivers parse them: a renamed or reordered key breaks them), and the
event types are the five strings subscriptions store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import pytest

from agent.alerts.events import finding_created, new_event
from agent.model.events import (
    EVENT_TYPES,
    ContentChanged,
    EventPayload,
    EventType,
    FindingCreated,
    FindingRef,
    FindingRetracted,
    ItemContext,
    WebhookTest,
)
from agent.model.records import FindingRow
from agent.model.signals import ItemSignals, Signal, SignalType, VideoSummary
from agent.model.status import RetractionReason
from agent.model.time import iso_seconds, iso_z
from tests.conftest import REPO

SCHEMA = json.loads((REPO / "docs" / "events.schema.json").read_text())

NOW = datetime(2026, 11, 23, 12, 0, 0, 250000, tzinfo=UTC)
ROW = FindingRow(
    item_key="1220ab",
    list_name="tcap",
    entry_id="tcap:11",
    entry_value="f8f8f0ce",
    signal_type=SignalType.PDQ,
    distance=6.0,
    labels=("ideology:far-right",),
    query="f8f8f0cf",
    created_at=NOW,
    retroactive=True,
    id=7,
)
SIGNALS = ItemSignals(
    hashes=(
        Signal(SignalType.MD5, "0" * 32),
        Signal(SignalType.PDQ, "f8f8f0cf", 90),
        Signal(SignalType.PDQ, "aaaa", 80),
    ),
    video=VideoSummary(frames=3, frame_rate=1.23456, truncated=False),
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
    signals=SIGNALS,
    first_seen_at=NOW,
)
FINDING_JSON = {
    "id": 7,
    "list": "tcap",
    "entry": "f8f8f0ce",
    "entry_id": "tcap:11",
    "signal_type": "pdq",
    "distance": 6.0,
    "labels": ["ideology:far-right"],
    "query": "f8f8f0cf",
    "retroactive": True,
    "created_at": "2026-11-23T12:00:00.250000Z",
}


def ordered(data: dict[str, object]) -> str:
    """Compare with the key order: the body is signed as serialised."""
    return json.dumps(data)


def test_event_types_are_the_five_stored_strings_in_order() -> None:
    assert [str(t) for t in EVENT_TYPES] == [
        "finding.created",
        "finding.retracted",
        "content.unavailable",
        "content.available",
        "webhook.test",
    ]
    assert "finding.created" in EVENT_TYPES and EventType("webhook.test") is EventType.WEBHOOK_TEST


def test_finding_created_renders_the_documented_object_with_typed_signals_as_the_report_shows_them() -> None:
    payload = FindingCreated(FindingRef.of(ROW), ITEM, ("https://gw.example/ipfs/bafkreiexample",))
    assert payload.type is EventType.FINDING_CREATED
    assert ordered(payload.to_json()) == ordered(
        {
            "finding": FINDING_JSON,
            "item": {
                "key": "1220ab",
                "cid": "bafkreiexample",
                "path": "dir/a b.jpg",
                "size": 1234,
                "media_type": "image/jpeg",
                "signals": {
                    "md5": "0" * 32,
                    "pdq": "f8f8f0cf",
                    "pdq_quality": 90,
                    "more": [{"type": "pdq", "value": "aaaa", "quality": 80}],
                    "vpdq": {"frames": 3, "frame_rate": 1.235, "truncated": False},
                },
                "first_seen_at": "2026-11-23T12:00:00.250000Z",
            },
            "target": {"id": 3, "url": "ipns://k51example"},
            "root": "bafybeiroot",
            "links": ["https://gw.example/ipfs/bafkreiexample"],
        }
    )


def test_a_finding_without_a_target_url_says_target_null_and_its_signals_keep_the_hashers_order() -> None:
    view = {"sha256": "ab", "md5": "cd"}
    signals = ItemSignals((Signal(SignalType.SHA256, "ab"), Signal(SignalType.MD5, "cd")))
    item = ItemContext("k", None, "ar:tx", None, 3, None, None, None, signals)
    data = FindingCreated(FindingRef.of(ROW), item).to_json()
    assert (
        data["target"] is None
        and data["item"]["signals"] == view
        and list(data["item"]["signals"]) == ["sha256", "md5"]
    )
    assert data["item"]["first_seen_at"] is None and data["links"] == []


def test_finding_retracted_renders_reason_note_and_time() -> None:
    payload = FindingRetracted(FindingRef.of(ROW), RetractionReason.FALSE_POSITIVE, None, NOW.replace(microsecond=0))
    assert payload.type is EventType.FINDING_RETRACTED
    assert ordered(payload.to_json()) == ordered(
        {"finding": FINDING_JSON, "reason": "false_positive", "note": None, "retracted_at": "2026-11-23T12:00:00Z"}
    )


def test_a_retraction_reason_outside_the_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="because"):
        RetractionReason("because")


def test_content_unavailable_carries_time_to_removal_and_available_does_not() -> None:
    gateways = {"https://gw": {"status": 410, "verdict": "blocked"}}
    first = NOW - timedelta(seconds=90.1234)
    gone = ContentChanged(False, "1220ab", "bafk", first, NOW, gateways, 0, "410 at https://gw")
    assert gone.type is EventType.CONTENT_UNAVAILABLE
    assert ordered(gone.to_json()) == ordered(
        {
            "item": {"key": "1220ab", "cid": "bafk"},
            "first_alert_at": "2026-11-23T11:58:30.126600Z",
            "checked_at": "2026-11-23T12:00:00.250000Z",
            "gateways": gateways,
            "providers": 0,
            "reason": "410 at https://gw",
            "time_to_removal_s": 90.123,
        }
    )
    back = ContentChanged(True, "1220ab", "bafk", first, NOW, {}, None, None)
    assert back.type is EventType.CONTENT_AVAILABLE and "time_to_removal_s" not in back.to_json()


def test_webhook_test_payload() -> None:
    payload = WebhookTest(4)
    assert payload.type is EventType.WEBHOOK_TEST
    assert payload.to_json() == {"subscription_id": 4, "message": "a test delivery from dweb-agent"}


def test_the_outbox_row_holds_the_type_string_and_the_rendered_payload() -> None:
    event = new_event(WebhookTest(4), [4])
    assert type(event.type) is str and event.type == "webhook.test"
    assert event.payload == WebhookTest(4).to_json() and event.subscription_ids == (4,)
    created = finding_created(ROW, ITEM, [], [])
    assert created is not None and created.subscription_ids == () and created.finding_id == 7


def test_time_spellings() -> None:
    assert iso_z(None) is None and iso_seconds(None) is None
    assert iso_z(NOW) == "2026-11-23T12:00:00.250000Z"
    assert iso_z(NOW.replace(microsecond=0)) == "2026-11-23T12:00:00Z"
    # The CLI's spelling converts to UTC and drops the fraction.
    assert iso_seconds(NOW.astimezone(timezone(timedelta(hours=2)))) == "2026-11-23T12:00:00Z"


@pytest.mark.parametrize(
    "payload",
    [
        FindingCreated(FindingRef.of(ROW), ITEM, ("https://gw.example/ipfs/bafkreiexample",)),
        FindingRetracted(FindingRef.of(ROW), RetractionReason.ENTRY_DELETED, "deleted from tcap", NOW),
        ContentChanged(False, "1220ab", "bafk", NOW - timedelta(hours=1), NOW, {}, None, None),
        ContentChanged(True, "1220ab", "bafk", NOW - timedelta(hours=1), NOW, {}, 2, "back"),
        WebhookTest(1),
    ],
    ids=lambda p: str(p.type),
)
def test_every_payload_validates_against_the_published_schema(payload: EventPayload) -> None:
    body = {"type": str(payload.type), "timestamp": "2026-11-23T12:00:00Z", "data": payload.to_json()}
    jsonschema.validate(body, SCHEMA, format_checker=jsonschema.FormatChecker())
