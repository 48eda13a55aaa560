"""Mapping the layout's millimetres onto a scanned image, whatever its rotation, skew, shift and dpi.

The QR tag's four corners give a first perspective transform (mm -> px), which already accounts for a page
that arrived turned 90/180/270 degrees. The four printed registration marks are then looked for where that
transform predicts them; their centres, with the QR corners, fix the final transform by least squares, so a
box 150 mm away from the tag is still cropped within a fraction of a millimetre.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..layout import PageLayout

MARK_SEARCH_MM = 6.0


@dataclass
class PageTransform:
    homography: np.ndarray  # 3x3, mm -> image px
    marks_found: int
    residual_mm: float      # RMS distance between the fitted and observed reference points

    def to_px(self, points_mm) -> np.ndarray:
        pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 1, 2)
        return cv2.perspectiveTransform(pts, self.homography).reshape(-1, 2)

    def px_per_mm(self) -> float:
        a, b = self.to_px([[0, 0], [100, 0]])
        return float(np.hypot(*(b - a)) / 100)

    def warp(self, gray: np.ndarray, rect_mm, px_per_mm: float) -> np.ndarray:
        """The rect (x, y, w, h in mm) resampled upright at px_per_mm, as it was printed."""
        x, y, w, h = rect_mm
        out_w, out_h = max(1, round(w * px_per_mm)), max(1, round(h * px_per_mm))
        # Output px -> mm -> image px; WARP_INVERSE_MAP says the matrix maps output onto the source.
        to_mm = np.array([[1 / px_per_mm, 0, x], [0, 1 / px_per_mm, y], [0, 0, 1]], dtype=np.float64)
        return cv2.warpPerspective(gray, self.homography @ to_mm, (out_w, out_h),
                                   flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP, borderValue=255)


def qr_corners_mm(page: PageLayout) -> np.ndarray:
    x, y, w, h = page.qr_mm
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)


def from_tag(corners_px: np.ndarray, page: PageLayout) -> PageTransform:
    """Rotation + scale + shift from the tag's corners. Not a perspective fit: four points 26 mm apart would
    turn a one-pixel corner error into millimetres at the far side of the page."""
    m, _ = cv2.estimateAffinePartial2D(qr_corners_mm(page).astype(np.float32), corners_px.astype(np.float32))
    return PageTransform(np.vstack([m, [0, 0, 1]]), 0, 0.0)


def _find_mark(gray: np.ndarray, centre_px: np.ndarray, mark_px: float, search_px: float) -> np.ndarray | None:
    cx, cy = centre_px
    half = mark_px / 2 + search_px
    l, t = int(max(0, cx - half)), int(max(0, cy - half))
    r, b = int(min(gray.shape[1], cx + half)), int(min(gray.shape[0], cy + half))
    if r - l < mark_px or b - t < mark_px:
        return None
    window = gray[t:b, l:r]
    _, ink = cv2.threshold(window, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(ink, connectivity=8)
    best, best_score = None, 0.0
    area_expected = mark_px * mark_px
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if not (0.6 * mark_px <= w <= 1.6 * mark_px and 0.6 * mark_px <= h <= 1.6 * mark_px):
            continue
        fill = area / float(w * h)
        size_fit = min(area, area_expected) / max(area, area_expected)
        score = fill * size_fit
        if fill > 0.7 and size_fit > 0.5 and score > best_score:
            best, best_score = centroids[i] + (l, t), score
    return best


def _affine_least_squares(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    design = np.hstack([src, np.ones((len(src), 1))])
    solution, *_ = np.linalg.lstsq(design, dst, rcond=None)
    return solution.T  # 2x3


def refine_with_marks(gray: np.ndarray, first: PageTransform, page: PageLayout) -> PageTransform:
    s = page.mark_size_mm
    marks_mm = np.array([[x + s / 2, y + s / 2] for x, y in page.marks_mm], dtype=np.float64)
    predicted = first.to_px(marks_mm)
    ppm = first.px_per_mm()
    src, dst = list(qr_corners_mm(page)), list(first.to_px(qr_corners_mm(page)))
    found = 0
    for mm, px in zip(marks_mm, predicted):
        hit = _find_mark(gray, px, s * ppm, MARK_SEARCH_MM * ppm)
        if hit is not None:
            src.append(mm)
            dst.append(hit)
            found += 1
    if found == 0:
        return PageTransform(first.homography, 0, 0.0)
    src_a, dst_a = np.array(src, dtype=np.float64), np.array(dst, dtype=np.float64)
    # A flatbed or sheet-fed scan is affine (shift, turn, scale, a little shear); with marks far apart the fit
    # is pinned down across the whole page.
    if found >= 3:  # the marks span the page; the tag's corners (less precise) would only pull the fit
        src_a, dst_a = src_a[4:], dst_a[4:]
        m = _affine_least_squares(src_a, dst_a)
    elif found == 2:
        m, _ = cv2.estimateAffine2D(src_a, dst_a, method=cv2.LMEDS)
    else:
        m, _ = cv2.estimateAffinePartial2D(src_a, dst_a, method=cv2.LMEDS)
    if m is None:
        return PageTransform(first.homography, found, 0.0)
    h = np.vstack([m, [0, 0, 1]])
    fitted = cv2.perspectiveTransform(src_a.reshape(-1, 1, 2), h).reshape(-1, 2)
    residual = float(np.sqrt(np.mean(np.sum((fitted - dst_a) ** 2, axis=1))) / ppm)
    return PageTransform(h, found, residual)
