"""DAGs of real media fixtures, built the way `ipfs add` builds them, served by a test gateway."""

from __future__ import annotations

from pathlib import Path

from agent.ipfs.cid import CID
from tests.conftest import MEDIA_FIXTURES
from tests.support.gateway import FixtureGateway
from tests.support.unixfs_builder import UnixFSBuilder


def expected_pdq() -> dict[str, tuple[str, int]]:
    """path (relative to fixtures/media) -> (PDQ hex, quality), from the reference TSV."""
    rows: dict[str, tuple[str, int]] = {}
    for line in (MEDIA_FIXTURES / "pdq" / "expected-pdq.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        path, _mode, _size, pdq, quality = line.split("\t")
        rows[path] = (pdq, int(quality))
    return rows


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def serve_files(gateway: FixtureGateway, files: dict[str, bytes], chunk: int = 256 * 1024) -> CID:
    builder = UnixFSBuilder(chunk=chunk)
    root = builder.add_tree(files)
    gateway.add_blocks(builder.blocks)
    return root


def media_files(*relative: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for rel in relative:
        base = MEDIA_FIXTURES / rel
        paths = sorted(base.iterdir()) if base.is_dir() else [base]
        for path in paths:
            out[str(Path(rel) / path.name) if base.is_dir() else rel] = path.read_bytes()
    return out
