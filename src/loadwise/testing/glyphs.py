"""Fonts and glyphs: find the fonts on this machine, keep the characters they really draw, and
turn one character into a hand-drawn-looking ``size x size`` drawing (black pen on white).
"""

from __future__ import annotations

import functools
import glob
import math
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageDraw, ImageFilter, ImageFont

DEFAULT_FONT = "pillow-default"  # stands for ``ImageFont.load_default`` wherever a path goes
_PREFERRED = ("notosansregular", "dejavusans", "notoserifregular", "dejavuserif", "freesans")
_STYLED = re.compile(  # matched against the file name as written: "DejaVuSans-ExtraLight"
    r"Bold|Italic|Oblique|Light|Thin|Black|Heavy|Medium|Semi|Extra|Condensed|Narrow|"
    r"Compressed|Display|UI|Emoji|Color"
)
_CHECK_PX = 32  # size of the renderings compared to find which characters a font draws
_EM = 0.9  # font size as a fraction of the frame: capitals fill about 2/3 of it
_GLYPH_PX = 190  # font size glyphs are traced at, whatever the frame size
_PEN = 7  # pen width at that size: about 3 px in a 105 px frame

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def find_fonts() -> list[str]:
    """Paths of the upright regular fonts installed here, most widely useful first."""
    paths = set(_fc_list()) | {
        p
        for ext in ("ttf", "otf", "ttc")
        for p in glob.glob(f"/usr/share/fonts/**/*.{ext}", recursive=True)
    }
    regular = [p for p in paths if not _STYLED.search(Path(p).stem) and _loads(p)]
    return sorted(regular, key=lambda p: (_rank(p), len(stem(p)), stem(p), p))


def font_label(path: str) -> str:
    """A short name for a font path, used in ``OmniglotTree.font``."""
    return DEFAULT_FONT if path == DEFAULT_FONT else Path(path).stem


@functools.lru_cache(maxsize=64)
def load_font(path: str, px: int) -> Font:
    """The font at ``path`` (or Pillow's built-in one) at ``px`` pixels per em."""
    if path == DEFAULT_FONT:
        return ImageFont.load_default(size=px)
    return ImageFont.truetype(path, px, layout_engine=ImageFont.Layout.BASIC)


def drawable(path: str, codepoints: Iterable[int], seen: set[bytes]) -> list[str]:
    """The characters among ``codepoints`` the font really draws, skipping blank, tiny and
    missing-glyph renderings and any shape already in ``seen`` (which is updated)."""
    font = load_font(path, _CHECK_PX)
    seen.add(_signature(font, chr(0x10FFFD)) or b"")  # the .notdef box of a missing glyph
    found = []
    for cp in codepoints:
        if unicodedata.category(chr(cp))[0] not in "LNS":
            continue
        sig = _signature(font, chr(cp))
        if sig is not None and sig not in seen:
            seen.add(sig)
            found.append(chr(cp))
    return found


def render_glyph(path: str, text: str, size: int) -> Image.Image:
    """``text`` traced with an even pen (ink 255 on 0), cropped to the ink: thin strokes along
    their middle line, thick parts (dots, filled shapes) along their outline. The pen is at
    least 2 px wide once shrunk into a ``size`` frame."""
    pen = max(_PEN, 2 * math.ceil(_GLYPH_PX / (size * _EM)) + 1)
    mask = np.pad(np.asarray(_ink(load_font(path, _GLYPH_PX), text)) > 127, pen)
    radius = _GLYPH_PX // 14
    blobs = _grow(_shrink(mask, radius), radius)  # parts too thick to be one pen stroke
    lines = skeleton(mask & ~(blobs & _shrink(mask, _PEN)))  # ... are drawn as their outline
    strokes = Image.fromarray(np.where(lines, 255, 0).astype(np.uint8))
    strokes = strokes.filter(ImageFilter.MaxFilter(pen))
    return strokes.crop(strokes.getbbox() or (0, 0, 1, 1))


def jittered_drawing(glyph: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    """One drawing of ``glyph``: random rotation, scale, shear, shift, wobble, pen width and
    rough edges, binarised to black (0) on white (255) and kept inside the frame."""
    matrix = _random_matrix(rng) * (size * _EM / _GLYPH_PX)
    matrix, centre = _place(glyph.size, matrix, size, rng)
    mesh = _mesh(glyph.size, matrix, centre, size, rng)
    ink = glyph.transform((size, size), Image.Transform.MESH, mesh, Image.Resampling.BILINEAR)
    if size >= 48 and rng.random() < 0.25:  # a broader pen
        ink = ink.filter(ImageFilter.MaxFilter(2 * round(size / 105) + 1))
    gray = np.asarray(ink, dtype=np.float64).copy()
    edge = (gray > 0) & (gray < 255)  # noise only roughens the stroke edges
    gray[edge] += rng.normal(0.0, 30.0, int(edge.sum()))
    return Image.fromarray(np.where(gray > rng.uniform(100, 140), 0, 255).astype(np.uint8))


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean mask to one-pixel-wide strokes."""
    img = np.pad(mask, 1).astype(np.uint8)
    changed = True
    while changed:
        changed = False
        for step in (0, 1):
            c = img[1:-1, 1:-1]
            p2, p3, p4 = img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:]
            p5, p6, p7 = img[2:, 2:], img[2:, 1:-1], img[2:, :-2]
            p8, p9 = img[1:-1, :-2], img[:-2, :-2]
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            count = sum(p.astype(np.int8) for p in ring[:8])
            turns = sum((a == 0) & (b == 1) for a, b in zip(ring[:-1], ring[1:], strict=True))
            if step == 0:
                side = ((p2 & p4 & p6) == 0) & ((p4 & p6 & p8) == 0)
            else:
                side = ((p2 & p4 & p8) == 0) & ((p2 & p6 & p8) == 0)
            remove = (c == 1) & (count >= 2) & (count <= 6) & (turns == 1) & side
            if remove.any():
                c[remove] = 0
                changed = True
    return img[1:-1, 1:-1].astype(bool)


def _shrink(mask: np.ndarray, radius: int) -> np.ndarray:
    """Erosion of a boolean mask by a square of side ``2 * radius + 1``."""
    return ~_grow(~mask, radius)


def _grow(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilation of a boolean mask by a square of side ``2 * radius + 1`` (separable)."""
    if radius < 1:
        return mask
    out = np.pad(mask, radius)
    for axis in (0, 1):
        out = sliding_window_view(out, 2 * radius + 1, axis=axis).max(axis=-1)
    return np.asarray(out)


def _random_matrix(rng: np.random.Generator) -> np.ndarray:
    """Random 2x2 map, about unit scale: rotation, scale, shear and squash."""
    angle = math.radians(rng.uniform(-12.0, 12.0))
    rotate = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shear = np.array([[1.0, rng.uniform(-0.15, 0.15)], [0.0, 1.0]])
    squash = rng.uniform(0.92, 1.08)
    scale = rng.uniform(0.8, 1.05)
    return np.asarray(scale * rotate @ shear @ np.diag([squash, 1.0 / squash]))


def _place(
    glyph_size: tuple[int, int], matrix: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shrink ``matrix`` until the glyph fits the frame, and pick a shift of a few pixels."""
    w, h = glyph_size
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], dtype=float) / 2
    half = np.abs(corners @ matrix.T).max(axis=0)
    room = size / 2 - max(3.0, 0.07 * size)
    shrink = min(1.0, room / max(half.max(), 1e-6))
    slack = np.clip(room - half * shrink, 0.0, 0.05 * size)
    return matrix * shrink, size / 2 + rng.uniform(-slack, slack)


def _mesh(
    glyph_size: tuple[int, int],
    matrix: np.ndarray,
    centre: np.ndarray,
    size: int,
    rng: np.random.Generator,
    cells: int = 4,
) -> list[tuple[tuple[int, int, int, int], tuple[float, ...]]]:
    """PIL MESH data: each frame cell maps to a source quad; node wobble bends the strokes."""
    edges = np.round(np.linspace(0, size, cells + 1)).astype(int)
    nodes = np.stack(np.meshgrid(edges, edges, indexing="xy"), axis=-1).astype(float)
    nodes += rng.normal(0.0, 0.012 * size, nodes.shape)
    source = (nodes - centre) @ np.linalg.inv(matrix).T + np.asarray(glyph_size) / 2
    mesh = []
    for i in range(cells):
        for j in range(cells):
            nw, sw, se, ne = source[i, j], source[i + 1, j], source[i + 1, j + 1], source[i, j + 1]
            box = (int(edges[j]), int(edges[i]), int(edges[j + 1]), int(edges[i + 1]))
            mesh.append((box, tuple(float(v) for v in (*nw, *sw, *se, *ne))))
    return mesh


def _ink(font: Font, text: str) -> Image.Image:
    """``text`` drawn in white on black with a little room, cropped to its ink."""
    left, top, right, bottom = (int(v) for v in font.getbbox(text))
    im = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(im).text((2 - left, 2 - top), text, font=font, fill=255)
    return im.crop(im.getbbox() or (0, 0, 1, 1))


def _signature(font: Font, text: str) -> bytes | None:
    """Bytes identifying the rendered shape of ``text``; None when blank or tiny."""
    ink = _ink(font, text)
    if ink.getbbox() is None or max(ink.size) < _CHECK_PX // 4:
        return None
    return f"{ink.size}".encode() + ink.tobytes()


def _fc_list() -> list[str]:
    """Font files fontconfig knows about, or none when ``fc-list`` is missing or fails."""
    exe = shutil.which("fc-list")
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--format", "%{file}\n"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line for line in out.splitlines() if line.lower().endswith((".ttf", ".otf", ".ttc"))]


def _loads(path: str) -> bool:
    """Whether FreeType can open the font at a scalable size (colour bitmap fonts cannot)."""
    try:
        load_font(path, _CHECK_PX)
    except OSError:
        return False
    return True


def stem(path: str) -> str:
    """The file name without extension, lowercase letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", Path(path).stem.lower())


def _rank(path: str) -> int:
    """Position of the font among the general-purpose families, or after them."""
    name = stem(path)
    return _PREFERRED.index(name) if name in _PREFERRED else len(_PREFERRED)
