"""The JSON report renders typed items, findings and signals in the shape it always
had: an item's keys in declaration order, signals and findings as their views, and
no vPDQ frames."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.model.finding import DenyBasis, Finding
from agent.model.report import ItemReport, ItemStatus, ScanReport
from agent.model.signals import ItemSignals, Signal, SignalType, VideoFrameHash, VideoSummary

ITEM_KEYS = [
    "path",
    "cid",
    "size",
    "media_type",
    "status",
    "error",
    "source",
    "signals",
    "findings",
    "kind",
    "codec",
    "mode",
    "mtime",
    "symlink_target",
    "duplicate_of",
    "seen_before",
]


def test_report_renders_items_with_views_of_signals_and_findings_and_no_frames() -> None:
    frames = (VideoFrameHash(0, 100, "f" * 64, 0.0),)
    finding = Finding("own", "/ipfs/x", "own:1", DenyBasis.CID, 0)
    item = ItemReport(
        path="a.mp4",
        cid="bafy",
        size=3,
        media_type="video/mp4",
        status=ItemStatus.VERIFIED,
        signals=ItemSignals((Signal(SignalType.SHA256, "ab" * 32),), VideoSummary(1, 30.0, False), frames),
        findings=[finding],
    )
    report = ScanReport(target="t", root="bafy", started_at="s", items=[item], findings=[finding])
    out = report.to_dict()
    (rendered,) = out["items"]
    assert list(rendered) == ITEM_KEYS
    assert rendered["signals"] == {"sha256": "ab" * 32, "vpdq": {"frames": 1, "frame_rate": 30.0, "truncated": False}}
    assert rendered["findings"] == [finding.to_view()] and out["findings"] == [finding.to_view()]
    assert "video_frames" not in rendered
    assert out["summary"]["findings"] == 2 and report.exit_code() == 1


def test_a_failed_report_takes_its_time_from_the_caller() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    report = ScanReport.failed("nothing", "names nothing scannable", at)
    assert report.started_at == report.finished_at == "2026-01-02T03:04:05.678Z"
    assert report.errors == ["names nothing scannable"]
