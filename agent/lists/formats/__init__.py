"""Parsers for the list formats people exchange. Each is a pure function of
text or bytes, bounded by ParseLimits, returning entries plus problems."""

from __future__ import annotations

from dataclasses import dataclass

from agent.lists.model import ListEntry, ParseProblem


@dataclass(frozen=True, slots=True)
class ParseResult:
    entries: tuple[ListEntry, ...]
    problems: tuple[ParseProblem, ...]
