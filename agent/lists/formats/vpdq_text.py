"""vPDQ video entries: one video per file, one `frame,quality,pdq_hex,timestamp`
line per frame (the reference vPDQ output). The entry's value is the sha256 of
the file, a stable id that does not depend on the file name."""

from __future__ import annotations

import hashlib

from agent.lists.formats import ParseResult
from agent.lists.limits import DEFAULT_LIMITS, ParseLimits, decode_text, numbered_lines
from agent.lists.model import ListEntry, ParseProblem, normalise_value
from agent.signals import SignalType, VideoFrameHash


def parse_vpdq_file(
    data: bytes | str,
    *,
    list_name: str,
    source: str,
    labels: tuple[str, ...] = (),
    limits: ParseLimits = DEFAULT_LIMITS,
) -> ParseResult:
    """One entry holding every good frame; bad frame lines become problems.
    A file with no good frame yields no entry. Raises TooLarge if the input
    exceeds limits.max_bytes."""
    from agent.media.vpdq import parse_vpdq_text  # the one reference parser

    text = decode_text(data, source, limits)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    problems: list[ParseProblem] = []
    frames: list[VideoFrameHash] = []
    # Line by line so a bad frame is reported with its line number and skipped
    # instead of discarding the whole video.
    for number, line in numbered_lines(text, source, limits, problems):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if len(frames) >= limits.max_entries:
            problems.append(ParseProblem(source, number, f"more than {limits.max_entries} frames; rest ignored"))
            break
        try:
            parsed = parse_vpdq_text(line)
            if len(parsed) != 1:
                raise ValueError("expected frame,quality,pdq_hex,timestamp")
            frame = parsed[0]
            normalise_value(SignalType.PDQ, frame.pdq_hex)
        except ValueError as exc:
            # The parser numbers lines of the text it was given (always 1 here).
            reason = str(exc).removeprefix("line 1: ")
            problems.append(ParseProblem(source, number, f"bad vPDQ frame: {reason}"))
            continue
        frames.append(frame)
    if not frames:
        problems.append(ParseProblem(source, None, "no vPDQ frames"))
        return ParseResult((), tuple(problems))
    video_id = hashlib.sha256(raw).hexdigest()
    entry = ListEntry(
        list_name,
        SignalType.VPDQ,
        video_id,
        labels=labels,
        source=source,
        line=None,
        frames=tuple(frames),
    )
    return ParseResult((entry,), tuple(problems))
