"""Perceptual signals of an image: PDQ, pHash, dHash, aHash, wHash, colorhash.

Decoding is bounded (bytes, declared pixels, animation frames) and every
decoder failure becomes a MediaError with a precise message. Run this in a
worker process (see pool.py): decoding is CPU-bound and decoders are the code
most exposed to hostile input."""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image, UnidentifiedImageError, features

from agent.media.errors import (
    CorruptMedia,
    EmptyContent,
    MediaError,
    MediaTooLarge,
    UnsupportedMedia,
)
from agent.media.limits import MediaLimits
from agent.media.pdq import pdq_signal
from agent.media.sniff import sniff_media_type
from agent.model.signals import Signal, SignalType

# Only decoders for formats people post as pictures. Pillow knows ~40 formats
# (EPS runs Ghostscript, others are rarely exercised); each one not listed is
# attack surface we do not need. (Camera MPO files open through "JPEG".)
_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "DIB", "TIFF") + (
    ("AVIF",) if features.check("avif") else ()
)

_EXIF_ORIENTATION = 0x0112
_ROTATING_ORIENTATIONS = frozenset(range(2, 9))  # 1 = as stored; 0 and >8 are invalid
_MIN_HASH_SIDE = 16
_SWAPPING_ORIENTATIONS = frozenset(range(5, 9))  # transposed: width and height swap
# What ImageOps.exif_transpose does for each orientation.
_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class FramePdq:
    """PDQ of one frame of an animated image (frame index from 0)."""

    frame: int
    pdq: Signal


@dataclass(frozen=True, slots=True)
class ImageResult:
    """What an image yields for matching.

    `signals` holds every signal worth looking up: PDQ and the imagehash
    family of the image as displayed (EXIF orientation applied), then the PDQ
    of the pixels as stored when EXIF rotates them, then the PDQ of sampled
    animation frames. PDQ values carry their quality."""

    format: str
    mode: str
    width: int
    height: int
    frame_count: int
    signals: tuple[Signal, ...]
    frames: tuple[FramePdq, ...] = ()
    stored_orientation_pdq: Signal | None = None

    @property
    def pdq(self) -> Signal:
        """PDQ of the (first frame of the) image as displayed."""
        return self.signals[0]

    def first(self, signal_type: SignalType) -> Signal | None:
        return next((s for s in self.signals if s.type == signal_type), None)


def image_signals(data: bytes, limits: MediaLimits | None = None) -> ImageResult:
    """Decode `data` under `limits` and compute its perceptual signals.

    Raises EmptyContent, MediaTooLarge, CorruptMedia or UnsupportedMedia."""
    limits = limits or MediaLimits()
    if not data:
        raise EmptyContent("image has 0 bytes: nothing to decode")
    if len(data) > limits.max_bytes:
        raise MediaTooLarge(f"image is {len(data)} bytes, limit {limits.max_bytes}")
    _precheck_webp_canvas(data, limits.max_pixels)

    # Pillow's bomb check is a process-global setting. Workers hash one item
    # at a time, so setting it per call and restoring it afterwards is safe.
    previous_limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # palette/EXIF chatter; bombs are errors below
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Opening only parses headers. Pillow's own check would reject a
            # bomb with a vaguer message, so it is off while we check the
            # declared size ourselves, and on (at our limit) while decoding.
            Image.MAX_IMAGE_PIXELS = None
            image = _open(data)
            with image:
                _check_declared_pixels(image, limits.max_pixels)
                Image.MAX_IMAGE_PIXELS = limits.max_pixels
                return _hash_image(image, limits)
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=_FORMATS)
    except UnidentifiedImageError:
        sniffed = sniff_media_type(data[:4096])
        if sniffed in ("image/heic", "image/heif", "image/avif"):
            raise UnsupportedMedia(f"{sniffed} needs a Pillow decoder plugin that is not installed") from None
        raise CorruptMedia(
            f"not a decodable image ({len(data)} bytes, content looks like {sniffed}; "
            f"decoders tried: {', '.join(_FORMATS)})"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaTooLarge(f"image too large: {exc}") from None
    except MemoryError:
        raise MediaTooLarge("image header alone exhausted memory") from None
    except Exception as exc:  # noqa: BLE001  (Pillow plugins raise many types on hostile headers)
        raise CorruptMedia(f"unreadable image header: {type(exc).__name__}: {exc}") from None


def _check_declared_pixels(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise CorruptMedia(f"{image.format} declares an empty size {width}x{height}")
    if width * height > max_pixels:
        raise MediaTooLarge(f"{image.format} declares {width}x{height} = {width * height} pixels, limit {max_pixels}")


def _precheck_webp_canvas(data: bytes, max_pixels: int) -> None:
    """Pillow's WebP decoder allocates the whole canvas while *opening* the
    file, before any size check can run, so read the declared size first."""
    if not (data[:4] == b"RIFF" and data[8:12] == b"WEBP") or len(data) < 30:
        return
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
    elif chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    elif chunk == b"VP8 ":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
    else:
        return
    if width * height > max_pixels:
        raise MediaTooLarge(f"WEBP declares {width}x{height} = {width * height} pixels, limit {max_pixels}")


def _hash_image(image: Image.Image, limits: MediaLimits) -> ImageResult:
    fmt = image.format or "unknown"
    mode = image.mode
    try:
        frame_count = int(getattr(image, "n_frames", 1))
        walk = min(frame_count, limits.max_frames)
        samples = _spread(walk, limits.animated_frame_samples)
        # Read before any reduction: a reduced copy carries no EXIF, and the
        # size reported is the image's own, not that of the copy hashed.
        orientation = _orientation(image)
        width, height = image.size
        if orientation in _SWAPPING_ORIENTATIONS:
            width, height = height, width

        _draft(image, limits.max_hash_pixels)
        image.load()
        stored_rgb = _working_rgb(image, limits.max_hash_pixels)
        if frame_count == 1 and stored_rgb is not image:
            # Free the decoded pixels before hashing: the copy is all we need.
            image.close()
        displayed_rgb = _oriented(stored_rgb, orientation)
        signals = [pdq_signal(np.asarray(displayed_rgb))]
        signals.extend(_imagehash_signals(displayed_rgb))

        stored_pdq: Signal | None = None
        if orientation in _ROTATING_ORIENTATIONS:
            # Reference tools (ThreatExchange, HMA, pdqhash) hash the pixels as
            # stored and ignore EXIF; platforms that normalise orientation hash
            # what is displayed. Lists come from both, so report both.
            stored_pdq = pdq_signal(np.asarray(stored_rgb))
            signals.append(stored_pdq)

        frames: list[FramePdq] = []
        if frame_count > 1:
            frames.append(FramePdq(0, signals[0]))
            for index in samples[1:]:
                image.seek(index)
                frame_rgb = _oriented(_working_rgb(image, limits.max_hash_pixels), orientation)
                frames.append(FramePdq(index, pdq_signal(np.asarray(frame_rgb))))
            seen = {s.value for s in signals if s.type == SignalType.PDQ}
            for frame in frames:
                if frame.pdq.value not in seen:
                    seen.add(frame.pdq.value)
                    signals.append(frame.pdq)
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaTooLarge(f"{fmt} image too large: {exc}") from None
    except MemoryError:
        raise MediaTooLarge(f"{fmt} {image.size[0]}x{image.size[1]}: {_out_of_memory(limits)}") from None
    except Exception as exc:  # noqa: BLE001  (Pillow decoders raise many types on truncated or hostile data)
        raise CorruptMedia(
            f"{fmt} {image.size[0]}x{image.size[1]} ({mode}): cannot decode: {type(exc).__name__}: {exc}"
        ) from None

    return ImageResult(
        format=fmt,
        mode=mode,
        width=width,
        height=height,
        frame_count=frame_count,
        signals=tuple(signals),
        frames=tuple(frames),
        stored_orientation_pdq=stored_pdq,
    )


def _out_of_memory(limits: MediaLimits) -> str:
    if limits.max_worker_memory_bytes:
        return (
            "decoding needs more memory than a media worker may use "
            f"([media] max_worker_memory_bytes = {limits.max_worker_memory_bytes})"
        )
    return "out of memory while decoding"


def reduction_factor(width: int, height: int, max_pixels: int) -> int:
    """The smallest integer n such that (width/n) x (height/n) <= max_pixels,
    short of reducing the shorter side below _MIN_HASH_SIDE pixels (a sliver
    that thin has no picture left to hash)."""
    cap = max(1, min(width, height) // _MIN_HASH_SIDE)
    factor = max(1, math.isqrt(max(0, width * height - 1) // max_pixels))
    while factor < cap and (width // factor) * (height // factor) > max_pixels:
        factor += 1
    return min(factor, cap)


def _draft(image: Image.Image, max_pixels: int) -> None:
    # JPEG can decode at 1/2, 1/4 or 1/8 scale straight from its DCT
    # coefficients, so a large photo never exists at full size in memory.
    # draft() keeps the result at least as large as asked.
    if image.format != "JPEG":
        return
    factor = reduction_factor(image.width, image.height, max_pixels)
    if factor > 1:
        image.draft(image.mode, (-(-image.width // factor), -(-image.height // factor)))


def _working_rgb(image: Image.Image, max_pixels: int) -> Image.Image:
    """RGB pixels of `image`, box-reduced by an integer factor to at most
    `max_pixels` (the perceptual hashes work on small downsamples anyway)."""
    factor = reduction_factor(image.width, image.height, max_pixels)
    if factor == 1:
        return _to_rgb(image)
    # reduce() averages pixel values: palette indexes and 1-bit pixels must
    # become colours or grey levels first, 16-bit greyscale 8-bit levels.
    if image.mode == "1":
        return image.convert("L").reduce(factor).convert("RGB")
    if image.mode in ("P", "PA") or image.mode.startswith("I;16"):
        return _to_rgb(image).reduce(factor)
    return _to_rgb(image.reduce(factor))


def _oriented(rgb: Image.Image, orientation: int | None) -> Image.Image:
    """`rgb` as displayed under EXIF `orientation` (as ImageOps.exif_transpose)."""
    method = _TRANSPOSE.get(orientation or 1)
    return rgb if method is None else rgb.transpose(method)


def _imagehash_signals(rgb: Image.Image) -> list[Signal]:
    # The imagehash functions convert to greyscale themselves; doing it once
    # gives identical values and saves four conversions of a large image.
    grey = rgb.convert("L")
    return [
        Signal(SignalType.PHASH, str(imagehash.phash(grey))),
        Signal(SignalType.DHASH, str(imagehash.dhash(grey))),
        Signal(SignalType.AHASH, str(imagehash.average_hash(grey))),
        Signal(SignalType.WHASH, str(imagehash.whash(grey))),
        Signal(SignalType.COLORHASH, str(imagehash.colorhash(rgb))),
    ]


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB pixels of any Pillow mode.

    Alpha is dropped, not composited: the reference PDQ tools hash the colour
    channels as stored (expected-pdq.tsv reproduces this way), and content
    hidden under transparency is still content. 16-bit and 32-bit greyscale
    would be clipped to white by Image.convert, so they are scaled instead."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "F" or mode.startswith("I"):
        values = np.asarray(image, dtype=np.float64)
        top = float(values.max(initial=0.0))
        if mode.startswith("I;16") or (mode == "I" and top > 255):
            values = values / 257.0  # 0..65535 -> 0..255
        elif mode == "F" and top <= 1.0:
            values = values * 255.0  # normalised float samples
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    return image.convert("RGB")


def _orientation(image: Image.Image) -> int | None:
    value = image.getexif().get(_EXIF_ORIENTATION)
    return value if isinstance(value, int) else None


def _spread(count: int, samples: int) -> list[int]:
    """Up to `samples` frame indexes spread evenly over range(count), 0 first."""
    if count <= samples:
        return list(range(count))
    if samples == 1:
        return [0]
    return sorted({round(i * (count - 1) / (samples - 1)) for i in range(samples)})
