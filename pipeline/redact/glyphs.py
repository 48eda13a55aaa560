"""Does a straightened line hold a row of digit-like glyphs? (OpenCV only, no OCR)

Reading a line with tesseract costs about 10 ms, and most candidate lines of an ID copy are kanji and kana
(names, addresses, labels). A printed number is a row of glyphs of one height, each simple in shape: a
vertical cut crosses at most three strokes and at most two holes are enclosed. Most kanji are complex on
one of the two counts. `digit_row` finds the longest such row; a complex glyph of the same height ends the
row, smaller parts (hyphens, broken strokes, small kana) are skipped. On a harsh copy noise can make a digit
or two complex (ragged edges cross a column more often, light specks in a stroke count as holes): such a
glyph counts as a digit when it is shaped and placed like the row's digits (see `_Row.takes_blot`). The
analyser reads only lines whose row could hold a number (see `OcrNumberAnalyzer.min_digits`).
"""
from __future__ import annotations

import cv2
import numpy as np

MAX_CROSSINGS = 3
MAX_HOLES = 2                  # per digit ("8")
MIN_HOLE = 0.008               # of the glyph height squared: smaller holes are noise, not a counter of a digit
# Complex glyphs inside a row counted as blotted digits, two per row (12 digits with more than two blotted are
# left to the proof's other checks). Kanji must not pass for blotted digits, or dates and addresses (年 is
# simple, 月 is not) grow into number-long rows. So a blot must
# - be no wider than the row's digits and narrow for its height: digits are 0.6-0.75 as wide as high, kanji
#   about square; 月, one of the narrowest, comes to 0.75-0.87 on a blurred copy (and so a blotted bold digit,
#   0.7-0.83, is not counted);
# - be narrow on the page as well: the crop of a widely spaced line is squeezed along it (candidates.crops_for),
#   which makes kanji as narrow as digits;
# - follow a few digits of the row: a blot among the first three costs at most three digits, which
#   `OcrNumberAnalyzer.min_digits` allows for.
MAX_BLOTS = 2
BLOT_AFTER = 3                 # digits' worth of the row before a blot
BLOT_ASPECT = 0.75             # widest blot for its height, in the crop
BLOT_PAGE_ASPECT = 0.8         # ... and on the page (full-width digits are 0.67-0.73 there, most kanji 0.9-1)
BLOT_HEIGHT = (0.85, 1.12)     # of the row's digit height
DIGIT_WIDTH = 0.6              # narrowest digit but 1, of its height: a row of 1s does not make every blot wide


def _glyphs(img: np.ndarray, text_height: float):
    """Glyph-sized components of a binarised line (dark ink on white): x, y, w, h, digits wide, simple."""
    ink = (img < 128).astype(np.uint8)
    try:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8, ltype=cv2.CV_16U)
    except cv2.error:       # more than 65,534 specks: 32-bit labels
        n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8, ltype=cv2.CV_32S)
    stats = stats[1:]
    height = ink.shape[0]
    # components spanning the whole crop are ruling lines or covered areas, not glyphs
    ids = np.nonzero((stats[:, 3] >= 0.4 * text_height) & (stats[:, 3] < 0.97 * height) & (stats[:, 4] >= 10))[0]
    if not len(ids):
        return None
    m, width = len(ids), ink.shape[1]
    index = np.full(n, -1, np.int64)
    index[ids + 1] = np.arange(m)
    # strokes crossed by each column: where ink starts going down the column, per component
    starts = ink.copy()
    starts[1:] &= ink[:-1] ^ 1
    ys, xs = np.nonzero(starts)
    owner = index[labels[ys, xs]]
    mine = owner >= 0
    per_column = np.bincount(owner[mine] * width + xs[mine], minlength=m * width).reshape(m, width)
    inked = (per_column > 0).sum(1)
    ranked = -np.sort(-per_column, axis=1)
    crossings = ranked[np.arange(m), (0.2 * np.maximum(inked - 1, 0)).astype(int)]    # ~80th percentile
    holes = np.zeros(m, np.int64)
    contours, hierarchy = cv2.findContours(ink, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is not None:
        for contour, (_, _, _, parent) in zip(contours, hierarchy[0]):
            if parent < 0:
                continue
            px, py = contours[parent][0][0]
            k = index[labels[py, px]]
            if k >= 0 and cv2.contourArea(contour) >= max(4.0, MIN_HOLE * float(stats[ids[k], 3]) ** 2):
                holes[k] += 1
    x, y, w, h = (stats[ids, i].astype(float) for i in range(4))
    wide = np.where(w <= 1.05 * h, 1, np.rint(w / (0.65 * h))).astype(int)     # touching digits
    simple = (crossings <= MAX_CROSSINGS) & (holes <= MAX_HOLES * wide) & (wide <= 6)
    return x, y, w, h, wide, simple


Box = tuple[float, float, float, float]    # x, y, w, h


class _Row:
    """A row of digit-like glyphs being followed left to right. `last`: its last glyph; `ref`: its last simple
    glyph (the height band the row keeps to); `pending`: blots not yet followed by a simple glyph (a row
    does not end in a blot: a complex glyph after a number is text)."""

    def __init__(self, box: Box, wide: int):
        self.ref = self.last = box
        self.start = box[0]
        self.count, self.pending, self.blots = wide, 0, 0
        self.sizes = [box[2:]] if wide == 1 else []      # (w, h) of its simple glyphs one digit wide

    def smaller_part(self, box: Box) -> bool:
        """A part smaller than the row's glyphs inside its band (hyphen, broken stroke, small kana)."""
        _, gy, _, gh = box
        _, ry, _, rh = self.ref
        return gh < 0.72 * rh and gy >= ry - 0.15 * rh and gy + gh <= ry + 1.15 * rh

    def stray_speck(self, box: Box) -> bool:
        """A noise speck, at most about half the row's glyph height, lying mostly above or below the row's
        band: skipped, or it would start a row of its own and cut a number in two."""
        _, gy, gw, gh = box
        _, ry, _, rh = self.ref
        inside = min(gy + gh, ry + rh) - max(gy, ry)
        return gh < 0.55 * rh and gw < 0.6 * rh and (gy + gh <= ry + 0.3 * rh or gy >= ry + 0.7 * rh
                                                      or inside < 0.5 * gh)

    def continues(self, box: Box, gap: float) -> bool:
        """Whether a glyph is close enough to the row's last glyph and in its height band."""
        gx, gy, _, gh = box
        lx, _, lw, lh = self.last
        _, ry, _, rh = self.ref
        size = max(gh, rh)
        return (gx - (lx + lw) <= gap * max(gh, lh) and gh <= 1.39 * rh and abs(gy + gh - ry - rh) <= 0.25 * size
                and abs(gy - ry) <= 0.25 * size)

    def add(self, box: Box, wide: int) -> None:
        """A simple glyph in the row: it and the blots before it count."""
        self.count += self.pending + wide
        self.pending = 0
        self.ref = self.last = box
        if wide == 1:
            self.sizes.append(box[2:])

    def takes_blot(self, box: Box, squeeze: float) -> bool:
        """Whether a complex glyph in the row's band can be a blotted digit of it: a budget left, a few digits
        before it, and the height and width of a digit of this row rather than of a kanji (see MAX_BLOTS).
        `squeeze`: the crop's width for the page's (1: not squeezed)."""
        if self.blots >= MAX_BLOTS or self.count < BLOT_AFTER or not self.sizes:
            return False
        _, _, gw, gh = box
        sizes = np.array(self.sizes, dtype=float)
        height = float(np.median(sizes[:, 1]))
        width = float(np.percentile(sizes[:, 0], 75))     # the row's wider digits: digits differ in width
        return (BLOT_HEIGHT[0] * height <= gh <= BLOT_HEIGHT[1] * height
                and gw <= min(BLOT_ASPECT, BLOT_PAGE_ASPECT * squeeze) * gh
                and gw <= max(width, DIGIT_WIDTH * height) + 1)  # a pixel: widths are whole pixels of a blur

    def extent(self) -> tuple[float, float]:
        """From its first glyph's left to its last simple glyph's right, in crop x pixels."""
        return self.start, self.ref[0] + self.ref[2]

    def blot(self, box: Box) -> None:
        self.pending += 1
        self.blots += 1
        self.last = box


def digit_row(img: np.ndarray, text_height: float, gap: float = 2.2,
              squeeze: float = 1.0) -> tuple[int, float, float]:
    """The longest row of simple glyphs of one height on a binarised line crop: digits' worth, and where it
    starts and ends along the crop (x pixels; 0, 0 when there is none).

    `text_height`: the expected text height in crop pixels; `gap`: the widest space inside a row, in glyph
    heights (full-width digit groups, squeezed by the crop, stay below it). Up to MAX_BLOTS complex glyphs
    count as one digit each when they sit in the row like its digits. `squeeze`: how much narrower the crop
    draws a glyph than the page does (its scale along the line over its scale across it)."""
    table = _glyphs(img, text_height)
    if table is None:
        return 0, 0.0, 0.0
    x, y, w, h, wide, simple = table
    best, where = 0, (0.0, 0.0)
    row = None
    for i in np.argsort(x, kind="stable"):
        box = (x[i], y[i], w[i], h[i])
        if row is None:
            if simple[i]:
                row = _Row(box, int(wide[i]))
                if row.count > best:
                    best, where = row.count, row.extent()
            continue
        if row.smaller_part(box) or row.stray_speck(box):
            continue
        in_row = row.continues(box, gap)
        if simple[i]:
            if in_row:
                row.add(box, int(wide[i]))
            else:
                row = _Row(box, int(wide[i]))
            if row.count > best:
                best, where = row.count, row.extent()
        elif in_row and row.takes_blot(box, squeeze):
            row.blot(box)
        else:
            row = None
    return best, float(where[0]), float(where[1])


def glyph_boxes(img: np.ndarray, text_height: float) -> list[tuple[int, int, int, int, int]]:
    """The simple glyphs of the line's text height on a binarised line crop, left to right, as
    (x, y, w, h, wide) boxes (`wide`: digits' worth of touching digits). Specks and stray marks of
    another height are left out; rows are not split (noise can break a number's row in two)."""
    table = _glyphs(img, text_height)
    if table is None:
        return []
    x, y, w, h, wide, simple = table
    if simple.sum() < 4:
        return []
    height = float(np.median(h[simple]))
    keep = simple & (np.abs(h - height) <= 0.3 * height)
    order = np.argsort(x, kind="stable")
    return [(int(x[i]), int(y[i]), int(w[i]), int(h[i]), int(wide[i])) for i in order if keep[i]]
