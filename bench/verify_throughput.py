"""Verified retrieval throughput over loopback, against the physical limit (sha256 on one core).

    python bench/verify_throughput.py [--mib 128] [--small-mib 32]

A trustless gateway runs in a separate process serving a multi-block UnixFS
file (256 KiB raw leaves, 174 links per node, as Kubo builds them). In this
process the bench measures:
  * sha256 MB/s on one core (the floor cost of verifying every byte),
  * verified MB/s for CAR retrieval and for raw-block retrieval (fetch + hash
    every block against its CID, bytes discarded),
  * the full scan (verification + md5, sha1 and sha256 of the content + sniffing),
  * peak Python heap while retrieving a small and a large DAG (flat = streaming).
Numbers are printed; nothing is asserted."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp
from multiformats import CID

from agent.config import Settings
from agent.ipfs.cid import parse_cid
from agent.ipfs.dag import DagWalker
from agent.ipfs.gateway import GatewayPool
from agent.ipfs.trustless import TrustlessGateway
from agent.pipeline import Scanner
from tests.support.unixfs_builder import UnixFSBuilder

MIB = 1024 * 1024


def build_file(size: int, seed: int) -> tuple[CID, list[tuple[CID, bytes]], str]:
    """A balanced UnixFS file DAG as Kubo builds it; returns root, blocks and the content's sha256."""
    rng = random.Random(seed)
    pieces = [rng.randbytes(min(MIB, size - off)) for off in range(0, size, MIB)]
    builder = UnixFSBuilder()
    root, _ = builder.add_file(pieces)
    return root, builder.blocks, hashlib.sha256(b"".join(pieces)).hexdigest()


async def serve(sizes: list[int]) -> None:
    from tests.support.gateway import FixtureGateway

    gw = FixtureGateway()
    roots = []
    for i, size in enumerate(sizes):
        root, blocks, digest = build_file(size * MIB, seed=i)
        gw.add_blocks(blocks)
        roots.append({"mib": size, "root": str(root), "sha256": digest, "blocks": len(blocks)})
    url = await gw.start()
    print(json.dumps({"url": url, "dags": roots}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await gw.stop()


def sha256_limit(mib: int) -> float:
    data = random.Random(7).randbytes(MIB)
    h = hashlib.sha256()
    start = time.perf_counter()
    for _ in range(mib):
        h.update(data)
    return mib / (time.perf_counter() - start)


async def retrieve(url: str, root: str, mode: str) -> tuple[float, int]:
    async with aiohttp.ClientSession() as http:
        pool = GatewayPool([TrustlessGateway(url, http)], mode=mode)  # type: ignore[arg-type]
        walker = DagWalker(pool)
        start = time.perf_counter()
        total = 0
        async for entry in walker.walk(parse_cid(root)):
            async for chunk in walker.read_file(entry, max_bytes=1 << 40):
                total += len(chunk)
            await entry.release()
        return time.perf_counter() - start, total


async def full_scan(url: str, root: str, expected: str) -> float:
    settings = Settings()
    start = time.perf_counter()
    report = await Scanner(settings, gateways=[url], hash_media=False).scan(root)  # random bytes: no media
    elapsed = time.perf_counter() - start
    (item,) = report.items
    assert item.signals.to_view()["sha256"] == expected, "scan produced a wrong hash"
    return elapsed


async def peak_heap(url: str, root: str) -> int:
    tracemalloc.start()
    await retrieve(url, root, "car")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=128)
    parser.add_argument("--small-mib", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--serve", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve([int(x) for x in args.serve.split(",")])
        return

    server = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        f"{args.small_mib},{args.mib}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        info = json.loads(await server.stdout.readline())
        small, large = info["dags"]
        url = info["url"]
        print(f"DAG: {large['mib']} MiB file, {large['blocks']} blocks (256 KiB raw leaves), served from {url}")
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        limit = sha256_limit(512)
        print(f"\nsha256, one core (physical limit of verification): {limit:8.1f} MB/s")
        rows: list[tuple[str, list[float]]] = []
        await retrieve(url, large["root"], "car")  # warm up: the server encodes its CAR sections once
        for mode in ("car", "raw"):
            rates = []
            for _ in range(args.repeat):
                elapsed, total = await retrieve(url, large["root"], mode)
                assert total == large["mib"] * MIB
                rates.append(total / MIB / elapsed)
            rows.append((f"verified retrieval, {mode.upper()}", rates))
        scans = [large["mib"] / await full_scan(url, large["root"], large["sha256"]) for _ in range(args.repeat)]
        rows.append(("full scan (CAR + md5/sha1/sha256 + sniff)", scans))
        print(f"{'':<40} {'median':>8}  {'best':>8}   (MB/s over {args.repeat} runs; % of the sha256 limit)")
        for name, rates in rows:
            med, best = statistics.median(rates), max(rates)
            print(f"{name:<40} {med:8.1f}  {best:8.1f}   = {100 * med / limit:5.1f}% / {100 * best / limit:5.1f}%")
        small_peak = await peak_heap(url, small["root"])
        large_peak = await peak_heap(url, large["root"])
        print(
            f"\npeak Python heap, CAR retrieval: {small['mib']} MiB DAG -> {small_peak / MIB:.1f} MiB;"
            f" {large['mib']} MiB DAG -> {large_peak / MIB:.1f} MiB"
        )
    finally:
        if server.stdin:
            server.stdin.close()
        await asyncio.wait_for(server.wait(), 30)


if __name__ == "__main__":
    asyncio.run(main())
