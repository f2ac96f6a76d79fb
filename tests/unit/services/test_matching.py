"""MatchService: hashes a caller has, matched against real lists as a scan would match
them (POST /v1/match), and uploads hashed like a scanned file (POST /v1/hash), with the
reference PDQ fixtures, a ThreatExchange CSV list and the nopfs test denylist."""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.config import Settings
from agent.lists.catalog import ListCatalog, load_catalog
from agent.media import MediaHasher
from agent.model.signals import SignalType
from agent.pipeline.factories import media_hasher
from agent.services import Invalid
from agent.services.matching import MAX_QUERIES, MatchService, SignalQuery, UploadTooLarge
from tests.conftest import IPFS_FIXTURES, MEDIA_FIXTURES
from tests.support.media_dag import expected_pdq, hamming

ORIGINAL = "pdq/bridge-mods/aaa-orig.jpg"
BLURRED = "pdq/bridge-mods/blur-a-lot.jpg"
ROTATED = "pdq/dihedral/bridge-2-rotate-90.jpg"
PDF = "docs/test_pdf_complete.pdf"


def manifest() -> dict[str, tuple[int, str, str]]:
    """path -> (bytes, md5, sha256) of every media fixture."""
    rows: dict[str, tuple[int, str, str]] = {}
    for line in (MEDIA_FIXTURES / "MANIFEST.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        path, size, md5, sha256 = line.split("\t")
        rows[path] = (int(size), md5, sha256)
    return rows


@pytest.fixture
async def catalog(tmp_path: Path) -> ListCatalog:
    """A TE CSV list with the original photo's PDQ (labelled) and the PDF's md5, and the nopfs denylist."""
    pdq = expected_pdq()[ORIGINAL][0]
    md5 = manifest()[PDF][1]
    listing = tmp_path / "gifct.csv"
    listing.write_text(
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{pdq},hashshare,terrorism,video_game\n"
        f"md5,{md5},hashshare,terrorism,manifesto\n"
    )
    return await load_catalog([str(listing), str(IPFS_FIXTURES / "denylists" / "nopfs-test.deny")])


@pytest.fixture
def service(catalog: ListCatalog) -> MatchService:
    return MatchService(lambda: catalog, None, Settings())


async def test_an_edited_copy_matches_at_its_true_distance_with_the_lists_labels(service: MatchService) -> None:
    """A blurred copy's PDQ (quality 100) matches the original's entry as a finding would say it."""
    tsv = expected_pdq()
    blurred, quality = tsv[BLURRED]
    (result,) = await service.match([SignalQuery("pdq", blurred.upper(), quality)])
    view = result.to_view()
    assert view["index"] == 0 and view["list"] == "gifct" and view["signal_type"] == "pdq"
    assert view["entry"] == tsv[ORIGINAL][0] and view["distance"] == hamming(blurred, tsv[ORIGINAL][0])
    assert view["labels"] == ["collab:hashshare", "category:terrorism", "video_game"]
    assert view["query"] == blurred and view["list_line"] == 2 and view["list_source"]


async def test_pdq_under_the_lists_minimum_quality_does_not_match_but_without_a_quality_it_does(
    service: MatchService,
) -> None:
    """Quality 10 is below the list's 50: no match. No quality at all (HMA's lookup sends
    none): matched by distance alone."""
    original = expected_pdq()[ORIGINAL][0]
    assert await service.match([SignalQuery("pdq", original, 10)]) == []
    (found,) = await service.match([SignalQuery("pdq", original)])
    assert found.finding.distance == 0 and found.finding.query == original


async def test_results_name_the_query_they_answer_and_far_hashes_do_not_match(service: MatchService) -> None:
    """Several queries at once: each result names its query's index; a rotation (100+ bits away)
    and an unknown md5 match nothing."""
    tsv = expected_pdq()
    md5 = manifest()[PDF][1]
    results = await service.match(
        [
            SignalQuery("pdq", tsv[ROTATED][0], 100),
            SignalQuery("md5", "0" * 32),
            SignalQuery("photo_md5", md5),
            SignalQuery("pdq", tsv[ORIGINAL][0], 100),
        ]
    )
    assert [(r.index, r.finding.signal_type) for r in results] == [(2, SignalType.MD5), (3, SignalType.PDQ)]
    assert results[0].finding.labels == ("collab:hashshare", "category:terrorism", "manifesto")


async def test_cids_are_checked_against_the_denylists_as_the_reference_suite_expects(service: MatchService) -> None:
    """Every CID of the nopfs test suite: the blocked ones match a rule, the others (exceptions,
    never-blocked empty CIDs) do not."""
    expected = json.loads((IPFS_FIXTURES / "denylists" / "nopfs-test.expected.json").read_text())["cids"]
    results = await service.match([SignalQuery("cid", c["cid"]) for c in expected])
    matched = {r.index for r in results}
    assert matched == {i for i, c in enumerate(expected) if c["blocked"]}
    assert all(r.finding.list_name == "nopfs-test" and r.finding.signal_type == "cid" for r in results)


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        (SignalQuery("tlsh", "00"), r"signals\[1\]\.type: unknown signal type"),
        (SignalQuery("pdq", "ab" * 31), r"signals\[1\]\.value: pdq value must be 64 hex chars, got 62"),
        (SignalQuery("md5", "z" * 32), r"signals\[1\]\.value: md5 value is not hex"),
        (SignalQuery("sha256", ""), r"signals\[1\]\.value"),
        (SignalQuery("pdq", "ab" * 32, 101), r"signals\[1\]\.quality"),
        (SignalQuery("vpdq", "video-1"), r"signals\[1\]\.type: vpdq"),
        (SignalQuery("cid", "not-a-cid"), r"signals\[1\]\.value: not a CID"),
        (SignalQuery("cid", "  "), r"signals\[1\]\.value"),
    ],
)
async def test_a_bad_query_is_refused_naming_it(service: MatchService, query: SignalQuery, problem: str) -> None:
    """The caller learns which query is wrong and why; nothing is matched."""
    with pytest.raises(Invalid, match=problem):
        await service.match([SignalQuery("md5", "0" * 32), query])


async def test_an_empty_or_oversized_batch_is_refused(service: MatchService) -> None:
    """At least one query, at most MAX_QUERIES."""
    with pytest.raises(Invalid, match="at least one"):
        await service.match([])
    with pytest.raises(Invalid, match=f"at most {MAX_QUERIES}"):
        await service.match([SignalQuery("md5", "0" * 32)] * (MAX_QUERIES + 1))


async def test_a_full_batch_against_a_large_list_finds_every_needle_without_stalling_the_loop(
    tmp_path: Path,
) -> None:
    """1,000 PDQ queries against the reference haystack plus 100,000 random entries: every
    needle within distance 31 of a haystack entry is found, and the event loop (the API
    answering other requests) runs while the batch is matched."""
    haystack = (MEDIA_FIXTURES / "pdq" / "haystack.txt").read_text().split()
    needles = (MEDIA_FIXTURES / "pdq" / "needles.txt").read_text().split()
    rng = hashlib.sha256(b"seed").digest()
    filler = []
    for i in range(100_000):
        rng = hashlib.sha256(rng + i.to_bytes(4, "big")).digest()
        filler.append(rng.hex())
    listing = tmp_path / "big.txt"
    listing.write_text("".join(f"pdq {h}\n" for h in [*haystack, *filler]))
    catalog = await load_catalog([str(listing)], max_bytes=64 << 20)
    service = MatchService(lambda: catalog, None, Settings())
    queries = [SignalQuery("pdq", needles[i % len(needles)], 100) for i in range(MAX_QUERIES)]
    batch = asyncio.ensure_future(service.match(queries))
    await asyncio.sleep(0)  # the batch starts ...
    answered_meanwhile = not batch.done()  # ... and this coroutine runs again before it ends
    results = await batch
    assert answered_meanwhile
    entries = set(haystack)
    expected = {i for i in range(MAX_QUERIES) if any(hamming(needles[i % len(needles)], h) <= 31 for h in haystack)}
    assert expected and {r.index for r in results if r.finding.entry in entries} == expected


@pytest.fixture
async def media() -> AsyncIterator[MediaHasher]:
    async with media_hasher(Settings()) as pool:
        yield pool


@pytest.fixture
def own_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary files go to a directory of the test's own, to see that none are left."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_an_uploaded_photo_gets_its_digests_and_reference_pdq_and_leaves_no_file(
    catalog: ListCatalog, media: MediaHasher, own_tmp: Path
) -> None:
    """The bytes' md5 and sha256 as in the manifest, the PDQ and quality of the reference TSV."""
    data = (MEDIA_FIXTURES / ORIGINAL).read_bytes()
    service = MatchService(lambda: catalog, media, Settings())
    hashed = await service.hash(chunks(data), limit=len(data), filename="photo.jpg")
    size, md5, sha256 = manifest()[ORIGINAL]
    pdq, quality = expected_pdq()[ORIGINAL]
    assert (hashed.size, hashed.media_type, hashed.error, hashed.filename) == (size, "image/jpeg", None, "photo.jpg")
    signals = hashed.signals
    assert signals.of(SignalType.MD5).value == md5  # type: ignore[union-attr]
    assert signals.of(SignalType.SHA256).value == sha256  # type: ignore[union-attr]
    got = signals.of(SignalType.PDQ)
    assert got is not None and (got.value, got.quality) == (pdq, quality)
    assert list(own_tmp.iterdir()) == []
    assert hashed.to_view()["signals"][0] == {"type": "md5", "value": md5, "quality": None}
    (finding,) = await service.matches_for(hashed)
    assert (finding.list_name, finding.entry, finding.distance) == ("gifct", pdq, 0)


async def test_an_upload_over_the_limit_is_refused_and_leaves_no_file(
    catalog: ListCatalog, media: MediaHasher, own_tmp: Path
) -> None:
    """One byte over `limit`: UploadTooLarge (the API's 413), and the partial file is gone."""
    data = (MEDIA_FIXTURES / ORIGINAL).read_bytes()
    service = MatchService(lambda: catalog, media, Settings())
    with pytest.raises(UploadTooLarge, match=f"larger than {len(data) - 1} bytes"):
        await service.hash(chunks(data), limit=len(data) - 1, filename=None)
    assert list(own_tmp.iterdir()) == []


async def test_a_corrupt_image_keeps_its_digests_and_says_what_failed(
    catalog: ListCatalog, media: MediaHasher, own_tmp: Path
) -> None:
    """A JPEG cut short after its header: the digests of the bytes sent and an error line, no exception."""
    data = (MEDIA_FIXTURES / ORIGINAL).read_bytes()[:2048]
    hashed = await MatchService(lambda: catalog, media, Settings()).hash(chunks(data), limit=1 << 20)
    assert hashed.media_type == "image/jpeg" and hashed.size == 2048
    assert hashed.signals.of(SignalType.SHA256).value == hashlib.sha256(data).hexdigest()  # type: ignore[union-attr]
    assert hashed.signals.of(SignalType.PDQ) is None
    assert hashed.error is not None and hashed.error.startswith("image/jpeg: ")
    assert list(own_tmp.iterdir()) == []


async def test_a_document_and_an_empty_upload_get_digests_only(catalog: ListCatalog, media: MediaHasher) -> None:
    """A PDF has no perceptual hash (and that is no error); an empty upload says it is empty."""
    data = (MEDIA_FIXTURES / PDF).read_bytes()
    service = MatchService(lambda: catalog, media, Settings())
    pdf = await service.hash(chunks(data), limit=len(data))
    assert pdf.media_type == "application/pdf" and pdf.error is None
    assert [s.type for s in pdf.signals.hashes] == [SignalType.MD5, SignalType.SHA1, SignalType.SHA256]
    assert pdf.signals.of(SignalType.MD5).value == manifest()[PDF][1]  # type: ignore[union-attr]
    empty = await service.hash(chunks(b""), limit=10)
    assert empty.size == 0 and empty.error is not None and "empty" in empty.error


async def test_without_a_media_pool_an_image_gets_digests_and_says_so(catalog: ListCatalog) -> None:
    """An agent without a media pool still answers the digests of an image, and why no PDQ."""
    data = (MEDIA_FIXTURES / ORIGINAL).read_bytes()
    hashed = await MatchService(lambda: catalog, None, Settings()).hash(chunks(data), limit=len(data))
    assert hashed.signals.of(SignalType.SHA256) is not None and hashed.signals.of(SignalType.PDQ) is None
    assert hashed.error is not None and "no media pool" in hashed.error


async def test_an_uploaded_video_gets_its_vpdq_frames(catalog: ListCatalog, media: MediaHasher, own_tmp: Path) -> None:
    """A video's frames are hashed (vPDQ) in the media pool; the temporary file is deleted."""
    data = (MEDIA_FIXTURES / "video" / "chair-20-sd-bar.mp4").read_bytes()
    hashed = await MatchService(lambda: catalog, media, Settings()).hash(chunks(data), limit=len(data))
    assert hashed.media_type == "video/mp4" and hashed.error is None
    assert hashed.signals.video is not None and hashed.signals.video.frames == len(hashed.signals.frames) > 0
    assert len(hashed.to_view()["vpdq"]) == len(hashed.signals.frames)
    assert list(own_tmp.iterdir()) == []
