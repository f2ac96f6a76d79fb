"""Image hashing throughput of MediaHasher at 1 and 2 worker processes.

    python bench/hash_throughput.py [--rounds N]

Hashes every fixture image (all signals: PDQ, pHash, dHash, aHash, wHash,
colorhash) through the process pool and prints images/s and MB/s for each
worker count, measured in the same run so the figures are comparable.
Numbers only; nothing here asserts a speed."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.media.pool import MediaHasher

FIXTURES = REPO / "tests" / "fixtures" / "media" / "pdq"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


async def measure(images: list[bytes], workers: int, rounds: int) -> tuple[float, float]:
    async with MediaHasher(workers=workers) as hasher:
        # Warm-up: start the worker processes and import the hashing libraries,
        # which would otherwise be charged to the first images.
        await asyncio.gather(*(hasher.hash_image(images[0]) for _ in range(workers)))
        start = time.perf_counter()
        for _ in range(rounds):
            await asyncio.gather(*(hasher.hash_image(data) for data in images))
        elapsed = time.perf_counter() - start
    count = len(images) * rounds
    megabytes = sum(len(d) for d in images) * rounds / 1e6
    return count / elapsed, megabytes / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the image set")
    args = parser.parse_args()

    paths = sorted(p for p in FIXTURES.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    images = [p.read_bytes() for p in paths]
    total_mb = sum(len(d) for d in images) / 1e6
    print(f"{len(images)} fixture images, {total_mb:.1f} MB, {args.rounds} rounds")
    results = {}
    for workers in (1, 2):
        per_second, mb_per_second = await measure(images, workers, args.rounds)
        results[workers] = per_second
        print(f"workers={workers}: {per_second:6.2f} images/s  {mb_per_second:6.2f} MB/s")
    print(f"speed-up 2 vs 1 workers: {results[2] / results[1]:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
