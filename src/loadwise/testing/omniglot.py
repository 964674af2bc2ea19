"""``make_omniglot_tree``: an Omniglot-shaped folder of hand-drawn-looking characters, rendered
from the fonts on this machine, one alphabet per Unicode script."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loadwise.errors import ConfigError
from loadwise.testing import glyphs
from loadwise.testing._common import check_int, check_root, run_jobs

log = logging.getLogger(__name__)


_Pool = tuple[str, str, list[str]]  # script name, font path, the characters it draws


@dataclass(frozen=True)
class _Script:
    """A Unicode script: its name, codepoint ranges (inclusive) and a font file-name hint."""

    name: str
    ranges: tuple[tuple[int, int], ...]
    hint: str = ""


# Order matters: real scripts come first, so small trees get the most letter-like alphabets.
SCRIPTS = (
    _Script("Latin", ((0x41, 0x5A), (0x61, 0x7A), (0x30, 0x39), (0xC0, 0x24F))),
    _Script("Greek", ((0x391, 0x3A9), (0x3B1, 0x3C9), (0x3CA, 0x3FF))),
    _Script("Cyrillic", ((0x410, 0x44F), (0x400, 0x40F), (0x450, 0x4FF))),
    _Script("Armenian", ((0x531, 0x58F),), "armenian"),
    _Script("Hebrew", ((0x5D0, 0x5EA),), "hebrew"),
    _Script("Georgian", ((0x10A0, 0x10FF),), "georgian"),
    _Script("Arabic", ((0x620, 0x64A), (0x671, 0x6D3)), "arabic"),
    _Script("Runic", ((0x16A0, 0x16F8),), "runic"),
    _Script("Ogham", ((0x1680, 0x169C),), "ogham"),
    _Script("Tifinagh", ((0x2D30, 0x2D7F),), "tifinagh"),
    _Script("Cherokee", ((0x13A0, 0x13F5),), "cherokee"),
    _Script("Canadian_Syllabics", ((0x1400, 0x167F),), "canadianaboriginal"),
    _Script("Braille", ((0x2801, 0x28FF),), "symbols2"),
    _Script("Lao", ((0xE81, 0xEDF),), "lao"),
    _Script("N_Ko", ((0x7C0, 0x7FA),), "nko"),
    _Script("Coptic", ((0x2C80, 0x2CFF),), "coptic"),
    _Script("Ethiopic", ((0x1200, 0x137F),), "ethiopic"),
    _Script("Thai", ((0xE01, 0xE3A),), "thai"),
    _Script("Devanagari", ((0x904, 0x939),), "devanagari"),
    _Script("Syriac", ((0x710, 0x74F),), "syriac"),
    _Script("Thaana", ((0x780, 0x7B1),), "thaana"),
    _Script("Mongolian", ((0x1820, 0x1878),), "mongolian"),
    _Script("Glagolitic", ((0x2C00, 0x2C5F),), "glagolitic"),
    _Script("Vai", ((0xA500, 0xA62B),), "vai"),
    _Script("Bamum", ((0xA6A0, 0xA6EF),), "bamum"),
    _Script("Hiragana", ((0x3041, 0x3096),), "cjk"),
    _Script("Katakana", ((0x30A1, 0x30FA),), "cjk"),
    _Script("Hangul_Jamo", ((0x3131, 0x318E),), "cjk"),
    _Script("Gothic", ((0x10330, 0x1034A),), "gothic"),
    _Script("Phoenician", ((0x10900, 0x1091B),), "phoenician"),
    _Script("Linear_B", ((0x10000, 0x1005D),), "linearb"),
    _Script("IPA", ((0x250, 0x2AF),)),
    _Script("Letterlike_Symbols", ((0x2100, 0x214F),), "math"),
    _Script("Currency", ((0x20A0, 0x20C0), (0x24, 0x24), (0xA2, 0xA5))),
    _Script("Arrows", ((0x2190, 0x21FF), (0x27F0, 0x27FF), (0x2900, 0x297F)), "math"),
    _Script("Math_Operators", ((0x2200, 0x22FF),), "math"),
    _Script("Misc_Math_Symbols", ((0x27C0, 0x27EF), (0x2980, 0x29FF)), "math"),
    _Script("Misc_Technical", ((0x2300, 0x23FF),), "symbols"),
    _Script("Enclosed_Alphanumerics", ((0x2460, 0x24FF),), "symbols"),
    _Script("Box_Drawing", ((0x2500, 0x257F),), "symbols"),
    _Script("Geometric_Shapes", ((0x25A0, 0x25FF),), "symbols"),
    _Script("Misc_Symbols", ((0x2600, 0x26FF),), "symbols"),
    _Script("Dingbats", ((0x2700, 0x27BF),), "symbols"),
)


@dataclass(frozen=True)
class OmniglotTree:
    """What ``make_omniglot_tree`` wrote: ``root/<alphabet>/characterNN/CCCC_DD.png``."""

    root: Path
    alphabets: tuple[str, ...]
    characters_per_alphabet: int
    drawings_per_character: int
    font: str

    @property
    def n_images(self) -> int:
        """Number of PNG files in the tree."""
        return len(self.alphabets) * self.characters_per_alphabet * self.drawings_per_character


@dataclass(frozen=True)
class Alphabet:
    """One planned alphabet: folder name, font path and the characters it draws."""

    name: str
    font: str
    texts: tuple[str, ...]


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs to draw every drawing of one character."""

    folder: Path
    font: str
    text: str
    number: str
    size: int
    drawings: int
    seeds: tuple[int, int, int]


def make_omniglot_tree(
    root: str | Path,
    *,
    alphabets: int = 30,
    characters: int = 30,
    drawings: int = 20,
    size: int = 105,
    seed: int = 0,
    workers: int = 1,
) -> OmniglotTree:
    """Write ``alphabets x characters x drawings`` grayscale PNGs shaped like Omniglot
    (``root/<Alphabet>/characterNN/CCCC_DD.png``), the same bytes for the same arguments."""
    check_int("alphabets", alphabets, 1)
    check_int("characters", characters, 1)
    check_int("drawings", drawings, 1)
    check_int("size", size, 16, 4096)
    check_int("seed", seed, 0)
    check_int("workers", workers, 1, 256)
    path = check_root(root)
    plan = plan_alphabets(alphabets, characters)
    path.mkdir(parents=True, exist_ok=True)
    jobs = _jobs(path, plan, drawings, size, seed)
    run_jobs(_draw_character, jobs, workers)
    fonts = dict.fromkeys(glyphs.font_label(a.font) for a in plan)
    return OmniglotTree(path, tuple(a.name for a in plan), characters, drawings, ", ".join(fonts))


def plan_alphabets(alphabets: int, characters: int) -> list[Alphabet]:
    """Choose ``alphabets`` alphabets of ``characters`` distinct characters each: one per
    covered script, then further parts of big scripts ("Latin_2"), then two-glyph pairs."""
    pools, biggest = _pools(alphabets, characters)
    parts = _allocate([len(texts) // characters for _, _, texts in pools], alphabets)
    if sum(parts) < alphabets:  # single glyphs ran out
        pools.append(_pairs(biggest, alphabets, characters))
        parts.append(min(alphabets - sum(parts), len(pools[-1][2]) // characters))
    if sum(parts) < alphabets:
        raise ConfigError(
            f"`alphabets` x `characters` is more than the fonts on this machine can draw: "
            f"at most {sum(parts)} alphabets of {characters} characters. Found: {alphabets}."
        )
    plan = []
    for (name, font, texts), count in zip(pools, parts, strict=True):
        for part in range(count):
            label = name if part == 0 else f"{name}_{part + 1}"
            chosen = texts[part * characters : (part + 1) * characters]
            plan.append(Alphabet(label, font, tuple(chosen)))
    return plan


def _pools(alphabets: int, characters: int) -> tuple[list[_Pool], _Pool]:
    """(script, font, characters) for scripts with at least ``characters`` characters drawn,
    in table order, stopping once there is one per alphabet asked for; and the biggest."""
    fonts = glyphs.find_fonts()
    if not fonts:
        log.warning("no fonts found (fc-list, /usr/share/fonts): drawing Pillow's default font")
        fonts = [glyphs.DEFAULT_FONT]
    seen: set[bytes] = set()
    pools: list[_Pool] = []
    biggest: _Pool = ("Latin", fonts[0], [])
    for script in SCRIPTS:
        font, texts, seen_after = _best_font(script, _candidates(fonts, script), seen)
        if len(texts) > len(biggest[2]):
            biggest = (script.name, font, texts)
        if len(texts) >= characters:
            seen = seen_after
            pools.append((script.name, font, texts))
        if len(pools) == alphabets:
            break
    return pools, biggest


def _candidates(fonts: list[str], script: _Script) -> list[str]:
    """Fonts worth checking for ``script``: all of a few, else the hinted ones and the top 4."""
    if len(fonts) <= 8:
        return fonts
    hinted = [f for f in fonts if script.hint and script.hint in glyphs.stem(f)]
    return hinted + [f for f in fonts[:4] if f not in hinted]


def _best_font(
    script: _Script, fonts: list[str], seen: set[bytes]
) -> tuple[str, list[str], set[bytes]]:
    """The font drawing the most new characters of ``script``: (font, characters, seen)."""
    best: tuple[str, list[str], set[bytes]] = (fonts[0], [], seen)
    for font in fonts:
        trial = set(seen)
        codepoints = (cp for low, high in script.ranges for cp in range(low, high + 1))
        texts = glyphs.drawable(font, codepoints, trial)
        if len(texts) > len(best[1]):
            best = (font, texts, trial)
    return best


def _pairs(pool: _Pool, alphabets: int, characters: int) -> _Pool:
    """Two-glyph characters ("ab") from the biggest pool, for when single glyphs run out."""
    name, font, singles = pool
    needed = alphabets * characters
    pairs = [a + b for step in range(1, len(singles)) for a, b in _shifted(singles, step)]
    return f"{name}_Pairs", font, pairs[:needed]


def _shifted(items: list[str], step: int) -> list[tuple[str, str]]:
    """Each item paired with the one ``step`` places further on, wrapping around."""
    return [(items[i], items[(i + step) % len(items)]) for i in range(len(items))]


def _allocate(capacities: list[int], wanted: int) -> list[int]:
    """Alphabets per pool: one each in order, then round-robin while capacity lasts."""
    parts = [0] * len(capacities)
    while sum(parts) < wanted:
        grew = False
        for i, cap in enumerate(capacities):
            if parts[i] < cap and sum(parts) < wanted:
                parts[i] += 1
                grew = True
        if not grew:
            break
    return parts


def _jobs(root: Path, plan: list[Alphabet], drawings: int, size: int, seed: int) -> list[_Job]:
    """One job per character, creating its folder; numbers run over the whole tree."""
    n_chars = len(plan[0].texts)
    width = max(2, len(str(n_chars)))
    number_width = max(4, len(str(len(plan) * n_chars)))
    jobs = []
    for a, alphabet in enumerate(plan):
        for c, text in enumerate(alphabet.texts):
            folder = root / alphabet.name / f"character{c + 1:0{width}d}"
            folder.mkdir(parents=True)
            number = f"{a * n_chars + c + 1:0{number_width}d}"
            jobs.append(_Job(folder, alphabet.font, text, number, size, drawings, (seed, a, c)))
    return jobs


def _draw_character(job: _Job) -> None:
    """Render the glyph once, then write each jittered drawing as a PNG."""
    glyph = glyphs.render_glyph(job.font, job.text, job.size)
    width = max(2, len(str(job.drawings)))
    for d in range(job.drawings):
        rng = np.random.default_rng([*job.seeds, d])
        drawing = glyphs.jittered_drawing(glyph, job.size, rng)
        drawing.save(job.folder / f"{job.number}_{d + 1:0{width}d}.png", format="PNG")
