"""The console's media previews: verified retrieval from real loopback gateways, images only,
re-encoded, bounded, and nothing written anywhere."""

from __future__ import annotations

import io
import os
import socket
import sys
import tempfile
import zlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp.abc import ResolveResult
from PIL import Image, ImageOps
from PIL.PngImagePlugin import PngInfo

from agent.config import ConsoleSettings, Settings
from agent.ipfs.cid import CID, cid_text
from agent.model.records import FindingDetail, FindingRow, FindingView, Provenance
from agent.model.signals import SignalType
from agent.model.status import ProvenanceSource
from agent.services.errors import ServiceError
from agent.services.preview import MAX_SIDE, Preview, PreviewService, PreviewUnavailable
from tests.conftest import MEDIA_FIXTURES
from tests.support.agent import settings_for
from tests.support.gateway import FixtureGateway
from tests.support.media_dag import serve_files
from tests.support.resolver import FakeResolver
from tests.support.unixfs_builder import UnixFSBuilder

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
PHOTO = MEDIA_FIXTURES / "pdq" / "bridge-mods" / "aaa-orig.jpg"
ROTATED = MEDIA_FIXTURES / "pdq" / "exif-rotn-6.jpg"  # stored landscape, shown portrait (EXIF orientation 6)
PALETTE = MEDIA_FIXTURES / "pdq" / "modes" / "P.png"
VIDEO = MEDIA_FIXTURES / "video" / "chair-19-sd-bar.mp4"  # 2 MB: 33 blocks of 64 KiB
SCRIPT = b"<script>alert(1)</script>"


def serve_item(gateway: FixtureGateway, data: bytes) -> CID:
    """`data` as one UnixFS file of several 64 KiB blocks (as `ipfs add` would chunk it)."""
    builder = UnixFSBuilder(chunk=64 * 1024)
    cid, _ = builder.add_file(data)
    gateway.add_blocks(builder.blocks)
    return cid


def settings(tmp_path: Path, *gateways: FixtureGateway, **console: Any) -> Settings:
    """The gateways configured (so the guard lets their loopback address through, as a scan's)."""
    base = settings_for(tmp_path, *(gw.url for gw in gateways))
    return base.model_copy(update={"console": ConsoleSettings(**console)}) if console else base


def grey_thumb(image: Image.Image) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)


def resembles(preview: Preview, original: Path) -> float:
    """Mean absolute difference (0..255) of the two images as shown, greyscale at 32 x 32."""
    with Image.open(original) as shown:
        upright = ImageOps.exif_transpose(shown)
        return float(np.abs(grey_thumb(Image.open(io.BytesIO(preview.data))) - grey_thumb(upright)).mean())


def decoded(preview: Preview) -> Image.Image:
    image = Image.open(io.BytesIO(preview.data))
    image.load()
    return image


async def refused(service: PreviewService, cid: CID | str, *gateways: FixtureGateway, **kw: Any) -> str:
    with pytest.raises(PreviewUnavailable) as caught:
        await service.preview(
            cid if isinstance(cid, str) else cid_text(cid),
            gateways=[gw.url for gw in gateways],
            media_type=kw.get("media_type"),
        )
    assert isinstance(caught.value, ServiceError)  # the API and console show its message as is
    return caught.value.message


# -- images ---------------------------------------------------------------------------------


async def test_a_photo_previews_as_a_small_jpeg_that_looks_like_it(make_gateway: MakeGateway, tmp_path: Path) -> None:
    gw = await make_gateway()
    cid = serve_item(gw, PHOTO.read_bytes())
    preview = await PreviewService(settings(tmp_path, gw)).preview(cid_text(cid), gateways=[gw.url], media_type=None)
    image = decoded(preview)
    assert preview.media_type == "image/jpeg" and image.format == "JPEG"
    assert (image.width, image.height) == (preview.width, preview.height)
    assert max(image.size) <= MAX_SIDE
    assert resembles(preview, PHOTO) < 4
    assert preview.gateway == gw.url and preview.lied == ()


async def test_a_rotated_photo_is_shown_upright_without_its_exif(make_gateway: MakeGateway, tmp_path: Path) -> None:
    """A 4032 x 3024 photo whose EXIF says "rotate 90": a portrait preview of at most 1024 px,
    matching the photo as a viewer shows it, carrying none of its metadata (GPS, camera)."""
    gw = await make_gateway()
    data = ROTATED.read_bytes()
    assert b"Exif" in data[:64]
    cid = serve_item(gw, data)
    preview = await PreviewService(settings(tmp_path, gw)).preview(
        cid_text(cid), gateways=[gw.url], media_type="image/jpeg"
    )
    assert (preview.width, preview.height) == (768, 1024)
    assert resembles(preview, ROTATED) < 4
    assert b"Exif" not in preview.data
    assert decoded(preview).getexif().get(0x0112) is None


async def test_a_palette_png_previews_as_a_png_that_looks_like_it(make_gateway: MakeGateway, tmp_path: Path) -> None:
    gw = await make_gateway()
    cid = serve_item(gw, PALETTE.read_bytes())
    preview = await PreviewService(settings(tmp_path, gw)).preview(cid_text(cid), gateways=[gw.url], media_type=None)
    image = decoded(preview)
    assert preview.media_type == "image/png" and image.format == "PNG" and image.mode == "RGB"
    assert (preview.width, preview.height) == (1024, 643)  # 1600 x 1004 shrunk to fit
    assert resembles(preview, PALETTE) < 4


async def test_an_image_inside_a_directory_dag_previews_by_its_own_cid(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """The item CID a scan recorded for a file found under a directory."""
    gw = await make_gateway()
    root = serve_files(gw, {"album/bridge.jpg": PHOTO.read_bytes(), "notes.txt": b"notes\n"})
    builder = UnixFSBuilder()  # the same chunking as serve_files: the same file CID
    item, _ = builder.add_file(PHOTO.read_bytes())
    preview = await PreviewService(settings(tmp_path, gw)).preview(cid_text(item), gateways=[gw.url], media_type=None)
    assert resembles(preview, PHOTO) < 4
    directory = await refused(PreviewService(settings(tmp_path, gw)), root, gw)
    assert directory == f"no preview: {cid_text(root)} is a directory, not a file"


# -- verified retrieval ---------------------------------------------------------------------


async def test_a_lying_gateway_is_passed_over_for_an_honest_one(make_gateway: MakeGateway, tmp_path: Path) -> None:
    liar, honest = await make_gateway(), await make_gateway()
    cid = serve_item(honest, PHOTO.read_bytes())
    serve_item(liar, PHOTO.read_bytes())
    liar.lie_about = set(liar.blocks)
    service = PreviewService(settings(tmp_path, liar, honest))
    preview = await service.preview(cid_text(cid), gateways=[liar.url, honest.url], media_type=None)
    assert liar.requests["raw"] >= 1  # it was asked first, and caught
    assert preview.gateway == honest.url
    assert preview.lied == (liar.url,)
    assert resembles(preview, PHOTO) < 4


async def test_only_a_liar_means_no_preview_naming_it(make_gateway: MakeGateway, tmp_path: Path) -> None:
    liar = await make_gateway()
    cid = serve_item(liar, PHOTO.read_bytes())
    liar.lie_about = set(liar.blocks)
    message = await refused(PreviewService(settings(tmp_path, liar)), cid, liar)
    assert message.startswith("no preview: every gateway failed:")
    assert f"{liar.url}: served bytes that do not match the CID" in message


async def test_every_gateway_failing_is_named_with_its_reason(make_gateway: MakeGateway, tmp_path: Path) -> None:
    empty, liar = await make_gateway(), await make_gateway()
    cid = serve_item(liar, PHOTO.read_bytes())
    liar.lie_about = set(liar.blocks)
    message = await refused(PreviewService(settings(tmp_path, empty, liar)), cid, empty, liar)
    assert f"{empty.url}: 404 Not Found" in message
    assert f"{liar.url}: served bytes that do not match the CID" in message


async def test_content_every_gateway_blocks_is_refused_saying_so(make_gateway: MakeGateway, tmp_path: Path) -> None:
    blocking = await make_gateway()
    cid = serve_item(blocking, PHOTO.read_bytes())
    blocking.blocked = dict.fromkeys(blocking.blocks, 451)
    message = await refused(PreviewService(settings(tmp_path, blocking)), cid, blocking)
    assert message == f"no preview: every gateway refused it: {cid_text(cid)} is blocked at {blocking.url} (451)"


async def test_a_gateway_the_guard_refuses_is_never_asked(make_gateway: MakeGateway, tmp_path: Path) -> None:
    """A loopback gateway that is not one of the configured gateways (nor in [api]
    allow_hosts) is refused by the SSRF guard: no request reaches it."""
    inside = await make_gateway()
    cid = serve_item(inside, PHOTO.read_bytes())
    message = await refused(PreviewService(settings_for(tmp_path)), cid, inside)
    assert message.startswith("no preview: no gateway to fetch it from")
    assert f"{inside.url}: refused by the SSRF guard" in message
    assert sum(inside.requests.values()) == 0


class Rebinding(FakeResolver):
    """A name that resolves to a public address when it is checked, then to loopback."""

    def __init__(self, host: str) -> None:
        super().__init__({host: ["93.184.216.34"]})
        self.host = host

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await super().resolve(host, port, family)
        self.answers[self.host] = ["127.0.0.1"]
        return answers


async def test_a_gateway_rebound_to_loopback_after_its_check_is_refused_at_connect(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """Every connection goes through the guard, not only the first look at the URL."""
    inside = await make_gateway()
    cid = serve_item(inside, PHOTO.read_bytes())
    port = inside.url.rsplit(":", 1)[1]
    resolver = Rebinding("rebind.test")
    service = PreviewService(settings_for(tmp_path), resolver=resolver)
    with pytest.raises(PreviewUnavailable) as caught:
        await service.preview(cid_text(cid), gateways=[f"http://rebind.test:{port}"], media_type=None)
    assert caught.value.message.startswith("no preview: gateway ")
    assert "rebind.test" in caught.value.message and "forbidden" in caught.value.message
    assert resolver.calls == ["rebind.test", "rebind.test"]  # checked, then refused at connect
    assert sum(inside.requests.values()) == 0


async def test_a_gateway_that_never_answers_ends_within_the_timeout(make_gateway: MakeGateway, tmp_path: Path) -> None:
    stalled = await make_gateway(hold_after=0)
    cid = serve_item(stalled, PHOTO.read_bytes())
    message = await refused(PreviewService(settings(tmp_path, stalled), timeout_s=0.5), cid, stalled)
    assert message == f"no preview: no gateway served the item within 0.5 s ({stalled.url})"


# -- bounds and refusals --------------------------------------------------------------------


async def test_an_item_over_preview_max_bytes_is_refused_before_it_is_fetched(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    gw = await make_gateway()
    data = PHOTO.read_bytes()
    cid = serve_item(gw, data)
    message = await refused(PreviewService(settings(tmp_path, gw, preview_max_bytes=100_000)), cid, gw)
    assert message == (
        f"no preview: the item is {len(data)} bytes; previews are limited to 100000 bytes ([console] preview_max_bytes)"
    )
    assert gw.requests["raw"] == 1  # its root block, which declares the size; none of its data


async def test_text_is_not_previewed(make_gateway: MakeGateway, tmp_path: Path) -> None:
    gw = await make_gateway()
    cid = serve_item(gw, b"hello, reviewer\n" * 1000)
    message = await refused(PreviewService(settings(tmp_path, gw)), cid, gw)
    assert message == "no preview: not an image (the item is text/plain)"


@pytest.mark.parametrize(
    "payload",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">' + SCRIPT + b"</svg>",
        b"<!DOCTYPE html><html><body>" + SCRIPT + b"</body></html>",
        b"GIF89a" + SCRIPT,  # an image's magic bytes in front of markup
    ],
    ids=["svg", "html", "gif-magic-then-html"],
)
async def test_markup_is_never_handed_back(make_gateway: MakeGateway, tmp_path: Path, payload: bytes) -> None:
    gw = await make_gateway()
    cid = serve_item(gw, payload)
    message = await refused(PreviewService(settings(tmp_path, gw)), cid, gw)
    assert message.startswith("no preview: ")
    assert "<script" not in message


async def test_a_png_carrying_html_comes_back_as_pixels_only(make_gateway: MakeGateway, tmp_path: Path) -> None:
    """A valid PNG with markup in a text chunk and after its end: the preview is a PNG the
    agent wrote, holding none of it (a browser sniffing it finds nothing to run)."""
    out = io.BytesIO()
    info = PngInfo()
    info.add_text("Comment", f"<html>{SCRIPT.decode()}</html>")
    with Image.open(PALETTE) as image:
        image.save(out, format="PNG", pnginfo=info)
    gw = await make_gateway()
    cid = serve_item(gw, out.getvalue() + b"<html>" + SCRIPT + b"</html>")
    preview = await PreviewService(settings(tmp_path, gw)).preview(cid_text(cid), gateways=[gw.url], media_type=None)
    assert preview.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"<script" not in preview.data and b"<html" not in preview.data
    assert resembles(preview, PALETTE) < 4


async def test_a_corrupt_image_is_refused_as_corrupt(make_gateway: MakeGateway, tmp_path: Path) -> None:
    gw = await make_gateway()
    data = PHOTO.read_bytes()
    truncated = serve_item(gw, data[: len(data) // 2])
    garbage = serve_item(gw, b"\x89PNG\r\n\x1a\n" + os.urandom(8000))
    service = PreviewService(settings(tmp_path, gw))
    assert (await refused(service, truncated, gw)).startswith("no preview: the JPEG image is corrupt")
    assert (await refused(service, garbage, gw)).startswith("no preview: corrupt image:")


def bomb_png(width: int, height: int) -> bytes:
    """A PNG header declaring width x height 1-bit pixels, with a few hundred bytes of data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    rows = zlib.compress(b"\x00" * (1 + width // 8) * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


async def test_a_decompression_bomb_is_refused_before_it_is_decoded(make_gateway: MakeGateway, tmp_path: Path) -> None:
    gw = await make_gateway()
    cid = serve_item(gw, bomb_png(8000, 8000))  # 64 MP, over [media] max_pixels (50 MP), in 600 bytes
    message = await refused(PreviewService(settings(tmp_path, gw)), cid, gw)
    assert message == "no preview: the image is too large: PNG declares 8000x8000 = 64000000 pixels, limit 50000000"


async def test_a_video_is_refused_saying_previews_are_for_images(make_gateway: MakeGateway, tmp_path: Path) -> None:
    gw = await make_gateway()
    cid = serve_item(gw, VIDEO.read_bytes())
    service = PreviewService(settings(tmp_path, gw))
    message = "no preview: previews are for images; this item is a video (video/mp4)"
    assert await refused(service, cid, gw, media_type="video/mp4") == message
    assert sum(gw.requests.values()) == 0  # the scan said it is a video: nothing fetched
    assert await refused(service, cid, gw) == message
    assert gw.requests["raw"] < len(gw.blocks) // 2  # the bytes said so: the rest is not fetched


async def test_a_string_that_is_not_a_cid_is_refused(tmp_path: Path) -> None:
    message = await refused(PreviewService(settings_for(tmp_path)), "../../etc/passwd")
    assert message.startswith("no preview: '../../etc/passwd' is not a CID")


# -- a finding's preview --------------------------------------------------------------------


def detail_of(cid: str | None, gateway: str | None) -> FindingDetail:
    finding = FindingRow("item", "csam-test", "entry-1", "f" * 64, SignalType.PDQ, 12.0, id=1)
    where = Provenance("album/bridge.jpg", None, None, None, gateway, ProvenanceSource.LOCATION)
    view = FindingView(finding, cid, "image/jpeg", None, where, None, None)
    return FindingDetail(view, None, (), (), None, (), ())


async def test_a_findings_preview_asks_the_gateway_that_served_it_first(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """The gateway that served the item in its scan is asked before the configured ones, and
    a gateway in both lists is asked once."""
    configured, served = await make_gateway(), await make_gateway()
    cid = serve_item(served, PHOTO.read_bytes())
    serve_item(configured, PHOTO.read_bytes())
    service = PreviewService(settings(tmp_path, configured, served))
    preview = await service.for_finding(detail_of(cid_text(cid), served.url))
    assert preview.gateway == served.url
    assert sum(configured.requests.values()) == 0
    assert resembles(preview, PHOTO) < 4


async def test_a_finding_without_a_cid_has_no_preview(tmp_path: Path) -> None:
    with pytest.raises(PreviewUnavailable, match="the item has no CID"):
        await PreviewService(settings_for(tmp_path)).for_finding(detail_of(None, None))


# -- never stored ---------------------------------------------------------------------------

_WRITES: ContextVar[list[str] | None] = ContextVar("preview_writes", default=None)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND


def _audit(event: str, args: tuple[Any, ...]) -> None:
    sink = _WRITES.get()
    if sink is None or event != "open" or not isinstance(args[2], int) or not args[2] & _WRITE_FLAGS:
        return
    if "__pycache__" not in str(args[0]):  # Python's own bytecode cache is not the preview's doing
        sink.append(str(args[0]))


# An audit hook cannot be removed; it records only inside `files_opened_for_writing`.
sys.addaudithook(_audit)


@contextmanager
def files_opened_for_writing() -> Iterator[list[str]]:
    """Every file opened for writing by this task (and the threads it starts) inside the block."""
    sink: list[str] = []
    token = _WRITES.set(sink)
    try:
        yield sink
    finally:
        _WRITES.reset(token)


async def test_a_preview_writes_no_file(
    make_gateway: MakeGateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a temporary file, not the data directory: the bytes live in memory and are gone."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    gw = await make_gateway()
    cid = serve_item(gw, ROTATED.read_bytes())  # 3.6 MB in 57 blocks
    cfg = settings(tmp_path, gw)
    service = PreviewService(cfg)
    before = sorted(tmp_path.rglob("*"))
    with files_opened_for_writing() as written:
        preview = await service.preview(cid_text(cid), gateways=[gw.url], media_type=None)
    assert preview.media_type == "image/jpeg"
    assert written == []
    assert sorted(tmp_path.rglob("*")) == before
    assert list(temp.iterdir()) == [] and not cfg.agent.data_dir.exists()
