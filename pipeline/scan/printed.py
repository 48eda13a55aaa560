"""A second, independent reader for number fields: tesseract on the field's digits, box lines removed.

The digit classifier is the first reader. When it is not sure enough to accept a field on its own, the field
is read again by tesseract (a different method, strong on printed digits, weak on handwriting). Only when
both readers give the same twelve digits is the reading trusted: two independent readers agreeing on every
digit of a wrong number is far rarer than one reader being unsure. Agreement on a number whose check digit
fails means the person wrote it wrong (miswritten), never that it may be "corrected".
"""
from __future__ import annotations

import cv2
import numpy as np

from ..redact import tesseract

INSET_FRACTION = 0.12  # of the box crop on each side: the printed border and the margin around it


LINE_HEIGHT_PX = 40  # tesseract's LSTM reads best at text heights of a few tens of pixels


def digits_strip(crops: list[np.ndarray]) -> np.ndarray:
    """The twelve box interiors side by side with white gaps, binarised, scaled to one line of text."""
    height = min(c.shape[0] for c in crops)
    inner = []
    for crop in crops:
        h, w = crop.shape
        dy, dx = int(h * INSET_FRACTION), int(w * INSET_FRACTION)
        inner.append(crop[dy:dy + height - 2 * dy, dx:w - dx])
    gap = np.full((inner[0].shape[0], max(4, inner[0].shape[1] // 3)), 255, np.uint8)
    parts = [gap]
    for part in inner:
        parts += [part, gap]
    strip = np.hstack(parts)
    scale = LINE_HEIGHT_PX / strip.shape[0]
    strip = cv2.resize(strip, (max(1, round(strip.shape[1] * scale)), LINE_HEIGHT_PX), interpolation=cv2.INTER_AREA)
    _, strip = cv2.threshold(strip, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    pad = np.full((LINE_HEIGHT_PX // 2, strip.shape[1]), 255, np.uint8)
    return np.vstack([pad, strip, pad])


def read_strips(strips: list[np.ndarray]) -> list[str | None]:
    """Twelve digits per strip, or None where tesseract did not see exactly twelve."""
    if not strips:
        return []
    results = tesseract.recognise(strips, lang="eng", psm=7, whitelist="0123456789", dictionaries=False)
    out = []
    for words in results:
        text = "".join(w.text for w in (words or []) if w.text.strip())
        out.append(text if len(text) == 12 and text.isdigit() else None)
    return out
