"""``make_photo_folder``: a class-per-folder tree of RGB JPEGs, cut from scikit-image's bundled
sample photographs when it is installed, else rendered scenes with one look per class."""

from __future__ import annotations

import colorsys
import functools
import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from loadwise.testing._common import check_int, check_root, run_jobs

log = logging.getLogger(__name__)

# scikit-image sample photographs shipped inside its wheel (no download needed)
SKIMAGE_PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "hubble_deep_field",
    "immunohistochemistry", "moon", "page", "clock", "text",
)  # fmt: skip
_CHUNK = 50  # images per job


@dataclass(frozen=True)
class PhotoFolder:
    """What ``make_photo_folder`` wrote: ``root/<class>/NNNNN.jpg``."""

    root: Path
    classes: tuple[str, ...]
    per_class: int
    size: int
    source: str

    @property
    def n_images(self) -> int:
        """Number of JPEG files in the tree."""
        return len(self.classes) * self.per_class


@dataclass(frozen=True)
class _Job:
    """A run of images of one class for one worker to write."""

    folder: Path
    kind: int | tuple[str, ...]  # rendered family number, or the skimage photos to crop
    size: int
    quality: int
    seed: int
    label: int
    indices: range


def make_photo_folder(
    root: str | Path,
    *,
    classes: int = 10,
    per_class: int = 500,
    size: int = 256,
    seed: int = 0,
    workers: int = 1,
    quality: int = 90,
) -> PhotoFolder:
    """Write ``classes x per_class`` RGB ``size x size`` JPEGs as ``root/<class>/NNNNN.jpg``,
    the same bytes for the same arguments; classes look clearly different from each other."""
    check_int("classes", classes, 1)
    check_int("per_class", per_class, 1)
    check_int("size", size, 16, 4096)
    check_int("seed", seed, 0)
    check_int("workers", workers, 1, 256)
    check_int("quality", quality, 1, 95)
    path = check_root(root)
    names, kinds, source = _plan(classes)
    path.mkdir(parents=True, exist_ok=True)
    jobs = []
    for label, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        (path / name).mkdir()
        for start in range(0, per_class, _CHUNK):
            indices = range(start, min(start + _CHUNK, per_class))
            jobs.append(_Job(path / name, kind, size, quality, seed, label, indices))
    run_jobs(_write_images, jobs, workers)
    return PhotoFolder(path, tuple(names), per_class, size, source)


def _plan(classes: int) -> tuple[list[str], list[int | tuple[str, ...]], str]:
    """Class folder names, what each class is made from, and the source name."""
    photos = [name for name in SKIMAGE_PHOTOS if _skimage_photo(name) is not None]
    groups: list[tuple[str, ...]] = [(p,) for p in photos]
    if classes > len(groups):
        groups = list(itertools.combinations(photos, 2))
    if len(photos) >= 2 and classes <= len(groups):
        return ["_and_".join(g) for g in groups[:classes]], list(groups[:classes]), "skimage"
    if photos:
        log.warning("scikit-image has too few sample photos for %d classes: rendering", classes)
    width = max(2, len(str(classes - 1)))
    names = [f"{k:0{width}d}_{_FAMILY_NAMES[k % len(_FAMILY_NAMES)]}" for k in range(classes)]
    return names, list(range(classes)), "rendered"


@functools.cache
def _skimage_photo(name: str) -> np.ndarray | None:
    """One bundled scikit-image photo as RGB uint8, or None if it cannot be had offline."""
    try:
        from skimage import data
    except ImportError:
        return None
    try:
        image = np.asarray(getattr(data, name)())
    except Exception:  # a photo that is missing or needs a download is simply skipped
        return None
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.dtype != np.uint8:
        image = (255 * (image.astype(np.float64) / max(float(image.max()), 1e-9))).astype(np.uint8)
    return np.ascontiguousarray(image[..., :3])


def _write_images(job: _Job) -> None:
    """Draw and save every image of the job."""
    for i in job.indices:
        rng = np.random.default_rng([job.seed, job.label, i])
        if isinstance(job.kind, tuple):
            image = _crop(job.kind, job.size, rng)
        else:
            image = _scene(job.kind, job.size, rng)
        image.save(job.folder / f"{i:05d}.jpg", format="JPEG", quality=job.quality)


def _crop(photos: tuple[str, ...], size: int, rng: np.random.Generator) -> Image.Image:
    """A random square crop of one of ``photos``, scaled to ``size`` and maybe mirrored."""
    photo = _skimage_photo(photos[int(rng.integers(len(photos)))])
    assert photo is not None  # _plan only chose photos that load
    h, w = photo.shape[:2]
    side = max(8, int(min(h, w) * rng.uniform(0.35, 0.8)))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    image = Image.fromarray(photo[top : top + side, left : left + side])
    return _finish(image.resize((size, size), Image.Resampling.BILINEAR), rng)


def _scene(label: int, size: int, rng: np.random.Generator) -> Image.Image:
    """A rendered scene of the family, palette and orientation belonging to ``label``."""
    cycle = label // len(_FAMILIES)  # classes sharing a family differ in hue and angle
    hue = (label * 0.381966 + cycle * 0.5 + rng.normal(0, 0.015)) % 1.0
    angle = math.radians((label * 47 + cycle * 60) % 180 + rng.uniform(-10, 10))
    freq = (4 + (label * 7) % 9) * rng.uniform(0.85, 1.15)
    family = _FAMILIES[label % len(_FAMILIES)]
    return _finish(family(_Canvas(size, hue, angle, freq, rng)), rng)


def _finish(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Photo-like final touches: mirror, exposure and sensor noise."""
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    gain = rng.uniform(0.85, 1.15)
    image = image.point(np.clip(np.arange(256) * gain, 0, 255).astype(np.uint8).tolist() * 3)
    rgb = np.asarray(image, dtype=np.int16) + rng.integers(-6, 7, (*image.size[::-1], 3), np.int16)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


class _Canvas:
    """Coordinates, palette and noise shared by the scene families."""

    def __init__(self, size: int, hue: float, angle: float, freq: float, rng: np.random.Generator):
        self.size, self.freq, self.rng = size, freq, rng
        self.x, self.y = x, y = _grid(size)
        self.u = x * math.cos(angle) + y * math.sin(angle)
        self.v = -x * math.sin(angle) + y * math.cos(angle)
        stops = ((hue, 0.7, 0.3), ((hue + 0.06) % 1, 0.75, 0.75), ((hue + 0.12) % 1, 0.3, 0.97))
        rgb = np.array([colorsys.hsv_to_rgb(*s) for s in stops]) * 255
        levels = np.linspace(0.0, 1.0, 256)
        lut = np.stack([np.interp(levels, (0, 0.5, 1), rgb[:, i]) for i in range(3)], -1)
        self.palette = np.round(lut).astype(np.uint8).ravel()

    def ramp(self, t: np.ndarray) -> Image.Image:
        """Map ``t`` in [0, 1] through the dark-mid-light palette to an RGB image."""
        image = Image.fromarray((np.clip(t, 0.0, 1.0) * 255).astype(np.uint8))
        image.putpalette(self.palette.tobytes())
        return image.convert("RGB")

    def smooth(self, octaves: int = 3) -> np.ndarray:
        """Perlin-ish fractal noise in [0, 1]: bicubic-upsampled random grids summed."""
        total = np.zeros((self.size, self.size), np.float32)
        for k in range(octaves):
            grid = self.rng.random((3 << k, 3 << k)).astype(np.float32)
            up = Image.fromarray(grid).resize((self.size, self.size), Image.Resampling.BICUBIC)
            total += np.asarray(up) / (1 << k)
        return (total - total.min()) / max(float(total.max() - total.min()), 1e-6)

    def color(self) -> tuple[int, int, int]:
        """A random palette color as 8-bit RGB, for shapes."""
        i = 3 * int(self.rng.integers(50, 256))
        return (int(self.palette[i]), int(self.palette[i + 1]), int(self.palette[i + 2]))


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1): (x, y), each ``size x size`` float32."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return x, y


def _stripes(c: _Canvas) -> Image.Image:
    return c.ramp(0.5 + 0.45 * np.sin(2 * math.pi * c.freq * c.u + 3 * c.smooth(2)))


def _clouds(c: _Canvas) -> Image.Image:
    return c.ramp(c.smooth(5))


def _rings(c: _Canvas) -> Image.Image:
    cx, cy = c.rng.uniform(0.2, 0.8), c.rng.uniform(0.2, 0.8)
    r = np.hypot(c.x - cx, c.y - cy)
    return c.ramp(0.5 + 0.45 * np.sin(2 * math.pi * c.freq * r + 2 * c.smooth(2)))


def _checks(c: _Canvas) -> Image.Image:
    cells = (np.floor(c.u * c.freq / 2) + np.floor(c.v * c.freq / 2)) % 2
    return c.ramp(0.15 + 0.6 * cells + 0.25 * c.smooth(3))


def _waves(c: _Canvas) -> Image.Image:
    bend = 0.12 * np.sin(2 * math.pi * (c.freq / 3) * c.v + c.rng.uniform(0, 6.3))
    return c.ramp(0.5 + 0.45 * np.sin(2 * math.pi * c.freq * (c.u + bend)))


def _dots(c: _Canvas) -> Image.Image:
    fu, fv = c.u * c.freq, c.v * c.freq
    fu, fv = fu - np.floor(fu) - 0.5, fv - np.floor(fv) - 0.5
    inside = np.clip((c.rng.uniform(0.25, 0.38) - np.hypot(fu, fv)) * 20, 0, 1)
    return c.ramp(0.1 + 0.8 * inside * (0.6 + 0.4 * c.smooth(2)))


def _shapes(c: _Canvas, polygons: bool) -> Image.Image:
    base = c.ramp(0.15 * c.smooth(2) + (0.05 if polygons else 0.5 * c.y + 0.3))
    draw, s = ImageDraw.Draw(base), c.size
    for _ in range(int(c.rng.integers(6, 14))):
        if polygons:
            points = [tuple(p) for p in (c.rng.uniform(-0.1, 1.1, (3, 2)) * s).tolist()]
            draw.polygon(points, fill=c.color())
        else:
            x0, y0 = c.rng.uniform(-0.1, 0.9, 2) * s
            w, h = c.rng.uniform(0.08, 0.35, 2) * s
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=c.color())
    return base


_FAMILIES: tuple[Callable[[_Canvas], Image.Image], ...] = (
    _stripes,
    lambda c: _shapes(c, polygons=False),
    lambda c: _shapes(c, polygons=True),
    _clouds,
    _rings,
    _checks,
    _waves,
    _dots,
)
_FAMILY_NAMES = ("stripes", "blobs", "polygons", "clouds", "rings", "checks", "waves", "dots")
