"""vPDQ under media's name: the frame text format and comparison live in agent.model.vpdq
(lists use them without loading the decoders); malformed text raises agent.media.errors'
VpdqFormatError, which is the model's VpdqTextError."""

from __future__ import annotations

from agent.model.vpdq import (  # shim: issue-10 integration removes (tests import parse_vpdq_text here)
    DEFAULT_DISTANCE,
    DEFAULT_QUALITY,
    comparable_frames,
    dedupe,
    format_vpdq,
    match_videos,
    parse_vpdq_text,
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
