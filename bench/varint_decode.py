"""The agent's varint reader against `multiformats.varint`, the library it could use instead.

    python bench/varint_decode.py [--n 200000]

Decodes the varints a CAR section and a dag-pb link make the agent read (a
one-byte codec, a two-byte length, a five-byte section length), from a
memoryview as the CAR reader does, and prints microseconds per decode for
both. The decision it backs is the docstring of agent/ipfs/varint.py.
Numbers are printed; nothing is asserted."""

from __future__ import annotations

import argparse
import sys
import timeit
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from multiformats import varint

from agent.ipfs.varint import encode_uvarint, read_uvarint

SAMPLES = {"1 byte (codec 0x55)": 0x55, "2 bytes (length 300)": 300, "5 bytes (length 2**30)": 1 << 30}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="decodes per measurement")
    n = parser.parse_args().n
    print(f"{'varint':<26}{'agent us':>10}{'multiformats us':>18}{'ratio':>8}")
    for label, value in SAMPLES.items():
        buf = memoryview(encode_uvarint(value) + b"\0" * 8)
        assert read_uvarint(buf)[0] == varint.decode_raw(buf)[0] == value
        ours = min(timeit.repeat(partial(read_uvarint, buf, 0), number=n, repeat=3)) / n * 1e6
        theirs = min(timeit.repeat(partial(varint.decode_raw, buf), number=n, repeat=3)) / n * 1e6
        print(f"{label:<26}{ours:>10.3f}{theirs:>18.3f}{theirs / ours:>7.1f}x")


if __name__ == "__main__":
    main()
