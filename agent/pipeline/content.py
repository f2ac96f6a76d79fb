"""The streaming buffer of one item's bytes: digests as they pass, the head for
sniffing, and (images and videos only) a temporary file for the perceptual hashers."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from agent.media import CryptoHasher
from agent.media.sniff import media_kind, sniff_media_type
from agent.model.signals import Signal

# Hash in a worker thread above this size: hashlib releases the GIL, so content
# hashing overlaps with block verification and network reads.
_THREAD_HASH_MIN = 64 * 1024


@dataclass
class Content:
    """What the scan keeps of a file's bytes as they stream past: digests, the
    head for sniffing, and (for images and videos only) a temporary file for
    the perceptual hashers. Nothing else is stored; the media is deleted after."""

    sniff_bytes: int
    retain_limit: int = 0  # keep images/videos up to this many bytes; 0 keeps nothing
    tmp_dir: Path | None = None
    crypto: CryptoHasher = field(default_factory=CryptoHasher)
    head: bytearray = field(default_factory=bytearray)
    size: int = 0
    media_type: str | None = None
    path: Path | None = None
    too_large: bool = False
    _pending: list[bytes] = field(default_factory=list)
    _file: IO[bytes] | None = None

    async def feed(self, chunk: bytes) -> None:
        if len(self.head) < self.sniff_bytes:
            self.head += chunk[: self.sniff_bytes - len(self.head)]
        self.size += len(chunk)
        if len(chunk) >= _THREAD_HASH_MIN:
            await asyncio.to_thread(self.crypto.update, chunk)
        else:
            self.crypto.update(chunk)
        if self.media_type is None:
            self._pending.append(chunk)
            if len(self.head) >= self.sniff_bytes:
                self._decide()
        elif self._file is not None:
            self._keep(chunk)

    def _decide(self) -> None:
        self.media_type = sniff_media_type(bytes(self.head)) if self.size else "inode/x-empty"
        pending, self._pending = self._pending, []
        if self.retain_limit and media_kind(self.media_type) in ("image", "video"):
            handle = tempfile.NamedTemporaryFile(prefix="dweb-agent-", dir=self.tmp_dir, delete=False)  # noqa: SIM115 -- closed in finish()/discard(): it outlives this call
            self._file, self.path = handle, Path(handle.name)
            for chunk in pending:
                self._keep(chunk)

    def _keep(self, chunk: bytes) -> None:
        if self._file is None:  # dropped already: over the retain limit
            return
        if self.size > self.retain_limit:
            self.too_large = True
            self._drop_file()
            return
        self._file.write(chunk)

    def finish(self) -> None:
        if self.media_type is None:
            self._decide()
        if self._file is not None:
            self._file.close()
            self._file = None

    def _drop_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None

    def discard(self) -> None:
        self._drop_file()

    def signals(self) -> list[Signal]:
        return self.crypto.signals()
