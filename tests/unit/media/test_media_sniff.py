"""Content types come from magic bytes, checked on real files and real encoders' output."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from agent.media.sniff import SNIFF_BYTES, media_kind, sniff_media_type
from tests.conftest import MEDIA_FIXTURES

MEDIA = MEDIA_FIXTURES


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(SNIFF_BYTES)


def _encoded(fmt: str, mode: str = "RGB", **save: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (16, 12), "red" if mode != "1" else 1).save(out, fmt, **save)
    return out.getvalue()


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("pdq/bridge-mods/aaa-orig.jpg", "image/jpeg"),
        ("pdq/modes/CMYK.jpg", "image/jpeg"),
        ("pdq/modes/P.png", "image/png"),
        ("pdq/modes/1.png", "image/png"),
        ("pdq/modes/PA.webp", "image/webp"),
        ("video/chair-19-sd-bar.mp4", "video/mp4"),
        ("video/test-padded-dimensions.mp4", "video/mp4"),
        ("docs/test_pdf_complete.pdf", "application/pdf"),
        ("docs/test_pdf_half.pdf", "application/pdf"),
        ("vpdq-hashes/chair-19-sd-bar.txt", "text/plain"),
    ],
)
def test_fixture_files_are_recognised_from_their_first_bytes(relative: str, expected: str) -> None:
    assert sniff_media_type(_head(MEDIA / relative)) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_encoded("GIF"), "image/gif"),
        (_encoded("BMP"), "image/bmp"),
        (_encoded("TIFF"), "image/tiff"),
        (_encoded("TIFF", compression="tiff_lzw"), "image/tiff"),
        (_encoded("PNG", "1"), "image/png"),
        (_encoded("WEBP", lossless=True), "image/webp"),
    ],
)
def test_images_written_by_pillow_are_recognised(data: bytes, expected: str) -> None:
    assert sniff_media_type(data) == expected


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x08free"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (_ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
        (_ftyp(b"mif1", b"mif1", b"heic"), "image/heic"),
        (_ftyp(b"avif", b"mif1", b"avif"), "image/avif"),
        (_ftyp(b"mif1", b"avif", b"mif1"), "image/avif"),
        (_ftyp(b"qt  ", b"qt  "), "video/quicktime"),
        (_ftyp(b"isom", b"isom", b"avc1"), "video/mp4"),
        (_ftyp(b"M4A ", b"M4A "), "audio/mp4"),
        (b"\x00\x00\x00\x20moov" + bytes(24), "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm"),
        (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska", "video/x-matroska"),
        (b"RIFF\x24\x00\x00\x00AVI LIST", "video/x-msvideo"),
    ],
)
def test_container_signatures(head: bytes, expected: str) -> None:
    assert sniff_media_type(head) == expected


def test_zip_archives_including_empty_ones() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("a.txt", "hello")
    assert sniff_media_type(out.getvalue()) == "application/zip"
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    assert sniff_media_type(empty.getvalue()) == "application/zip"


def test_text_is_recognised_conservatively() -> None:
    assert sniff_media_type("héllo wörld\n\ttab\r\n".encode()) == "text/plain"
    assert sniff_media_type("\ufeffBOM text".encode()) == "text/plain"
    # A multi-byte character cut by the end of the prefix is still text.
    assert sniff_media_type("€uro".encode() * 1000) == "text/plain"
    assert sniff_media_type(b"text with a NUL\x00 byte") == "application/octet-stream"
    assert sniff_media_type(b"escape \x1b[31m codes") == "application/octet-stream"
    assert sniff_media_type(b"latin-1 \xe9t\xe9") == "application/octet-stream"


def test_unknown_and_empty_bytes_are_octet_stream() -> None:
    assert sniff_media_type(b"") == "application/octet-stream"
    assert sniff_media_type(bytes(range(256)) * 4) == "application/octet-stream"
    assert sniff_media_type(b"\x00\x01\x02\x03garbage") == "application/octet-stream"
    # "BM" starts many words; without a bitmap header it is not a BMP.
    assert sniff_media_type(b"BMW owners club\n") == "text/plain"


def test_file_names_play_no_part_only_bytes() -> None:
    # The same JPEG bytes are a JPEG whatever a gateway or a path claims.
    jpeg = _head(MEDIA / "pdq/bridge-mods/aaa-orig.jpg")
    assert sniff_media_type(jpeg) == "image/jpeg"
    assert sniff_media_type(jpeg[:3]) == "image/jpeg"
    assert sniff_media_type(jpeg[:2]) == "application/octet-stream"


@pytest.mark.parametrize(
    ("mime", "kind"),
    [
        ("image/jpeg", "image"),
        ("image/heic", "image"),
        ("video/webm", "video"),
        ("VIDEO/MP4; codecs=avc1", "video"),
        ("application/pdf", "document"),
        ("text/plain", "document"),
        ("application/zip", "archive"),
        ("audio/mp4", "other"),
        ("application/octet-stream", "other"),
    ],
)
def test_media_kind(mime: str, kind: str) -> None:
    assert media_kind(mime) == kind
