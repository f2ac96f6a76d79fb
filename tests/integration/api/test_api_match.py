"""POST /v1/match and POST /v1/hash through the real app, over a real ThreatExchange CSV list
and the media pool: near-duplicates match with their distance and labels, uploads get the
signals `dweb-agent hash` prints, bad input is refused field by field, and none of it is audited."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from agent.config import Settings
from agent.lists.catalog import ListCatalog, load_catalog
from agent.media import MediaHasher
from agent.model.access import Role
from agent.pipeline.factories import media_hasher
from agent.store import Store
from tests.conftest import MEDIA_FIXTURES
from tests.support.api import ApiClient, ApiResponse, api_server, api_settings
from tests.support.cli import run_cli
from tests.support.media_dag import expected_pdq, hamming

ORIGINAL = "pdq/bridge-mods/aaa-orig.jpg"
BLURRED = "pdq/bridge-mods/blur-a-lot.jpg"
PDF = "docs/test_pdf_complete.pdf"


def sha256_of(relative: str) -> str:
    return hashlib.sha256((MEDIA_FIXTURES / relative).read_bytes()).hexdigest()


@pytest.fixture
async def catalog(tmp_path: Path) -> ListCatalog:
    """A TE CSV list: the original photo's PDQ and the PDF's sha256, each with its labels."""
    listing = tmp_path / "gifct.csv"
    listing.write_text(
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{expected_pdq()[ORIGINAL][0]},hashshare,terrorism,video_game\n"
        f"sha256,{sha256_of(PDF)},hashshare,terrorism,manifesto\n"
    )
    return await load_catalog([str(listing)])


@pytest.fixture
async def media() -> AsyncIterator[MediaHasher]:
    async with media_hasher(Settings()) as pool:
        yield pool


def form(data: bytes, filename: str = "upload.jpg", name: str = "file") -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field(name, data, filename=filename, content_type="application/octet-stream")
    return body


async def encoded(body: aiohttp.FormData) -> tuple[bytes, str]:
    """A form's multipart bytes and Content-Type, as aiohttp writes them."""
    payload = body()
    chunks: list[bytes] = []

    class Sink:
        async def write(self, data: bytes) -> None:
            chunks.append(bytes(data))

    await payload.write(Sink())  # type: ignore[arg-type]
    return b"".join(chunks), payload.content_type


async def upload(client: ApiClient, body: aiohttp.FormData, **params: str) -> ApiResponse:
    """POST /v1/hash with a multipart body (sent with its Content-Length)."""
    data, content_type = await encoded(body)
    headers = {"Content-Type": content_type}
    return await client.request("POST", "/v1/hash", data=data, headers=headers, params=params or None)


async def test_a_near_duplicate_pdq_and_an_exact_sha256_match_as_findings_would(
    store: Store, catalog: ListCatalog
) -> None:
    """A blurred copy's PDQ matches the original's entry at its Hamming distance with the list's
    labels; the PDF's sha256 matches exactly; an unrelated hash matches nothing; each result
    names the index of the signal it answers."""
    tsv = expected_pdq()
    blurred, quality = tsv[BLURRED]
    async with api_server(store, catalog=lambda: catalog) as api:
        client = await api.client(Role.PLATFORM, name="acme")
        resp = await client.post(
            "/v1/match",
            {
                "signals": [
                    {"type": "md5", "value": "0" * 32},
                    {"type": "pdq", "value": blurred, "quality": quality},
                    {"type": "sha256", "value": sha256_of(PDF).upper()},
                ]
            },
        )
        assert resp.status == 200, resp.text
        pdq_match, sha_match = resp.json()["matches"]
        assert pdq_match["index"] == 1 and pdq_match["list"] == "gifct" and pdq_match["signal_type"] == "pdq"
        assert pdq_match["entry"] == tsv[ORIGINAL][0]
        assert pdq_match["distance"] == hamming(blurred, tsv[ORIGINAL][0]) > 0
        assert pdq_match["labels"] == ["collab:hashshare", "category:terrorism", "video_game"]
        assert pdq_match["query"] == blurred
        assert sha_match["index"] == 2 and sha_match["distance"] == 0 and sha_match["entry"] == sha256_of(PDF)
        assert sha_match["labels"] == ["collab:hashshare", "category:terrorism", "manifesto"]


async def test_malformed_signals_are_422_naming_the_signal_and_its_field(store: Store, catalog: ListCatalog) -> None:
    """A PDQ that is not 64 hex characters, an md5 that is not hex, an unknown type, a quality
    over 100, no signals, and more than the per-request maximum: each a 422 naming the field."""
    async with api_server(store, catalog=lambda: catalog) as api:
        client = await api.client(Role.INVESTIGATOR)
        pdq = expected_pdq()[ORIGINAL][0]
        cases: list[tuple[list[dict[str, object]], str]] = [
            ([{"type": "pdq", "value": pdq}, {"type": "pdq", "value": "ab" * 31}], "signals[1].value"),
            ([{"type": "md5", "value": "z" * 32}], "signals[0].value"),
            ([{"type": "pdq", "value": pdq}, {"type": "tlsh", "value": "00"}], "signals[1].type"),
            ([{"type": "pdq", "value": pdq, "quality": 101}], "signals[0].quality"),
            ([], "signals"),
            ([{"type": "pdq", "value": pdq}] * 101, "signals"),
        ]
        for signals, field in cases:
            resp = await client.post("/v1/match", {"signals": signals})
            assert resp.status == 422, (signals[:2], resp.text)
            assert resp.fields() == [field], resp.text


async def test_investigators_and_platforms_may_match_viewers_may_not_and_nothing_is_audited(
    store: Store, catalog: ListCatalog
) -> None:
    """Admin, investigator and platform get 200; a viewer 403; no match or hash call (the
    viewer's refused one included) is in the audit trail."""
    body = {"signals": [{"type": "pdq", "value": expected_pdq()[ORIGINAL][0]}]}
    async with api_server(store, catalog=lambda: catalog) as api:
        for role in (Role.ADMIN, Role.INVESTIGATOR, Role.PLATFORM):
            resp = await (await api.client(role)).post("/v1/match", body)
            assert resp.status == 200 and len(resp.json()["matches"]) == 1, (role, resp.text)
        viewer = await api.client(Role.VIEWER)
        assert (await viewer.post("/v1/match", body)).status == 403
        assert (await upload(viewer, form(b"hello"))).status == 403
        assert await store.audit.recent(limit=100) == []


async def test_an_uploaded_jpeg_gets_the_signals_dweb_agent_hash_prints(
    store: Store, catalog: ListCatalog, media: MediaHasher
) -> None:
    """The photo's every signal (digests, PDQ and its quality, the imagehash family) equals
    `dweb-agent hash --format json`'s for the same file; no matches unless asked."""
    photo = MEDIA_FIXTURES / ORIGINAL
    cli = await run_cli("hash", "--format", "json", str(photo))
    assert cli.code == 0, cli.stderr[-2000:]
    (expected,) = json.loads(cli.stdout)
    async with api_server(store, catalog=lambda: catalog, media=media) as api:
        client = await api.client(Role.PLATFORM)
        resp = await upload(client, form(photo.read_bytes(), filename="photo.jpg"))
        assert resp.status == 200, resp.text
        got = resp.json()
        assert (got["filename"], got["size"], got["media_type"], got["error"]) == (
            "photo.jpg",
            expected["size"],
            "image/jpeg",
            None,
        )
        assert got["signals"] == expected["signals"]
        assert got["matches"] is None


async def test_with_match_true_an_upload_is_matched_against_the_lists(
    store: Store, catalog: ListCatalog, media: MediaHasher
) -> None:
    """?match=true: the blurred copy matches the list's PDQ of the original, and the PDF its
    sha256 entry, as a scan would find them."""
    tsv = expected_pdq()
    async with api_server(store, catalog=lambda: catalog, media=media) as api:
        client = await api.client(Role.INVESTIGATOR)
        photo = await upload(client, form((MEDIA_FIXTURES / BLURRED).read_bytes()), match="true")
        assert photo.status == 200, photo.text
        (found,) = photo.json()["matches"]
        assert (found["list"], found["signal_type"], found["entry"]) == ("gifct", "pdq", tsv[ORIGINAL][0])
        assert found["distance"] == hamming(tsv[BLURRED][0], tsv[ORIGINAL][0])
        assert found["labels"] == ["collab:hashshare", "category:terrorism", "video_game"]
        pdf = await upload(client, form((MEDIA_FIXTURES / PDF).read_bytes(), filename="x.pdf"), match="true")
        assert [(m["signal_type"], m["entry"]) for m in pdf.json()["matches"]] == [("sha256", sha256_of(PDF))]


async def test_a_corrupt_image_gets_its_digests_and_an_error_not_a_500(
    store: Store, catalog: ListCatalog, media: MediaHasher
) -> None:
    """A JPEG cut short: 200 with the sha256 of the bytes sent, no PDQ, and an error line."""
    data = (MEDIA_FIXTURES / ORIGINAL).read_bytes()[:2048]
    async with api_server(store, catalog=lambda: catalog, media=media) as api:
        resp = await upload(await api.client(Role.PLATFORM), form(data))
        assert resp.status == 200, resp.text
        got = resp.json()
        by_type = {s["type"]: s["value"] for s in got["signals"]}
        assert by_type["sha256"] == hashlib.sha256(data).hexdigest() and "pdq" not in by_type
        assert got["media_type"] == "image/jpeg" and got["error"].startswith("image/jpeg: ")


async def test_uploads_over_the_limit_are_413_declared_or_streamed(store: Store, catalog: ListCatalog) -> None:
    """With max_upload_bytes 4096: a 5000-byte file is 413 whether its size is declared
    (Content-Length) or only seen while reading (chunked); 4096 bytes are hashed."""
    settings = api_settings(max_upload_bytes=4096)
    async with api_server(store, settings, catalog=lambda: catalog) as api:
        client = await api.client(Role.PLATFORM)
        declared = await client.request(
            "POST", "/v1/hash", data=b"x" * 30_000, headers={"Content-Type": "multipart/form-data; boundary=b"}
        )
        assert declared.status == 413 and "4096" in declared.problem["detail"]
        framed = await upload(client, form(b"y" * 5000))
        assert framed.status == 413 and "4096" in framed.problem["detail"]

        raw, content_type = await encoded(form(b"z" * 5000))

        async def chunked() -> AsyncIterator[bytes]:
            for start in range(0, len(raw), 512):
                yield raw[start : start + 512]

        streamed = await client.request("POST", "/v1/hash", data=chunked(), headers={"Content-Type": content_type})
        assert streamed.status == 413 and "4096" in streamed.problem["detail"]
        fits = await upload(client, form(b"w" * 4096))
        assert fits.status == 200 and fits.json()["size"] == 4096


async def test_an_upload_that_is_not_multipart_or_has_no_file_part_is_refused(
    store: Store, catalog: ListCatalog
) -> None:
    """Raw bytes are 415; a form with only a text field is 422 naming `file`; broken multipart 400."""
    async with api_server(store, catalog=lambda: catalog) as api:
        client = await api.client(Role.PLATFORM)
        raw = await client.request("POST", "/v1/hash", data=b"\xff\xd8", headers={"Content-Type": "image/jpeg"})
        assert raw.status == 415
        text_only = aiohttp.FormData(default_to_multipart=True)
        text_only.add_field("note", "no file here")
        no_file = await upload(client, text_only)
        assert no_file.status == 422 and no_file.fields() == ["file"]
        broken = await client.request(
            "POST", "/v1/hash", data=b"not multipart at all", headers={"Content-Type": "multipart/form-data"}
        )
        assert broken.status == 400
