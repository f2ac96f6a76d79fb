"""ThreatExchange CSV: `signal_type,signal_str,collab,category,tags` with
space-separated tags. The header row is optional."""

from __future__ import annotations

import csv

from agent.lists.formats import ParseResult
from agent.lists.limits import (
    DEFAULT_LIMITS,
    ParseLimits,
    ProblemLog,
    decode_text,
    entry_limit_problem,
    numbered_lines,
)
from agent.lists.model import ListEntry, ParseProblem, normalise_value, parse_signal_type
from agent.model.signals import SignalType

_HEADER_FIRST_CELLS = {"signal_type", "type", "indicator_type"}


def _row(line: str) -> list[str]:
    """The cells of one physical line. Raises csv.Error for a malformed row:
    a CR inside an unquoted field, an unterminated quote, text after a
    closing quote, a field over the csv module's size limit (128 KiB)."""
    # strict: bad quoting is an error instead of being glued into the value.
    return next(csv.reader([line], strict=True), [])


def _labels(collab: str, category: str, tags: str) -> tuple[str, ...]:
    # Keep where a label came from: "collab:x" and "category:y" say who shared
    # it and why; tags are the publisher's own vocabulary, kept as they are.
    labels: list[str] = []
    if collab:
        labels.append(f"collab:{collab}")
    if category:
        labels.append(f"category:{category}")
    labels.extend(tag for tag in tags.split() if tag)
    return tuple(dict.fromkeys(labels))


def parse_te_csv(
    data: bytes | str,
    *,
    list_name: str,
    source: str,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> ParseResult:
    """Raises TooLarge if the input exceeds limits.max_bytes."""
    text = decode_text(data, source, limits)
    problems = ProblemLog()
    entries: list[ListEntry] = []
    # Each physical line is parsed on its own (quoted newlines are not part of
    # this format), which keeps line numbers exact and bounds every row.
    first_row = True
    for number, line in numbered_lines(text, source, limits, problems):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row = _row(line)
        except csv.Error as exc:
            problems.append(ParseProblem(source, number, f"malformed CSV row: {exc}"))
            continue
        cells = [cell.strip() for cell in row]
        if not cells:
            continue
        is_header = first_row and cells[0].lower() in _HEADER_FIRST_CELLS
        first_row = False
        if is_header:
            continue
        if len(entries) >= limits.max_entries:
            problems.append(entry_limit_problem(source, number, limits))
            break
        if len(cells) < 2:
            problems.append(ParseProblem(source, number, "expected signal_type,signal_str,..."))
            continue
        cells += [""] * (5 - len(cells))
        try:
            signal_type = parse_signal_type(cells[0])
            if signal_type is SignalType.VPDQ:
                raise ValueError("vpdq entries need their frames: use a vPDQ frame file")
            value = normalise_value(signal_type, cells[1])
        except ValueError as exc:
            problems.append(ParseProblem(source, number, str(exc)))
            continue
        entries.append(
            ListEntry(
                list_name,
                signal_type,
                value,
                labels=_labels(cells[2], cells[3], cells[4]),
                source=source,
                line=number,
            )
        )
    return ParseResult(tuple(entries), problems.result())
