"""Hamming-distance search over fixed-width binary hashes (PDQ, 64-bit imagehash).

`HammingIndex` is the interface the matcher uses, so a faster backend (FAISS,
multi-index hashing) can replace the NumPy one without touching callers. The
NumPy backend is exact brute force: no candidate is ever missed, which matters
more here than speed (a missed match leaves content up)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Words = npt.NDArray[np.uint64]


@runtime_checkable
class HammingIndex(Protocol):
    bits: int

    def add(self, ids: Sequence[int], hashes: Sequence[str]) -> None:
        """Add hex hashes under integer ids."""

    def search(self, query_hashes: Sequence[str], max_distance: int) -> list[list[tuple[int, int]]]:
        """For each query, the (id, distance) pairs with distance <= max_distance,
        sorted by distance then id."""

    def __len__(self) -> int: ...


def hex_to_words(hashes: Sequence[str], bits: int) -> Words:
    """Hex strings to an (n, bits/64) array of big-endian-ordered uint64 words.
    Raises ValueError on a value of the wrong length or not hex."""
    n_hex = bits // 4
    for value in hashes:
        if len(value) != n_hex:
            raise ValueError(f"expected {n_hex} hex chars, got {len(value)}")
    raw = bytes.fromhex("".join(hashes))  # one C-level pass: fast for 1M hashes
    words = np.frombuffer(raw, dtype=">u8").astype(np.uint64)
    return words.reshape(len(hashes), bits // 64)


if hasattr(np, "bitwise_count"):  # numpy >= 2.0

    def _popcount(x: Words, out: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        counts: npt.NDArray[np.uint8] = np.bitwise_count(x, out=out)
        return counts

else:  # pragma: no cover - numpy 1.x fallback via a byte lookup table
    _TABLE = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

    def _popcount(x: Words, out: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        as_bytes = x.view(np.uint8).reshape(*x.shape, 8)
        counts: npt.NDArray[np.uint8] = _TABLE[as_bytes].sum(axis=-1, dtype=np.uint8, out=out)
        return counts


class NumpyHammingIndex:
    """Exact, vectorised brute force. Hashes are stored word-major (one
    contiguous array per 64-bit word) so each pass streams memory linearly;
    work is chunked so temporaries stay near `chunk_bytes` whatever the size
    (2 MiB measured fastest: the working set stays in cache)."""

    def __init__(self, bits: int = 256, chunk_bytes: int = 2 * 1024 * 1024) -> None:
        if bits <= 0 or bits % 64:
            raise ValueError("bits must be a positive multiple of 64")
        self.bits = bits
        self._n_words = bits // 64
        self._chunk_bytes = chunk_bytes
        self._ids: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._words: Words = np.empty((self._n_words, 0), dtype=np.uint64)

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def add(self, ids: Sequence[int], hashes: Sequence[str]) -> None:
        if len(ids) != len(hashes):
            raise ValueError("ids and hashes differ in length")
        self.add_words(np.asarray(ids, dtype=np.int64), hex_to_words(hashes, self.bits))

    def add_words(self, ids: npt.NDArray[np.int64], words: Words) -> None:
        """Add pre-packed hashes, shape (n, bits/64)."""
        if words.ndim != 2 or words.shape[1] != self._n_words or words.shape[0] != ids.shape[0]:
            raise ValueError("words must have shape (len(ids), bits/64)")
        self._ids = np.concatenate([self._ids, ids])
        self._words = np.ascontiguousarray(np.concatenate([self._words, words.T], axis=1))

    def search(self, query_hashes: Sequence[str], max_distance: int) -> list[list[tuple[int, int]]]:
        if not query_hashes:
            return []
        return self.search_words(hex_to_words(query_hashes, self.bits), max_distance)

    def search_words(self, queries: Words, max_distance: int) -> list[list[tuple[int, int]]]:
        n = len(self)
        results: list[list[tuple[int, int]]] = [[] for _ in range(queries.shape[0])]
        if n == 0 or max_distance < 0:
            return results
        # Block of queries x chunk of rows: each pass makes a (q, rows) uint64
        # XOR temporary and a uint16 accumulator; size both from chunk_bytes.
        rows = max(1024, min(n, self._chunk_bytes // (10 * 64)))
        q_block = max(1, self._chunk_bytes // (10 * rows))
        for q0 in range(0, queries.shape[0], q_block):
            block = queries[q0 : q0 + q_block]
            for r0 in range(0, n, rows):
                distances = self._distances(block, r0, min(n, r0 + rows))
                q_idx, r_idx = np.nonzero(distances <= max_distance)
                if q_idx.size == 0:
                    continue
                found = distances[q_idx, r_idx]
                ids = self._ids[r0 + r_idx]
                for q, i, d in zip(q_idx.tolist(), ids.tolist(), found.tolist(), strict=True):
                    results[q0 + q].append((i, d))
        for hits in results:
            hits.sort(key=lambda hit: (hit[1], hit[0]))
        return results

    def _distances(self, block: Words, start: int, stop: int) -> npt.NDArray[np.uint16]:
        shape = (block.shape[0], stop - start)
        acc = np.zeros(shape, dtype=np.uint16)
        # Reused buffers: allocating fresh temporaries per word costs as much
        # as the arithmetic at this size.
        xor = np.empty(shape, dtype=np.uint64)
        counts = np.empty(shape, dtype=np.uint8)
        for w in range(self._n_words):
            np.bitwise_xor(block[:, w, None], self._words[w, start:stop][None, :], out=xor)
            acc += _popcount(xor, counts)
        return acc
