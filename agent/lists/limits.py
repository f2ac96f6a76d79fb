"""Bounds for parsing untrusted list input, and the line splitter that applies them.

Lists come from the network and from partners; a hostile or broken file must
cost bounded memory and time, and must never abort a load."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.lists.model import ParseProblem

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParseLimits:
    max_bytes: int = 256 * MiB
    max_line_length: int = 8192
    max_entries: int = 10_000_000


DEFAULT_LIMITS = ParseLimits()


# Problems kept per list (and per catalog): a file of millions of bad lines
# must not hold millions of messages (issue 9: 16 MB of bad lines took 1.1 GB).
# The rest are only counted.
MAX_PROBLEMS_KEPT = 100


class Problems(tuple[ParseProblem, ...]):
    """The problems kept (the first ones) and `total`, how many there were in all."""

    total: int

    def __new__(cls, kept: Iterable[ParseProblem] = (), total: int | None = None) -> Problems:
        self = super().__new__(cls, kept)
        self.total = len(self) if total is None else max(total, len(self))
        return self

    @property
    def not_kept(self) -> int:
        return self.total - len(self)


def problem_total(problems: Sequence[ParseProblem]) -> int:
    """How many problems there were, kept or not."""
    return problems.total if isinstance(problems, Problems) else len(problems)


class ProblemSink(Protocol):
    def append(self, problem: ParseProblem, /) -> None: ...


class ProblemLog:
    """Collects problems in bounded memory: the first `keep`, and a count of all."""

    def __init__(self, keep: int = MAX_PROBLEMS_KEPT) -> None:
        self._keep = keep
        self._kept: list[ParseProblem] = []
        self.total = 0

    def append(self, problem: ParseProblem, /) -> None:
        self.total += 1
        if len(self._kept) < self._keep:
            self._kept.append(problem)

    def extend(self, problems: Sequence[ParseProblem]) -> None:
        room = max(0, self._keep - len(self._kept))
        self._kept.extend(problems[:room])
        self.total += problem_total(problems)

    def __len__(self) -> int:
        return self.total

    def result(self) -> Problems:
        return Problems(self._kept, self.total)


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
    text: str, source: str, limits: ParseLimits, problems: ProblemSink, first_line: int = 1
) -> Iterator[tuple[int, str]]:
    """Yield (line number, line without its newline), reporting and skipping
    over-long lines."""
    # Split on "\n" only (not str.splitlines, which also breaks on form feeds
    # and Unicode separators) so line numbers match what editors show; one
    # line at a time, since a list of every line of a 256 MiB file of short
    # lines would cost gigabytes.
    start = 0
    number = first_line
    while start <= len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        if end - start > limits.max_line_length + 1:  # +1: a CR before the LF
            problems.append(ParseProblem(source, number, f"line longer than {limits.max_line_length} characters"))
        else:
            raw = text[start:end]
            line = raw[:-1] if raw.endswith("\r") else raw
            if len(line) > limits.max_line_length:
                problems.append(ParseProblem(source, number, f"line longer than {limits.max_line_length} characters"))
            else:
                yield number, line
        start = end + 1
        number += 1


def entry_limit_problem(source: str, line: int, limits: ParseLimits) -> ParseProblem:
    return ParseProblem(source, line, f"stopped: more than {limits.max_entries} entries; the rest was not loaded")
