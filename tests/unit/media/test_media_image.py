"""Image signals agree with the ThreatExchange reference data, and bad input fails clearly."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageOps

from agent.media.errors import CorruptMedia, EmptyContent, MediaTooLarge
from agent.media.image import ImageResult, image_signals, reduction_factor
from agent.media.limits import MediaLimits
from agent.media.pdq import hamming_hex, pdq_of_rgb
from agent.model.signals import SignalType
from tests.conftest import MEDIA_FIXTURES
from tests.support.media import bomb_png as _bomb_png

MEDIA = MEDIA_FIXTURES
PDQ = MEDIA / "pdq"
ORIGINAL = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def _expected() -> list[tuple[str, str, str, int]]:
    rows = []
    for line in (PDQ / "expected-pdq.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        path, _mode, size, pdq_hex, quality = line.split("\t")
        rows.append((path, size, pdq_hex, int(quality)))
    return rows


EXPECTED = _expected()
EXPECTED_BY_PATH = {row[0]: row for row in EXPECTED}


def _signals(relative: str) -> ImageResult:
    return image_signals((MEDIA / relative).read_bytes())


def test_tsv_lists_every_reference_image() -> None:
    assert len(EXPECTED) == 38
    assert EXPECTED_BY_PATH["pdq/bridge-mods/aaa-orig.jpg"][2] == ORIGINAL


@pytest.mark.parametrize(
    ("path", "size", "pdq_hex", "quality"),
    [r for r in EXPECTED if r[0] != "pdq/exif-rotn-6.jpg"],
    ids=[r[0] for r in EXPECTED if r[0] != "pdq/exif-rotn-6.jpg"],
)
def test_pdq_reproduces_expected_tsv_exactly(path: str, size: str, pdq_hex: str, quality: int) -> None:
    result = _signals(path)
    assert f"{result.width}x{result.height}" == size
    assert (result.pdq.value, result.pdq.quality) == (pdq_hex, quality)
    assert result.stored_orientation_pdq is None


def test_exif_rotated_photo_yields_displayed_and_stored_pdq() -> None:
    """The TSV hashes the pixels as stored (reference tools ignore EXIF); we
    hash the displayed orientation first and also report the stored one."""
    _, size, pdq_hex, quality = EXPECTED_BY_PATH["pdq/exif-rotn-6.jpg"]
    data = (PDQ / "exif-rotn-6.jpg").read_bytes()
    result = image_signals(data)
    assert size == "4032x3024" and (result.width, result.height) == (3024, 4032)
    assert result.stored_orientation_pdq is not None
    assert (result.stored_orientation_pdq.value, result.stored_orientation_pdq.quality) == (pdq_hex, quality)
    assert result.stored_orientation_pdq in result.signals
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    assert result.pdq.value == pdq_of_rgb(np.asarray(upright))[0]
    assert hamming_hex(result.pdq.value, pdq_hex) > 31  # a rotation is a different PDQ


# Distances between each edit and the original, from the reference hashes.
BRIDGE_DISTANCES = {
    "aaa-orig.jpg": 0,
    "blur-a-little.jpg": 2,
    "blur-a-lot.jpg": 4,
    "high-contrast.jpg": 6,
    "high-saturation.jpg": 2,
    "sharpen-a-little.jpg": 4,
    "sharpen-a-lot.jpg": 12,
    "shrink-a-little.jpg": 2,
    "shrink-a-lot.jpg": 16,
    "square-128x128.jpg": 10,
    "square-256x256.jpg": 12,
    "square-512x512.jpg": 8,
}


@pytest.mark.parametrize(("name", "distance"), sorted(BRIDGE_DISTANCES.items()))
def test_bridge_edits_stay_within_their_distance_of_the_original(name: str, distance: int) -> None:
    result = _signals(f"pdq/bridge-mods/{name}")
    assert hamming_hex(result.pdq.value, ORIGINAL) == distance
    assert distance <= 16
    assert result.pdq.quality is not None and result.pdq.quality >= 50


def test_bridge_distance_table_is_the_reference_one() -> None:
    for name, distance in BRIDGE_DISTANCES.items():
        assert hamming_hex(EXPECTED_BY_PATH[f"pdq/bridge-mods/{name}"][2], ORIGINAL) == distance


@pytest.mark.parametrize("name", sorted(p.name for p in (PDQ / "dihedral").glob("*.jpg") if "original" not in p.name))
def test_rotations_and_flips_do_not_match_plainly(name: str) -> None:
    distance = hamming_hex(_signals(f"pdq/dihedral/{name}").pdq.value, ORIGINAL)
    assert 106 <= distance <= 128


@pytest.mark.parametrize("name", ["q0003.jpg", "q0004.jpg", "small.jpg"])
def test_flat_images_have_quality_below_matching_threshold(name: str) -> None:
    quality = _signals(f"pdq/low-quality/{name}").pdq.quality
    assert quality is not None and quality < 50


@pytest.mark.parametrize("name", sorted(p.name for p in (PDQ / "modes").iterdir()))
def test_other_pixel_modes_convert_to_within_two_bits(name: str) -> None:
    result = _signals(f"pdq/modes/{name}")
    assert hamming_hex(result.pdq.value, ORIGINAL) <= 2


def test_all_signal_types_are_reported_in_their_formats() -> None:
    result = _signals("pdq/bridge-mods/aaa-orig.jpg")
    types = [s.type for s in result.signals]
    assert types == [
        SignalType.PDQ,
        SignalType.PHASH,
        SignalType.DHASH,
        SignalType.AHASH,
        SignalType.WHASH,
        SignalType.COLORHASH,
    ]
    for signal in result.signals:
        assert signal.value == signal.value.lower()
        int(signal.value, 16)
        if signal.type in (SignalType.PHASH, SignalType.DHASH, SignalType.AHASH, SignalType.WHASH):
            assert len(signal.value) == 16 and signal.quality is None
    assert len(result.pdq.value) == 64 and result.pdq.quality == 100


def test_imagehash_signals_survive_mild_edits_and_not_rotation() -> None:
    original = _signals("pdq/bridge-mods/aaa-orig.jpg")
    blurred = _signals("pdq/bridge-mods/blur-a-little.jpg")
    rotated = _signals("pdq/dihedral/bridge-3-rotate-180.jpg")
    for kind in (SignalType.PHASH, SignalType.DHASH, SignalType.AHASH, SignalType.WHASH):
        a, b, r = (x.first(kind) for x in (original, blurred, rotated))
        assert a is not None and b is not None and r is not None
        assert hamming_hex(a.value, b.value) <= 4
        assert hamming_hex(a.value, r.value) >= 16


def _photo(size: tuple[int, int] = (400, 251)) -> Image.Image:
    return Image.open(PDQ / "bridge-mods/aaa-orig.jpg").convert("RGB").resize(size)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    grey = _photo().convert("L")
    wide = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)  # 16-bit samples
    reference = image_signals(_png(grey.convert("RGB"))).pdq
    result = image_signals(_png(wide))
    assert result.mode.startswith("I")
    assert hamming_hex(result.pdq.value, reference.value) <= 2
    assert result.pdq.quality == 100  # clipping would have made it flat white


def test_alpha_is_dropped_like_the_reference_tools() -> None:
    rgba = _photo().convert("RGBA")
    rgba.putalpha(0)  # fully transparent: the pixels are still there
    reference = image_signals(_png(_photo())).pdq
    assert image_signals(_png(rgba)).pdq.value == reference.value


def _animated_gif(frames: int) -> tuple[bytes, list[Image.Image]]:
    base = _photo((160, 100))
    images = [base.rotate(i * 360 / frames) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=40, loop=0)
    return out.getvalue(), images


def test_animated_gif_reports_pdq_of_evenly_sampled_frames() -> None:
    data, _ = _animated_gif(20)
    result = image_signals(data, MediaLimits(animated_frame_samples=8))
    assert result.frame_count == 20
    assert [f.frame for f in result.frames] == [0, 3, 5, 8, 11, 14, 16, 19]
    decoded = Image.open(io.BytesIO(data))
    for sample in result.frames:
        decoded.seek(sample.frame)
        assert sample.pdq.value == pdq_of_rgb(np.asarray(decoded.convert("RGB")))[0]
        assert sample.pdq in result.signals
    assert result.frames[0].pdq == result.pdq
    pdqs = [s for s in result.signals if s.type == SignalType.PDQ]
    assert len(pdqs) == 8  # distinct frames, each one matchable


def test_animation_frame_walk_is_bounded_by_max_frames() -> None:
    data, _ = _animated_gif(20)
    result = image_signals(data, MediaLimits(max_frames=5, animated_frame_samples=3))
    assert [f.frame for f in result.frames] == [0, 2, 4]


def test_zero_bytes_is_empty_content() -> None:
    with pytest.raises(EmptyContent, match="0 bytes"):
        image_signals(b"")


def test_truncated_jpeg_is_corrupt() -> None:
    data = (PDQ / "bridge-mods/aaa-orig.jpg").read_bytes()
    with pytest.raises(CorruptMedia, match=r"JPEG 1600x1004 \(RGB\): cannot decode: .*truncated"):
        image_signals(data[: len(data) // 2])


def test_random_bytes_are_corrupt_whatever_they_were_labelled() -> None:
    noise = np.random.default_rng(7).integers(0, 256, 10_000, dtype=np.uint8).tobytes()
    with pytest.raises(CorruptMedia, match="not a decodable image"):
        image_signals(noise)
    # A PNG signature followed by garbage gets past sniffing but not decoding.
    with pytest.raises(CorruptMedia):
        image_signals(b"\x89PNG\r\n\x1a\n" + noise)


def test_decompression_bomb_is_refused_before_decoding() -> None:
    before = Image.MAX_IMAGE_PIXELS
    bomb = _bomb_png(30_000)
    assert len(bomb) < 200_000
    with pytest.raises(MediaTooLarge, match=r"^PNG declares 30000x30000 = 900000000 pixels, limit 50000000$"):
        image_signals(bomb)
    assert before == Image.MAX_IMAGE_PIXELS  # Pillow's process-wide setting is restored


def test_pixel_and_byte_limits_are_configurable() -> None:
    data = (PDQ / "bridge-mods/aaa-orig.jpg").read_bytes()
    with pytest.raises(MediaTooLarge, match=r"JPEG declares 1600x1004 = 1606400 pixels, limit 1000000"):
        image_signals(data, MediaLimits(max_pixels=1_000_000))
    with pytest.raises(MediaTooLarge, match=rf"image is {len(data)} bytes, limit 1000"):
        image_signals(data, MediaLimits(max_bytes=1000))


def test_webp_canvas_is_checked_before_pillow_allocates_it() -> None:
    # VP8X header declaring a 16384 x 16384 canvas, nothing else.
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (16383).to_bytes(3, "little") * 2
    data = b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
    with pytest.raises(MediaTooLarge, match=r"WEBP declares 16384x16384 = 268435456 pixels"):
        image_signals(data)


@pytest.mark.parametrize(
    ("width", "height", "max_pixels", "factor"),
    [
        (1600, 1004, 4096 * 4096, 1),
        (4032, 3024, 4096 * 4096, 1),
        (7071, 7071, 4096 * 4096, 2),
        (1600, 1004, 1024 * 1024, 2),
        (8193, 8192, 4096 * 4096, 2),
        (8194, 8194, 4096 * 4096, 3),
    ],
)
def test_reduction_factor_is_the_smallest_that_fits(width: int, height: int, max_pixels: int, factor: int) -> None:
    assert reduction_factor(width, height, max_pixels) == factor
    assert (width // factor) * (height // factor) <= max_pixels
    assert factor == 1 or (width // (factor - 1)) * (height // (factor - 1)) > max_pixels


def test_a_sliver_is_not_reduced_below_16_pixels_across() -> None:
    assert reduction_factor(64, 781_250, 1024 * 1024) == 4  # 16 x 195,312: as far as it goes
    assert reduction_factor(15, 3_000_000, 4096 * 4096) == 1


@pytest.mark.parametrize(("path", "size", "pdq_hex", "quality"), EXPECTED, ids=[r[0] for r in EXPECTED])
def test_pdq_of_a_reduced_decode_stays_within_a_few_bits_of_the_reference(
    path: str, size: str, pdq_hex: str, quality: int
) -> None:
    """Hashing from a copy of at most 1 MP (JPEG decoded at 1/2 scale, other
    formats box-reduced) against the reference hashes of the full images.
    Measured over the 38 fixtures: at most 4 bits at 1 MP, 2 bits at 4 MP, 0 at
    the default 16 MP (every fixture is smaller)."""
    result = image_signals((MEDIA / path).read_bytes(), MediaLimits(max_hash_pixels=1024 * 1024))
    as_stored = result.stored_orientation_pdq or result.pdq
    assert hamming_hex(as_stored.value, pdq_hex) <= 4
    width, height = (int(x) for x in size.split("x"))
    assert {result.width, result.height} == {width, height}  # the image's size, not the copy's
