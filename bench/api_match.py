"""Benchmark: POST /v1/match through HTTP against a 100,000-entry PDQ list, beside the
in-process match rate (MatchService.match called directly) in the same run.

    .ci/.venv/bin/python bench/api_match.py [--entries 100000] [--seconds 10] [--connections 1,8,32]
                                            [--profile DIR]

The list: random PDQ hashes in ThreatExchange plain format (`pdq <hex> bench`), written to
a temp dir. The server: the real agent, `python -m agent run`, with a temp data dir (its
SQLite store), that list as its only [lists] source, the API on a free port and health on
another, pinned to one CPU (sched_setaffinity, inherited by its media worker). Its [api]
rate limit is lifted for the run through its config file (rate_limit_per_s = 1e9,
rate_limit_burst = 1e9): one token sends every request, and the default 50/s would answer
429s instead of matches. The token is a real one, made with `dweb-agent tokens add --role
platform` against the same store, so every request is authenticated and authorised.

The load generator: a separate process pinned to the other CPUs, one aiohttp session
(keep-alive, --connections concurrent requests; each value of a comma list
is one run), each request one PDQ signal as a platform
would send it; a quarter are near-duplicates of list entries (up to 16 bits flipped, all of
which must match), the rest random hashes (which match nothing). Two phases: `pdq` (the
real workload) and `md5` (one exact signal, no Hamming search: the cost of HTTP, auth,
validation and serialisation alone). Latency is measured by the client, from sending the
request to reading the whole answer. The server's CPU use during each phase is read from
/proc, so a server that was not saturated shows it.

In-process: the same list loaded with agent.lists.catalog.load_catalog and the same
single-signal queries given to MatchService.match one after another on this process,
pinned to the server's CPU after the server has stopped.

--profile DIR runs the server under pyinstrument (when importable) or cProfile and writes
the profile of the whole server run to DIR. Numbers are printed; nothing is asserted
(the goal, >= 2,000 requests/s on one core with p99 <= 10 ms, is printed beside them)."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.config import Settings
from agent.lists.catalog import load_catalog
from agent.services.matching import MatchService, SignalQuery

GOAL_RPS = 2000
GOAL_P99_MS = 10.0
NEAR_BITS = 16  # at most this many bits flipped in a near-duplicate (the lists' threshold is 31)
WARMUP_S = 1.0
TOKEN_RE = re.compile(r"\b(dwa_[A-Za-z0-9_\-]+)")


def random_words(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**63, size=(n, 4), dtype=np.uint64) ^ (
        rng.integers(0, 2, size=(n, 4), dtype=np.uint64) << np.uint64(63)
    )


def to_hex(words: np.ndarray) -> list[str]:
    return ["".join(f"{int(w):016x}" for w in row) for row in words]


def write_list(path: Path, hashes: list[str]) -> None:
    with path.open("w") as f:
        f.write("# random PDQ hashes for bench/api_match.py\n")
        f.writelines(f"pdq {h} bench\n" for h in hashes)


def queries(rng: np.random.Generator, base: np.ndarray, n: int) -> tuple[list[str], int]:
    """n PDQ queries: the first quarter near-duplicates of random list rows, then random."""
    n_near = n // 4
    near = base[rng.choice(base.shape[0], size=n_near, replace=False)].copy()
    for q in range(n_near):
        for bit in rng.choice(256, size=int(rng.integers(0, NEAR_BITS + 1)), replace=False):
            near[q, bit // 64] ^= np.uint64(1) << np.uint64(63 - bit % 64)
    return to_hex(near) + to_hex(random_words(rng, n - n_near)), n_near


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def pct(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class Load:
    requests: int
    errors: dict[str, int]
    seconds: float
    latencies_ms: list[float]
    near_missed: int
    client_cpu_s: float


# ---------------------------------------------------------------- load generator (own process)


async def _generate(
    url: str, token: str, bodies: list[bytes], near: int, seconds: float, connections: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    near_missed = 0
    counter = 0
    measuring = False
    deadline = 0.0

    async def worker(session: aiohttp.ClientSession, start: int) -> None:
        nonlocal counter, near_missed
        i = start
        while True:
            now = time.perf_counter()
            if measuring and now >= deadline:
                return
            k = i % len(bodies)
            i += connections
            try:
                async with session.post(url, data=bodies[k], headers=headers) as resp:
                    text = await resp.read()
                    status = resp.status
            except aiohttp.ClientError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            if not measuring:
                continue
            latencies.append((time.perf_counter() - now) * 1000)
            counter += 1
            if status != 200:
                errors[str(status)] = errors.get(str(status), 0) + 1
            elif k < near and not json.loads(text)["matches"]:
                near_missed += 1

    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(worker(session, c)) for c in range(connections)]
        await asyncio.sleep(WARMUP_S)
        start_cpu = time.process_time()
        start = time.perf_counter()
        deadline = start + seconds
        measuring = True
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return {
        "requests": counter,
        "errors": errors,
        "seconds": elapsed,
        "latencies_ms": latencies,
        "near_missed": near_missed,
        "client_cpu_s": time.process_time() - start_cpu,
    }


def _generator_main(
    cpus: set[int], args: tuple[str, str, list[bytes], int, float, int], out: multiprocessing.Queue[Any]
) -> None:
    os.sched_setaffinity(0, cpus)
    out.put(asyncio.run(_generate(*args)))


def run_load(url: str, token: str, bodies: list[bytes], near: int, seconds: float, connections: int) -> Load:
    cpus = os.sched_getaffinity(0) - {SERVER_CPU} or {SERVER_CPU}
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[Any] = ctx.Queue()
    proc = ctx.Process(target=_generator_main, args=(cpus, (url, token, bodies, near, seconds, connections), out))
    proc.start()
    result = out.get()
    proc.join()
    return Load(**result)


# ---------------------------------------------------------------- the server (the real agent)

SERVER_CPU = min(os.sched_getaffinity(0))


def write_config(tmp: Path, list_path: Path) -> Path:
    config = tmp / "agent.toml"
    config.write_text(
        f"""
[agent]
data_dir = "{tmp / "data"}"
health_port = 0
[api]
port = 0
# Lifted for the benchmark: one token sends every request (the default is 50/s, burst 200).
rate_limit_per_s = 1000000000.0
rate_limit_burst = 1000000000
[lists]
sources = ["{list_path}"]
[media]
workers = 1
"""
    )
    return config


def agent_env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DWEB_AGENT_")}
    env["DWEB_AGENT_CONFIG"] = str(config)
    return env


def make_token(config: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "agent", "tokens", "add", "--role", "platform", "--name", "bench"],
        cwd=ROOT,
        env=agent_env(config),
        capture_output=True,
        text=True,
        check=True,
    )
    found = TOKEN_RE.search(done.stdout)
    if found is None:
        raise SystemExit(f"no token in `tokens add` output: {done.stdout!r} {done.stderr!r}")
    return found.group(1)


def start_server(config: Path, log_path: Path, profile: Path | None) -> subprocess.Popen[bytes]:
    command = [sys.executable]
    if profile is not None:
        try:
            import pyinstrument  # type: ignore[import-not-found,unused-ignore]  # noqa: F401

            command += ["-m", "pyinstrument", "-r", "text", "-o", str(profile / "server.txt")]
        except ImportError:
            command += ["-m", "cProfile", "-o", str(profile / "server.prof")]
    command += ["-m", "agent", "run"]
    with log_path.open("wb") as log:
        return subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
            command,
            cwd=ROOT,
            env=agent_env(config),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CPU}),
        )


def wait_started(log_path: Path, proc: subprocess.Popen[bytes]) -> str:
    """The API's base URL, from the agent's `agent.started` log line."""
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        for entry in log_path.read_text().splitlines():
            if "agent.started" in entry and (found := re.search(r"\"api\":\s*\"([^\"]+)\"|api=(\S+)", entry)):
                return found.group(1) or found.group(2)
        time.sleep(0.1)  # a bench, not a test: polling the agent's log
    raise SystemExit(f"the agent did not start:\n{log_path.read_text()[-3000:]}")


async def wait_matching(api: str, token: str, probe: str) -> str:
    """The /v1/match URL once the agent's list (loaded after the start) matches a planted hash."""
    url = api.rstrip("/") + "/v1/match"
    body = {"signals": [{"type": "pdq", "value": probe}]}
    deadline = time.monotonic() + 300
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        while time.monotonic() < deadline:
            async with session.post(url, json=body) as resp:
                if resp.status == 200 and (await resp.json())["matches"]:
                    return url
            await asyncio.sleep(0.2)
    raise SystemExit("the agent's list never matched a planted hash")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- in-process


async def in_process(list_path: Path, hashes: list[str], seconds: float) -> tuple[int, float, list[float]]:
    os.sched_setaffinity(0, {SERVER_CPU})
    catalog = await load_catalog([str(list_path)])
    service = MatchService(lambda: catalog, None, Settings())
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + seconds
    i = 0
    while (now := time.perf_counter()) < deadline:
        await service.match([SignalQuery("pdq", hashes[i % len(hashes)])])
        latencies.append((time.perf_counter() - now) * 1000)
        i += 1
    return i, time.perf_counter() - start, latencies


# ---------------------------------------------------------------- report


def line(name: str, requests: int, seconds: float, latencies: list[float], extra: str = "") -> str:
    ordered = sorted(latencies)
    rate = requests / seconds
    return (
        f"{name:<24} {rate:>9.0f} {statistics.median(ordered):>8.2f} {pct(ordered, 99):>8.2f} "
        f"{ordered[-1]:>8.2f}  {extra}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase")
    parser.add_argument(
        "--connections", default="1,8,32", help="concurrent keep-alive connections; a comma list runs each"
    )
    parser.add_argument("--queries", type=int, default=4000, help="distinct request bodies, cycled")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--profile", type=Path, default=None, help="write the server's profile to this directory")
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]
    rng = np.random.default_rng(args.seed)
    base = random_words(rng, args.entries)
    hashes, near = queries(rng, base, args.queries)
    pdq_bodies = [json.dumps({"signals": [{"type": "pdq", "value": h}]}).encode() for h in hashes]
    md5_bodies = [
        json.dumps({"signals": [{"type": "md5", "value": f"{int(rng.integers(0, 2**62)):032x}"}]}).encode()
        for _ in range(args.queries)
    ]
    print(
        f"cpus {os.cpu_count()} (usable {len(os.sched_getaffinity(0))}); load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
        + f"; server pinned to cpu {SERVER_CPU}, load generator to the others"
    )
    print(
        f"list: {args.entries} random PDQ entries; {args.queries} request bodies, {near} near-duplicates "
        f"(<= {NEAR_BITS} bits); {args.seconds:.0f} s per phase after {WARMUP_S:.0f} s warm-up"
    )
    rows: list[str] = []
    pdq_runs: list[tuple[int, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="dweb-bench-api-") as tmp_name:
        tmp = Path(tmp_name)
        list_path = tmp / "bench.txt"
        write_list(list_path, to_hex(base))
        config = write_config(tmp, list_path)
        token = make_token(config)
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
        log_path = tmp / "agent.log"
        proc = start_server(config, log_path, args.profile)
        try:
            url = asyncio.run(wait_matching(wait_started(log_path, proc), token, hashes[0]))
            for conns in connections:
                for name, bodies, planted in (("pdq", pdq_bodies, near), ("md5", md5_bodies, 0)):
                    before = cpu_seconds(proc.pid)
                    load = run_load(url, token, bodies, planted, args.seconds, conns)
                    # The whole phase's server CPU (warm-up included) over its wall time.
                    server_cpu = (cpu_seconds(proc.pid) - before) / (load.seconds + WARMUP_S)
                    extra = (
                        f"server cpu {server_cpu * 100:3.0f}%, client cpu "
                        f"{load.client_cpu_s / load.seconds * 100:3.0f}%, errors {load.errors or 0}"
                    )
                    if name == "pdq":
                        extra += f", near-duplicates unmatched {load.near_missed}"
                        ordered = sorted(load.latencies_ms)
                        pdq_runs.append((conns, load.requests / load.seconds, pct(ordered, 99)))
                    rows.append(line(f"HTTP {name} x{conns}", load.requests, load.seconds, load.latencies_ms, extra))
        finally:
            stop_server(proc)
        count, seconds, latencies = asyncio.run(in_process(list_path, hashes, args.seconds))
    print()
    print(f"{'':<24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print("\n".join(rows))
    print(line("in-process pdq", count, seconds, latencies, "MatchService.match, one signal a call, one core"))
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    met = [(c, r, p) for c, r, p in pdq_runs if r >= GOAL_RPS and p <= GOAL_P99_MS]
    best = max(pdq_runs, key=lambda run: run[1])
    print(
        f"goal (issue 11): >= {GOAL_RPS} authenticated PDQ match requests/s on one core with p99 <= "
        f"{GOAL_P99_MS:.0f} ms: "
        + (
            f"met with {met[0][0]} connections ({met[0][1]:.0f}/s, p99 {met[0][2]:.2f} ms)"
            if met
            else f"NOT met (best {best[1]:.0f}/s with {best[0]} connections, p99 {best[2]:.2f} ms)"
        )
    )
    if args.profile is not None:
        print(f"server profile written to {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
