"""Cutting a page's fields out of the scan with the page transform, and measuring ink in boxes.

Crops are taken at the scan's own resolution (never upsampled beyond it, never below 6 px/mm) so the digit
reader sees what the scanner saw; each box is cut with a small margin because the printed border is removed
by the reader, and a digit touching it must not be cut off.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..layout import NumberField
from .align import PageTransform

BOX_MARGIN_MM = 1.0
MIN_PX_PER_MM = 6.0
MAX_PX_PER_MM = 12.0  # 300 dpi: more resolution adds nothing for a 10 mm digit


def _resolution(transform: PageTransform) -> float:
    return float(np.clip(transform.px_per_mm(), MIN_PX_PER_MM, MAX_PX_PER_MM))


def box_crops(gray: np.ndarray, transform: PageTransform, field: NumberField) -> list[np.ndarray]:
    ppm = _resolution(transform)
    m = BOX_MARGIN_MM
    return [transform.warp(gray, (x - m, y - m, w + 2 * m, h + 2 * m), ppm) for x, y, w, h in field.boxes_mm]


def field_strip(gray: np.ndarray, transform: PageTransform, field: NumberField, margin_mm: float = 3.0) -> np.ndarray:
    """The whole field, upright, for a reviewer: only the boxes, never the rest of the page."""
    x0, y0, _, _ = field.boxes_mm[0]
    x1, y1, w, h = field.boxes_mm[-1]
    return transform.warp(gray, (x0 - margin_mm, y0 - margin_mm, x1 + w - x0 + 2 * margin_mm, h + 2 * margin_mm),
                          _resolution(transform))


def ink_fraction(gray: np.ndarray, transform: PageTransform, rect_mm, inset_mm: float = 1.0) -> float:
    """Share of dark pixels inside a printed box, its border excluded (inset)."""
    x, y, w, h = rect_mm
    inner = (x + inset_mm, y + inset_mm, w - 2 * inset_mm, h - 2 * inset_mm)
    crop = transform.warp(gray, inner, _resolution(transform))
    if crop.size == 0:
        return 0.0
    # A fixed threshold, not Otsu: an empty box is all paper and Otsu would split its noise in two.
    dark = crop < 128
    dark = cv2.morphologyEx(dark.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    return float(dark.mean())


TICK_MIN_INK = 0.03      # a tick or cross in a 6 mm box covers well over 3 % of it
SIGNATURE_MIN_INK = 0.004


def is_ticked(gray, transform, rect_mm) -> bool:
    return ink_fraction(gray, transform, rect_mm, inset_mm=0.8) >= TICK_MIN_INK


def is_signed(gray, transform, rect_mm) -> bool:
    # The printed label "署名（自署）" sits in the box's top-left 6 mm: leave it out.
    x, y, w, h = rect_mm
    return ink_fraction(gray, transform, (x, y + 6.0, w, h - 6.0), inset_mm=1.0) >= SIGNATURE_MIN_INK
