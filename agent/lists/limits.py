"""Bounds for parsing untrusted list input, and the line splitter that applies them.

Lists come from the network and from partners; a hostile or broken file must
cost bounded memory and time, and must never abort a load."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from agent.lists.model import ParseProblem

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParseLimits:
    max_bytes: int = 256 * MiB
    max_line_length: int = 8192
    max_entries: int = 10_000_000


DEFAULT_LIMITS = ParseLimits()


class TooLarge(ValueError):
    """The input exceeds max_bytes. Raised before any parsing happens."""


def decode_text(data: bytes | str, source: str, limits: ParseLimits) -> str:
    """Bytes to text, refusing oversized input. Undecodable bytes become U+FFFD
    so they show up as a bad line instead of failing the whole file."""
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > limits.max_bytes:
        raise TooLarge(f"{source}: {size} bytes exceeds the limit of {limits.max_bytes}")
    if isinstance(data, str):
        return data
    text = data.decode("utf-8", errors="replace")
    return text[1:] if text.startswith("\ufeff") else text


def numbered_lines(
    text: str, source: str, limits: ParseLimits, problems: list[ParseProblem], first_line: int = 1
) -> Iterator[tuple[int, str]]:
    """Yield (line number, line without its newline), reporting and skipping
    over-long lines."""
    # Split on "\n" only (not str.splitlines, which also breaks on form feeds
    # and Unicode separators) so line numbers match what editors show.
    for offset, raw in enumerate(text.split("\n")):
        number = first_line + offset
        line = raw[:-1] if raw.endswith("\r") else raw
        if len(line) > limits.max_line_length:
            problems.append(
                ParseProblem(source, number, f"line longer than {limits.max_line_length} characters")
            )
            continue
        yield number, line


def entry_limit_problem(source: str, line: int, limits: ParseLimits) -> ParseProblem:
    return ParseProblem(
        source, line, f"stopped: more than {limits.max_entries} entries; the rest was not loaded"
    )
