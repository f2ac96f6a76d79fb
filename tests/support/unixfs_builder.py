"""Build UnixFS DAGs the way `ipfs add` does (raw leaves, balanced layout).

For tests, benchmarks and tools that need a DAG from local bytes; the agent
itself only reads DAGs. Defaults follow Kubo: 256 KiB chunks, CIDv1 raw leaves,
174 links per node."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from multiformats import multihash

from agent.ipfs.cid import CID
from agent.ipfs.dagpb import UnixFSType, encode_pbnode, encode_unixfs

CHUNK = 256 * 1024
FANOUT = 174


def _cid(codec: str, data: bytes) -> CID:
    return CID("base32", 1, codec, multihash.digest(data, "sha2-256"))


@dataclass
class UnixFSBuilder:
    chunk: int = CHUNK
    fanout: int = FANOUT
    blocks: list[tuple[CID, bytes]] = field(default_factory=list)

    def _add(self, codec: str, data: bytes) -> CID:
        cid = _cid(codec, data)
        self.blocks.append((cid, data))
        return cid

    def add_file(self, content: bytes | Iterable[bytes]) -> tuple[CID, int]:
        """Returns the file's root CID and its size in bytes."""
        pieces = [content] if isinstance(content, bytes) else content
        level: list[tuple[CID, int]] = []
        buffer = b""
        for piece in pieces:
            buffer += piece
            while len(buffer) >= self.chunk:
                level.append((self._add("raw", buffer[: self.chunk]), self.chunk))
                buffer = buffer[self.chunk :]
        if buffer or not level:
            level.append((self._add("raw", buffer), len(buffer)))
        while len(level) > 1:
            parents: list[tuple[CID, int]] = []
            for i in range(0, len(level), self.fanout):
                group = level[i : i + self.fanout]
                total = sum(n for _, n in group)
                node = encode_pbnode(
                    [(c, "", n) for c, n in group],
                    encode_unixfs(UnixFSType.FILE, filesize=total, blocksizes=[n for _, n in group]),
                )
                parents.append((self._add("dag-pb", node), total))
            level = parents
        return level[0]

    def add_directory(self, entries: dict[str, tuple[CID, int]]) -> tuple[CID, int]:
        """A plain directory of named links, sorted by name as UnixFS requires."""
        links = [(cid, name, size) for name, (cid, size) in sorted(entries.items())]
        node = encode_pbnode(links, encode_unixfs(UnixFSType.DIRECTORY))
        return self._add("dag-pb", node), sum(size for _, _, size in links) + len(node)

    def add_tree(self, files: dict[str, bytes]) -> CID:
        """Files by '/'-separated path; returns the root directory's CID."""
        tree: dict[str, object] = {}
        for path, data in files.items():
            node = tree
            *dirs, name = path.split("/")
            for part in dirs:
                node = node.setdefault(part, {})  # type: ignore[assignment]
            node[name] = data

        def build(node: dict[str, object]) -> tuple[CID, int]:
            entries: dict[str, tuple[CID, int]] = {}
            for name, child in node.items():
                entries[name] = self.add_file(child) if isinstance(child, bytes) else build(child)  # type: ignore[arg-type]
            return self.add_directory(entries)

        return build(tree)[0]
