"""Tech Against Terrorism TCAP hash-list JSON pages.

A page is `{"count", "next", "checkpoint", "results": [...]}`; each result has
`hash_digest`, `algorithm` (PDQ, MD5, SHA256), `ideology`, `file_type`,
`deleted`, `updated_on`, `created_on`, `id`. Deleted records are removals: a
list kept in sync by applying pages in order loses them. Fetching pages is
another module's job; this one parses a page and applies it to a list."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.lists.limits import DEFAULT_LIMITS, ParseLimits, ProblemLog, decode_text
from agent.lists.model import HashList, ListEntry, ParseProblem, normalise_value
from agent.model.signals import SignalType

_ALGORITHMS: Mapping[str, SignalType] = {
    "pdq": SignalType.PDQ,
    "md5": SignalType.MD5,
    "sha256": SignalType.SHA256,
    "sha-256": SignalType.SHA256,
    "sha1": SignalType.SHA1,
}


@dataclass(frozen=True, slots=True)
class TcapPage:
    entries: tuple[ListEntry, ...]  # deleted records included, with deleted=True
    problems: tuple[ParseProblem, ...]
    count: int | None
    next: str | None
    checkpoint: str | None


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    return None


def _labels(record: Mapping[str, Any]) -> tuple[str, ...]:
    labels = []
    for key in ("ideology", "file_type"):
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            labels.append(f"{key}:{value.strip()}")
    return tuple(labels)


def _entry(record: object, list_name: str, source: str) -> ListEntry:
    """One result record to an entry; raises ValueError with the reason."""
    if not isinstance(record, dict):
        raise ValueError("record is not an object")
    algorithm = record.get("algorithm")
    if not isinstance(algorithm, str) or algorithm.strip().lower() not in _ALGORITHMS:
        raise ValueError(f"unsupported algorithm {str(algorithm)[:40]!r}")
    signal_type = _ALGORITHMS[algorithm.strip().lower()]
    digest = record.get("hash_digest")
    if not isinstance(digest, str):
        raise ValueError("hash_digest missing")
    value = normalise_value(signal_type, digest)
    record_id = _optional_str(record.get("id"))
    deleted = record.get("deleted", False)
    if not isinstance(deleted, bool):
        raise ValueError("deleted is not a boolean")
    return ListEntry(
        list_name,
        signal_type,
        value,
        labels=_labels(record),
        source=source,
        line=None,
        # TCAP ids are stable across pages; fall back to the value when absent.
        entry_id=f"tcap:{record_id}" if record_id else "",
        deleted=deleted,
    )


def parse_tcap_page(
    data: bytes | str,
    *,
    list_name: str,
    source: str,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> TcapPage:
    """Raises TooLarge if the input exceeds limits.max_bytes. A page that is not
    valid JSON yields no entries and one problem."""
    text = decode_text(data, source, limits)
    problems = ProblemLog()
    try:
        page = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return TcapPage((), (ParseProblem(source, None, f"not valid JSON: {exc}"),), None, None, None)
    if not isinstance(page, dict) or not isinstance(page.get("results"), list):
        return TcapPage((), (ParseProblem(source, None, "no results array"),), None, None, None)
    results: list[object] = page["results"]
    if len(results) > limits.max_entries:
        problems.append(
            ParseProblem(source, None, f"page has {len(results)} results; only {limits.max_entries} loaded")
        )
        results = results[: limits.max_entries]
    entries: list[ListEntry] = []
    for index, record in enumerate(results):
        try:
            entries.append(_entry(record, list_name, source))
        except ValueError as exc:
            record_id = record.get("id") if isinstance(record, dict) else None
            problems.append(ParseProblem(source, None, f"results[{index}] (id={record_id}): {exc}"))
    count = page.get("count")
    return TcapPage(
        entries=tuple(entries),
        problems=problems.result(),
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        next=_optional_str(page.get("next")),
        checkpoint=_optional_str(page.get("checkpoint")),
    )


def apply_tcap_page(hash_list: HashList, page: TcapPage) -> HashList:
    """A new list with the page applied in order: deleted records remove the
    entry with the same id (or the same type and value), others add or replace."""
    current: dict[str, ListEntry] = {e.entry_id: e for e in hash_list.entries}
    # (type, value) -> ids, so a deletion costs O(1) even on million-entry lists.
    by_value: dict[tuple[SignalType, str], set[str]] = {}
    for e in current.values():
        by_value.setdefault((e.signal_type, e.value), set()).add(e.entry_id)
    for entry in page.entries:
        key = (entry.signal_type, entry.value)
        if entry.deleted:
            for existing_id in by_value.pop(key, set()) | {entry.entry_id}:
                removed = current.pop(existing_id, None)
                if removed is not None and (removed.signal_type, removed.value) != key:
                    by_value.get((removed.signal_type, removed.value), set()).discard(existing_id)
        else:
            previous = current.get(entry.entry_id)
            if previous is not None:
                by_value.get((previous.signal_type, previous.value), set()).discard(entry.entry_id)
            current[entry.entry_id] = entry
            by_value.setdefault(key, set()).add(entry.entry_id)
    return hash_list.with_entries(current.values())
