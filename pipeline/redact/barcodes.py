"""Barcodes: QR codes and other symbols whose payload holds a My Number (the card back's QR code encodes it).
Found with zxing-cpp in-process; the whole symbol is covered. Analysis only, like analyzer.py: what and where,
never the number in the open.
"""
from __future__ import annotations

import re
import unicodedata

import cv2
import numpy as np

from .. import number
from . import digits
from .analyzer import ENTITY, LABELS, Finding, PageImage, overlap


def _payload_runs(text: str) -> tuple[bool, list[str]]:
    """Whether a barcode payload is labelled as a My Number, and its distinct 12-digit runs."""
    folded = unicodedata.normalize("NFKC", text or "")
    labelled = any(label in folded for label in LABELS) or bool(re.search(r"my\s*number|\bmn\b", folded, re.I))
    runs = digits.digit_runs(folded) + re.findall(r"\d+", folded)
    return labelled, list(dict.fromkeys(run for run in runs if len(run) == number.LENGTH))


def payload_numbers(text: str) -> list[tuple[bool, bool]]:
    """(valid check digit, labelled) for each 12-digit run in a barcode payload; never the digits."""
    labelled, runs = _payload_runs(text)
    return [(number.is_valid_digits(run), labelled) for run in runs]


class BarcodeAnalyzer:
    """QR codes and barcodes whose payload holds a My Number: the whole symbol is covered."""

    name = "barcode"

    def __init__(self, *, thorough: bool = False, margin_modules: float = 0.08):
        self.thorough = thorough
        self.margin = margin_modules

    @staticmethod
    def formats():
        """2-D codes and the linear symbologies that can carry arbitrary digits. EAN/UPC are left out: they
        are product codes, and a UPC-A's 12 digits pass the My Number check one time in eleven."""
        import zxingcpp
        f = zxingcpp.BarcodeFormat
        return [f.QRCode, f.MicroQRCode, f.DataMatrix, f.PDF417, f.Aztec, f.Code128, f.ITF, f.Code39]

    def _scales(self, page: PageImage):
        yield 1.0
        if self.thorough and max(page.gray.shape) < 900:
            yield 2.0                # tiny pages: modules may be only a pixel or two wide

    def _read(self, gray: np.ndarray, scale: float) -> list[Finding]:
        import zxingcpp
        img = gray
        if scale != 1.0:
            h, w = gray.shape
            img = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        found: list[Finding] = []
        for bc in zxingcpp.read_barcodes(img, formats=self.formats()):
            labelled, runs = _payload_runs(bc.text)
            valid = [run for run in runs if number.is_valid_digits(run)]
            if not valid and not (runs and labelled):
                continue
            pos = bc.position
            pts = np.array([[pos.top_left.x, pos.top_left.y], [pos.top_right.x, pos.top_right.y],
                            [pos.bottom_right.x, pos.bottom_right.y], [pos.bottom_left.x, pos.bottom_left.y]],
                           dtype=float) / scale
            c = pts.mean(0)
            side = max(np.linalg.norm(pts[1] - pts[0]), np.linalg.norm(pts[3] - pts[0]), 10.0)
            grow = 1 + 2 * self.margin + 8.0 / side
            quad = tuple((round(float(x), 1), round(float(y), 1)) for x, y in c + (pts - c) * grow)
            found.append(Finding(ENTITY, "barcode", (quad,), 1.0, bool(valid), labelled, "barcode payload", "",
                                 valid[0] if valid else ""))
        return found

    def analyze(self, page: PageImage) -> list[Finding]:
        """Findings of every reading of the page. Readings are kept in the page memo with the raster they
        read: the same raster is not read twice (zxing is deterministic), e.g. the proof of a page whose codes
        needed no box reads exactly the raster this analyser read after the printed numbers were covered."""
        key = ("barcode-readings", self.margin)
        seen = page.memo.get(key)
        same = seen is not None and (seen[0] is page.gray or (seen[0].shape == page.gray.shape
                                                              and np.array_equal(seen[0], page.gray)))
        readings = seen[1] if same else {}
        found: list[Finding] = []
        for scale in self._scales(page):
            if scale not in readings:
                readings[scale] = self._read(page.gray, scale)
            for f in readings[scale]:
                if not any(overlap(f, g) > 0.5 for g in found):
                    found.append(f)
        page.memo[key] = (page.gray, readings)
        return found
