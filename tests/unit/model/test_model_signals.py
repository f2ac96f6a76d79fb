"""ItemSignals is what the pipeline hands the store and the report renders: its
`signals` view is a public shape, and reading that view back must give the same
signals (the store keeps the view and re-matches from it)."""

from __future__ import annotations

from agent.model.signals import ItemSignals, Signal, SignalType, VideoFrameHash, VideoSummary

PDQ = "f" * 64
PDQ_ROTATED = "0" * 64
SHA256 = "ab" * 32
FRAMES = (VideoFrameHash(0, 100, PDQ, 0.0), VideoFrameHash(30, 90, PDQ_ROTATED, 1.0))


def test_view_names_the_first_value_of_each_type_with_pdq_quality_and_puts_further_values_under_more() -> None:
    signals = ItemSignals(
        (
            Signal(SignalType.SHA256, SHA256),
            Signal(SignalType.PDQ, PDQ, 95),
            Signal(SignalType.PDQ, PDQ_ROTATED, 80),
            Signal(SignalType.PDQ, PDQ, 95),  # a repeat of the first value is not listed again
        )
    )
    assert signals.to_view() == {
        "sha256": SHA256,
        "pdq": PDQ,
        "pdq_quality": 95,
        "more": [{"type": "pdq", "value": PDQ_ROTATED, "quality": 80}],
    }


def test_view_of_a_video_has_its_vpdq_summary_but_not_its_frames() -> None:
    signals = ItemSignals((Signal(SignalType.MD5, "0" * 32),), VideoSummary(2, 29.97002997, False), FRAMES)
    assert signals.to_view() == {"md5": "0" * 32, "vpdq": {"frames": 2, "frame_rate": 29.97, "truncated": False}}


def test_from_view_reads_back_what_to_view_wrote_with_the_frames_given_beside_it() -> None:
    signals = ItemSignals(
        (Signal(SignalType.SHA256, SHA256), Signal(SignalType.PDQ, PDQ, 95), Signal(SignalType.PDQ, PDQ_ROTATED, 80)),
        VideoSummary(2, 30.0, True),
        FRAMES,
    )
    again = ItemSignals.from_view(signals.to_view(), FRAMES)
    assert again == signals
    assert again.to_view() == signals.to_view()


def test_from_view_skips_what_it_cannot_read_instead_of_failing_a_rematch() -> None:
    view = {"sha256": SHA256, "more": [{"type": "nope", "value": "x"}, {"value": "no type"}], "vpdq": {"frames": "x"}}
    assert ItemSignals.from_view(view) == ItemSignals((Signal(SignalType.SHA256, SHA256),))


def test_has_digests_says_whether_the_bytes_were_read_whole() -> None:
    assert ItemSignals((Signal(SignalType.SHA256, SHA256),)).has_digests
    assert not ItemSignals((Signal(SignalType.PDQ, PDQ, 90),)).has_digests
    assert not ItemSignals().has_digests
