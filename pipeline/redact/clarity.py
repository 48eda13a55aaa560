"""Is a line's reading clear? The rules that decide whether tesseract's reading of a row of digit-like glyphs
(glyphs.py) can be trusted as it stands, or the row needs another reading: read again larger, by the digit
classifier (glyphreader.py), or, in the proof, left to a person (`unaccounted_lines`). Pure functions of the
words read and where the row lies on the line; no OCR, no images.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import number
from . import candidates, digits


@dataclass
class Reading:
    """One reading of a line: the crop read (which way, at what scale), tesseract's words, the image read."""
    crop: candidates.LineCrop
    words: list
    image: np.ndarray | None = field(default=None, repr=False)   # what tesseract read (binarised crop)


def words_over(reading: Reading, row: tuple[float, float]) -> list:
    """The words of a reading over the row (where it starts and ends, as fractions of the line's crop read
    along the line)."""
    width = reading.crop.size[0]
    start, end = (1 - row[1], 1 - row[0]) if reading.crop.reverse else row
    return [w for w in reading.words if w.left < end * width and w.right > start * width]


def unsure_over(reading: Reading, row: tuple[float, float]) -> bool:
    """Whether a word over the row was read with less confidence than GLYPH_CHECK_BELOW_CONF."""
    return any(float(w.conf) < GLYPH_CHECK_BELOW_CONF for w in words_over(reading, row))


def garbled_over(reading: Reading, row: tuple[float, float]) -> bool:
    """Whether the row was read as nothing but words without confidence and few digits: a number's worth of
    digit-like glyphs that tesseract made nothing of ('PKAT SEIZE' for a blurred, noisy number). Kanji labels
    next to the row are not over it; a word read with confidence (a date's year, 'PASSPORT') means text."""
    words = words_over(reading, row)
    n_digits = sum(c.isascii() and c.isdigit() for w in words for c in digits.clean_word(w.text))
    return bool(words) and n_digits < UNPROVEN_MIN_DIGITS and all(float(w.conf) < UNPROVEN_MIN_CONF for w in words)


def reads_clearly(words, run: int = 0) -> bool:
    """Whether a line's reading leaves no doubt about its digits. Clear: few digits at all (it is text; a word
    of letters with a digit in it is text), or every word that is mostly digits read with confidence and
    made of digits and ordinary separators only. Not clear: 12 digits whose check digit fails read without
    confidence (one digit misread?), a number's worth of digits read without confidence, fewer than 12 digits
    with a word of letters between them ('123 a5 678': digits read as letters), or marks inside the digits
    of a long row ('§234:5678': a glyph read as a sign is a digit the reading lost). With `run` (the line's
    row of digit-like glyphs) of a number's length or more, fewer than 12 digits next to a word read without
    confidence whose letters are mostly ones digits are taken for are not clear either ('SOTE 4166 6890': the
    first group read as letters; a label read as 'Reed' next to a passport number is text)."""
    with_digits, others = [], []
    ordered = sorted(words, key=lambda w: w.left)
    for k, w in enumerate(ordered):
        text = digits.clean_word(w.text)
        alnum = sum(c.isalnum() for c in text)
        n = sum(c.isascii() and c.isdigit() for c in text)
        if n and n >= 0.6 * alnum:
            with_digits.append((w, text, n, k))
        elif alnum:
            others.append(k)
    total = sum(n for _, _, n, _ in with_digits)
    if total < UNPROVEN_MIN_DIGITS:
        return True
    first, last = with_digits[0][3], with_digits[-1][3]
    if total < 12 and any(first < k < last for k in others):
        return False    # a word of letters between groups of digits: digits read as letters
    beside = [ordered[k] for k in others if k in (first - 1, last + 1)]
    if total < 12 and run >= number.LENGTH and any(
            float(w.conf) < UNPROVEN_MIN_CONF and digits.looks_like_digits(w.text) for w in beside):
        return False    # a row long enough for a number, and a group of it read as an unsure word of letters
    if any(not s.valid and s.conf < UNPROVEN_SPAN_CONF for s in digits.spans(digits.tokens_from_words(words))):
        return False
    if total >= 12 and any(float(w.conf) < UNPROVEN_MIN_CONF for w, _, _, _ in with_digits):
        return False    # a number's worth of digits, read without confidence (an 11-digit phone number may be)
    return not (total >= 10 and any(c in MARKS for _, text, _, _ in with_digits for c in text))


MARKS = set("§:;¢£¥$%&@#?¿!|+=<>()[]{}")   # what tesseract makes of a digit under noise; letters are text


def unaccounted_rows(rows, readings) -> int:
    """How many rows `unaccounted_lines` finds."""
    return len(unaccounted_lines(rows, readings))


def unaccounted_lines(rows, readings) -> list[tuple]:
    """Rows of at least 10 digit-like glyphs (glyphs.py) whose line is not read clearly every way it was read.

    On a noisy, blurred, low-contrast copy tesseract may garble a number into something that is not a valid
    number; the proof would then call a page clean on which a person can still read the number. Such a row
    leaves the page unproven: it is not written, and goes to a person. A row read clearly as something else
    (a 13-digit corporate number, a date) is accounted for."""
    by_line: dict = {}
    ways: dict = {}
    for r in readings:
        by_line.setdefault(r.crop.line, []).append(r.words)
        ways.setdefault(r.crop.line, set()).add(r.crop.reverse)
    # every reading must be clear: where the way up is not known the line is read both ways, and the wrong
    # way's garble (few digits) must not vouch for a garbled right way
    return [(ln, tuple(sorted(ways.get(ln, {False})))) for ln, run in rows
            if run >= UNPROVEN_MIN_RUN and not all(reads_clearly(ws, run) for ws in by_line.get(ln, []))]


GLYPH_CHECK_BELOW_CONF = 80.0  # lines with a word read less surely than this are read again by glyphreader
UNPROVEN_MIN_RUN = 10         # rows this long are checked (a glyph or two of a number may merge or be cut off)
UNPROVEN_MIN_DIGITS = 8       # a reading with fewer digits is text, not a garbled number
UNPROVEN_MIN_CONF = 50.0      # tesseract word confidence of a clear reading
UNPROVEN_SPAN_CONF = 92.0     # ... and of 12 digits whose check digit fails (not a number only if read surely)
