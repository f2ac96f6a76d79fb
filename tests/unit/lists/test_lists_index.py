"""NumpyHammingIndex against an independent pure-Python reference."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from agent.lists.index import HammingIndex, NumpyHammingIndex
from tests.conftest import FIXTURES as FIXTURES_ROOT

PDQ_DIR = FIXTURES_ROOT / "media" / "pdq"


def brute_force(haystack: list[str], needle: str, max_distance: int) -> list[tuple[int, int]]:
    q = int(needle, 16)
    hits = [(i, bin(q ^ int(h, 16)).count("1")) for i, h in enumerate(haystack)]
    return sorted(((i, d) for i, d in hits if d <= max_distance), key=lambda x: (x[1], x[0]))


def read_hashes(path: Path) -> list[str]:
    return [line.split()[0].lower() for line in path.read_text().splitlines() if line.strip()]


def flip(value: str, bits: int, rng: random.Random, width: int = 256) -> str:
    x = int(value, 16)
    for b in rng.sample(range(width), bits):
        x ^= 1 << b
    return f"{x:0{width // 4}x}"


def test_is_a_hamming_index() -> None:
    assert isinstance(NumpyHammingIndex(256), HammingIndex)


@pytest.mark.parametrize("chunk_bytes", [4096, 32 * 1024 * 1024])
def test_agrees_with_python_reference_at_every_distance(chunk_bytes: int) -> None:
    rng = random.Random(7)
    base = [f"{rng.getrandbits(256):064x}" for _ in range(3000)]
    # Plant near-duplicates at distances around the threshold, including 256.
    planted = [flip(base[100 * d], d, rng) for d in range(30)]
    planted.append(f"{int(base[0], 16) ^ ((1 << 256) - 1):064x}")
    haystack = base + planted
    index = NumpyHammingIndex(256, chunk_bytes=chunk_bytes)
    index.add(list(range(len(haystack))), haystack)
    queries = base[:60:3] + planted[:10] + [f"{rng.getrandbits(256):064x}"]
    everything = [brute_force(haystack, q, 256) for q in queries]
    for radius in (0, 16, 31, 32, 128, 256):
        expected = [[(i, d) for i, d in hits if d <= radius] for hits in everything]
        assert index.search(queries, radius) == expected, radius
    # distance 256 must not wrap around to 0.
    assert (len(haystack) - 1, 256) in index.search([base[0]], 256)[0]
    assert (len(haystack) - 1, 256) not in index.search([base[0]], 255)[0]


def test_64_bit_hashes_and_custom_ids() -> None:
    index = NumpyHammingIndex(64)
    index.add([10, 20, 30], ["0000000000000000", "000000000000000f", "ffffffffffffffff"])
    assert len(index) == 3
    assert index.search(["0000000000000001"], 4) == [[(10, 1), (20, 3)]]
    assert index.search([], 4) == []
    with pytest.raises(ValueError, match="expected 16 hex chars, got 3"):
        index.add([1], ["abc"])


def test_reference_needles_are_found_in_the_haystack() -> None:
    """The PDQ reference regression data: 100 needles looked up in 1,350
    hashes. Half the needles are in the haystack verbatim, the others are a few
    bits away; each has 2 or 3 matches within 31 (250 in total, same at the
    reference tool's default of 32), and the nearest is at 0, 2 or 4 bits."""
    haystack = read_hashes(PDQ_DIR / "haystack.txt")
    needles = read_hashes(PDQ_DIR / "needles.txt")
    assert (len(haystack), len(needles)) == (1350, 100)
    index = NumpyHammingIndex(256)
    index.add(list(range(len(haystack))), haystack)
    results = index.search(needles, 31)
    assert results == [brute_force(haystack, n, 31) for n in needles]
    assert all(results), "every needle must be found"
    assert sum(len(r) for r in results) == 250
    assert sum(len(r) for r in index.search(needles, 32)) == 250
    assert Counter(len(r) for r in results) == {3: 50, 2: 50}
    assert Counter(r[0][1] for r in results) == {0: 50, 4: 49, 2: 1}
    exact = {n for n in needles if n in set(haystack)}
    assert all(results[i][0] == (haystack.index(n), 0) for i, n in enumerate(needles) if n in exact)
