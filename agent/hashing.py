"""Signals of local files, for `dweb-agent hash` (building lists, one-off look-ups)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import Settings
from agent.media import CryptoHasher, MediaError
from agent.media.sniff import SNIFF_BYTES, media_kind, sniff_media_type
from agent.scan import media_hasher
from agent.model.signals import Signal, VideoFrameHash

_CHUNK = 1 << 20


@dataclass
class FileSignals:
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
                    while chunk := fh.read(_CHUNK):
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
