"""Which way up the text lines of a page are (0 or 180 degrees along each axis), cheaply.

Line finding sees 0 and 180 degrees (and 90 and 270) alike; reading every line both ways doubles the OCR.
- `guess`: forms and cards align the starts of their lines (labels, table cells, left margins) and leave
  their ends ragged, so the end that lines up better is probably where reading starts. A guess only: it
  decides which way the lines are read first, never what is accepted.
- Confirmation, per quarter of the page (copies pasted on a sheet may each lie at their own angle): a
  digit row read the guessed way that is `self_evident` (many sure digits, some without an upside-down
  twin) confirms its quarter. In a quarter without one, a probe line is also read the other way and votes
  with `probe_vote`. Votes that disagree, or no vote at all, leave "both": the lines are read both ways.
"""
from __future__ import annotations

import unicodedata
from typing import Iterable, Sequence

import numpy as np

from . import candidates

SURE_CONF = 85.0      # tesseract confidence of a digit read upright
SELF_EVIDENT = 10     # sure digits in one reading that upside-down text has not given (max 8 in 1,342 rows)
TWINLESS = frozenset("23457")
MIN_DIGITS = 6        # a probe speaks when it reads at least this many sure digits one way ...
MARGIN = 2            # ... and more than twice as many (plus this) as the other way


def _aligned_pairs(values: np.ndarray, tolerance: float) -> int:
    v = np.sort(values)
    return int(sum(np.searchsorted(v, v[i] + tolerance, side="right") - i - 1 for i in range(len(v))))


def guess(lines: Sequence[candidates.Line]) -> dict[str, str]:
    """Per axis, "f" when reading probably goes along +direction, else "r"."""
    out = {}
    for axis in sorted({ln.axis for ln in lines}):
        group = [ln for ln in lines if ln.axis == axis]
        k = 0 if axis == "h" else 1
        centre = np.array([ln.center[k] for ln in group])
        half = np.array([ln.length / 2 for ln in group])
        tolerance = 0.25 * float(np.median([ln.text_height for ln in group]))
        starts, ends = _aligned_pairs(centre - half, tolerance), _aligned_pairs(centre + half, tolerance)
        out[axis] = "r" if ends > starts else "f"
    return out


def quarter(line: candidates.Line, size: tuple[int, int]) -> tuple[int, int]:
    """Which quarter of the page the line is in (copies pasted on a sheet may each lie at their own angle)."""
    w, h = size
    return int(line.center[0] * 2 // max(w, 1)), int(line.center[1] * 2 // max(h, 1))


def pick(rows: Sequence[tuple[candidates.Line, int]]) -> candidates.Line:
    """The probe among (line, digit run): the longest run (up to 12 digits), then the shortest line
    (reading it the other way costs in proportion to its length)."""
    return min(rows, key=lambda p: (-min(p[1], 12), p[0].length / max(p[0].text_height, 1.0)))[0]


def sure_digits(words: Iterable) -> int:
    """Digits read as digits (no letters taken for digits) with high confidence."""
    return sum(ch.isascii() and ch.isdigit() for w in words if w.conf >= SURE_CONF
               for ch in unicodedata.normalize("NFKC", w.text))


def self_evident(words: Iterable) -> bool:
    """A reading only upright text gives: many sure digits, some of them digits without an upside-down
    twin (a row of 0, 1, 6, 8 and 9 reads as digits both ways)."""
    sure = [ch for w in words if w.conf >= SURE_CONF for ch in unicodedata.normalize("NFKC", w.text)
            if ch.isascii() and ch.isdigit()]
    return len(sure) >= SELF_EVIDENT and sum(ch in TWINLESS for ch in sure) >= 3


def probe_vote(along: Iterable, reversed_: Iterable) -> str | None:
    """"f", "r" or None from one line read both ways."""
    f, r = sure_digits(along), sure_digits(reversed_)
    if f >= MIN_DIGITS and f >= 2 * r + MARGIN:
        return "f"
    if r >= MIN_DIGITS and r >= 2 * f + MARGIN:
        return "r"
    return None


def verdict(votes: Iterable[str | None]) -> str:
    """"f" or "r" when the votes that say something agree, else "both"."""
    said = {v for v in votes if v}
    return said.pop() if len(said) == 1 else "both"
