"""Cryptographic digests agree with the fixtures' MANIFEST, however the bytes arrive."""

from __future__ import annotations

import hashlib

import pytest

from agent.media.crypto import CryptoHasher, crypto_signals
from agent.model.signals import Signal, SignalType
from tests.conftest import MEDIA_FIXTURES

MEDIA = MEDIA_FIXTURES


def _manifest() -> list[tuple[str, int, str, str]]:
    rows = []
    for line in (MEDIA / "MANIFEST.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        path, size, md5, sha256 = line.split("\t")
        if path.endswith((".jpg", ".png", ".webp", ".mp4", ".pdf")):
            rows.append((path, int(size), md5, sha256))
    return rows


MANIFEST = _manifest()


def test_manifest_covers_media() -> None:
    assert len(MANIFEST) >= 40


@pytest.mark.parametrize(("path", "size", "md5", "sha256"), MANIFEST, ids=[r[0] for r in MANIFEST])
def test_streamed_digests_match_manifest(path: str, size: int, md5: str, sha256: str) -> None:
    hasher = CryptoHasher()
    data = (MEDIA / path).read_bytes()
    for start in range(0, len(data), 65_536):  # block by block, as the fetcher feeds it
        hasher.update(memoryview(data)[start : start + 65_536])
    assert hasher.size == size
    by_type = {s.type: s.value for s in hasher.signals()}
    assert by_type[SignalType.MD5] == md5
    assert by_type[SignalType.SHA256] == sha256
    assert by_type[SignalType.SHA1] == hashlib.sha1(data).hexdigest()


def test_one_shot_equals_streamed_and_empty_content_has_digests() -> None:
    assert crypto_signals(b"") == [
        Signal(SignalType.MD5, "d41d8cd98f00b204e9800998ecf8427e"),
        Signal(SignalType.SHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        Signal(SignalType.SHA256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ]
    hasher = CryptoHasher()
    for piece in (b"hello ", b"", b"world\n"):
        hasher.update(piece)
    assert hasher.signals() == crypto_signals(b"hello world\n")
