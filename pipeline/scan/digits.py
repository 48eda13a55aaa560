"""Reading one handwritten (or printed) digit from the crop of one number box.

Two parts, both pure numpy at run time (OpenCV, already a project dependency, only for image filters):

* :func:`prepare_box` turns the grayscale crop of one printed box (border included, up to ~1 mm of the form
  around it, 150-600 dpi) into the MNIST-style 28x28 input of the classifier, or ``None`` when the box is empty.
  The training tool (tools/train_digits.py) passes every training image through this same function, so the
  network sees at training time exactly what it sees here.
* :class:`DigitClassifier` runs the small CNN shipped in ``pipeline/models/digits.npz`` (weights exported from
  PyTorch by the training tool; batch-norm folded in; im2col convolutions; no torch or onnx needed) and returns
  temperature-calibrated softmax probabilities.

Nothing in this module logs or raises with digit values in it; the box crops are images, and what is read from
them is returned, never printed.
"""
from __future__ import annotations

import copy

import json
import threading
from pathlib import Path

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import blas

MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "digits.npz"

# ---------------------------------------------------------------------------------------------------------------
# Geometry of the printed box (see pipeline/kit/render.py: 9.5 x 12 mm boxes, 11 mm pitch, 0.9 pt border).
BOX_W_MM = 9.5
BOX_H_MM = 12.0
# What a crop nominally spans: the box plus about 0.5 mm of surroundings on each side (used only to estimate
# the resolution from the crop size; anything from 0 to ~1 mm of surroundings works).
CROP_W_MM = 10.5
CROP_H_MM = 13.0

# Parameters of prepare_box (exported with the model so a model always documents the preprocessing it saw).
PREP_PARAMS = {
    "version": 3,               # 3: strokes lying on a box line are kept (_stroke_on_line)
    "line_band_mm": 2.6,        # box lines are looked for only this close to the crop edges
    "line_min_frac": 0.78,      # a box line is dark along at least this fraction of the crop side
    "ink_floor": 45.0,          # minimum darkness (0-255 below the local paper level) of a "strong" ink pixel
    "ink_low_floor": 28.0,      # minimum darkness of a "weak" ink pixel grown from strong ones (hysteresis)
    "core_margin_mm": 0.6,      # ink must reach this far inside the box interior to count
    "speck_mm2": 0.12,          # components smaller than this are dust / noise
    "main_min_extent_mm": 1.2,  # the largest ink component is at least this long ...
    "main_min_area_mm2": 0.25,  # ... and this big, otherwise the box holds only specks
    "empty_min_height_mm": 1.5,  # less ink than this tall is not a digit
    "empty_min_area_mm2": 0.35,  # nor less than this much ink in all
    "target_long_side": 20,     # MNIST: the digit's longer side is 20 px ...
    "canvas": 28,               # ... centred by centre of mass in 28 x 28
    "min_stroke_px": 2.0,       # thin pen strokes are thickened to about this width in the 28 x 28 image
}


def _odd(n: float) -> int:
    n = max(1, int(round(n)))
    return n if n % 2 else n + 1


def _to_gray_u8(crop: np.ndarray) -> np.ndarray:
    a = np.asarray(crop)
    if a.ndim == 3:
        if a.shape[2] == 4:
            a = a[:, :, :3]
        a = a.astype(np.float32).mean(axis=2)
    if a.ndim != 2:
        raise ValueError("a box crop is a 2-D grayscale image (or an RGB one)")
    if a.dtype != np.uint8:
        a = np.asarray(a, dtype=np.float64)
        if a.size and a.max() <= 1.0:
            a = a * 255.0
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def _line_candidates(mask: np.ndarray, s: float, band: int, min_frac: float) -> tuple[list, list]:
    """Candidate horizontal box lines near the top and the bottom edge of ``mask`` (transpose it for vertical).

    A candidate is a run of rows (start, end, peak) in the edge band that are dark along at least ``min_frac``
    of the width, after thickening the mask across the line (a little skew) and along it (small breaks, as in a
    bilevel scan of a thin line). Runs much thicker than a printed line are bold strokes, not lines."""
    h, w = mask.shape
    across = _odd(0.25 * s)
    along = _odd(0.4 * s)
    thick = cv2.dilate(mask.astype(np.uint8), np.ones((across, along), np.uint8))
    frac = thick.sum(axis=1) / float(w)
    sides = []
    for lo, hi in ((0, min(band, h)), (max(h - band, 0), h)):
        groups = []
        flagged = frac[lo:hi] >= min_frac
        i = 0
        while i < flagged.size:
            if flagged[i]:
                j = i
                while j + 1 < flagged.size and flagged[j + 1]:
                    j += 1
                if j - i + 1 <= max(4, 1.3 * s):
                    groups.append((lo + i, lo + j + 1, float(frac[lo + i: lo + j + 1].max())))
                i = j + 1
            else:
                i += 1
        sides.append(groups)
    return sides[0], sides[1]


def _pick_lines(first: list, second: list, expected: float, tol: float) -> tuple[tuple | None, tuple | None, bool]:
    """Choose the box's own line on each side: the pair whose distance matches the box size best; without a
    matching pair, only the strongest candidate (a tall stroke next to a missing line is weaker than a line).
    Returns (first side, second side, whether a matching pair was found)."""
    best = None
    for g1 in first:
        for g2 in second:
            d = (g2[0] + g2[1]) / 2 - (g1[0] + g1[1]) / 2
            err = abs(d - expected) / expected
            if err <= tol and (best is None or err < best[0]):
                best = (err, g1, g2)
    if best is not None:
        return best[1], best[2], True
    if not first and not second:
        return None, None, False
    peak1 = max((g[2] for g in first), default=-1.0)
    peak2 = max((g[2] for g in second), default=-1.0)
    if peak1 >= peak2:  # the innermost of the strong candidates (a neighbouring box's line lies further out)
        return max((g for g in first if g[2] >= peak1 - 0.08), key=lambda g: g[0]), None, False
    return None, min((g for g in second if g[2] >= peak2 - 0.08), key=lambda g: g[0]), False


def _infer_line(first, second, size_px: float, n: int):
    """Given the line on one side, the other one is ``size_px`` away (if that is inside the crop)."""
    g = first if first is not None else second
    th = g[1] - g[0]
    c = (g[0] + g[1]) / 2 + (size_px if first is not None else -size_px)
    a, b = int(round(c - th / 2)), int(round(c + th / 2))
    if b <= 0 or a >= n:
        return first, second
    other = (max(0, a), min(n, max(b, a + 1)), 0.0)
    return (first, other) if first is not None else (other, second)


def _leading_run(a: np.ndarray) -> np.ndarray:
    """Per column of boolean ``a``: how many rows from the first one on are all True."""
    if a.shape[0] == 0:
        return np.zeros(a.shape[1], np.int64)
    return np.argmax(np.vstack([~a, np.ones((1, a.shape[1]), bool)]), axis=0)


def _ink_across_line(ev: np.ndarray, e0: int, e1: int, s: float, across_spans: list) -> np.ndarray:
    """Per column of a (horizontal) box line: how thick the ink joined to it is, across it (float; NaN at the
    corners, where the perpendicular lines are, and beyond them). ``ev``: ink mask with the line running along
    axis 1 over rows e0:e1 (its erased span, rims included)."""
    reach = max(2, int(round(1.5 * s)))
    after = _leading_run(ev[e1: e1 + reach])
    before = _leading_run(ev[max(0, e0 - reach): e0][::-1])
    thickness = (ev[e0:e1].sum(axis=0) + before + after).astype(np.float64)
    guard = max(1, int(round(0.4 * s)))
    n = thickness.size
    for o0, o1 in across_spans:  # the perpendicular line and what lies beyond it are not this line
        if o1 <= n / 2:
            thickness[: o1 + guard] = np.nan
        else:
            thickness[max(0, o0 - guard):] = np.nan
    return thickness


def _stroke_on_line(thickness: np.ndarray, bare: float, s: float) -> np.ndarray:
    """Columns of a box line that lie under a pen stroke rather than being bare line.

    ``thickness``: :func:`_ink_across_line` of the line; ``bare``: the thickness of the bare line. Where a
    stroke touches the line, lies on it or runs along it, the ink joined to the line is thicker,
    for at least a stroke's width along it (the foot of a 2 on the bottom line, the top of a 9's loop against
    the top line, a 1 written on the side). Erasing those columns would cut the stroke away (2 -> 7, 9 -> 4) or
    leave nothing (1 -> empty); keeping them leaves the stroke whole, a line's width longer (the caller keeps
    nothing when more than one line is thick along nearly its whole length: that is not pen strokes)."""
    valid = ~np.isnan(thickness)
    # compared with the bare line nearby, not far along it: a line a little off square, or printed unevenly,
    # changes thickness slowly; a stroke on it does so within a few millimetres
    local = cv2.erode(np.where(valid, thickness, 1e6).astype(np.float32)[None, :],
                      np.ones((1, _odd(7.0 * s)), np.uint8), borderType=cv2.BORDER_REPLICATE)[0]
    base = np.maximum(local, bare)
    under = valid & (np.nan_to_num(thickness) >= base + max(2.0, 0.2 * s))
    if not under.any():
        return under
    gap = _odd(0.3 * s)
    under = cv2.morphologyEx(under.astype(np.uint8)[None, :], cv2.MORPH_CLOSE, np.ones((1, gap), np.uint8))[0]
    under = under.astype(bool) & valid
    n_runs, lab, st, _ = cv2.connectedComponentsWithStats(under.astype(np.uint8)[None, :], connectivity=4)
    for j in range(1, n_runs):
        if st[j, cv2.CC_STAT_WIDTH] < max(2, 0.35 * s):
            under[lab[0] == j] = False
    return under


def _box_lines(firm: np.ndarray, erase: np.ndarray, s: float, band: int, min_frac: float):
    """Line mask (to erase), line pixels kept under strokes, and interior (top, bottom, left, right) of the box
    in a crop."""
    h, w = firm.shape
    top_c, bot_c = _line_candidates(firm, s, band, min_frac)
    left_c, right_c = _line_candidates(firm.T, s, band, min_frac)
    # the box is BOX_W_MM x BOX_H_MM: a matching pair of lines on one axis fixes the scale for the other
    t, b, pair_h = _pick_lines(top_c, bot_c, BOX_H_MM * s, 0.15)
    if pair_h:
        s = ((b[0] + b[1]) / 2 - (t[0] + t[1]) / 2) / BOX_H_MM
    l, r, pair_v = _pick_lines(left_c, right_c, BOX_W_MM * s, 0.07 if pair_h else 0.15)
    if pair_v and not pair_h:
        s = ((r[0] + r[1]) / 2 - (l[0] + l[1]) / 2) / BOX_W_MM
        t, b, _ = _pick_lines(top_c, bot_c, BOX_H_MM * s, 0.07)
    # with the scale known from one axis, a line missed on the other axis (faint, or cut by the crop edge) is
    # where the box size puts it
    if pair_v and (t is None) != (b is None):
        t, b = _infer_line(t, b, BOX_H_MM * s, h)
    if pair_h and (l is None) != (r is None):
        l, r = _infer_line(l, r, BOX_W_MM * s, w)
    rim = (_odd(0.12 * s + 2) - 1) // 2
    spans = {}  # erased span of each line: (start, end) across it
    for name, g, n_across in (("t", t, h), ("b", b, h), ("l", l, w), ("r", r, w)):
        if g is not None:
            spans[name] = (max(0, g[0] - rim), min(n_across, g[1] + rim))
    k = max(1, int(round(0.2 * s)))
    win = np.ones((1, 2 * k + 1), np.uint8)
    lines = np.zeros((h, w), bool)
    kept = np.zeros((h, w), bool)  # line pixels under a pen stroke: left as ink
    profiles = {name: _ink_across_line(erase if name in "tb" else erase.T, e0, e1, s,
                                       [spans[o] for o in (("l", "r") if name in "tb" else ("t", "b")) if o in spans])
                for name, (e0, e1) in spans.items()}
    # a bare line's own thickness: its thinnest tenth (a stroke may run along most of one side)
    unders = {name: _stroke_on_line(t, float(np.nanpercentile(t, 10)), s)
              for name, t in profiles.items() if np.isfinite(t).sum() >= 4}
    if sum(u.sum() > 0.85 * max(1, np.isfinite(profiles[name]).sum()) for name, u in unders.items()) > 1:
        unders = {}
    for name, (e0, e1) in spans.items():
        horizontal = name in "tb"
        band_m = np.zeros((h, w), bool)
        bv, ev = (band_m, erase) if horizontal else (band_m.T, erase.T)
        bv[e0:e1] = True
        under = unders.get(name)
        if under is not None and under.any():
            bv[e0:e1, under] = False
            (kept if horizontal else kept.T)[e0:e1, under] = True
        if 0 < e0 and e1 < bv.shape[0]:
            # where a stroke crosses the line (ink right outside and right inside it), keep the crossing: the
            # part of the digit beyond the border then stays connected to the rest. Not near the corners, not
            # where the line's own rim is all there is on one side, and only stroke-wide.
            before = ev[max(0, e0 - k): e0].any(axis=0)
            after = ev[e1: e1 + k].any(axis=0)
            if before.mean() < 0.5 and after.mean() < 0.5:
                near_before = cv2.dilate(before.astype(np.uint8)[None, :], win)[0].astype(bool)
                near_after = cv2.dilate(after.astype(np.uint8)[None, :], win)[0].astype(bool)
                crossing = near_before & near_after & (before | after)
                for other in (("l", "r") if horizontal else ("t", "b")):
                    if other in spans:
                        o0, o1 = spans[other]
                        crossing[max(0, o0 - 2 * k): o1 + 2 * k] = False
                n_runs, lab, st, _ = cv2.connectedComponentsWithStats(crossing.astype(np.uint8)[None, :],
                                                                      connectivity=4)
                for j in range(1, n_runs):
                    if st[j, cv2.CC_STAT_WIDTH] > 2.0 * s:
                        crossing[lab[0] == j] = False
                bv[e0:e1, crossing] = False
        lines |= band_m
    lines &= erase
    kept &= erase
    top = t[1] + rim if t is not None else 0
    bottom = b[0] - rim if b is not None else h
    left = l[1] + rim if l is not None else 0
    right = r[0] - rim if r is not None else w
    return lines, kept, (top, bottom, left, right)


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: 2 * area / perimeter (good for long thin strokes)."""
    area = float(mask.sum())
    if area == 0:
        return 0.0
    m8 = mask.astype(np.uint8)
    edge = m8 - cv2.erode(m8, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    perim = float(edge.sum())
    return 2.0 * area / max(perim, 1.0) + 0.5


def prepare_box(crop: np.ndarray) -> np.ndarray | None:
    """MNIST-style 28x28 float32 image (white digit on black, in [0, 1]) of the digit in one box, or None if empty.

    ``crop``: grayscale uint8 image of one box with its printed border and up to ~1 mm of surroundings, dark ink
    on light paper, 150-600 dpi. Steps: local paper level (grey closing) -> ink darkness map -> box lines (rows
    and columns near the edges that are dark along most of the crop, paired by the box's 9.5 x 12 mm size) erased
    -> hysteresis threshold relative to the ink present (strong seeds grown into weak ink) -> components: specks,
    pieces outside or only hugging the box interior, and line remnants dropped -> empty test (no substantial
    stroke, or less than 1.5 mm tall) -> thin strokes thickened -> longer side scaled to 20 px -> centred by
    centre of mass in 28x28. The resolution is inferred from the crop size.
    """
    p = PREP_PARAMS
    g = _to_gray_u8(crop)
    h, w = g.shape
    if h < 16 or w < 12:
        return None
    s = float(np.sqrt(h * w / (CROP_W_MM * CROP_H_MM)))  # pixels per mm, from the crop size

    # 1. darkness below the local paper level; a grey closing wider than any pen stroke estimates the paper
    gs = cv2.GaussianBlur(g, (0, 0), sigmaX=max(0.5, 0.035 * s))
    f_bg = min(1.0, 5.0 / s)  # the paper level is smooth: estimate it at about 5 px per mm
    small = gs if f_bg >= 1.0 else cv2.resize(gs, (max(4, round(w * f_bg)), max(4, round(h * f_bg))),
                                               interpolation=cv2.INTER_AREA)
    k = _odd(2.2 * s * f_bg)
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)),
                             borderType=cv2.BORDER_REPLICATE)
    paper = cv2.blur(paper, (k, k))
    if paper.shape != gs.shape:
        paper = cv2.resize(paper, (w, h), interpolation=cv2.INTER_LINEAR)
    paper = np.maximum(paper, gs)
    dark = paper.astype(np.float32) - gs.astype(np.float32)

    # 2. box lines, found on a firm mask and erased on a lenient one (so their faint rims go too)
    band = max(2, int(round(p["line_band_mm"] * s)))
    lenient = dark >= p["ink_low_floor"]
    firm = dark >= p["ink_floor"]  # printed lines are dark: find them on the firm mask, erase on the lenient one
    lines, kept, (top, bottom, left, right) = _box_lines(firm, lenient, s, band, p["line_min_frac"])
    if bottom - top < 0.3 * h or right - left < 0.3 * w:  # implausible lines: fall back to the whole crop
        top, bottom, left, right = 0, h, 0, w

    # 3. thresholds relative to the ink actually present inside the box (lines excluded)
    inside = np.zeros((h, w), bool)
    inside[top:bottom, left:right] = True
    cand = dark[inside & ~lines]
    if cand.size > 20000:
        cand = cand[:: cand.size // 20000 + 1]
    ink_ref = float(np.percentile(cand, 99.7)) if cand.size else 0.0
    t_hi = max(p["ink_floor"], 0.45 * ink_ref)
    t_lo = max(p["ink_low_floor"], 0.25 * ink_ref)
    weak = (dark >= t_lo) & ~lines
    strong = (dark >= t_hi) & ~lines
    if not strong[inside].any():
        return None

    # 4. components of the weak mask that hold a strong pixel; drop specks, outside pieces and line remnants
    n, labels, stats, _ = cv2.connectedComponentsWithStats(weak.astype(np.uint8), connectivity=8)
    has_strong = np.zeros(n, bool)
    has_strong[np.unique(labels[strong])] = True
    inside_count = np.bincount(labels[inside | kept].ravel(), minlength=n)  # the box's own line is not outside
    # a digit reaches well into the box; bits hugging the border (jagged line rims, cut lines) do not
    core_m = max(1, int(round(p["core_margin_mm"] * s)))
    core = np.zeros((h, w), bool)
    core[top + core_m: bottom - core_m, left + core_m: right - core_m] = True
    in_core = np.bincount(labels[core].ravel(), minlength=n) > 0
    # a stroke joined to a box line (see _stroke_on_line) is a stroke even where it looks like a line remnant
    on_line = np.bincount(labels[kept & weak].ravel(), minlength=n) > 0
    speck = p["speck_mm2"] * s * s
    lw = 0.6 * s  # anything thinner than this and as long as a box side is a line remnant
    cands = []
    for i in range(1, n):
        x, y, cw, ch, area = (int(v) for v in stats[i])
        if not has_strong[i] or area < speck:
            continue
        # a stroke on a line reaches into the box, or is as long as a written 1 (a 1 on the side line)
        stroke_on_line = on_line[i] and (in_core[i] or max(cw, ch) >= 5.0 * s)
        if inside_count[i] < 0.5 * area or not (in_core[i] or stroke_on_line):
            continue  # outside the box, or hugging its border (a piece of line kept on its own, too)
        if not stroke_on_line and (
                (cw <= lw and ch >= 2 * cw and (x == 0 or x + cw == w)) or
                (ch <= lw and cw >= 2 * ch and (y == 0 or y + ch == h)) or  # a line cut by the crop edge
                (ch <= lw and cw >= 0.3 * w and (y < band or y + ch > h - band)) or
                (cw <= lw and ch >= 0.3 * h and (x < band or x + cw > w - band))):
            continue
        cands.append((area, i, x, y, cw, ch))
    if not cands:
        return None
    cands.sort(reverse=True)
    a_max, _, ux, uy, uw, uh = cands[0]
    # the digit has at least one substantial stroke; a scatter of dust specks is not a digit
    if max(uw, uh) < p["main_min_extent_mm"] * s or a_max < p["main_min_area_mm2"] * s * s:
        return None
    x0, y0, x1, y1 = ux, uy, ux + uw, uy + uh
    keep = [cands[0][1]]
    near = 1.2 * s
    for area, i, x, y, cw, ch in cands[1:]:
        gap_x = max(0, x - x1, x0 - (x + cw))
        gap_y = max(0, y - y1, y0 - (y + ch))
        if (area >= 0.15 * a_max and area >= 3 * speck) or (gap_x <= near and gap_y <= near):
            keep.append(i)
            x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x + cw), max(y1, y + ch)
    total = float(sum(stats[i, cv2.CC_STAT_AREA] for i in keep))
    if (y1 - y0) < p["empty_min_height_mm"] * s or total < p["empty_min_area_mm2"] * s * s:
        return None

    lut = np.zeros(n, bool)
    lut[keep] = True
    mask = lut[labels[y0:y1, x0:x1]]

    # 5. normalise stroke width, scale the longer side to 20 px, centre by centre of mass in 28 x 28
    return mask_to_input(mask)


def mask_to_input(mask: np.ndarray) -> np.ndarray | None:
    """A digit's ink mask (bool, cropped to the digit) as the classifier's input, the last step of
    :func:`prepare_box`: thin strokes thickened, the longer side scaled to 20 px, centred by centre of mass
    in 28 x 28, white on black in [0, 1]. None when there is no ink."""
    p = PREP_PARAMS
    if not mask.any():
        return None
    target = p["target_long_side"]
    f = target / max(mask.shape)
    width_out = _stroke_width(mask) * f
    if width_out < p["min_stroke_px"]:
        r = int(np.ceil((p["min_stroke_px"] - width_out) / (2.0 * f)))
        if r > 0:
            pad = r + 1
            m8 = np.pad(mask.astype(np.uint8), pad)
            m8 = cv2.dilate(m8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
            ys, xs = np.nonzero(m8)
            mask = m8[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(bool)
            f = target / max(mask.shape)
    mh, mw = mask.shape
    nh, nw = max(1, int(round(mh * f))), max(1, int(round(mw * f)))
    src = mask.astype(np.float32)
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
    small = cv2.resize(src, (nw, nh), interpolation=interp)
    tot = float(small.sum())
    if tot <= 0:
        return None
    cy = float((small.sum(axis=1) * np.arange(nh)).sum() / tot)
    cx = float((small.sum(axis=0) * np.arange(nw)).sum() / tot)
    c = p["canvas"]
    ctr = (c - 1) / 2.0
    m = np.float32([[1, 0, ctr - cx], [0, 1, ctr - cy]])
    out = cv2.warpAffine(small, m, (c, c), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    peak = float(out.max())
    if peak <= 0:
        return None
    return np.clip(out / max(peak, 1e-6), 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# The classifier


def _conv3x3_relu(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 'same' convolution + bias + ReLU. x: (N, H, W, C); w: (9*C, O) in (ky, kx, c) order; -> (N, H, W, O)."""
    n, h, wd, c = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = sliding_window_view(xp, (3, 3), axis=(1, 2))            # (N, H, W, C, 3, 3) view
    cols = cols.transpose(0, 1, 2, 4, 5, 3).reshape(n * h * wd, 9 * c)  # im2col (one copy)
    y = cols @ w
    y += b
    np.maximum(y, 0, out=y)
    return y.reshape(n, h, wd, -1)


def _maxpool2(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c)
    return x.max(axis=(2, 4))


class _Network:
    """One CNN (3 x [conv3x3 + BN + ReLU + maxpool2] -> dense -> 10) in numpy; arrays named conv{i}_w/b, fc{i}_w/b."""

    def __init__(self, arrays: dict[str, np.ndarray], prefix: str = ""):
        self.convs = []
        i = 0
        while f"{prefix}conv{i}_w" in arrays:
            self.convs.append((np.asarray(arrays[f"{prefix}conv{i}_w"], np.float32),
                               np.asarray(arrays[f"{prefix}conv{i}_b"], np.float32)))
            i += 1
        if not self.convs:
            raise ValueError("the model file holds no convolution weights")
        self.fc = []
        i = 0
        while f"{prefix}fc{i}_w" in arrays:
            self.fc.append((np.asarray(arrays[f"{prefix}fc{i}_w"], np.float32),
                            np.asarray(arrays[f"{prefix}fc{i}_b"], np.float32)))
            i += 1
        self.input_mean = float(arrays.get(f"{prefix}input_mean", arrays.get("input_mean", 0.0)))
        self.input_std = float(arrays.get(f"{prefix}input_std", arrays.get("input_std", 1.0)))

    def logits(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        h = ((x - self.input_mean) / self.input_std)[..., None]
        for w, b in self.convs:
            h = _maxpool2(_conv3x3_relu(h, w, b))
        h = h.reshape(n, -1)
        for j, (w, b) in enumerate(self.fc):
            h = h @ w + b
            if j < len(self.fc) - 1:
                np.maximum(h, 0, out=h)
        return h


class DigitClassifier:
    """One small CNN, or an ensemble of them whose logits are averaged, evaluated in numpy.

    The model file holds the folded weights (``conv0_w`` ... for one network; ``m0_conv0_w`` ...,
    ``m1_conv0_w`` ... and ``members`` for an ensemble: networks trained from different seeds disagree on
    different digits, so their average is less often confidently wrong), ``temperature`` (softmax temperature
    fitted on a held-out split, for the averaged logits), the accept rule (see pipeline/scan/fusion.py),
    ``version`` and ``prep_params`` (JSON of the :data:`PREP_PARAMS` the model was trained with).
    """

    _cache: dict[str, "DigitClassifier"] = {}
    _lock = threading.Lock()

    def __init__(self, arrays: dict[str, np.ndarray]):
        members = int(arrays.get("members", 0))
        self.networks = ([_Network(arrays, f"m{i}_") for i in range(members)] if members
                         else [_Network(arrays)])
        self.temperature = float(arrays.get("temperature", 1.0))
        self.accept_threshold = float(arrays["accept_threshold"]) if "accept_threshold" in arrays else None
        self.version = str(arrays.get("version", "unknown"))
        self.prep_params = json.loads(str(arrays["prep_params"])) if "prep_params" in arrays else dict(PREP_PARAMS)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "DigitClassifier":
        """Load a model file (default: the shipped pipeline/models/digits.npz); each path is read once and cached."""
        p = Path(path) if path is not None else MODEL_PATH
        key = str(p.resolve())
        blas.one_thread()   # small batches: one BLAS thread is as fast, and does not spin against other processes
        with cls._lock:
            if key not in cls._cache:
                with np.load(p, allow_pickle=False) as z:
                    cls._cache[key] = cls({k: z[k] for k in z.files})
            return cls._cache[key]

    def first_network(self) -> "DigitClassifier":
        """The ensemble's first network alone, at a fraction of the cost: for a reader that only screens for
        digits (the redaction proof's glyph reader), never for accepting a handwritten number."""
        if len(self.networks) == 1:
            return self
        single = getattr(self, "_single", None)
        if single is None:
            single = copy.copy(self)
            single.networks = self.networks[:1]
            self._single = single
        return single

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Logits (N, 10), averaged over the ensemble's networks, before the temperature."""
        x = np.asarray(batch, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError("expected a batch of 28x28 images, shape (N, 28, 28)")
        if x.shape[0] == 0:
            return np.zeros((0, 10), np.float32)
        out = self.networks[0].logits(x)
        for net in self.networks[1:]:
            out += net.logits(x)
        if len(self.networks) > 1:
            out /= len(self.networks)
        return out

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """Calibrated softmax probabilities, shape (N, 10), for a batch of prepared 28x28 images."""
        z = self.logits(batch).astype(np.float64) / self.temperature
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def classify_boxes(crops, classifier: DigitClassifier | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (len(crops), 10) and a boolean 'empty' mask for a sequence of box crops.

    Empty boxes (prepare_box -> None) get a row of NaN: an empty box is not a digit, and is decided on by the
    caller (see pipeline.scan.fusion.read_field).
    """
    clf = classifier or DigitClassifier.load()
    prepared = [prepare_box(c) for c in crops]
    empty = np.array([p is None for p in prepared], bool)
    probs = np.full((len(prepared), 10), np.nan)
    if (~empty).any():
        probs[~empty] = clf.predict_proba(np.stack([p for p in prepared if p is not None]))
    return probs, empty
