"""Finding and decoding codes on a page with zxing-cpp, looking where the layout puts the tag first.

The tag sits at the same place on every kit page (layouts/_page.toml). A page can arrive in any of four
orientations, so the four corner regions where the tag would then be are tried first (a ~10 % crop decodes
several times faster than the whole page); only when none holds a code is the whole page searched, which is
also how other systems' barcodes (foreign pages) are found.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import zxingcpp
from PIL import Image

from ..layout import PageLayout

SEARCH_MARGIN_MM = 22.0  # paper shifted in the feeder, skew, a page scanned at the wrong size


@dataclass(frozen=True)
class FoundCode:
    text: str
    format: str
    corners: np.ndarray  # 4x2 float, image px: the symbol's top-left, top-right, bottom-right, bottom-left


def _codes(image: Image.Image | np.ndarray, offset: tuple[int, int], formats) -> list[FoundCode]:
    out = []
    kwargs = {} if formats is None else {"formats": formats}
    for r in zxingcpp.read_barcodes(image, try_rotate=True, try_downscale=True, **kwargs):
        if not r.valid:
            continue
        p = r.position
        corners = np.array([[c.x, c.y] for c in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)],
                           dtype=np.float64) + np.array(offset, dtype=np.float64)
        out.append(FoundCode(r.text, str(r.format).split(".")[-1], corners))
    return out


def tag_regions(width: int, height: int, page: PageLayout, dpi: float) -> list[tuple[int, int, int, int]]:
    """Pixel boxes (l, t, r, b) where the tag would be if the page were turned 0, 90, 180 or 270 degrees."""
    px = dpi / 25.4
    pw, ph = page.size_mm
    x, y, w, h = page.qr_mm
    m = SEARCH_MARGIN_MM
    # The tag's box in mm for each orientation of the page as it lies in the image (clockwise turns).
    boxes_mm = [
        (x - m, y - m, x + w + m, y + h + m),                                  # upright
        (ph - (y + h) - m, x - m, ph - y + m, x + w + m),                      # turned 90° clockwise
        (pw - (x + w) - m, ph - (y + h) - m, pw - x + m, ph - y + m),          # upside down
        (y - m, pw - (x + w) - m, y + h + m, pw - x + m),                      # turned 90° counter-clockwise
    ]
    out = []
    for l, t, r, b in boxes_mm:
        box = (max(0, int(l * px)), max(0, int(t * px)), min(width, int(r * px)), min(height, int(b * px)))
        if box[2] - box[0] > 20 and box[3] - box[1] > 20:
            out.append(box)
    return out


def find_tag_candidates(image: Image.Image, page: PageLayout, dpi: float) -> list[FoundCode]:
    """QR codes in the tag regions (fast path). Empty when no region holds one."""
    for box in tag_regions(image.width, image.height, page, dpi):
        found = _codes(image.crop(box), (box[0], box[1]), zxingcpp.BarcodeFormat.QRCode)
        if found:
            return found
    return []


def find_all_codes(image: Image.Image) -> list[FoundCode]:
    """Every code of any symbology on the whole page (slow path; foreign barcodes show up here)."""
    return _codes(image, (0, 0), None)
