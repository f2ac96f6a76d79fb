"""Benchmark: NumpyHammingIndex vs FAISS IndexBinaryFlat vs MultiIndexHammingIndex
(agent/lists/mih.py, the matcher's default) vs FAISS IndexBinaryMultiHash on random PDQ hashes.

Builds 100k and 1M random 256-bit hashes, queries them (some queries are
planted near-duplicates at distance <= 31, the rest random) at threshold 31 on
every backend in the same run, prints lookups/s (all queries in one call; for
the multi-index one also one query a call, as POST /v1/match asks) and checks
that all return exactly the same (id, distance) matches. FAISS runs on all the
machine's cores (OpenMP), the NumPy backends on one. Prints numbers and the
load average; asserts nothing about speed.

    .venv/bin/python bench/match_index.py [--queries 1000] [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from agent.lists.index import NumpyHammingIndex
from agent.lists.mih import MultiIndexHammingIndex

THRESHOLD = 31


def random_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**63, size=(n, 4), dtype=np.uint64) ^ (
        rng.integers(0, 2, size=(n, 4), dtype=np.uint64) << np.uint64(63)
    )


def plant_queries(rng: np.random.Generator, base: np.ndarray, n_queries: int) -> np.ndarray:
    """Half near-duplicates of random rows (0..31 bits flipped), half random."""
    n_near = n_queries // 2
    rows = rng.choice(base.shape[0], size=n_near, replace=False)
    near = base[rows].copy()
    for q in range(n_near):
        for bit in rng.choice(256, size=int(rng.integers(0, THRESHOLD + 1)), replace=False):
            near[q, bit // 64] ^= np.uint64(1) << np.uint64(63 - bit % 64)
    return np.concatenate([near, random_hashes(rng, n_queries - n_near)])


def to_faiss_bytes(words: np.ndarray) -> np.ndarray:
    # Big-endian bytes of each word: the same bit order as the hex strings.
    return words.astype(">u8").view(np.uint8).reshape(words.shape[0], 32)


def run_faiss(base: np.ndarray, queries: np.ndarray) -> tuple[list[list[tuple[int, int]]], float]:
    import faiss  # type: ignore[import-not-found,unused-ignore]

    index = faiss.IndexBinaryFlat(256)
    index.add(to_faiss_bytes(base))
    start = time.perf_counter()
    # FAISS range search is strict (distance < radius), so radius 32 = "<= 31".
    lims, distances, labels = index.range_search(to_faiss_bytes(queries), THRESHOLD + 1)
    elapsed = time.perf_counter() - start
    results = []
    for q in range(queries.shape[0]):
        hits = zip(labels[lims[q] : lims[q + 1]].tolist(), distances[lims[q] : lims[q + 1]].tolist(), strict=True)
        results.append(sorted(((int(i), int(d)) for i, d in hits), key=lambda h: (h[1], h[0])))
    return results, elapsed


def run_faiss_mih(base: np.ndarray, queries: np.ndarray) -> tuple[list[list[tuple[int, int]]], float]:
    import faiss  # type: ignore[import-not-found,unused-ignore]

    # 16 tables of 16 bits, 1 bit flipped per table: the same pigeonhole radius as ours.
    index = faiss.IndexBinaryMultiHash(256, 16, 16)
    index.nflip = 1
    index.add(to_faiss_bytes(base))
    start = time.perf_counter()
    lims, distances, labels = index.range_search(to_faiss_bytes(queries), THRESHOLD + 1)
    elapsed = time.perf_counter() - start
    results = []
    for q in range(queries.shape[0]):
        hits = zip(labels[lims[q] : lims[q + 1]].tolist(), distances[lims[q] : lims[q + 1]].tolist(), strict=True)
        results.append(sorted(((int(i), int(d)) for i, d in hits), key=lambda h: (h[1], h[0])))
    return results, elapsed


def run_mih(base: np.ndarray, queries: np.ndarray) -> tuple[list[list[tuple[int, int]]], float, float]:
    """Results, seconds for one call with every query, seconds one query a call."""
    index = MultiIndexHammingIndex(256)
    index.add_words(np.arange(base.shape[0], dtype=np.int64), base)
    start = time.perf_counter()
    results = index.search_words(queries, THRESHOLD)
    batch = time.perf_counter() - start
    start = time.perf_counter()
    single = [index.search_words(queries[q : q + 1], THRESHOLD)[0] for q in range(queries.shape[0])]
    one_by_one = time.perf_counter() - start
    if single != results:
        raise AssertionError("MultiIndexHammingIndex: one query a call differs from the batch")
    return results, batch, one_by_one


def run_numpy(base: np.ndarray, queries: np.ndarray) -> tuple[list[list[tuple[int, int]]], float]:
    index = NumpyHammingIndex(256)
    index.add_words(np.arange(base.shape[0], dtype=np.int64), base)
    start = time.perf_counter()
    results = index.search_words(queries, THRESHOLD)
    return results, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    ok = True
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f", {os.cpu_count()} cpus")
    print(
        f"{'hashes':>9} {'queries':>7} {'matches':>7} {'numpy lookups/s':>16} {'faiss lookups/s':>16} "
        f"{'mih lookups/s':>14} {'mih 1/call':>11} {'faiss-mih':>10} same"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        base = random_hashes(rng, size)
        queries = plant_queries(rng, base, args.queries)
        np_results, np_seconds = run_numpy(base, queries)
        fa_results, fa_seconds = run_faiss(base, queries)
        mih_results, mih_seconds, mih_single = run_mih(base, queries)
        fm_results, fm_seconds = run_faiss_mih(base, queries)
        same = np_results == fa_results == mih_results == fm_results
        ok &= same
        n_matches = sum(len(r) for r in np_results)
        print(
            f"{size:>9} {args.queries:>7} {n_matches:>7} {args.queries / np_seconds:>16.1f} "
            f"{args.queries / fa_seconds:>16.1f} {args.queries / mih_seconds:>14.1f} "
            f"{args.queries / mih_single:>11.1f} {args.queries / fm_seconds:>10.1f} {'yes' if same else 'NO'}"
        )
        # Every planted near-duplicate must be found by both.
        ok &= all(np_results[q] for q in range(args.queries // 2))
    print("load average after " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("results identical" if ok else "MISMATCH between backends")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
