"""Does a straightened line hold a row of digit-like glyphs? (OpenCV only, no OCR)

Reading a line with tesseract costs about 10 ms, and most candidate lines of an ID copy are kanji and kana
(names, addresses, labels). A printed number is a row of glyphs of one height, each simple in shape: a
vertical cut crosses at most three strokes and at most two holes are enclosed. Most kanji are complex on
one of the two counts. `digit_run` counts the longest such row; a complex glyph of the same height ends the
row, smaller parts (hyphens, broken strokes, small kana) are skipped. The analyser reads only lines whose row
could hold a number (see `OcrNumberAnalyzer.min_digits`).
"""
from __future__ import annotations

import cv2
import numpy as np

MAX_CROSSINGS = 3
MAX_HOLES = 2                  # per digit ("8")
MIN_HOLE = 0.008               # of the glyph height squared: smaller holes are noise, not a counter of a digit


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


def digit_run(img: np.ndarray, text_height: float, gap: float = 2.2) -> int:
    """Digits' worth of the longest row of simple glyphs of one height on a binarised line crop.

    `text_height`: the expected text height in crop pixels; `gap`: the widest space inside a row, in glyph
    heights (full-width digit groups, squeezed by the crop, stay below it)."""
    table = _glyphs(img, text_height)
    if table is None:
        return 0
    x, y, w, h, wide, simple = table
    best = count = 0
    prev = None
    for i in np.argsort(x, kind="stable"):
        gx, gy, gw, gh = x[i], y[i], w[i], h[i]
        if prev is None:
            if simple[i]:
                prev, count = (gx, gy, gw, gh), int(wide[i])
                best = max(best, count)
            continue
        px, py, pw, ph = prev
        if gh < 0.72 * ph and gy >= py - 0.15 * ph and gy + gh <= py + 1.15 * ph:
            continue
        size = max(gh, ph)
        in_row = (gx - (px + pw) <= gap * size and gh <= 1.39 * ph and abs(gy + gh - py - ph) <= 0.25 * size
                  and abs(gy - py) <= 0.25 * size)
        if simple[i]:
            count = count + int(wide[i]) if in_row else int(wide[i])
            prev = (gx, gy, gw, gh)
            best = max(best, count)
        else:
            prev, count = None, 0
    return best


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
