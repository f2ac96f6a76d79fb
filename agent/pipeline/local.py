"""Local files: the walk of a local target (symlinks listed, never followed; FIFOs
and devices never opened) and `hash_local_files` for `dweb-agent hash`."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import Settings
from agent.ipfs.errors import IpfsError, TooLarge
from agent.media import CryptoHasher, MediaError
from agent.media.sniff import SNIFF_BYTES, media_kind, sniff_media_type
from agent.model.report import ItemReport, ItemSource, ItemStatus
from agent.model.signals import Signal, VideoFrameHash
from agent.pipeline.factories import media_hasher
from agent.pipeline.items import status_for

if TYPE_CHECKING:
    from agent.pipeline.run import ScanRun

_LOCAL_CHUNK = 1 << 20


class NotRegularFile(OSError):
    """A local path that is a FIFO, device or socket: reading it could block or never end."""


def local_files(root: Path) -> list[Path]:
    """Files under `root`, sorted; symlinks are listed, never followed."""
    if not root.is_dir() or root.is_symlink():
        return [root]
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        found.extend(base / name for name in sorted(filenames))
        found.extend(base / name for name in dirnames if (base / name).is_symlink())
    return sorted(found)


def file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a file"


async def read_local(path: Path) -> AsyncIterator[bytes]:
    # O_NOFOLLOW and O_NONBLOCK: a path swapped for a symlink or a FIFO after lstat()
    # is refused instead of followed or waited on.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotRegularFile(f"not a regular file ({file_type(info.st_mode)}); not read")
    with os.fdopen(fd, "rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, _LOCAL_CHUNK):
            yield chunk


@dataclass
class FileSignals:
    """What `dweb-agent hash` prints for one file (its `to_dict` is the JSON output)."""

    path: Path
    size: int = 0
    media_type: str = "application/octet-stream"
    signals: list[Signal] = field(default_factory=list)
    video_frames: tuple[VideoFrameHash, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size": self.size,
            "media_type": self.media_type,
            "signals": [{"type": s.type.value, "value": s.value, "quality": s.quality} for s in self.signals],
            "vpdq": [
                {"frame": f.frame, "quality": f.quality, "pdq": f.pdq_hex, "timestamp": f.timestamp}
                for f in self.video_frames
            ],
            "error": self.error,
        }


async def hash_local_files(settings: Settings, paths: list[Path]) -> list[FileSignals]:
    results: list[FileSignals] = []
    async with media_hasher(settings) as media:
        for path in paths:
            result = FileSignals(path)
            results.append(result)
            try:
                crypto = CryptoHasher()
                head = b""
                with path.open("rb") as fh:
                    while chunk := fh.read(_LOCAL_CHUNK):
                        if len(head) < SNIFF_BYTES:
                            head += chunk[: SNIFF_BYTES - len(head)]
                        crypto.update(chunk)
                result.size = crypto.size
                result.signals = crypto.signals()
                if result.size == 0:
                    result.media_type = "inode/x-empty"
                    result.error = "empty file: nothing to hash but its digests"
                    continue
                result.media_type = sniff_media_type(head)
                if media_kind(result.media_type) in ("image", "video"):
                    analysed = await media.signals_for(path, result.media_type)
                    result.signals.extend(analysed.signals)
                    result.video_frames = analysed.video_frames
            except MediaError as exc:
                result.error = f"{result.media_type}: {exc}"
            except OSError as exc:
                result.error = exc.strerror or str(exc)
    return results


async def scan_local(run: ScanRun, root: Path) -> None:
    """A local file or directory: each regular file read and examined, symlinks listed."""
    run.report.root = None
    for path in local_files(root):
        rel = path.relative_to(root).as_posix() if path != root else path.name
        item = ItemReport(
            path=rel,
            cid=None,
            size=None,
            media_type=None,
            status=ItemStatus.VERIFIED,
            source=ItemSource(local=str(path), verified=True),
        )
        try:
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                item.kind, item.media_type = "symlink", "inode/symlink"
                item.symlink_target = os.readlink(path)
            elif not stat.S_ISREG(info.st_mode):
                # A FIFO would block the scan for ever and a device never ends: never opened.
                raise NotRegularFile(f"not a regular file ({file_type(info.st_mode)}); not read")
            elif info.st_size > run.limits.max_item_bytes:
                raise TooLarge(f"file is {info.st_size} bytes; the limit per item is {run.limits.max_item_bytes}")
            else:
                content = run.new_content()
                try:
                    async for chunk in read_local(path):
                        await content.feed(chunk)
                    content.finish()
                    await run.analyse(item, content)
                finally:
                    content.discard()
        except (IpfsError, OSError) as exc:
            item.status, item.error = status_for(exc), str(exc)
            item.source.verified = False
        run.add(item)
