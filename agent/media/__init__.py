"""Media: sniffing, bounded decoding and hashing. Pure functions of bytes.

This package knows nothing of lists, scans, alerts, storage or the API; it
only shares the signal vocabulary of agent.model.signals."""

from agent.media.crypto import CryptoHasher, crypto_signals
from agent.media.errors import (
    CorruptMedia,
    DecodeTimeout,
    EmptyContent,
    HashingFailed,
    MediaError,
    MediaTooLarge,
    NoDecodableFrames,
    UnsupportedMedia,
    VpdqFormatError,
    WorkerCrashed,
    WorkerStartTimeout,
)
from agent.media.image import FramePdq, ImageResult, image_signals
from agent.media.limits import MediaLimits
from agent.media.pdq import hamming_hex, pdq_of_rgb
from agent.media.pool import MediaHasher, MediaResult
from agent.media.sniff import SNIFF_BYTES, MediaKind, media_kind, sniff_media_type
from agent.media.video import VideoHashes, video_hashes, video_signals
from agent.model.vpdq import format_vpdq, match_videos, parse_vpdq_text

__all__ = [
    "SNIFF_BYTES",
    "CorruptMedia",
    "CryptoHasher",
    "DecodeTimeout",
    "EmptyContent",
    "FramePdq",
    "HashingFailed",
    "ImageResult",
    "MediaError",
    "MediaHasher",
    "MediaKind",
    "MediaLimits",
    "MediaResult",
    "MediaTooLarge",
    "NoDecodableFrames",
    "UnsupportedMedia",
    "VideoHashes",
    "VpdqFormatError",
    "WorkerCrashed",
    "WorkerStartTimeout",
    "crypto_signals",
    "format_vpdq",
    "hamming_hex",
    "image_signals",
    "match_videos",
    "media_kind",
    "parse_vpdq_text",
    "pdq_of_rgb",
    "sniff_media_type",
    "video_hashes",
    "video_signals",
]
