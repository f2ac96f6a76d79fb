"""Multi-index hashing (Norouzi, Punjani & Fleet, "Fast Search in Hamming Space
with Multi-Index Hashing", CVPR 2012): exact Hamming range search that touches
a few hundred candidates instead of every row.

Recall argument (why nothing brute force finds is ever missed): each `bits`-bit
hash is cut into m disjoint 16-bit substrings. If the query and a row differ in
d <= D bits in total, those d bits fall into the m substrings, so at least one
substring differs in at most floor(D/m) bits (pigeonhole: if every substring
differed in floor(D/m)+1 or more, the total would exceed D). Probing, in every
substring's table, every key within floor(D/m) bits of the query's substring
therefore reaches every row within D. Each candidate's exact distance is then
computed with the same popcount as `NumpyHammingIndex` and held to <= D, so the
answer is the brute force's answer: same (id, distance) pairs, same order
(distance then id), duplicates included. PDQ (256 bits, m=16) at the lists'
threshold 31 needs radius 1: 17 probes a table, 272 a query; the 64-bit
imagehash family (m=4) at threshold <= 11 needs radius <= 2.

When the radius would be above 2 (the probe count grows as C(16, r)) or the
index is small (below `min_entries`, where a scan costs less than the probing),
the search is delegated to an internal `NumpyHammingIndex` over the same rows.

Hand-written rather than FAISS' IndexBinaryMultiHash: FAISS is not a runtime
dependency (it is in the test extra, for benchmarks); this needs NumPy only,
and its exactness is checked against the brute force by
tests/property/test_mih_index.py. bench/match_index.py compares all three.

Layout: per table, row numbers sorted by substring value (a radix argsort of
uint16) and a 65,537-entry offsets array, so a probe is two array reads and no
search; every query of a call is probed in one vectorised pass. Tables are
rebuilt on `add` (the matcher adds once, then only reads), so `search` never
mutates and concurrent readers need no lock."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import numpy.typing as npt

# _popcount: the very popcount the brute force uses, so distances agree bit for bit.
from agent.lists.index import NumpyHammingIndex, Words, _popcount, hex_to_words

SUB_BITS = 16
_KEYS = 1 << SUB_BITS
# Above this substring radius the probes (C(16, r) a table) cost more than a scan.
MAX_RADIUS = 2
# Below this many rows the vectorised scan beats the probing overhead (measured
# crossover: ~3,000 rows for 256 bits at threshold 31, ~5,000 for 64 bits at 10).
MIN_ENTRIES = 4096
_BLOCK_CANDIDATES = 32_768


def _probe_masks(radius: int) -> npt.NDArray[np.int64]:
    """Every 16-bit XOR mask with at most `radius` bits set."""
    masks = [0]
    for r in range(1, radius + 1):
        masks.extend(sum(1 << b for b in bits) for bits in combinations(range(SUB_BITS), r))
    return np.asarray(masks, dtype=np.int64)


# Substring shifts within a big-endian word: bits 0..15 of the hex are its top 16.
_SHIFTS = np.arange(64 - SUB_BITS, -1, -SUB_BITS, dtype=np.uint64)
_MASKS = tuple(_probe_masks(r) for r in range(MAX_RADIUS + 1))


class MultiIndexHammingIndex:
    """Exact Hamming range search by multi-index hashing; a `HammingIndex`."""

    def __init__(self, bits: int = 256, min_entries: int = MIN_ENTRIES) -> None:
        if bits <= 0 or bits % 64:
            raise ValueError("bits must be a positive multiple of 64")
        self.bits = bits
        self._n_words = bits // 64
        self._m = bits // SUB_BITS
        self._min_entries = min_entries
        self._brute = NumpyHammingIndex(bits)
        self._ids: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._rows: Words = np.empty((0, self._n_words), dtype=np.uint64)
        # Table t's rows with substring value k, in the flattened order:
        # _order[_offsets[t * (_KEYS + 1) + k] : _offsets[t * (_KEYS + 1) + k + 1]].
        self._order: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._offsets: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)  # sized by _build
        self._table_keys = (np.arange(self._m, dtype=np.int64) * (_KEYS + 1))[None, :, None]

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def add(self, ids: Sequence[int], hashes: Sequence[str]) -> None:
        if len(ids) != len(hashes):
            raise ValueError("ids and hashes differ in length")
        self.add_words(np.asarray(ids, dtype=np.int64), hex_to_words(hashes, self.bits))

    def add_words(self, ids: npt.NDArray[np.int64], words: Words) -> None:
        """Add pre-packed hashes, shape (n, bits/64)."""
        self._brute.add_words(ids, words)  # validates the shapes
        self._ids = np.concatenate([self._ids, ids])
        self._rows = np.ascontiguousarray(np.concatenate([self._rows, words]))
        if len(self) >= self._min_entries:
            self._build()

    def _substrings(self, words: Words) -> npt.NDArray[np.int64]:
        """(n, m) substrings, most significant first: substring j is bits
        16j..16j+15 of the hex string (any disjoint cut would do; this one
        is cheap)."""
        subs = (words[:, :, None] >> _SHIFTS) & np.uint64(_KEYS - 1)
        return subs.reshape(words.shape[0], self._m).view(np.int64)

    def _build(self) -> None:
        n = len(self)
        subs = self._substrings(self._rows).astype(np.uint16)
        order = np.empty((self._m, n), dtype=np.int64)
        offsets = np.empty((self._m, _KEYS + 1), dtype=np.int64)
        for t in range(self._m):
            column = subs[:, t]
            order[t] = np.argsort(column, kind="stable")  # a radix sort for uint16
            # Offsets into the flattened order, table t's block starting at t * n.
            offsets[t, 0] = t * n
            np.cumsum(np.bincount(column, minlength=_KEYS), out=offsets[t, 1:])
            offsets[t, 1:] += t * n
        self._order = order.ravel()
        self._offsets = offsets.ravel()

    def search(self, query_hashes: Sequence[str], max_distance: int) -> list[list[tuple[int, int]]]:
        if not query_hashes:
            return []
        return self.search_words(hex_to_words(query_hashes, self.bits), max_distance)

    def search_words(self, queries: Words, max_distance: int) -> list[list[tuple[int, int]]]:
        radius = max_distance // self._m if max_distance >= 0 else 0
        if len(self) == 0 or len(self) < self._min_entries or radius > MAX_RADIUS or max_distance < 0:
            return self._brute.search_words(queries, max_distance)
        masks = _MASKS[radius]
        # Queries in blocks so the candidate arrays stay near _BLOCK_CANDIDATES
        # (cache-sized); one query's probes are never split.
        expected = self._m * masks.size * max(1.0, len(self) / _KEYS)
        block = max(1, int(_BLOCK_CANDIDATES // expected))
        results: list[list[tuple[int, int]]] = []
        for q0 in range(0, queries.shape[0], block):
            results.extend(self._search_block(queries[q0 : q0 + block], masks, max_distance))
        return results

    def _search_block(
        self, queries: Words, masks: npt.NDArray[np.int64], max_distance: int
    ) -> list[list[tuple[int, int]]]:
        n_queries = queries.shape[0]
        # Keys probed, (query, table, mask) flattened; table t's keys start at t * (_KEYS + 1).
        probed = (self._substrings(queries)[:, :, None] ^ masks) + self._table_keys
        starts = self._offsets[probed.ravel()]
        lengths = self._offsets[probed.ravel() + 1] - starts
        total = int(lengths.sum())
        results: list[list[tuple[int, int]]] = [[] for _ in range(n_queries)]
        if total == 0:
            return results
        # Each probe's range [start, start + length) of the flattened order, concatenated.
        ends = np.cumsum(lengths)
        rows = self._order[np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)]
        if n_queries == 1:
            query_of = np.zeros(total, dtype=np.int64)
            xor = self._rows.take(rows, axis=0) ^ queries
        else:
            query_of = np.repeat(np.arange(n_queries, dtype=np.int64), lengths.reshape(n_queries, -1).sum(axis=1))
            xor = self._rows.take(rows, axis=0) ^ queries.take(query_of, axis=0)
        counts = _popcount(xor, np.empty(xor.shape, dtype=np.uint8))
        # Column sums in uint16: a uint8 total wraps at 256 (every bit differs) to 0.
        distances = counts[:, 0].astype(np.uint16)
        for w in range(1, self._n_words):
            distances += counts[:, w]
        keep = np.flatnonzero(distances <= max_distance)
        if keep.size == 0:
            return results
        query_of, rows, distances = query_of[keep], rows[keep], distances[keep]
        ids = self._ids[rows]
        ranked = np.lexsort((rows, ids, distances, query_of))
        query_of, rows, ids, distances = query_of[ranked], rows[ranked], ids[ranked], distances[ranked]
        # A row reached through several substrings is one hit: drop repeats, now adjacent.
        first = np.ones(keep.size, dtype=np.bool_)
        first[1:] = (rows[1:] != rows[:-1]) | (query_of[1:] != query_of[:-1])
        for q, i, d in zip(query_of[first].tolist(), ids[first].tolist(), distances[first].tolist(), strict=True):
            results[q].append((i, d))
        return results
