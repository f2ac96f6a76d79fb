"""Media previews for the console: one item's image, fetched through verified retrieval,
re-encoded, and never stored.

A preview is what a reviewer's browser is handed instead of the publisher's bytes. Those
bytes are fetched block by block from trustless gateways through the SSRF guard, each block
hashed against its CID (the scanner's own pool and file reader), bounded in size, blocks,
depth and time; then decoded by Pillow under the media limits, in a worker thread, first
frame only, turned upright by its EXIF orientation, shrunk to fit MAX_SIDE and encoded
afresh. So a crafted file never reaches the reviewer's decoder, and nothing that could be
sniffed as HTML or SVG ever reaches the browser: what leaves here is a PNG or JPEG that
Pillow wrote. Nothing is written to disk, put in the store or cached, and the bytes are
never logged. Blocks are fetched one by one (the pool's "raw" mode), not as a CAR stream:
a CAR stream's early blocks may spill to a temporary file (agent.ipfs.stash)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal

from agent.services.errors import ServiceError

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver
    from PIL import Image

    from agent.config import Settings
    from agent.ipfs.cid import CID
    from agent.ipfs.dag import DagWalker
    from agent.ipfs.entries import DagEntry, EntryKind
    from agent.model.records import FindingDetail
    from agent.net.guard import NetGuard

__all__ = ["MAX_SIDE", "Preview", "PreviewService", "PreviewUnavailable"]

# The longest side of a preview, in pixels: enough to judge an image, small to send.
MAX_SIDE: Final = 1024
# Decodes one service runs at once: each may hold an image of [media] max_pixels in memory.
DECODE_SLOTS: Final = 2
# JPEG quality of a photo's preview: no visible loss at preview size.
JPEG_QUALITY: Final = 85

PreviewType = Literal["image/png", "image/jpeg"]


class PreviewUnavailable(ServiceError):
    """No preview can be made of this item; the message says why (no CID, every gateway
    failed and how, too large, not an image, a corrupt image)."""


@dataclass(frozen=True, slots=True)
class Preview:
    """An image re-encoded here (never the publisher's bytes), at most MAX_SIDE on a side.

    `gateway` served the verified bytes (the first one, if several shared the blocks; empty
    for an identity CID, which carries its bytes itself);
    `lied` are the gateways caught serving bytes that do not match their CID."""

    media_type: PreviewType
    data: bytes = field(repr=False)
    width: int
    height: int
    gateway: str
    lied: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Fetched:
    data: bytes
    gateway: str
    lied: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Rendered:
    media_type: PreviewType
    data: bytes
    width: int
    height: int


class PreviewService:
    """Previews of items by CID, made on demand; holds no content between calls."""

    def __init__(
        self, settings: Settings, *, resolver: AbstractResolver | None = None, timeout_s: float | None = None
    ) -> None:
        self._settings = settings
        # The resolver the guard wraps (None: the system's); tests pass a table.
        self._resolver = resolver
        # The whole fetch (None: one connect and one read timeout per gateway asked, never
        # more than one response may take; a reviewer is waiting on the page).
        self._timeout_s = timeout_s
        self._decodes = asyncio.Semaphore(DECODE_SLOTS)

    async def for_finding(self, detail: FindingDetail) -> Preview:
        """The preview of a finding's item: from the gateway that served it first (it is
        known to have had it), then the configured gateways."""
        view = detail.view
        served = [view.provenance.gateway] if view.provenance.gateway else []
        return await self.preview(
            view.cid or "", gateways=[*served, *self._settings.gateways.urls], media_type=view.media_type
        )

    async def preview(self, cid: str, *, gateways: Sequence[str], media_type: str | None) -> Preview:
        """The preview of the file at `cid`, fetched verified from `gateways` in order.

        `media_type` is what a scan sniffed the item as (None: unknown): a video or a
        document is refused without a fetch. The bytes decide in any case."""
        from agent.ipfs.cid import parse_cid
        from agent.ipfs.errors import InvalidCid
        from agent.sources.targets import quoted

        text = cid.strip()
        if not text:
            raise PreviewUnavailable("no preview: the item has no CID (only content from IPFS can be previewed)")
        try:
            root = parse_cid(text)
        except InvalidCid as exc:
            raise PreviewUnavailable(f"no preview: {quoted(text)} is not a CID ({exc})") from exc
        if media_type:
            _refuse_non_image(media_type)
        guard = self._guard()
        urls, refused = await self._usable(guard, gateways)
        if not urls:
            why = "; ".join(f"{url}: {reason}" for url, reason in refused.items()) or "none given or configured"
            raise PreviewUnavailable(f"no preview: no gateway to fetch it from ({why})")
        fetched = await self._fetch(guard, root, urls, refused)
        rendered = await self._render(fetched.data)
        return Preview(
            rendered.media_type, rendered.data, rendered.width, rendered.height, fetched.gateway, fetched.lied
        )

    def _guard(self) -> NetGuard:
        """The scan jobs' guard: [api] allow_hosts and the hosts of the configured gateways pass."""
        from agent.services.errors import Invalid
        from agent.services.untrusted import api_guard

        try:
            return api_guard(self._settings)
        except Invalid as exc:  # a malformed allow_hosts entry, named
            raise PreviewUnavailable(f"no preview: {exc}") from exc

    async def _usable(self, guard: NetGuard, gateways: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        """The gateways to ask, as origins in order without repeats, and why the others are not asked."""
        from agent.model.target import TargetError
        from agent.services.untrusted import refusal
        from agent.sources.targets import parse_gateway_url

        urls: list[str] = []
        refused: dict[str, str] = {}
        for given in dict.fromkeys(gateways):
            try:
                url = parse_gateway_url(given)
            except TargetError as exc:
                refused[given] = str(exc)
                continue
            if url in urls or url in refused:
                continue
            blocked = await refusal(guard, url, resolver=self._resolver)
            if blocked is None:
                urls.append(url)
            else:
                refused[url] = f"refused by the SSRF guard: {blocked.reason}"
        return urls, refused

    def _limit(self) -> tuple[int, str]:
        """The most bytes a previewed item may have, and the setting that says so."""
        s = self._settings
        return min(
            (s.console.preview_max_bytes, "[console] preview_max_bytes"),
            (s.limits.max_item_bytes, "[limits] max_item_bytes"),
            (s.media.max_bytes, "[media] max_bytes"),
            key=lambda limit: limit[0],
        )

    async def _fetch(self, guard: NetGuard, root: CID, urls: list[str], refused: dict[str, str]) -> _Fetched:
        import aiohttp

        from agent.ipfs.dag import DagWalker
        from agent.ipfs.errors import BlockedContent, IpfsError, MissingBlock, TooLarge
        from agent.net.addresses import BlockedDestination
        from agent.net.connector import guarded_session
        from agent.net.http import Purpose
        from agent.pipeline.factories import gateway_pool

        s = self._settings
        limit, setting = self._limit()
        also = "".join(f"; {url}: {reason}" for url, reason in refused.items())
        g = s.gateways
        within = self._timeout_s or min(g.response_deadline_s, (g.connect_timeout_s + g.read_timeout_s) * len(urls))
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=s.gateways.connect_timeout_s)
        try:
            async with (
                asyncio.timeout(within),
                guarded_session(guard, timeout=timeout, resolver=self._resolver, purpose=Purpose.SCAN) as http,
            ):
                walker = DagWalker(
                    gateway_pool(s, urls, http, "raw"),
                    max_depth=s.limits.max_dag_depth,
                    max_items=1,
                    max_nodes=s.limits.max_dag_nodes,
                    max_file_blocks=s.limits.max_file_blocks,
                    before_fetch=_root_only,
                )
                return await _read_item(walker, root, limit, setting)
        except TimeoutError as exc:
            raise PreviewUnavailable(
                f"no preview: no gateway served the item within {within:g} s ({', '.join(urls)}){also}"
            ) from exc
        except BlockedContent as exc:
            raise PreviewUnavailable(f"no preview: every gateway refused it: {exc}{also}") from exc
        except MissingBlock as exc:
            raise PreviewUnavailable(f"no preview: every gateway failed: {exc}{also}") from exc
        except TooLarge as exc:
            raise PreviewUnavailable(f"no preview: {exc} ({setting} is {limit} bytes)") from exc
        except BlockedDestination as exc:  # a gateway's name rebound to a forbidden address since it was checked
            raise PreviewUnavailable(f"no preview: gateway {exc}") from exc
        except IpfsError as exc:
            raise PreviewUnavailable(f"no preview: the item cannot be read: {exc}") from exc

    async def _render(self, data: bytes) -> _Rendered:
        m = self._settings.media
        await self._decodes.acquire()
        try:
            work = asyncio.ensure_future(asyncio.to_thread(_render, data, m.max_pixels))
        except BaseException:
            self._decodes.release()
            raise

        def done(task: asyncio.Future[_Rendered]) -> None:
            # A thread cannot be stopped: its slot is given back when it ends, not when a caller
            # that gave up (a closed page) stops waiting; its error is then nobody's to read.
            self._decodes.release()
            if not task.cancelled():
                task.exception()

        work.add_done_callback(done)
        return await asyncio.shield(work)


async def _root_only(_cid: CID, path: str) -> EntryKind | None:
    """Nothing below the item is walked: a directory's children are withheld, never fetched."""
    from agent.ipfs.entries import EntryKind

    return None if not path else EntryKind.WITHHELD


async def _read_item(walker: DagWalker, root: CID, limit: int, setting: str) -> _Fetched:
    """The file at `root`, whole and verified, if it is a file of at most `limit` bytes that
    may be an image."""
    from agent.ipfs.cid import cid_text
    from agent.ipfs.entries import EntryKind
    from agent.media.sniff import SNIFF_BYTES, sniff_media_type

    entries = walker.walk(root)
    try:
        entry = await anext(entries, None)
    finally:
        if isinstance(entries, AsyncGenerator):  # ended now, not whenever it is collected
            await entries.aclose()
    if entry is None or entry.path or entry.kind is EntryKind.DIRECTORY:
        raise PreviewUnavailable(f"no preview: {cid_text(root)} is a directory, not a file")
    try:
        if entry.kind is EntryKind.ERROR and entry.error is not None:
            raise entry.error
        if entry.kind is not EntryKind.FILE:
            what = f"a {entry.codec} document" if entry.kind is EntryKind.DOCUMENT else f"a {entry.kind.value}"
            raise PreviewUnavailable(f"no preview: {cid_text(root)} is {what}, not an image")
        if entry.size is not None and entry.size > limit:
            raise PreviewUnavailable(
                f"no preview: the item is {entry.size} bytes; previews are limited to {limit} bytes ({setting})"
            )
        chunks: list[bytes] = []
        size = 0
        sniffed = False
        async for chunk in walker.read_file(entry, max_bytes=limit):
            chunks.append(chunk)
            size += len(chunk)
            if not sniffed and size >= SNIFF_BYTES:
                # Not an image: stop here rather than fetch the rest of a video or an archive.
                _refuse_non_image(sniff_media_type(b"".join(chunks)[:SNIFF_BYTES]))
                sniffed = True
        data = b"".join(chunks)
        if not sniffed:
            _refuse_non_image(sniff_media_type(data))
        return _Fetched(data, _served_by(entry), tuple(entry.provenance.lied))
    finally:
        await entry.release()


def _served_by(entry: DagEntry) -> str:
    lied = set(entry.provenance.lied)
    return next((url for url in entry.provenance.served_by if url not in lied), "")


def _refuse_non_image(media_type: str) -> None:
    from agent.media.sniff import media_kind

    kind = media_kind(media_type)
    if kind == "image":
        return
    if kind == "video":
        raise PreviewUnavailable(f"no preview: previews are for images; this item is a video ({media_type})")
    raise PreviewUnavailable(f"no preview: not an image (the item is {media_type})")


def _render(data: bytes, max_pixels: int) -> _Rendered:
    """The first frame of the image in `data`, upright, fitting MAX_SIDE, encoded afresh.

    Run in a worker thread. A JPEG stays a JPEG (a photo as PNG is several times larger for
    nothing); anything else becomes a PNG, which keeps transparency and sharp edges. No
    metadata is carried over (EXIF, ICC profile, text chunks): only pixels leave."""
    import io

    from PIL import Image, ImageOps

    image = _open_bounded(data, max_pixels)
    fmt = image.format or "image"
    with image:
        try:
            image.getexif()  # read while the file is open: the orientation is applied below
            if image.mode in ("RGB", "RGBA", "L", "CMYK"):
                image.thumbnail((MAX_SIDE, MAX_SIDE))  # a JPEG is decoded at 1/2, 1/4 or 1/8 scale
                ImageOps.exif_transpose(image, in_place=True)
                shown = _displayable(image)
            else:
                # Palette and 1-bit pixels would be shrunk by nearest neighbour, 16-bit ones not
                # at all: colours first, at full size (bounded by max_pixels), then shrunk.
                ImageOps.exif_transpose(image, in_place=True)
                shown = _displayable(image)
                shown.thumbnail((MAX_SIDE, MAX_SIDE))
            shown.info = {}
            out = io.BytesIO()
            if fmt == "JPEG":  # _displayable made it RGB: a JPEG has no transparency
                shown.save(out, format="JPEG", quality=JPEG_QUALITY)
                media_type: PreviewType = "image/jpeg"
            else:
                shown.save(out, format="PNG")
                media_type = "image/png"
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise PreviewUnavailable(f"no preview: the image is too large to decode: {exc}") from exc
        except MemoryError as exc:
            raise PreviewUnavailable(f"no preview: decoding the {fmt} image ran out of memory") from exc
        except Exception as exc:  # Pillow decoders raise many types on truncated or hostile data
            raise PreviewUnavailable(
                f"no preview: the {fmt} image is corrupt: cannot decode it: {type(exc).__name__}: {exc}"
            ) from exc
    return _Rendered(media_type, out.getvalue(), shown.width, shown.height)


def _open_bounded(data: bytes, max_pixels: int) -> Image.Image:
    """`data` opened (headers only) by the media room's decoders, once its declared size is
    within `max_pixels`: a decompression bomb is refused before any pixel is decoded."""
    from agent.media.errors import CorruptMedia, MediaError

    # The media room's own open and bounds, so previews refuse exactly what hashing refuses.
    from agent.media.image import _check_declared_pixels, _precheck_webp_canvas
    from agent.media.image import _open as open_image

    try:
        _precheck_webp_canvas(data, max_pixels)  # WebP allocates its whole canvas on open
        image = open_image(data)
    except CorruptMedia as exc:
        raise PreviewUnavailable(f"no preview: corrupt image: {exc}") from exc
    except MediaError as exc:  # too large, or a format without its decoder here (HEIC)
        raise PreviewUnavailable(f"no preview: {exc}") from exc
    try:
        _check_declared_pixels(image, max_pixels)
    except MediaError as exc:
        image.close()
        raise PreviewUnavailable(f"no preview: the image is too large: {exc}") from exc
    return image


def _displayable(image: Image.Image) -> Image.Image:
    """8-bit RGB, or RGBA when the image has transparency."""
    import numpy as np
    from PIL import Image

    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image
    if mode == "F" or mode.startswith("I"):
        # Image.convert clips 16- and 32-bit samples to white: scaled to 8 bits instead.
        values = np.asarray(image, dtype=np.float64)
        top = float(values.max(initial=0.0))
        scale = 255.0 / top if top > 255 else (255.0 if mode == "F" and top <= 1.0 else 1.0)
        grey = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    return image.convert("RGBA" if image.has_transparency_data else "RGB")
