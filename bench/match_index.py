"""Benchmark: NumpyHammingIndex vs FAISS IndexBinaryFlat on random PDQ hashes.

Builds 100k and 1M random 256-bit hashes, queries them (some queries are
planted near-duplicates at distance <= 31, the rest random) at threshold 31 on
both backends in the same run, prints lookups/s and checks that both return
exactly the same (id, distance) matches. Prints numbers; asserts nothing about
speed.

    .venv/bin/python bench/match_index.py [--queries 1000] [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from agent.lists.index import NumpyHammingIndex

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
    print(f"{'hashes':>9} {'queries':>7} {'matches':>7} {'numpy lookups/s':>16} {'faiss lookups/s':>16} same")
    for size in (int(s) for s in args.sizes.split(",")):
        base = random_hashes(rng, size)
        queries = plant_queries(rng, base, args.queries)
        np_results, np_seconds = run_numpy(base, queries)
        fa_results, fa_seconds = run_faiss(base, queries)
        same = np_results == fa_results
        ok &= same
        n_matches = sum(len(r) for r in np_results)
        print(
            f"{size:>9} {args.queries:>7} {n_matches:>7} {args.queries / np_seconds:>16.1f} "
            f"{args.queries / fa_seconds:>16.1f} {'yes' if same else 'NO'}"
        )
        # Every planted near-duplicate must be found by both.
        ok &= all(np_results[q] for q in range(args.queries // 2))
    print("results identical" if ok else "MISMATCH between backends")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
