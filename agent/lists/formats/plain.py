"""ThreatExchange / HMA plain text: one `<signal_type> <value>` per line, or
bare values whose type the caller knows (e.g. a file of PDQ hashes)."""

from __future__ import annotations

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


def parse_plain(
    data: bytes | str,
    *,
    list_name: str,
    source: str,
    default_type: SignalType | None = None,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> ParseResult:
    """Lines are `<type> <value> [labels...]` or, with default_type, a bare
    `<value>`. `#` starts a comment line. Bad lines become ParseProblems.

    Raises TooLarge if the input exceeds limits.max_bytes."""
    text = decode_text(data, source, limits)
    problems = ProblemLog()
    entries: list[ListEntry] = []
    for number, line in numbered_lines(text, source, limits, problems):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(entries) >= limits.max_entries:
            problems.append(entry_limit_problem(source, number, limits))
            break
        fields = stripped.split()
        labels: tuple[str, ...] = ()
        try:
            if len(fields) == 1:
                if default_type is None:
                    raise ValueError("bare value but no signal type given for this list")
                signal_type, raw_value = default_type, fields[0]
            else:
                signal_type = parse_signal_type(fields[0])
                raw_value, labels = fields[1], tuple(fields[2:])
            if signal_type is SignalType.VPDQ:
                raise ValueError("vpdq entries need their frames: use a vPDQ frame file")
            value = normalise_value(signal_type, raw_value)
        except ValueError as exc:
            problems.append(ParseProblem(source, number, str(exc)))
            continue
        entries.append(ListEntry(list_name, signal_type, value, labels=labels, source=source, line=number))
    return ParseResult(tuple(entries), problems.result())
