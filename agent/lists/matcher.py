"""Match signals against a set of hash lists.

`MatchIndex` is built once from immutable HashLists and never changes, so a
list update builds a new index and swaps the reference: readers never see a
half-built index and need no lock."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from agent.lists.index import HammingIndex
from agent.lists.mih import MultiIndexHammingIndex
from agent.lists.model import HashList, ListEntry
from agent.model.signals import EXACT_TYPES, PERCEPTUAL_BITS, Signal, SignalType, VideoFrameHash
from agent.model.vpdq import match_videos

IndexFactory = Callable[[int], HammingIndex]
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, slots=True)
class Match:
    """One list entry matched by one query. `distance` is 0 for exact types,
    the Hamming distance for perceptual ones, and for vPDQ the percentage of
    query frames matched (`compared_percent` is the list video's share)."""

    list_name: str
    entry_id: str
    entry_value: str
    signal_type: SignalType
    distance: float
    labels: tuple[str, ...]
    signal: Signal | None
    source: str = ""
    line: int | None = None
    compared_percent: float | None = None


def _match(entry: ListEntry, distance: float, signal: Signal | None, compared: float | None = None) -> Match:
    return Match(
        list_name=entry.list_name,
        entry_id=entry.entry_id,
        entry_value=entry.value,
        signal_type=entry.signal_type,
        distance=distance,
        labels=entry.labels,
        signal=signal,
        source=entry.source,
        line=entry.line,
        compared_percent=compared,
    )


def _padded_bits(hex_length: int) -> int:
    return max(64, -(-hex_length * 4 // 64) * 64)


def _pad(value: str, hex_length: int) -> str:
    return value.rjust(_padded_bits(hex_length) // 4, "0")


class MatchIndex:
    def __init__(
        self,
        lists: Iterable[HashList],
        # Multi-index hashing: the brute force's exact answer (NumpyHammingIndex stays
        # the reference it delegates to) at a fraction of its cost on large lists.
        index_factory: IndexFactory = MultiIndexHammingIndex,
    ) -> None:
        self.lists: tuple[HashList, ...] = tuple(lists)
        # Entries are addressed by position; each remembers its list's index.
        self._entries: list[ListEntry] = []
        self._list_of: list[int] = []
        self._exact: dict[tuple[SignalType, str], list[int]] = {}
        self._videos: list[int] = []
        pending: dict[SignalType, tuple[list[int], list[str]]] = {}
        # colorhash has no fixed width (it depends on the hasher's bin count):
        # one index per value length, values zero-padded to whole 64-bit words.
        colour_pending: dict[int, tuple[list[int], list[str]]] = {}
        for list_pos, hash_list in enumerate(self.lists):
            for entry in hash_list.live_entries():
                pos = len(self._entries)
                self._entries.append(entry)
                self._list_of.append(list_pos)
                if entry.signal_type in PERCEPTUAL_BITS:
                    ids, values = pending.setdefault(entry.signal_type, ([], []))
                    ids.append(pos)
                    values.append(entry.value)
                elif entry.signal_type is SignalType.VPDQ:
                    self._videos.append(pos)
                elif entry.signal_type is SignalType.COLORHASH:
                    # Never by equality: every greyscale image has colorhash
                    # 07000000000, so equality accuses all of them.
                    ids, values = colour_pending.setdefault(len(entry.value), ([], []))
                    ids.append(pos)
                    values.append(entry.value)
                else:
                    self._exact.setdefault((entry.signal_type, entry.value), []).append(pos)
        self._perceptual: dict[SignalType, HammingIndex] = {}
        for signal_type, (ids, values) in pending.items():
            index = index_factory(PERCEPTUAL_BITS[signal_type])
            index.add(ids, values)
            self._perceptual[signal_type] = index
        self._colour: dict[int, HammingIndex] = {}
        for length, (ids, values) in colour_pending.items():
            index = index_factory(_padded_bits(length))
            index.add(ids, [_pad(v, length) for v in values])
            self._colour[length] = index

    def __len__(self) -> int:
        return len(self._entries)

    def match(self, signals: Iterable[Signal]) -> list[Match]:
        """Every (signal, entry) pair within its list's threshold. PDQ queries
        below a list's minimum quality (or without a quality) never match it."""
        matches: list[Match] = []
        by_type: dict[SignalType, list[Signal]] = {}
        for signal in signals:
            value = signal.value.strip().lower()
            if signal.type in PERCEPTUAL_BITS:
                # A malformed query is a hasher bug; failing loudly beats a
                # silent miss.
                if len(value) != PERCEPTUAL_BITS[signal.type] // 4 or not _HEX.fullmatch(value):
                    raise ValueError(f"malformed {signal.type.value} query value {value[:80]!r}")
                by_type.setdefault(signal.type, []).append(signal)
            elif signal.type in EXACT_TYPES:
                for pos in self._exact.get((signal.type, value), ()):
                    matches.append(_match(self._entries[pos], 0, signal))
            elif signal.type is SignalType.COLORHASH and len(value) in self._colour:
                matches.extend(self._match_colour(signal, value))
        for signal_type, queries in by_type.items():
            matches.extend(self._match_perceptual(signal_type, queries))
        return matches

    def _radius(self, signal_type: SignalType) -> int | None:
        """The widest threshold any list matches this type at; None = no list does."""
        limits = [d for hl in self.lists if (d := hl.distance_for(signal_type)) is not None]
        return max(limits, default=None)

    def _match_colour(self, signal: Signal, value: str) -> list[Match]:
        radius = self._radius(SignalType.COLORHASH)
        if radius is None or not _HEX.fullmatch(value):
            return []
        index = self._colour[len(value)]
        (hits,) = index.search([_pad(value, len(value))], radius)
        matches: list[Match] = []
        for pos, distance in hits:
            limit = self.lists[self._list_of[pos]].distance_for(SignalType.COLORHASH)
            if limit is not None and distance <= limit:
                matches.append(_match(self._entries[pos], distance, signal))
        return matches

    def _match_perceptual(self, signal_type: SignalType, queries: Sequence[Signal]) -> list[Match]:
        index = self._perceptual.get(signal_type)
        if index is None:
            return []
        # One search at the widest list threshold, then each hit is held to its
        # own list's threshold (a list without one does not match this type).
        radius = self._radius(signal_type)
        if radius is None:
            return []
        found = index.search([q.value.strip().lower() for q in queries], radius)
        matches: list[Match] = []
        for query, hits in zip(queries, found, strict=True):
            for pos, distance in hits:
                hash_list = self.lists[self._list_of[pos]]
                limit = hash_list.distance_for(signal_type)
                if limit is None or distance > limit:
                    continue
                if signal_type is SignalType.PDQ and (
                    query.quality is None or query.quality < hash_list.pdq_min_quality
                ):
                    continue
                matches.append(_match(self._entries[pos], distance, query))
        return matches

    def match_video(self, frames: Sequence[VideoFrameHash]) -> list[Match]:
        """vPDQ entries whose share of matched query frames reaches the list's
        threshold (default 80%), using the reference brute-force comparison."""
        matches: list[Match] = []
        for pos in self._videos:
            entry = self._entries[pos]
            hash_list = self.lists[self._list_of[pos]]
            query_pct, compared_pct = match_videos(
                list(frames),
                list(entry.frames),
                distance=hash_list.pdq_distance,
                quality=hash_list.pdq_min_quality,
            )
            if query_pct >= hash_list.vpdq_match_percent and compared_pct >= hash_list.vpdq_compared_percent:
                matches.append(_match(entry, query_pct, None, compared_pct))
        return matches
