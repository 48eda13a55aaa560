"""A second reader: the scan pipeline's digit classifier, glyph by glyph.

On a harsh copy (faint, noisy, blurred) tesseract can garble a printed number into letters and signs that are
not a number, and a proof that only asks tesseract again would call the page clean while a person can still
read the number. This reader does not depend on tesseract: the digit-like glyphs that `glyphs.py` finds on a
line are cut one by one (touching digits split by width) from the grey line image, thresholded per glyph
(Otsu: each glyph finds its own ink level), drawn as the classifier's 28 x 28 input the way `prepare_box`
draws a box's digit, and classified (pipeline/scan/digits.py, trained on printed digits in many fonts as well
as handwriting; the caller may pass the ensemble's first network alone: on the harsh benchmark copies it sees
as many numbers as the ensemble, at half the cost). A run of exactly 12 digits read with confidence, close
together, whose check digit holds, is a number: the analysis covers it where tesseract read none, and the
proof fails a page on which it still reads one. Both ways up: which way the line is upright is not assumed.

Nothing here logs digits; the spans it returns keep them in memory only (their repr masks them).
"""
from __future__ import annotations

import cv2
import numpy as np

from .. import number
from ..scan.digits import mask_to_input
from . import glyphs
from .digits import Span

MIN_CONFIDENCE = 0.9     # a glyph read as a digit with less is not a digit here (letters, broken glyphs)
MAX_GAP = 3.0            # glyph heights between two digits of one number (full-width groups stay below)


def _glyph_input(grey: np.ndarray, x0: int, y: int, x1: int, h: int) -> np.ndarray | None:
    pad = 3
    patch = grey[max(0, y - pad): y + h + pad, max(0, x0 - pad): x1 + pad]
    if patch.size == 0:
        return None
    patch = cv2.GaussianBlur(patch, (0, 0), 0.8)
    _, ink = cv2.threshold(patch, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= 0.2 * areas.max()      # noise specks in the glyph's box are not part of it
    mask = keep[labels]
    ys, xs = np.nonzero(mask)
    return mask_to_input(mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1])


def _numbers(probs: np.ndarray, where: list[tuple]) -> list[tuple[int, int, str]]:
    """Runs of exactly 12 confident digits in glyph readings in reading order, each within MAX_GAP glyph
    heights of the next, with a valid check digit (a longer run is another kind of number, as in the
    analysis): (first glyph, last glyph + 1, digits)."""
    sure = probs.max(axis=1) >= MIN_CONFIDENCE
    digits = probs.argmax(axis=1)
    n, start, out = len(sure), None, []
    for i in range(n + 1):
        if i < n and sure[i] and start is not None and _gap(where[i - 1], where[i]) <= MAX_GAP * where[i][3]:
            continue
        if start is not None and i - start == number.LENGTH:
            read = "".join(str(int(d)) for d in digits[start:i])
            if number.is_valid_digits(read):
                out.append((start, i, read))
        start = i if i < n and sure[i] else None
    return out


def _could_hold_number(where: list[tuple]) -> bool:
    """Whether the glyphs hold 12 in a row within MAX_GAP of each other at all (the classifier need not look
    at a line of scattered glyphs: a date, a phone number)."""
    run = 1
    for a, b in zip(where, where[1:]):
        run = run + 1 if _gap(a, b) <= MAX_GAP * b[3] else 1
        if run >= number.LENGTH:
            return True
    return False


def _gap(a: tuple, b: tuple) -> float:
    return max(b[0] - (a[0] + a[2]), a[0] - (b[0] + b[2]), 0)


def _glyph_images(binary: np.ndarray, grey: np.ndarray, text_height: float) -> tuple[list, list[tuple]]:
    """The classifier's inputs for the line's glyphs, left to right, and where each glyph is (x, y, w, h)."""
    images, where = [], []
    for x, y, w, h, wide in glyphs.glyph_boxes(binary, text_height):
        for k in range(wide):
            x0, x1 = x + (w * k) // wide, x + (w * (k + 1)) // wide
            image = _glyph_input(grey, x0, y, x1, h)
            if image is not None:
                images.append(image)
                where.append((x0, y, x1 - x0, h))
    return images, where


def _both_ways(classifier, images: list) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities for the glyphs as they are and turned half a turn (in the same glyph order), one call."""
    batch = np.stack(images)
    probs = classifier.predict_proba(np.concatenate([batch, batch[:, ::-1, ::-1]]))
    return probs[:len(batch)], probs[len(batch):]


def read_numbers(binary: np.ndarray, grey: np.ndarray, text_height: float, classifier) -> list[Span]:
    """The valid 12-digit numbers the classifier reads on a line, either way up: `binary` the binarised line
    crop (where the glyphs are found), `grey` the same crop unbinarised (what is read), dark ink on light.
    Each is a Span whose box (in `binary`'s pixels) holds its 12 glyphs; its digits stay in memory only."""
    images, where = _glyph_images(binary, grey, text_height)
    if not _could_hold_number(where):
        return []
    upright, turned = _both_ways(classifier, images)
    n = len(where)
    runs = [(a, b, read, upright[a:b]) for a, b, read in _numbers(upright, where)]
    runs += [(n - b, n - a, read, turned[n - b:n - a]) for a, b, read in _numbers(turned[::-1], where[::-1])]
    out = []
    for a, b, read, p in runs:
        boxes = where[a:b]
        box = (float(min(x for x, _, _, _ in boxes)), float(min(y for _, y, _, _ in boxes)),
               float(max(x + w for x, _, w, _ in boxes)), float(max(y + h for _, y, _, h in boxes)))
        out.append(Span(read, True, round(100.0 * float(p.max(axis=1).mean()), 1), box, 1))
    return out


def read_digits(binary: np.ndarray, grey: np.ndarray, text_height: float, classifier) -> tuple[str | None, str | None]:
    """Every glyph of the line read as a digit, in reading order: (along the crop, the other way up), each
    None unless every glyph was read with confidence. In memory only: the caller compares, never shows."""
    images, _ = _glyph_images(binary, grey, text_height)
    if not images:
        return None, None
    upright, turned = _both_ways(classifier, images)

    def digits_of(probs: np.ndarray) -> str | None:
        if (probs.max(axis=1) < MIN_CONFIDENCE).any():
            return None
        return "".join(str(int(d)) for d in probs.argmax(axis=1))

    return digits_of(upright), digits_of(turned[::-1])
