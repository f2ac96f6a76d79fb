"""MultiIndexHammingIndex answers exactly what NumpyHammingIndex (brute force)
answers: same (id, distance) pairs in the same order, for random and clustered
hashes, every threshold the lists use, index sizes on both sides of the
delegation cutoff, duplicate hashes and ids, several queries per call.

Hypothesis draws the shape of each case (seed, sizes, clustering); NumPy
builds the thousands of hashes from the seed, so a failure shrinks to a small
seed and size and replays exactly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from agent.lists.index import HammingIndex, NumpyHammingIndex, Words
from agent.lists.matcher import MatchIndex
from agent.lists.mih import MIN_ENTRIES, MultiIndexHammingIndex
from agent.lists.model import HashList, ListEntry
from agent.model.signals import Signal, SignalType

Results = list[list[tuple[int, int]]]


@dataclass(frozen=True)
class Case:
    ids: np.ndarray
    rows: Words
    queries: Words


def _random_words(rng: np.random.Generator, n: int, n_words: int) -> Words:
    return rng.integers(0, 2**64 - 1, size=(n, n_words), dtype=np.uint64, endpoint=True)


def _flip(rng: np.random.Generator, row: Words, k: int) -> Words:
    """`row` with exactly k distinct bits flipped."""
    bits = row.shape[0] * 64
    out = row.copy()
    for bit in rng.permutation(bits)[:k].tolist():
        out[bit // 64] ^= np.uint64(1) << np.uint64(63 - bit % 64)
    return out


def _case(rng: np.random.Generator, n: int, bits: int, clustered: bool, n_queries: int, max_flip: int) -> Case:
    n_words = bits // 64
    if clustered and n:
        # Families of near-duplicates a few bits apart (exact copies included),
        # as real lists hold: many rows share substrings, buckets are uneven.
        centres = _random_words(rng, max(1, n // 8), n_words)
        family = rng.integers(0, centres.shape[0], size=n)
        rows = np.stack([_flip(rng, centres[f], int(rng.integers(0, 9))) for f in family.tolist()])
    else:
        rows = _random_words(rng, n, n_words)
    # Mostly distinct ids, some repeated: brute force reports every row, so must this.
    ids = rng.permutation(n).astype(np.int64)
    if n > 4:
        ids[rng.integers(0, n, size=n // 5)] = ids[0]
    queries = []
    for _ in range(n_queries):
        kind = int(rng.integers(0, 3))
        if n and kind < 2:
            base = rows[int(rng.integers(0, n))]
            queries.append(_flip(rng, base, int(rng.integers(0, max_flip + 1))) if kind else base.copy())
        else:
            queries.append(_random_words(rng, 1, n_words)[0])
    return Case(ids=ids, rows=rows.reshape(n, n_words), queries=np.stack(queries))


def _both(case: Case, bits: int, min_entries: int) -> tuple[NumpyHammingIndex, MultiIndexHammingIndex]:
    brute = NumpyHammingIndex(bits)
    brute.add_words(case.ids, case.rows)
    mih = MultiIndexHammingIndex(bits, min_entries=min_entries)
    mih.add_words(case.ids, case.rows)
    return brute, mih


_SIZES = st.one_of(
    st.integers(0, 40),
    st.sampled_from([MIN_ENTRIES - 1, MIN_ENTRIES, MIN_ENTRIES + 1]),
    st.integers(MIN_ENTRIES // 2, 2 * MIN_ENTRIES),
)
# 0 makes even a tiny index take the multi-index path; the default delegates below it.
_CUTOFFS = st.sampled_from([0, MIN_ENTRIES])


@given(
    seed=st.integers(0, 2**32 - 1),
    n=_SIZES,
    clustered=st.booleans(),
    n_queries=st.integers(1, 12),
    min_entries=_CUTOFFS,
)
def test_pdq_matches_brute_force_at_every_threshold(
    seed: int, n: int, clustered: bool, n_queries: int, min_entries: int
) -> None:
    """For 256-bit PDQ hashes at every threshold 0..31 (the lists' range) and a
    few wider ones (radius 2 and the delegated scan), the matches are exactly
    the brute force's: a missed near-duplicate would leave content up."""
    case = _case(np.random.default_rng(seed), n, 256, clustered, n_queries, max_flip=40)
    brute, mih = _both(case, 256, min_entries)
    for threshold in [*range(32), 40, 47, 48, 64]:
        assert mih.search_words(case.queries, threshold) == brute.search_words(case.queries, threshold), threshold


@given(
    seed=st.integers(0, 2**32 - 1),
    n=_SIZES,
    clustered=st.booleans(),
    n_queries=st.integers(1, 12),
    min_entries=_CUTOFFS,
)
def test_64_bit_hashes_match_brute_force_at_every_threshold(
    seed: int, n: int, clustered: bool, n_queries: int, min_entries: int
) -> None:
    """For the 64-bit imagehash family (4 substrings) at thresholds 0..10 and
    the first delegated ones, the matches are exactly the brute force's."""
    case = _case(np.random.default_rng(seed), n, 64, clustered, n_queries, max_flip=14)
    brute, mih = _both(case, 64, min_entries)
    for threshold in [*range(11), 11, 12, 20]:
        assert mih.search_words(case.queries, threshold) == brute.search_words(case.queries, threshold), threshold


@given(seed=st.integers(0, 2**32 - 1), first=st.integers(0, 3000), second=st.integers(0, 3000))
def test_added_in_two_calls_and_searched_one_query_at_a_time(seed: int, first: int, second: int) -> None:
    """Rows added in two calls (the second possibly crossing the cutoff) are
    all found, and a query asked alone gets the answer it gets in a batch."""
    rng = np.random.default_rng(seed)
    case = _case(rng, first + second, 256, True, 6, max_flip=31)
    brute = NumpyHammingIndex(256)
    brute.add_words(case.ids, case.rows)
    mih = MultiIndexHammingIndex(256, min_entries=2000)
    mih.add_words(case.ids[:first], case.rows[:first])
    mih.add_words(case.ids[first:], case.rows[first:])
    assert len(mih) == first + second
    batch = mih.search_words(case.queries, 31)
    assert batch == brute.search_words(case.queries, 31)
    assert [mih.search_words(case.queries[q : q + 1], 31)[0] for q in range(6)] == batch


def _hex(row: Words) -> str:
    return "".join(f"{int(w):016x}" for w in row)


def test_hex_interface_and_planted_near_duplicates() -> None:
    """Through the hex interface the matcher uses, every planted near-duplicate
    (0..31 bits from a list entry) is found at its exact distance, and an
    empty query list or a negative threshold finds nothing."""
    rng = np.random.default_rng(31)
    rows = _random_words(rng, 20_000, 4)
    index = MultiIndexHammingIndex(256)
    assert isinstance(index, HammingIndex)
    index.add(list(range(20_000)), [_hex(r) for r in rows])
    queries = [_hex(_flip(rng, rows[100 * k], k)) for k in range(32)]
    found = index.search(queries, 31)
    for k, hits in enumerate(found):
        assert (100 * k, k) in hits
    assert index.search([], 31) == []
    assert index.search(queries[:2], -1) == [[], []]


def test_match_index_finds_pdq_near_duplicates_by_default() -> None:
    """MatchIndex (built with its default index) reports a PDQ list entry for
    a query 31 bits away and none for one 32 bits away at threshold 31."""
    rng = np.random.default_rng(7)
    rows = _random_words(rng, 6000, 4)
    entries = tuple(
        ListEntry(list_name="l", entry_id=str(i), signal_type=SignalType.PDQ, value=_hex(r)) for i, r in enumerate(rows)
    )
    hash_list = HashList(name="l", entries=entries, pdq_distance=31, pdq_min_quality=0)
    index = MatchIndex([hash_list])
    near = Signal(type=SignalType.PDQ, value=_hex(_flip(rng, rows[42], 31)), quality=100)
    far = Signal(type=SignalType.PDQ, value=_hex(_flip(rng, rows[43], 32)), quality=100)
    assert [(m.entry_id, m.distance) for m in index.match([near])] == [("42", 31)]
    assert index.match([far]) == []
