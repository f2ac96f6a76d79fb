"""DAG-CBOR documents and CIDs: the libraries the agent uses against `libipld` (a Rust binding).

    python bench/ipld_decode.py [--n 20000]

Measures, per call in microseconds: decoding a dag-cbor document with links
(`dag_cbor.decode` vs `libipld.decode_dag_cbor`) and parsing a CID string
(`agent.ipfs.cid.parse_cid`, on multiformats, vs `libipld.decode_cid`). It also
prints what each decoder makes of a link, which is the deciding difference
(see agent/ipfs/documents.py). libipld is optional: without it only the
agent's side is printed. Numbers are printed; nothing is asserted."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dag_cbor
from dag_cbor.ipld import IPLDKind
from multiformats import CID

from agent.ipfs.cid import parse_cid

CID_TEXT = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def _document() -> bytes:
    link = CID.decode(CID_TEXT)
    entries: dict[str, IPLDKind] = {
        f"file-{i:03}": {"link": link, "size": i * 1024, "name": f"file-{i:03}.bin"} for i in range(50)
    }
    return bytes(dag_cbor.encode({"version": 1, "entries": entries}))


def _per_call_us(fn: Callable[[], object], n: int) -> float:
    return float(min(timeit.repeat(fn, number=n, repeat=3)) / n * 1e6)


def _first_link(document: object) -> object:
    """The link of the document's first entry, as the decoder returned it."""
    entries = document.get("entries") if isinstance(document, dict) else None
    entry = next(iter(entries.values()), None) if isinstance(entries, dict) else None
    return entry.get("link") if isinstance(entry, dict) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="calls per measurement")
    n = parser.parse_args().n
    doc = _document()
    # Optional: without it only the agent's side is printed.
    libipld = importlib.import_module("libipld") if importlib.util.find_spec("libipld") else None
    rows: list[tuple[str, float, float | None]] = [
        (
            f"dag-cbor document ({len(doc)} B, 50 links)",
            _per_call_us(lambda: dag_cbor.decode(doc), max(1, n // 20)),
            None if libipld is None else _per_call_us(lambda: libipld.decode_dag_cbor(doc), max(1, n // 20)),
        ),
        (
            "CID from text (base32 v1)",
            _per_call_us(lambda: parse_cid(CID_TEXT), n),
            None if libipld is None else _per_call_us(lambda: libipld.decode_cid(CID_TEXT), n),
        ),
    ]
    print(f"{'operation':<40}{'agent us':>10}{'libipld us':>12}")
    for label, ours, theirs in rows:
        print(f"{label:<40}{ours:>10.2f}{'-' if theirs is None else f'{theirs:.2f}':>12}")
    first = _first_link(dag_cbor.decode(doc))
    print(f"a link decoded by dag_cbor: {type(first).__name__} {first}")
    if libipld is not None:
        theirs_link = next(iter(libipld.decode_dag_cbor(doc)["entries"].values()))["link"]
        print(f"a link decoded by libipld:  {type(theirs_link).__name__} (a link and a byte string look the same)")


if __name__ == "__main__":
    main()
