"""vPDQ for the media side: the frame text format and comparison live in
agent.model.vpdq (lists use them without loading the decoders); this module keeps
media's public names for them, raising media's own VpdqFormatError."""

from __future__ import annotations

from agent.media.errors import VpdqFormatError
from agent.model import vpdq as _model
from agent.model.signals import VideoFrameHash
from agent.model.vpdq import (
    DEFAULT_DISTANCE,
    DEFAULT_QUALITY,
    comparable_frames,
    dedupe,
    format_vpdq,
    match_videos,
)

__all__ = [
    "DEFAULT_DISTANCE",
    "DEFAULT_QUALITY",
    "comparable_frames",
    "dedupe",
    "format_vpdq",
    "match_videos",
    "parse_vpdq_text",
]


def parse_vpdq_text(text: str) -> list[VideoFrameHash]:
    """Parse `frame,quality,pdq_hex,timestamp` lines (blank lines ignored).

    The model raises its VpdqTextError; media's callers catch media's
    VpdqFormatError, so the error is re-raised as that (same message). Once
    agent.media.errors re-exports the model's class this wrapper can go."""
    try:
        return _model.parse_vpdq_text(text)
    except _model.VpdqTextError as exc:
        raise VpdqFormatError(str(exc)) from None
