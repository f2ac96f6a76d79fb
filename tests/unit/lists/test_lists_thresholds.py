"""Default thresholds: a list of images never accuses unrelated greyscale or flat
images (issue 8: colorhash by equality, aHash and wHash flagged 38% of a DAG).

Signals are the agent's own (agent.media.image), of images drawn here."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
from PIL import Image, ImageDraw

from agent.lists.matcher import MatchIndex
from agent.lists.model import HashList, ListEntry
from agent.media.image import image_signals
from agent.model.signals import Signal, SignalType
from tests.conftest import MEDIA_FIXTURES

BRIDGE = MEDIA_FIXTURES / "pdq" / "bridge-mods"


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _signals(image: Image.Image) -> tuple[Signal, ...]:
    return image_signals(_png(image)).signals


def _flat(grey: int, size: tuple[int, int] = (200, 150)) -> Image.Image:
    return Image.new("RGB", size, (grey, grey, grey))


def _grey_scene(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.new("L", (256, 256), int(rng.integers(0, 256)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.integers(0, 200, 2)
        draw.ellipse((int(x0), int(y0), int(x0) + 50, int(y0) + 60), fill=int(rng.integers(0, 256)))
    return image


def _list_of(images: list[Image.Image], **changes: object) -> HashList:
    entries = [ListEntry("mylist", s.type, s.value, line=n) for n, image in enumerate(images) for s in _signals(image)]
    return replace(HashList("mylist", tuple(entries)), **changes)  # type: ignore[arg-type]


def test_greyscale_and_flat_queries_do_not_match_a_list_of_other_greyscale_and_flat_images() -> None:
    listed = [
        _flat(0),
        _flat(128),
        _flat(255, (64, 64)),
        _grey_scene(1),
        _grey_scene(2),
        Image.open(BRIDGE / "aaa-orig.jpg").convert("L"),
    ]
    index = MatchIndex([_list_of(listed)])
    queries = [_flat(40), _flat(200, (320, 240)), _grey_scene(3), _grey_scene(4)]
    for query in queries:
        assert index.match(_signals(query)) == []


def test_the_list_still_matches_its_own_photo_and_its_edits_by_pdq() -> None:
    index = MatchIndex([_list_of([Image.open(BRIDGE / "aaa-orig.jpg")])])
    for edit in ("blur-a-lot.jpg", "shrink-a-lot.jpg", "high-contrast.jpg"):
        matches = index.match(image_signals((BRIDGE / edit).read_bytes()).signals)
        assert {m.signal_type for m in matches} == {SignalType.PDQ}, edit


def test_imagehash_types_are_not_matched_unless_the_list_sets_a_distance() -> None:
    value = "8f373714acfcf4d0"
    for signal_type in (SignalType.PHASH, SignalType.DHASH, SignalType.AHASH, SignalType.WHASH):
        default = HashList("l", (ListEntry("l", signal_type, value),))
        assert default.distance_for(signal_type) is None
        assert MatchIndex([default]).match([Signal(signal_type, value)]) == []
        opted_in = replace(default, imagehash_distance={signal_type: 4})
        assert [m.distance for m in MatchIndex([opted_in]).match([Signal(signal_type, value)])] == [0]
    assert HashList("l").distance_for(SignalType.PDQ) == 31


def test_colorhash_is_never_matched_by_equality() -> None:
    grey = "07000000000"  # the colorhash of every greyscale image
    default = HashList("l", (ListEntry("l", SignalType.COLORHASH, grey),))
    assert MatchIndex([default]).match([Signal(SignalType.COLORHASH, grey)]) == []
    # An operator who insists gets a Hamming distance, like the other imagehashes.
    near = f"{int(grey, 16) ^ 0b11:011x}"
    opted_in = replace(default, imagehash_distance={SignalType.COLORHASH: 2})
    assert [m.distance for m in MatchIndex([opted_in]).match([Signal(SignalType.COLORHASH, near)])] == [2]
    far = f"{int(grey, 16) ^ 0b111:011x}"
    assert MatchIndex([opted_in]).match([Signal(SignalType.COLORHASH, far)]) == []
    # Values of another width (other bin count) are not comparable.
    assert MatchIndex([opted_in]).match([Signal(SignalType.COLORHASH, "070000000000000")]) == []


def test_every_imagehash_type_is_off_by_default() -> None:
    from agent.lists.model import NOT_MATCHED_BY_DEFAULT

    assert {
        SignalType.PHASH,
        SignalType.DHASH,
        SignalType.AHASH,
        SignalType.WHASH,
        SignalType.COLORHASH,
    } == NOT_MATCHED_BY_DEFAULT
