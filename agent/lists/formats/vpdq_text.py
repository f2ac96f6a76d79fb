"""vPDQ video entries: one `frame,quality,pdq_hex,timestamp` line per frame (the
reference vPDQ output). A file is one video, or several, each after a
`# video: <name>` line (what `dweb-agent hash --format vpdq` writes). The
entry's value is the sha256 of a one-video file, or of a section's frame
lines: a stable id that does not depend on the file name."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from agent.lists.formats import ParseResult
from agent.lists.limits import DEFAULT_LIMITS, ParseLimits, ProblemLog, decode_text, numbered_lines
from agent.lists.model import ListEntry, ParseProblem, normalise_value
from agent.model.signals import SignalType, VideoFrameHash
from agent.model.vpdq import parse_vpdq_text  # the one reference parser

# `dweb-agent hash --format vpdq a.mp4 b.mp4` writes this line before each
# video's frames; it starts a new entry, so two videos never become one.
VIDEO_HEADER = "# video:"


@dataclass
class _Section:
    name: str | None
    line: int | None
    frames: list[VideoFrameHash] = field(default_factory=list)
    digest: Any = field(default_factory=hashlib.sha256)


def parse_vpdq_file(
    data: bytes | str,
    *,
    list_name: str,
    source: str,
    labels: tuple[str, ...] = (),
    limits: ParseLimits = DEFAULT_LIMITS,
) -> ParseResult:
    """One entry per video: the whole file, or each section that starts with a
    `# video: <name>` line. Bad frame lines become problems; a video with no
    good frame yields no entry. Raises TooLarge if the input exceeds
    limits.max_bytes."""
    text = decode_text(data, source, limits)
    problems = ProblemLog()
    sections = _sections(text, source, limits, problems)
    if not any(section.name is not None for section in sections):
        # A single reference file: its id stays the sha256 of the whole file.
        raw = data.encode("utf-8") if isinstance(data, str) else data
        sections[0].digest = hashlib.sha256(raw)
    entries: list[ListEntry] = []
    for section in sections:
        where = f"video {section.name!r}" if section.name is not None else "file"
        if not section.frames:
            problems.append(ParseProblem(source, section.line, f"no vPDQ frames in this {where}"))
            continue
        entries.append(
            ListEntry(
                list_name,
                SignalType.VPDQ,
                # The id hashes the frame lines, not the name: the same video
                # listed under another name is the same entry.
                section.digest.hexdigest(),
                labels=labels,
                source=source,
                line=section.line,
                frames=tuple(section.frames),
            )
        )
    return ParseResult(tuple(entries), problems.result())


def _sections(text: str, source: str, limits: ParseLimits, problems: ProblemLog) -> list[_Section]:
    sections = [_Section(None, None)]
    total = 0
    # Line by line so a bad frame is reported with its line number and skipped
    # instead of discarding the whole video.
    for number, line in numbered_lines(text, source, limits, problems):
        stripped = line.strip()
        if stripped.startswith(VIDEO_HEADER):
            if sections[-1].name is None and sections[-1].frames:
                problems.append(
                    ParseProblem(source, number, "frames before the first '# video:' line form a video of their own")
                )
            if sections[-1].frames or sections[-1].name is not None:
                sections.append(_Section(stripped[len(VIDEO_HEADER) :].strip(), number))
            else:
                sections[-1] = _Section(stripped[len(VIDEO_HEADER) :].strip(), number)
            continue
        if not stripped or stripped.startswith("#"):
            continue
        if total >= limits.max_entries:
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
        sections[-1].frames.append(frame)
        sections[-1].digest.update(stripped.encode() + b"\n")
        total += 1
    return sections
