"""False-match rate of every perceptual signal type on a corpus of unrelated images.

    python bench/fp_corpus.py build DIR [--seed 1]   # write the corpus (not committed)
    python bench/fp_corpus.py measure DIR [--max-distance 64]
    python bench/fp_corpus.py run DIR                # build if DIR is empty, then measure

The corpus is rebuilt from this recipe, offline and deterministically for a
seed. Its images come from:

- files that installed packages ship (never downloaded at run time):
  scikit-image's bundled `skimage/data/*` images and its `lfw_subset.npy`
  (200 small face/non-face crops), matplotlib's `mpl-data/sample_data`
  images; install with `.ci/.venv/bin/pip install --no-deps scikit-image
  matplotlib` (only their data files are read: neither is imported, so
  `--no-deps` is enough);
- Debian packages: `apt-get install gnome-backgrounds ukui-wallpapers
  lomiri-wallpapers` (wallpapers under /usr/share/backgrounds) and the Adwaita
  icon theme every GNOME system has (/usr/share/icons/Adwaita: flat icons);
- scenes generated here: flat colours, gradients, noise textures, shapes,
  text, tilings, Mandelbrot/Julia fractals;
- derivatives of every photo and wallpaper above: crops, re-encodes at other
  sizes and JPEG qualities, greyscale versions.

Missing sources are skipped (and said so); the generated part alone is over
1,000 images, so the bench always runs.

Every image belongs to a *family* (a source and all its derivatives; stereo
pairs and light/dark variants of one wallpaper are one family). Families are
split in two with the seed: one half is the "list", the other the "queries".
Two images of different families are unrelated, so any match between the two
halves is a false positive. For each signal type and each distance threshold
the bench counts the query images that would be flagged (a query matching at
least one list image). A second table does the same for the greyscale and
flat images alone (what broke colorhash, whose value is `07000000000` for
every greyscale image). PDQ queries of quality < 50 never match, as in the
agent. Recall is measured on tests/fixtures/media/pdq/bridge-mods: the
original is the list, every edit a query that should match.

Images are hashed with the agent's own code (agent.media.image.image_signals),
so the numbers hold for what a scan computes."""

from __future__ import annotations

import argparse
import importlib.util
import io
import math
import multiprocessing
import random
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parent.parent
BRIDGE_MODS = ROOT / "tests" / "fixtures" / "media" / "pdq" / "bridge-mods"
TYPES = ("pdq", "phash", "dhash", "ahash", "whash", "colorhash")
# Generated scenes per kind; 9 kinds x 120 = 1,080 images before any package's.
PER_KIND = 120
MAX_SIDE = 640  # sources are scaled down first: hashing cost, not realism, grows with size
_EXTS = {".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".bmp", ".webp"}


# ---------------------------------------------------------------- building


@dataclass(frozen=True)
class Item:
    family: str
    name: str
    grey_or_flat: bool
    image: Image.Image


def _package_dir(package: str, *parts: str) -> Path | None:
    # find_spec locates the package without importing it, so its own
    # dependencies need not be installed.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.is_dir() else None


def _shrink(image: Image.Image) -> Image.Image:
    image = image.convert("RGB") if image.mode not in ("RGB", "L") else image
    if max(image.size) > MAX_SIDE:
        image = image.copy()
        image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image


def _family_of(stem: str) -> str:
    # Variants of one picture: motorcycle_left/right, chessboard_RGB/GRAY,
    # multipage/multipage_rgb, wallpaper-d/-l.
    stem = stem.lower()
    for pattern in (r"_(left|right|disp)$", r"_(rgb|gray)$", r"-(d|l|dark|light)$"):
        stem = re.sub(pattern, "", stem)
    return stem


def _open_file(path: Path) -> Image.Image | None:
    try:
        with Image.open(path) as image:
            image.seek(0)
            return _shrink(image.copy() if image.mode in ("RGB", "L") else image.convert("RGB"))
    except Exception as exc:  # noqa: BLE001  (a bench: a file Pillow cannot open, whatever the error, is skipped, said so)
        print(f"skipped {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def package_photos() -> Iterator[tuple[str, Image.Image]]:
    """(family, image) of the pictures packages ship, in a fixed order."""
    dirs: list[tuple[str, Path | None]] = [
        ("skimage", _package_dir("skimage", "data")),
        ("mpl", _package_dir("matplotlib", "mpl-data", "sample_data")),
        ("bg", Path("/usr/share/backgrounds")),
    ]
    for prefix, directory in dirs:
        if directory is None or not directory.is_dir():
            print(f"note: no {prefix} images found (see the docstring to install them)", file=sys.stderr)
            continue
        for path in sorted(p for p in directory.rglob("*") if p.suffix.lower() in _EXTS):
            image = _open_file(path)
            if image is not None:
                yield f"{prefix}-{_family_of(path.stem)}", image


def package_faces() -> Iterator[tuple[str, Image.Image]]:
    directory = _package_dir("skimage", "data")
    path = directory / "lfw_subset.npy" if directory else None
    if path is None or not path.is_file():
        return
    faces = np.load(path)
    for index, face in enumerate(faces):
        image = Image.fromarray(np.clip(face * 255, 0, 255).astype(np.uint8), "L")
        yield f"lfw-{index:03d}", image.resize((100, 100), Image.Resampling.BICUBIC)


def package_icons(rng: random.Random, count: int = 150) -> Iterator[tuple[str, Image.Image]]:
    directory = Path("/usr/share/icons/Adwaita/96x96")
    if not directory.is_dir():
        return
    icons = sorted(directory.rglob("*.png"))
    for path in rng.sample(icons, min(count, len(icons))):
        image = _open_file(path)
        if image is not None:
            yield f"icon-{path.stem}", image


def _colour(rng: random.Random, grey: bool) -> tuple[int, int, int]:
    if grey:
        v = rng.randrange(256)
        return (v, v, v)
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _size(rng: random.Random) -> tuple[int, int]:
    return (rng.choice((64, 128, 200, 256, 320, 480)), rng.choice((64, 128, 200, 256, 320, 480)))


def scene_flat(rng: random.Random, grey: bool) -> Image.Image:
    return Image.new("RGB", _size(rng), _colour(rng, grey))


def scene_gradient(rng: random.Random, grey: bool) -> Image.Image:
    w, h = _size(rng)
    a, b = np.array(_colour(rng, grey), float), np.array(_colour(rng, grey), float)
    y, x = np.mgrid[0:h, 0:w]
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * math.pi)
        t = (x * math.cos(angle) + y * math.sin(angle)).astype(float)
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.hypot(x - cx, y - cy)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-9)
    pixels = a + (b - a) * t[..., None]
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def scene_noise(rng: random.Random, grey: bool) -> Image.Image:
    w, h = _size(rng)
    gen = np.random.default_rng(rng.randrange(2**32))
    scale = rng.choice((1, 2, 4, 8, 16, 32))
    channels = 1 if grey else 3
    small = gen.random((max(1, h // scale), max(1, w // scale), channels))
    image = Image.fromarray((small * 255).astype(np.uint8).squeeze(-1) if grey else (small * 255).astype(np.uint8))
    image = image.resize((w, h), rng.choice((Image.Resampling.NEAREST, Image.Resampling.BICUBIC)))
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 4)))
    return image.convert("RGB")


def scene_shapes(rng: random.Random, grey: bool) -> Image.Image:
    image = Image.new("RGB", _size(rng), _colour(rng, grey))
    draw = ImageDraw.Draw(image)
    w, h = image.size
    for _ in range(rng.randrange(1, 12)):
        box = sorted((rng.uniform(0, w), rng.uniform(0, w)))
        ys = sorted((rng.uniform(0, h), rng.uniform(0, h)))
        xy = (box[0], ys[0], box[1], ys[1])
        kind = rng.randrange(3)
        if kind == 0:
            draw.rectangle(xy, fill=_colour(rng, grey))
        elif kind == 1:
            draw.ellipse(xy, fill=_colour(rng, grey))
        else:
            draw.polygon(
                [(rng.uniform(0, w), rng.uniform(0, h)) for _ in range(rng.randrange(3, 7))], fill=_colour(rng, grey)
            )
    return image


_WORDS = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "peer",
    "content",
    "address",
    "block",
    "gateway",
    "pin",
    "node",
]


def scene_text(rng: random.Random, grey: bool) -> Image.Image:
    image = Image.new("RGB", _size(rng), _colour(rng, grey))
    draw = ImageDraw.Draw(image)
    w, h = image.size
    font = ImageFont.load_default(size=rng.choice((10, 14, 20, 28, 40)))
    ink = _colour(rng, grey)
    y = rng.uniform(0, h / 4)
    while y < h:
        draw.text((rng.uniform(0, w / 4), y), " ".join(rng.choices(_WORDS, k=rng.randrange(2, 8))), fill=ink, font=font)
        y += rng.uniform(12, 60)
    return image


def scene_tiling(rng: random.Random, grey: bool) -> Image.Image:
    w, h = _size(rng)
    y, x = np.mgrid[0:h, 0:w]
    period = rng.uniform(4, 80)
    angle = rng.uniform(0, math.pi)
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    kind = rng.randrange(3)
    if kind == 0:
        mask = ((u // period + v // period) % 2).astype(bool)
    elif kind == 1:
        mask = ((u // period) % 2).astype(bool)
    else:
        mask = (np.sin(u / period * 2 * math.pi) * np.sin(v / period * 2 * math.pi)) > 0
    a, b = np.array(_colour(rng, grey)), np.array(_colour(rng, grey))
    return Image.fromarray(np.where(mask[..., None], a, b).astype(np.uint8), "RGB")


def scene_fractal(rng: random.Random, grey: bool) -> Image.Image:
    w, h = rng.choice((128, 200, 256)), rng.choice((128, 200, 256))
    zoom = 10 ** rng.uniform(0, 2.5)
    if rng.random() < 0.5:
        cx, cy = rng.choice(((-0.745, 0.113), (-0.16, 1.04), (-1.25, 0.02), (0.285, 0.01), (-0.5, 0.0)))
        c0 = None
    else:
        cx, cy = 0.0, 0.0
        zoom = rng.uniform(0.8, 2)
        c0 = complex(rng.uniform(-0.9, 0.4), rng.uniform(-0.8, 0.8))
    span = 3.0 / zoom
    ys, xs = np.mgrid[0:h, 0:w]
    z = (cx + (xs / w - 0.5) * span) + 1j * (cy + (ys / h - 0.5) * span * h / w)
    c = z.copy() if c0 is None else np.full_like(z, c0)
    if c0 is None:
        z = np.zeros_like(z)
    counts = np.zeros(z.shape, dtype=np.int32)
    for _ in range(80):
        alive = np.abs(z) <= 2
        z[alive] = z[alive] ** 2 + c[alive]
        counts += alive
    t = counts / 80.0
    if grey:
        pixels = np.repeat((t * 255)[..., None], 3, axis=2)
    else:
        phase = rng.uniform(0, 2 * math.pi)
        pixels = np.stack([127 + 127 * np.sin(6 * t + phase + k) for k in (0, 2, 4)], axis=-1)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def scene_blobs(rng: random.Random, grey: bool) -> Image.Image:
    # Soft low-frequency fields: the kind of image that hashes close to its
    # neighbours under the coarse hashes.
    w, h = _size(rng)
    gen = np.random.default_rng(rng.randrange(2**32))
    small = gen.random((3, 3, 1 if grey else 3))
    image = Image.fromarray((small * 255).astype(np.uint8).squeeze(-1) if grey else (small * 255).astype(np.uint8))
    return image.resize((w, h), Image.Resampling.BICUBIC).convert("RGB")


SCENES: dict[str, Callable[[random.Random, bool], Image.Image]] = {
    "flat": scene_flat,
    "gradient": scene_gradient,
    "noise": scene_noise,
    "shapes": scene_shapes,
    "text": scene_text,
    "tiling": scene_tiling,
    "fractal": scene_fractal,
    "blobs": scene_blobs,
}


def derivatives(rng: random.Random, image: Image.Image) -> Iterator[tuple[str, Image.Image]]:
    """Crops, re-encodes at other sizes and qualities, and a greyscale copy."""
    w, h = image.size
    for k in range(3):
        cw, ch = int(w * rng.uniform(0.3, 0.8)), int(h * rng.uniform(0.3, 0.8))
        x, y = rng.randrange(0, w - cw + 1), rng.randrange(0, h - ch + 1)
        yield f"crop{k}", image.crop((x, y, x + cw, y + ch))
    for k in range(2):
        scale = rng.uniform(0.2, 0.9)
        small = image.convert("RGB").resize((max(8, int(w * scale)), max(8, int(h * scale))))
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=rng.choice((10, 25, 50, 75, 95)))
        buf.seek(0)
        yield f"jpeg{k}", Image.open(buf).convert("RGB")
    yield "grey", image.convert("L")


def _is_grey_or_flat(image: Image.Image) -> bool:
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    if image.mode == "L" or int(np.abs(pixels - pixels.mean(axis=2, keepdims=True)).max()) <= 2:
        return True
    return float(pixels.std()) < 1.0


def corpus(seed: int) -> Iterator[Item]:
    rng = random.Random(seed)
    photos = list(package_photos())
    for family, image in photos:
        yield Item(family, "orig", _is_grey_or_flat(image), image)
        for name, derived in derivatives(rng, image):
            yield Item(family, name, _is_grey_or_flat(derived), derived)
    for family, image in package_faces():
        yield Item(family, "orig", True, image)
    for family, image in package_icons(rng):
        yield Item(family, "orig", _is_grey_or_flat(image), image)
    for kind, make in SCENES.items():
        for index in range(PER_KIND):
            grey = index % 3 == 0  # a third greyscale: what broke colorhash
            image = make(rng, grey)
            yield Item(f"gen-{kind}-{index:03d}", "orig", grey or kind == "flat", image)


def build(directory: Path, seed: int) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    with (directory / "manifest.tsv").open("w") as manifest:
        manifest.write("file\tfamily\tgrey_or_flat\n")
        for item in corpus(seed):
            fmt, ext = ("JPEG", "jpg") if item.name.startswith("jpeg") else ("PNG", "png")
            name = f"{item.family}__{item.name}.{ext}"
            item.image.save(directory / name, fmt, quality=90)
            manifest.write(f"{name}\t{item.family}\t{int(item.grey_or_flat)}\n")
            count += 1
    return count


# ---------------------------------------------------------------- measuring


def _signals(path: Path) -> dict[str, tuple[str, int | None]]:
    from agent.media.image import image_signals  # the agent's own hashing

    result = image_signals(path.read_bytes())
    out: dict[str, tuple[str, int | None]] = {}
    for signal in result.signals:
        out.setdefault(signal.type.value, (signal.value, signal.quality))
    return out


def _bits(values: list[str], width: int) -> np.ndarray:
    ints = [int(v, 16) for v in values]
    nbytes = (width + 7) // 8
    raw = np.frombuffer(b"".join(i.to_bytes(nbytes, "big") for i in ints), dtype=np.uint8)
    return np.unpackbits(raw.reshape(len(ints), nbytes), axis=1)


def min_distances(queries: list[str], listed: list[str]) -> np.ndarray:
    """For each query, its smallest Hamming distance to any listed value."""
    width = max(len(v) for v in queries + listed) * 4
    q, li = _bits(queries, width).astype(np.int16), _bits(listed, width).astype(np.int16)
    best = np.full(len(queries), width + 1, dtype=np.int32)
    for start in range(0, len(queries), 256):
        block = q[start : start + 256]
        # Hamming distance of 0/1 vectors: |a| + |b| - 2 a.b
        d = block.sum(1)[:, None] + li.sum(1)[None, :] - 2 * (block @ li.T)
        best[start : start + 256] = d.min(axis=1)
    return best


@dataclass
class Hashed:
    family: str
    grey_or_flat: bool
    signals: dict[str, tuple[str, int | None]]


def hash_corpus(directory: Path) -> list[Hashed]:
    rows = [line.split("\t") for line in (directory / "manifest.tsv").read_text().splitlines()[1:]]
    with multiprocessing.get_context("spawn").Pool() as pool:
        signals = pool.map(_signals, [directory / row[0] for row in rows], chunksize=8)
    return [Hashed(row[1], row[2] == "1", s) for row, s in zip(rows, signals, strict=True)]


def split(items: list[Hashed], seed: int) -> tuple[list[Hashed], list[Hashed]]:
    families = sorted({i.family for i in items})
    random.Random(seed).shuffle(families)
    listed = set(families[: len(families) // 2])
    return [i for i in items if i.family in listed], [i for i in items if i.family not in listed]


def fp_curve(listed: list[Hashed], queries: list[Hashed], kind: str, max_distance: int) -> list[int]:
    """Query images flagged at each threshold 0..max_distance."""
    if kind == "pdq":
        queries = [q for q in queries if (q.signals["pdq"][1] or 0) >= 50]
    if not queries or not listed:
        return [0] * (max_distance + 1)
    best = min_distances([q.signals[kind][0] for q in queries], [e.signals[kind][0] for e in listed])
    return [int((best <= t).sum()) for t in range(max_distance + 1)]


def recall_curve(kind: str, max_distance: int) -> tuple[int, list[int]]:
    paths = sorted(BRIDGE_MODS.glob("*.jpg"))
    if not paths:
        return 0, [0] * (max_distance + 1)
    original = next(p for p in paths if p.name.startswith("aaa-orig"))
    edits = [p for p in paths if p != original]
    ref = _signals(original)[kind][0]
    hashed = [_signals(p)[kind] for p in edits]
    if kind == "pdq":
        hashed = [h for h in hashed if (h[1] or 0) >= 50]
    best = min_distances([h[0] for h in hashed], [ref]) if hashed else np.array([], dtype=np.int32)
    return len(edits), [int((best <= t).sum()) for t in range(max_distance + 1)]


def _largest_zero(curve: list[int]) -> int | None:
    zero = [t for t, n in enumerate(curve) if n == 0]
    return max((t for t in zero if all(curve[s] == 0 for s in range(t + 1))), default=None)


def measure(directory: Path, seed: int, max_distance: int) -> None:
    items = hash_corpus(directory)
    listed, queries = split(items, seed)
    grey_list = [i for i in listed if i.grey_or_flat]
    grey_queries = [i for i in queries if i.grey_or_flat]
    print(
        f"corpus: {len(items)} images in {len({i.family for i in items})} families; "
        f"list {len(listed)} images, queries {len(queries)} "
        f"(greyscale/flat: list {len(grey_list)}, queries {len(grey_queries)})"
    )
    shown = [t for t in (0, 1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 28, 31, 32, 40, 48, 64) if t <= max_distance]
    for title, lst, qs in (("all", listed, queries), ("greyscale/flat only", grey_list, grey_queries)):
        print(f"\nfalse positives ({title}): query images flagged, by distance threshold")
        print("type       " + "".join(f"{t:>6}" for t in shown) + "   max-zero-FP")
        for kind in TYPES:
            curve = fp_curve(lst, qs, kind, max_distance)
            print(f"{kind:<11}" + "".join(f"{curve[t]:>6}" for t in shown) + f"   {_largest_zero(curve)}")
    print(f"\nrecall on {BRIDGE_MODS.relative_to(ROOT)} (edits matched to the original), by threshold")
    print("type       " + "".join(f"{t:>6}" for t in shown))
    for kind in TYPES:
        total, curve = recall_curve(kind, max_distance)
        print(f"{kind:<11}" + "".join(f"{curve[t]:>6}" for t in shown) + f"   of {total}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("build", "measure", "run"))
    parser.add_argument("directory", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-distance", type=int, default=64)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.action == "build" or (args.action == "run" and not (args.directory / "manifest.tsv").exists()):
        print(f"built {build(args.directory, args.seed)} images in {args.directory}")
    if args.action in ("measure", "run"):
        measure(args.directory, args.seed, args.max_distance)


if __name__ == "__main__":
    main()
