"""Content type from magic bytes.

File names and gateway Content-Type headers are chosen by whoever published
the content, so they are never consulted: only the first bytes decide. Every
rule checks a fixed signature at a fixed offset, so a prefix of the content
(SNIFF_BYTES) is enough."""

from __future__ import annotations

import codecs
from typing import Literal

SNIFF_BYTES = 4096

MediaKind = Literal["image", "video", "document", "archive", "other"]

OCTET_STREAM = "application/octet-stream"

IMAGE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/tiff",
        "image/heic",
        "image/heif",
        "image/avif",
    }
)
VIDEO_TYPES = frozenset({"video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo"})
DOCUMENT_TYPES = frozenset({"application/pdf", "text/plain"})
ARCHIVE_TYPES = frozenset({"application/zip"})

# ISO base media file format (ftyp box) brands.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"mif2"})
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P "})
# Top-level QuickTime atoms that may open a file that has no ftyp box.
_QT_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
# BITMAPINFOHEADER sizes of the BMP versions in use (core, v1..v5).
_BMP_DIB_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
# Whitespace controls allowed in text; any other C0 control or DEL means binary.
_TEXT_CONTROLS_ALLOWED = frozenset("\t\n\r\f")


def sniff_media_type(head: bytes) -> str:
    """MIME type of content whose first bytes are `head` (the first 4 KiB suffice)."""
    head = head[:SNIFF_BYTES]
    for rule in (_image, _video, _container):
        found = rule(head)
        if found is not None:
            return found
    if _is_text(head):
        return "text/plain"
    return OCTET_STREAM


def media_kind(mime: str) -> MediaKind:
    """Coarse class of a MIME type, which decides which hashers apply."""
    mime = mime.split(";", 1)[0].strip().lower()
    if mime in IMAGE_TYPES:
        return "image"
    if mime in VIDEO_TYPES:
        return "video"
    if mime in DOCUMENT_TYPES:
        return "document"
    if mime in ARCHIVE_TYPES:
        return "archive"
    return "other"


def _image(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    # "BM" alone is too weak (any text may start with it): also require a
    # known DIB header size and the reserved fields to be zero.
    if (
        len(head) >= 18
        and head[:2] == b"BM"
        and head[6:10] == b"\x00\x00\x00\x00"
        and int.from_bytes(head[14:18], "little") in _BMP_DIB_SIZES
    ):
        return "image/bmp"
    return None


def _video(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        # EBML: the DocType element (0x4282) names the flavour.
        return "video/webm" if b"\x42\x82\x84webm" in head[:64] else "video/x-matroska"
    if head[4:8] == b"ftyp" and len(head) >= 12:
        return _iso_bmff(head)
    if head[4:8] in _QT_ATOMS and int.from_bytes(head[:4], "big") >= 8:
        # Old QuickTime files start with a plain atom, no ftyp. Only moov/mdat
        # are strong enough on their own; the others must be followed by one.
        if head[4:8] in (b"moov", b"mdat"):
            return "video/quicktime"
        size = int.from_bytes(head[:4], "big")
        if head[size + 4 : size + 8] in (b"moov", b"mdat"):
            return "video/quicktime"
    return None


def _iso_bmff(head: bytes) -> str:
    box_size = int.from_bytes(head[:4], "big")
    major = head[8:12]
    end = min(box_size, len(head)) if box_size >= 16 else 16
    compatible = {head[i : i + 4] for i in range(16, end - 3, 4)}
    brands = {major} | compatible
    # The major brand wins; compatible brands only refine generic HEIF.
    if major in _AVIF_BRANDS:
        return "image/avif"
    if major in _HEIC_BRANDS:
        return "image/heic"
    if major in _HEIF_BRANDS:
        if brands & _AVIF_BRANDS:
            return "image/avif"
        if brands & _HEIC_BRANDS:
            return "image/heic"
        return "image/heif"
    if major == b"qt  ":
        return "video/quicktime"
    if major in _AUDIO_BRANDS:
        return "audio/mp4"
    return "video/mp4"


def _container(head: bytes) -> str | None:
    # PDF readers accept the header anywhere in the first 1024 bytes.
    if b"%PDF-" in head[:1024]:
        return "application/pdf"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "application/zip"
    return None


def _is_text(head: bytes) -> bool:
    """UTF-8 without control characters. Conservative: NUL or any C0/C1 control
    other than whitespace means binary. A multi-byte character cut off by the
    end of the prefix is not an error (final=False)."""
    if not head:
        return False
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        text = decoder.decode(head, final=False)
    except UnicodeDecodeError:
        return False
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text:
        return False
    for ch in text:
        code = ord(ch)
        if (code < 0x20 or 0x7F <= code <= 0x9F) and ch not in _TEXT_CONTROLS_ALLOWED:
            return False
    return True
