"""Cheap search for text lines that could hold a 12-digit number (OpenCV, no OCR).

A page is downscaled, its edges (morphological gradient, so dark-on-light and light-on-dark text look
alike) are binarised, ruling lines are removed, and the connected components are chained into lines
twice: along x (text at 0/180 degrees) and along y (90/270). A line whose length is at least a few times
its height is a candidate. Each candidate becomes an affine crop (`LineCrop`) that straightens it (also
removing a skew of a few degrees), squeezes widely spaced glyphs (full-width digits) together and scales
its text to the height tesseract reads best. At this stage 0 and 180 degrees (and 90 and 270) look the
same: `crops_for` gives both reading directions and the analyser decides which to read.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Line:
    """A chain of components, in full-resolution page coordinates."""
    axis: str                 # "h": along x, "v": along y
    center: tuple[float, float]
    direction: tuple[float, float]  # unit vector along the line (reading direction is +- this)
    length: float
    thickness: float
    text_height: float        # median component height across the line
    members: int
    tight_links: int          # links between neighbours closer than half a text height
    pitch: float = 0.0        # median glyph-to-glyph distance / text height (0 when unknown)

    @property
    def aspect(self) -> float:
        return self.length / max(self.text_height, 1.0)


@dataclass(frozen=True)
class LineCrop:
    """How to cut one straightened line out of the page: page = M @ (u, v, 1) for crop pixel (u, v)."""
    line: Line
    reverse: bool                 # reading direction is -direction
    size: tuple[int, int]         # (width, height) of the crop
    matrix: np.ndarray            # 2x3, crop -> page

    def to_page(self, pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, dtype=float)
        return pts @ self.matrix[:, :2].T + self.matrix[:, 2]

    def scale(self) -> tuple[float, float]:
        """Page pixels per crop pixel, along and across the line."""
        return (float(math.hypot(self.matrix[0, 0], self.matrix[1, 0])),
                float(math.hypot(self.matrix[0, 1], self.matrix[1, 1])))


@dataclass(frozen=True)
class LineSearch:
    lines: list[Line]
    axis_scores: dict[str, int]
    work_scale: float
    threshold: float          # edge threshold used; pass it back to read a redacted copy the same way


def _binarise(gray: np.ndarray, threshold: float | None = None) -> tuple[np.ndarray, float]:
    g = cv2.GaussianBlur(gray, (3, 3), 0)
    grad = cv2.morphologyEx(g, cv2.MORPH_GRADIENT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    if threshold is None:
        thr, _ = cv2.threshold(grad, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        threshold = max(float(thr), EDGE_FLOOR)
    bw = (grad > threshold).astype(np.uint8) * 255
    # ruling lines (tables, card edges) would glue text to them: remove long straight runs
    h, w = bw.shape
    span = max(40, min(h, w) // 20)
    horiz = cv2.morphologyEx(bw, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (span, 1)))
    vert = cv2.morphologyEx(bw, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, span)))
    lines = cv2.dilate(horiz | vert, np.ones((3, 3), np.uint8))
    return cv2.bitwise_and(bw, cv2.bitwise_not(lines)), threshold


def _chain(x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray, gap_factor: float):
    """Link each component to its nearest neighbour further along x that sits on the same text line.

    Returns (groups as index arrays, number of tight links per group). Plain Python over sorted lists:
    each component only looks at the few that start within reach."""
    n = len(x)
    if n == 0:
        return [], []
    order = sorted(range(n), key=lambda i: x[i])
    xl, yl, wl, hl = x.tolist(), y.tolist(), w.tolist(), h.tolist()
    xs = [xl[i] for i in order]
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    tight = [0] * n
    for i in range(n):
        xi, wi, hi = xl[i], wl[i], max(hl[i], 1.0)
        x1 = xi + wi
        cyi = yl[i] + hl[i] / 2.0
        start = bisect.bisect_left(xs, xi + 0.5 * wi)
        stop = bisect.bisect_right(xs, x1 + gap_factor * 2.2 * hi)
        best, best_key, best_gap = -1, 0.0, 0.0
        for k in range(start, stop):
            j = order[k]
            if j == i:
                continue
            hj = hl[j]
            ratio = hj / hi
            if ratio <= 0.45 or ratio >= 2.2:
                continue
            hmax = hj if hj > hi else hi
            gap = xl[j] - x1
            if gap > gap_factor * hmax or gap <= -0.3 * hmax:
                continue
            dy = abs(yl[j] + hj / 2.0 - cyi)
            if dy > 0.35 * hmax:
                continue
            # far links (wide spaces, full-width digit groups) must line up closely
            if gap > hmax and (dy > 0.2 * hmax or ratio <= 0.65 or ratio >= 1.55):
                continue
            key = gap + 0.5 * dy
            if best < 0 or key < best_key:
                best, best_key, best_gap = j, key, gap
        if best >= 0:
            ra, rb = find(i), find(best)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
            if best_gap <= 0.5 * max(hi, hl[best]):
                tight[i] += 1
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    out = [np.array(g) for g in groups.values()]
    tights = [sum(tight[i] for i in g) for g in groups.values()]
    return out, tights


def _median(values: np.ndarray) -> float:
    """np.median of a small array, without its overhead (it is called for every group of glyphs on a page)."""
    v = sorted(values.tolist())
    m = len(v) // 2
    return float(v[m]) if len(v) % 2 else (v[m - 1] + v[m]) / 2.0


def _lines_along(axis: str, stats: np.ndarray, scale: float, gap_factor: float,
                 min_aspect: float, min_height: float) -> tuple[list[Line], int]:
    if axis == "h":
        x, y, w, h = (stats[:, i].astype(float) for i in range(4))
    else:
        y, x, h, w = (stats[:, i].astype(float) for i in range(4))
    groups, tights = _chain(x, y, w, h, gap_factor)
    lines: list[Line] = []
    score = 0
    for g, t in zip(groups, tights):
        score += t
        if len(g) == 1:     # most groups are one glyph: reject them without numpy
            i = int(g[0])
            if h[i] < 8 or w[i] < 0.9 * min_aspect * h[i]:
                continue
        gh = h[g]
        th = _median(gh) if len(g) > 1 else float(gh[0])
        if th < min_height or (len(g) < 3 and th < 8):
            continue
        gx, gy, gw = x[g], y[g], w[g]
        if float((gx + gw).max() - gx.min()) < 0.9 * min_aspect * th:
            continue        # too short for 12 digits at any skew we handle
        cx, cy = gx + gw / 2, gy + gh / 2
        angle = 0.0
        if len(g) >= 3 and float(cx.max() - cx.min()) > 3 * th:
            slope = np.polyfit(cx, cy, 1)[0]
            angle = float(np.clip(math.atan(slope), -math.radians(7), math.radians(7)))
        d = np.array([math.cos(angle), math.sin(angle)])
        nrm = np.array([-d[1], d[0]])
        corners = np.concatenate([np.stack([gx, gy], 1), np.stack([gx + gw, gy], 1),
                                  np.stack([gx, gy + gh], 1), np.stack([gx + gw, gy + gh], 1)])
        c0 = corners.mean(0)
        u = (corners - c0) @ d
        v = (corners - c0) @ nrm
        length = float(u.max() - u.min())
        thick = float(v.max() - v.min())
        # the text height of a skewed line: component heights include the slant of their width
        height = max(th * math.cos(angle) - _median(gw) * abs(math.sin(angle)), th * 0.8)
        if length / max(height, 1.0) < min_aspect:
            continue
        center = c0 + d * (u.max() + u.min()) / 2 + nrm * (v.max() + v.min()) / 2
        pitch = 0.0
        single = gw <= 1.0 * gh                      # glyph-like members (not merged groups)
        if single.sum() >= 5:
            uc = np.sort(((np.stack([cx, cy], 1) - c0) @ d)[single])
            steps = np.diff(uc)
            steps = steps[steps < 2.5 * th]
            if len(steps) >= 4:
                pitch = _median(steps) / height
        if axis == "v":   # back from the transposed frame
            center = center[::-1]
            d = d[::-1]
        lines.append(Line(axis, (float(center[0]) / scale, float(center[1]) / scale),
                          (float(d[0]), float(d[1])), length / scale, thick / scale, height / scale,
                          len(g), t, pitch))
    return lines, score


def component_stats(bw: np.ndarray) -> np.ndarray:
    """x, y, w, h, area of each 8-connected component (background dropped).

    16-bit labels are several times faster here (OpenCV 5 computes the statistics of 32-bit labels slowly);
    a page with more than 65,534 components falls back to 32-bit labels."""
    try:
        _, _, stats, _ = cv2.connectedComponentsWithStats(bw, connectivity=8, ltype=cv2.CV_16U)
    except cv2.error:
        _, _, stats, _ = cv2.connectedComponentsWithStats(bw, connectivity=8, ltype=cv2.CV_32S)
    return stats[1:]


EDGE_FLOOR = 24.0        # the edge threshold never goes below this on the first search (noise)
LOW_CONTRAST_EDGE = 14.0  # ... and a page at that floor is searched again at this one


def _same_line(a: Line, b: Line) -> bool:
    """Whether two candidate lines are one text line found twice (same axis, place and extent)."""
    if a.axis != b.axis:
        return False
    d = np.array(a.direction)
    off = np.subtract(b.center, a.center)
    across = abs(float(off @ np.array([-d[1], d[0]])))
    along = float(off @ d)
    lo, hi = max(-a.length / 2, along - b.length / 2), min(a.length / 2, along + b.length / 2)
    return (across < 0.5 * max(a.text_height, b.text_height) and hi - lo > 0.85 * max(a.length, b.length)
            and abs(a.length - b.length) < 0.04 * max(a.length, b.length))   # a longer line may hold more digits


def find_lines(gray: np.ndarray, *, max_side: int = 1600, min_aspect: float = 4.0,
               gap_factor: float = 2.4, threshold: float | None = None) -> LineSearch:
    """Candidate lines along both axes of a grey page (uint8 2-D). `threshold`: the edge threshold (by
    default Otsu's on this page, at least EDGE_FLOOR).

    A page whose threshold is at the floor is faint (low contrast, a light copy, light text on a dark card):
    its weakest glyph edges fall under the floor, and a number's line breaks off or is not found at all. It
    is searched again at LOW_CONTRAST_EDGE, and the lines only that search finds are added."""
    H, W = gray.shape
    scale = min(1.0, max_side / max(H, W))
    work = cv2.resize(gray, (round(W * scale), round(H * scale)), interpolation=cv2.INTER_AREA) \
        if scale < 1.0 else gray
    search = _search(work, scale, min_aspect, gap_factor, threshold)
    if search.threshold <= EDGE_FLOOR:
        faint = _search(work, scale, min_aspect, gap_factor, LOW_CONTRAST_EDGE)
        extra = [ln for ln in faint.lines if not any(_same_line(ln, old) for old in search.lines)]
        search = LineSearch(search.lines + extra, search.axis_scores, scale, search.threshold)
    return search


def _search(work: np.ndarray, scale: float, min_aspect: float, gap_factor: float,
            threshold: float | None) -> LineSearch:
    bw, threshold = _binarise(work, threshold)
    stats = component_stats(bw)
    hh, ww = work.shape
    keep = (stats[:, 4] >= 8) & (np.maximum(stats[:, 2], stats[:, 3]) >= 4) \
        & (stats[:, 3] <= hh / 4) & (stats[:, 2] <= ww / 4)
    stats = stats[keep]
    lines: list[Line] = []
    scores: dict[str, int] = {}
    for axis in ("h", "v"):
        found, score = _lines_along(axis, stats, scale, gap_factor, min_aspect, min_height=5.0)
        lines += found
        scores[axis] = score
    return LineSearch(lines, scores, scale, threshold)


def crops_for(line: Line, *, target_height: float = 32.0, pad: float = 0.4, both: bool = True,
              max_upscale: float = 3.0) -> list[LineCrop]:
    """The straightened crop(s) of a line: the text scaled to `target_height` px, in one or both directions."""
    k = min(max_upscale, target_height / max(line.text_height, 1.0))   # crop px per page px
    # widely spaced glyphs (full-width digits, letter-spaced numbers) confuse tesseract's word finder:
    # squeeze the line along its length towards the pitch of ordinary digits
    kx = k * float(np.clip(0.85 / line.pitch, 0.45, 1.0)) if line.pitch > 1.1 else k
    h = line.text_height
    length = line.length + 2 * pad * h + 0.6 * h
    thick = max(line.thickness, h) + 2 * pad * h
    wc, hc = max(8, int(round(length * kx))), max(8, int(round(thick * k)))
    out = []
    for reverse in ((False, True) if both else (False,)):
        dx, dy = line.direction
        if reverse:
            dx, dy = -dx, -dy
        r = np.array([dx, dy])
        down = np.array([-dy, dx])
        c = np.array(line.center)
        origin = c - r * (wc / 2) / kx - down * (hc / 2) / k
        m = np.array([[r[0] / kx, down[0] / k, origin[0]],
                      [r[1] / kx, down[1] / k, origin[1]]])
        out.append(LineCrop(line, reverse, (wc, hc), m))
    return out


def cut(gray: np.ndarray, crop: LineCrop, binarise: bool = True,
        polarity_box: tuple[float, float, float, float] | None = None, block: int = 31,
        despeckle: bool = False) -> np.ndarray:
    """The crop as dark text on a light ground: straightened, contrast stretched and (by default)
    binarised with a local threshold (noisy, JPEG'd copies read far better in clean black and white, and
    a local threshold turns large dark areas - a card edge, the scanner lid - into white).

    Polarity (light text on a dark card) is judged on the middle of the crop, or on `polarity_box`.
    `despeckle` (binarised digit lines only): see :func:`_despeckle`."""
    w, h = crop.size
    img = cv2.warpAffine(gray, crop.matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    if polarity_box is None:
        probe = img[h // 5: h - h // 5 or None, :]
    else:
        x0, y0, x1, y1 = (int(round(v)) for v in polarity_box)
        probe = img[max(0, y0):max(y0 + 1, y1), max(0, x0):max(x0 + 1, x1)]
    if probe.size and light_text(probe):
        img = 255 - img
    lo, hi = _percentiles_u8(img, (1, 99))
    if hi - lo >= 8:
        img = np.clip((img.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    if binarise:
        img = cv2.adaptiveThreshold(cv2.GaussianBlur(img, (3, 3), 0), 255, cv2.ADAPTIVE_THRESH_MEAN_C,
                                    cv2.THRESH_BINARY, max(3, block | 1), 15)
        if despeckle:
            img = _despeckle(img, crop.line.text_height / crop.scale()[1])
    return img


def _despeckle(bw: np.ndarray, text_height: float) -> np.ndarray:
    """Binarised line without noise specks and without the table rules cut by its ends.

    On a noisy, blurred, low-contrast copy the local threshold leaves dots between the digits, and a
    table's vertical rule next to a number is cut as a bar at the crop's end; tesseract reads them as
    punctuation or a 1 and the number falls apart into pieces (measured: harsh copies whose numbers were
    missed read as 12 digits once cleaned). Specks are far smaller than any digit, and a hyphen (a
    grouping) is long enough to stay; a digit never touches the crop's ends (crops are padded)."""
    ink = (bw < 128).astype(np.uint8)
    n, labels, st, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if n <= 1:
        return bw
    th = max(text_height, 4.0)
    w_img = bw.shape[1]
    x, w = st[:, cv2.CC_STAT_LEFT], st[:, cv2.CC_STAT_WIDTH]
    h, area = st[:, cv2.CC_STAT_HEIGHT], st[:, cv2.CC_STAT_AREA]
    hyphen = (w >= 2.5 * h) & (w >= 0.2 * th)
    speck = (area < 0.06 * th * th) & (np.maximum(w, h) < 0.36 * th) & ~hyphen
    rule = ((x == 0) | (x + w >= w_img)) & (h >= 0.8 * th) & (w < 0.25 * th)
    drop = speck | rule
    drop[0] = False
    if not drop.any():
        return bw
    out = bw.copy()
    out[drop[labels]] = 255
    return out


def _percentiles_u8(img: np.ndarray, qs) -> list[float]:
    """np.percentile(img, qs) (linear method, same arithmetic) for uint8 pixels, from a histogram: several
    times faster than numpy's partition on every line crop."""
    cum = np.cumsum(np.bincount(img.ravel(), minlength=256))
    n = int(cum[-1])
    out = []
    for q in qs:
        pos = q / 100.0 * (n - 1)
        k = int(math.floor(pos))
        t = pos - k
        a = float(np.searchsorted(cum, k, side="right"))
        b = float(np.searchsorted(cum, min(k + 1, n - 1), side="right"))
        out.append(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)
    return out


def light_text(img: np.ndarray) -> bool:
    """True when the ink (the minority of an Otsu split) is brighter than the ground."""
    _, bw = cv2.threshold(img, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return np.count_nonzero(bw) < bw.size / 2
