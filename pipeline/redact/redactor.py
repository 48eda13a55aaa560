"""Drawing: cover findings with solid boxes and return a fresh raster (no metadata, no other layer).

The redactor knows nothing about how findings were made; it draws every quadrilateral it is given and
returns what it covered. The output is a new image built from pixels only: EXIF, ICC profiles, text
chunks and the like of the input do not survive.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .analyzer import Finding


@dataclass(frozen=True)
class Box:
    """A covered region in page pixels (a quadrilateral) and what it was for (never the number)."""
    kind: str                 # "number" or "barcode"
    reason: str
    points: tuple[tuple[float, float], ...]

    def bbox(self) -> tuple[int, int, int, int]:
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        return int(np.floor(min(xs))), int(np.floor(min(ys))), int(np.ceil(max(xs))), int(np.ceil(max(ys)))

    def to_json(self) -> dict:
        return {"kind": self.kind, "reason": self.reason,
                "points": [[round(x, 1), round(y, 1)] for x, y in self.points], "bbox": list(self.bbox())}


def raster_mode(image: Image.Image) -> str:
    """Grey stays grey (1-bit copies become 8-bit so the boxes are solid); everything else becomes RGB."""
    return "L" if image.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") else "RGB"


def fresh(image: Image.Image) -> Image.Image:
    """A new image with the same pixels and nothing else."""
    mode = raster_mode(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(image, dtype=np.float64)
        return Image.fromarray((arr / max(arr.max(), 1) * 255).astype(np.uint8), "L")
    img = image.convert(mode)       # always a new image; of the original it only copies `info` ...
    img.info = {}                   # ... (EXIF, ICC profile, text chunks, DPI), which goes
    return img


class ImageRedactor:
    """Black (or `fill`) boxes over every quad of every finding."""

    def __init__(self, fill: int = 0):
        self.fill = fill

    def boxes_for(self, findings: Sequence[Finding]) -> list[Box]:
        out = []
        for f in findings:
            kind = "barcode" if f.source == "barcode" else "number"
            out += [Box(kind, f.reason, tuple(q)) for q in f.quads]
        return out

    def redact(self, image: Image.Image, findings: Sequence[Finding]) -> tuple[Image.Image, list[Box]]:
        out = fresh(image)
        boxes = self.boxes_for(findings)
        draw = ImageDraw.Draw(out)
        fill = self.fill if out.mode == "L" else (self.fill,) * 3
        for box in boxes:
            draw.polygon([(float(x), float(y)) for x, y in box.points], fill=fill, outline=fill)
        return out, boxes
