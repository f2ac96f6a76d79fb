"""Blocks that a CAR stream sent before the walker asked for them, with bounded memory and disk.

A gateway decides what it sends; the agent decides what it keeps. Blocks are
kept in memory up to half a budget that also counts what each block costs beyond
its bytes (its key and index entry), then appended to a real temporary file on
disk, up to a disk budget. Past either budget `put` refuses (`StashFull`) and
the caller abandons the stream: a flood of blocks nobody asked for costs a
bounded amount of memory and disk, never more."""

from __future__ import annotations

import os
import sys
import tempfile
from typing import BinaryIO

from agent.ipfs.errors import IpfsError

# What one index entry costs in memory besides the block bytes: the key object,
# its dict slot and the (offset, length) tuple or the bytes object's header.
ENTRY_OVERHEAD = (
    sys.getsizeof(b"\x12\x20" + b"\x00" * 32)
    + sys.getsizeof((1 << 40, 1 << 20))
    + 2 * sys.getsizeof(1 << 40)
    + 3 * 8 * 2  # a dict slot (hash, key, value) at the usual load factor
)


class StashFull(IpfsError):
    """The stash's memory or disk budget would be exceeded."""


class SpillingStash:
    def __init__(self, max_memory: int, max_disk: int) -> None:
        self._max_memory = max_memory
        self._max_disk = max_disk
        self._memory: dict[bytes, bytes] = {}
        self._on_disk: dict[bytes, tuple[int, int]] = {}
        self.memory_bytes = 0  # block bytes held in memory plus every entry's overhead
        self.disk_bytes = 0  # bytes appended to the spill file (space is reused only at close)
        self._spill: BinaryIO | None = None

    def __contains__(self, key: bytes) -> bool:
        return key in self._memory or key in self._on_disk

    def __len__(self) -> int:
        return len(self._memory) + len(self._on_disk)

    @property
    def spilled(self) -> int:
        """Blocks currently on disk."""
        return len(self._on_disk)

    def put(self, key: bytes, data: bytes) -> None:
        if key in self:
            return
        overhead = ENTRY_OVERHEAD + len(key)
        # Block bytes may take half the memory budget; the rest stays for the index of
        # blocks on disk, so spilling goes on after memory holds its share of blocks.
        if self.memory_bytes + overhead + len(data) <= self._max_memory // 2:
            self._memory[key] = data
            self.memory_bytes += overhead + len(data)
            return
        if self.memory_bytes + overhead > self._max_memory:
            raise StashFull(f"{len(self)} early blocks fill the {self._max_memory}-byte memory budget with their index")
        if self.disk_bytes + len(data) > self._max_disk:
            raise StashFull(f"{self.disk_bytes} bytes of early blocks on disk; the limit is {self._max_disk}")
        if self._spill is None:
            # A real file from the first byte: SpooledTemporaryFile(max_size=0) never spills.
            # Not a `with`: the file lives as long as the stash, and close() ends both.
            self._spill = tempfile.TemporaryFile(prefix="dweb-agent-stash-")  # noqa: SIM115
        self._spill.seek(0, os.SEEK_END)
        offset = self._spill.tell()
        self._spill.write(data)
        self._on_disk[key] = (offset, len(data))
        self.memory_bytes += overhead
        self.disk_bytes += len(data)

    def pop(self, key: bytes) -> bytes | None:
        data = self._memory.pop(key, None)
        if data is not None:
            self.memory_bytes -= ENTRY_OVERHEAD + len(key) + len(data)
            return data
        where = self._on_disk.pop(key, None)
        if where is None or self._spill is None:
            return None
        self.memory_bytes -= ENTRY_OVERHEAD + len(key)
        self._spill.seek(where[0])
        return self._spill.read(where[1])

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        self._memory.clear()
        self._on_disk.clear()
        self.memory_bytes = self.disk_bytes = 0
