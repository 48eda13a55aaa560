"""A scan simulator: a person fills in a printed kit page, the mailroom scans it.

Used by the scan-intake tests and benchmarks. Everything is deterministic given a seed or a numpy
``Generator`` (every ``rng`` argument accepts either, or None for seed 0). Coordinates follow the layout:
millimetres from the page's top-left corner, y downwards; pixel = mm * dpi / 25.4.

Typical use::

    page = rasterise(kit_pdf, pdf_page_index, dpi=300)                    # what the printer put on paper
    write_digits(page, pf1, "self", number, 300, style="handwritten", rng=rng)
    tick_checkbox(page, pf1, "consent", 300, rng); sign(page, pf1, "signature", 300, rng)
    scan, dpi_xy = degrade(page, 300, rng, rotate=90, skew_deg=1.5, noise=6, jpeg_quality=70)
    make_scan_pdf([(scan, dpi_xy)], "scan.pdf")

The filling-in functions draw into the image in place (and return it). ``degrade`` returns a new image and
its (x, y) dpi; the image's ``info["scansim"]`` holds the ground truth of where the page went
(``ScanTruth``: source px -> scan px matrix), see ``truth_of`` / ``ScanTruth.mm_to_px``.

Numbers come from ``random_valid_number`` (11 random digits + check digit): synthetic, never taken from a
person. Handwriting comes from the MNIST test set when it is present (``load_mnist_test``).
"""
from __future__ import annotations

import gzip
import io
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline import number as _number

SHARED_DATA = Path(os.environ.get("MYNUMBER_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
MNIST_DIR = SHARED_DATA / "digits" / "mnist"

IPAEX = "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"
PRINTED_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    IPAEX,
)
MM_PER_INCH = 25.4


# ----------------------------------------------------------------------------------------------- basics

def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def mm_to_px(v_mm, dpi) -> float:
    """Millimetres to pixels at dpi (works on numpy arrays too)."""
    return v_mm * dpi / MM_PER_INCH


def rasterise(pdf_path, page_index: int, dpi: int = 300) -> Image.Image:
    """Page `page_index` (0-based) of a PDF rendered with pdfium at dpi, as a grey ("L") image on white."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        page = pdf[page_index]
        bitmap = page.render(scale=dpi / 72, fill_color=(255, 255, 255, 255), grayscale=True)
        img = bitmap.to_pil().convert("L")
        img.load()
        page.close()
    finally:
        pdf.close()
    img.info["dpi"] = (dpi, dpi)
    return img


def _rect_px(rect_mm, dpi) -> tuple[float, float, float, float]:
    x, y, w, h = rect_mm
    return mm_to_px(x, dpi), mm_to_px(y, dpi), mm_to_px(w, dpi), mm_to_px(h, dpi)


def _ink(img: Image.Image, alpha: np.ndarray, left: int, top: int, ink) -> None:
    """Multiply-blend ink with coverage `alpha` (float 0..1, H x W) into img at (left, top), in place.

    ink: the grey level (0..255) of fully covered paper, or an RGB tuple for an RGB image.
    """
    h, w = alpha.shape
    x0, y0 = max(0, left), max(0, top)
    x1, y1 = min(img.width, left + w), min(img.height, top + h)
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - top:y1 - top, x0 - left:x1 - left].astype(np.float32)
    region = np.asarray(img.crop((x0, y0, x1, y1)), dtype=np.float32)
    if region.ndim == 3:
        ink_v = np.asarray(ink if np.ndim(ink) else (ink, ink, ink), dtype=np.float32)[: region.shape[2]]
        out = region * (1 - a[..., None] * (1 - ink_v / 255.0))
    else:
        ink_v = float(np.mean(ink)) if np.ndim(ink) else float(ink)
        out = region * (1 - a * (1 - ink_v / 255.0))
    img.paste(Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), mode=img.mode), (x0, y0))


def _stroke_alpha(size: tuple[int, int], strokes, width_px: float, supersample: int = 3) -> np.ndarray:
    """Anti-aliased coverage (H x W float) of polylines `strokes` (lists of (x, y) px) drawn `width_px` wide."""
    w, h = size
    s = supersample
    canvas = Image.new("L", (w * s, h * s), 0)
    draw = ImageDraw.Draw(canvas)
    lw = max(1, round(width_px * s))
    for pts in strokes:
        pts = [(float(x) * s, float(y) * s) for x, y in pts]
        if len(pts) >= 2:
            draw.line(pts, fill=255, width=lw, joint="curve")
        r = lw / 2  # round caps
        for px, py in (pts[0], pts[-1]):
            draw.ellipse((px - r, py - r, px + r, py + r), fill=255)
    small = canvas.resize((w, h), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _bezier(p0, p1, p2, p3, n: int = 24) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    p0, p1, p2, p3 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2, p3))
    return ((1 - t) ** 3) * p0 + 3 * ((1 - t) ** 2) * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3


def _pen(rng: np.random.Generator, img: Image.Image):
    """A pen colour: black ballpoint (grey 15..60) or blue (darkish blue; grey ~70..110 after conversion)."""
    if img.mode == "RGB" and rng.random() < 0.4:
        return (int(rng.integers(10, 40)), int(rng.integers(30, 70)), int(rng.integers(110, 170)))
    return float(rng.uniform(15, 75))


# ----------------------------------------------------------------------------------------------- MNIST

def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@lru_cache(maxsize=2)
def load_mnist_test(directory: str | os.PathLike | None = None):
    """MNIST test set as (images uint8 N x 28 x 28 white-on-black, labels uint8 N), or None when absent."""
    d = Path(directory) if directory else MNIST_DIR
    images, labels = d / "t10k-images-idx3-ubyte.gz", d / "t10k-labels-idx1-ubyte.gz"
    if not (images.exists() and labels.exists()):
        return None
    imgs, labs = _read_idx(images), _read_idx(labels)
    if imgs.ndim != 3 or labs.ndim != 1 or len(imgs) != len(labs):
        raise ValueError(f"{d}: MNIST files do not match")
    imgs.setflags(write=False)
    labs.setflags(write=False)
    return imgs, labs


# ----------------------------------------------------------------------------------------------- filling in

@lru_cache(maxsize=16)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _available_fonts() -> list[str]:
    return [p for p in PRINTED_FONTS if Path(p).exists()]


def _glyph_alpha(char: str, font_path: str, height_px: float) -> np.ndarray:
    """Coverage of one character rendered so that its ink is height_px tall, cropped to the ink."""
    probe = _font(font_path, 200)
    l, t, r, b = probe.getbbox("0")  # digits share a height in these fonts
    size = max(4, round(200 * height_px / max(1, b - t)))
    f = _font(font_path, size)
    l, t, r, b = f.getbbox(char)
    canvas = Image.new("L", (r - l + 4, b - t + 4), 0)
    ImageDraw.Draw(canvas).text((2 - l, 2 - t), char, font=f, fill=255)
    a = np.asarray(canvas, dtype=np.float32) / 255.0
    return _crop_to_ink(a)


def _crop_to_ink(a: np.ndarray, level: float = 0.02) -> np.ndarray:
    ys, xs = np.nonzero(a > level)
    if len(ys) == 0:
        return a[:1, :1] * 0
    return a[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def _affine_patch(a: np.ndarray, angle_deg: float, shear: float) -> np.ndarray:
    """Rotate (CCW, degrees) and shear (x += shear * (centre_y - y), a forward slant) a coverage patch."""
    h, w = a.shape
    pad = int(np.ceil(0.5 * max(h, w)))
    big = cv2.copyMakeBorder(a, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    c = np.array([big.shape[1] / 2, big.shape[0] / 2])
    th = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]])
    sh = np.array([[1.0, -shear], [0.0, 1.0]])
    m = rot @ sh
    mat = np.hstack([m, (c - m @ c)[:, None]])
    out = cv2.warpAffine(big, mat, (big.shape[1], big.shape[0]), flags=cv2.INTER_LINEAR, borderValue=0)
    return _crop_to_ink(out)


def _thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean mask to a one-pixel skeleton (vectorised; patches are small)."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            c = img[1:-1, 1:-1]
            p2, p3, p4, p5 = img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:], img[2:, 2:]
            p6, p7, p8, p9 = img[2:, 1:-1], img[2:, :-2], img[1:-1, :-2], img[:-2, :-2]
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            b = p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9
            a = sum(((ring[i] == 0) & (ring[i + 1] == 1)).astype(np.uint8) for i in range(8))
            if step == 0:
                cond = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                cond = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = (c == 1) & (b >= 2) & (b <= 6) & (a == 1) & cond
            if remove.any():
                img[1:-1, 1:-1] = c & ~remove
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def _mnist_alpha(sample: np.ndarray, height_px: float, rng: np.random.Generator, *, pen_px: float) -> np.ndarray:
    """An MNIST digit redrawn as pen ink, height_px tall: the upscaled digit's strokes are thinned to their
    centre line, then drawn again with a round pen pen_px wide (MNIST strokes are felt-pen thick), with a
    slowly varying pressure along the stroke."""
    a = _crop_to_ink(sample.astype(np.float32) / 255.0, 0.1)
    scale = height_px / a.shape[0]
    w = max(1, round(a.shape[1] * scale))
    h = max(1, round(height_px))
    pad = int(np.ceil(pen_px)) + 2
    big = cv2.resize(a, (w, h), interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), max(0.6, scale * 0.5))
    big = np.pad(big, pad)
    skeleton = _thin(big > 0.45)
    if not skeleton.any():
        return np.clip((big - 0.45) / 0.1 + 0.5, 0, 1)
    dist = cv2.distanceTransform(np.where(skeleton, 0, 255).astype(np.uint8), cv2.DIST_L2, 5)
    alpha = np.clip(pen_px / 2 + 0.5 - dist, 0.0, 1.0)
    pressure = cv2.resize(rng.uniform(0.75, 1.0, (4, 4)).astype(np.float32), alpha.shape[::-1],
                          interpolation=cv2.INTER_CUBIC)
    return _crop_to_ink(alpha * np.clip(pressure, 0.6, 1.0))


def _font_handwriting_alpha(char: str, height_px: float, rng: np.random.Generator) -> np.ndarray:
    """Fallback when MNIST is absent: a font glyph (oblique/condensed), to be wobbled like handwriting."""
    options = [p for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Oblique.ttf",
                           "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Oblique.ttf",
                           "/usr/share/fonts/truetype/liberation/LiberationSans-Italic.ttf") if Path(p).exists()]
    options = options or _available_fonts()
    return _glyph_alpha(char, options[int(rng.integers(len(options)))], height_px)


def write_digits(img: Image.Image, page_layout, field: str, digits: str, dpi, *, style: str = "printed",
                 rng=None, font_path: str | None = None, handwritten_source=None) -> Image.Image:
    """Write `digits` into the 12 boxes of number field `field` (first digit in the first box), in place.

    digits: up to 12 characters, '0'-'9' or ' ' (box left empty).
    style "printed": each digit in one system font (font_path, else one picked per field from DejaVu /
    Liberation / IPAexGothic), ink ~70 % of the box height, centred with a small random jitter.
    style "handwritten": an MNIST test digit of the right label per box (handwritten_source = (images,
    labels), else load_mnist_test(); without MNIST an oblique font glyph stands in), 60-85 % of the box
    height, random offset, slight rotation and slant, per-writer pen darkness and stroke width; now and then
    a digit touches or crosses the box border. Ink is multiply-blended, so box lines stay visible under it.
    """
    rng = _rng(rng)
    if style not in ("printed", "handwritten"):
        raise ValueError(f"style must be 'printed' or 'handwritten', not {style!r}")
    boxes = page_layout.field_named(field).boxes_mm
    if len(digits) > len(boxes) or any(c not in "0123456789 " for c in digits):
        raise ValueError(f"digits must be at most {len(boxes)} characters 0-9 or ' '")
    source = None
    if style == "handwritten":
        source = handwritten_source if handwritten_source is not None else load_mnist_test()
    if style == "printed":
        fonts = [font_path] if font_path else _available_fonts()
        fpath = fonts[int(rng.integers(len(fonts)))]
        ink = float(rng.uniform(10, 45)) if img.mode != "RGB" else (20, 20, 25)
        rel_h = float(rng.uniform(0.66, 0.74))
    else:
        ink = _pen(rng, img)
        pen_px = mm_to_px(float(rng.choice([rng.uniform(0.45, 0.7), rng.uniform(0.7, 1.0)], p=[0.75, 0.25])), dpi)
        writer_slant = float(rng.normal(0.08, 0.08))
        writer_size = float(rng.uniform(0.62, 0.8))
    by_label = None
    if source is not None:
        images, labels = source
        labels = np.asarray(labels)
        by_label = {d: np.flatnonzero(labels == d) for d in range(10)}
    for char, box in zip(digits, boxes):
        if char == " ":
            continue
        bx, by, bw, bh = _rect_px(box, dpi)
        if style == "printed":
            a = _glyph_alpha(char, fpath, rel_h * bh)
            jx, jy = rng.normal(0, 0.025 * bw), rng.normal(0, 0.025 * bh)
            strength = 1.0
        else:
            height = np.clip(writer_size + rng.normal(0, 0.05), 0.6, 0.85) * bh
            if by_label is not None and len(by_label[int(char)]):
                idx = by_label[int(char)][int(rng.integers(len(by_label[int(char)])))]
                a = _mnist_alpha(np.asarray(images[idx]), height, rng, pen_px=pen_px)
            else:
                a = _font_handwriting_alpha(char, height, rng)
            a = _affine_patch(a, float(rng.normal(0, 4.0)), writer_slant + float(rng.normal(0, 0.05)))
            if a.shape[1] > 0.92 * bw:  # a very wide digit is written narrower
                a = cv2.resize(a, (max(1, int(0.92 * bw)), a.shape[0]), interpolation=cv2.INTER_AREA)
            room_x, room_y = max(0.0, (bw - a.shape[1]) / 2), max(0.0, (bh - a.shape[0]) / 2)
            if rng.random() < 0.12:  # careless: touching/crossing the border
                jx = rng.choice([-1, 1]) * (room_x + rng.uniform(0.0, 0.07) * bw) if rng.random() < 0.5 else 0.0
                jy = rng.choice([-1, 1]) * (room_y + rng.uniform(0.0, 0.07) * bh) if jx == 0.0 else 0.0
            else:
                jx = rng.uniform(-0.7, 0.7) * room_x
                jy = rng.uniform(-0.7, 0.7) * room_y
            strength = float(rng.uniform(0.8, 1.0))  # pressure
        left = int(round(bx + bw / 2 - a.shape[1] / 2 + jx))
        top = int(round(by + bh / 2 - a.shape[0] / 2 + jy))
        _ink(img, a * strength, left, top, ink)
    return img


def tick_checkbox(img: Image.Image, page_layout, name: str, dpi, rng=None) -> Image.Image:
    """A pen mark in check box `name`: usually a tick, sometimes a cross; may overshoot the box a little."""
    rng = _rng(rng)
    bx, by, bw, bh = _rect_px(page_layout.checkboxes[name], dpi)
    pad = int(max(bw, bh) * 0.6)
    size = (int(bw) + 2 * pad, int(bh) + 2 * pad)

    def p(u, v):  # box-relative (0..1) -> patch px, with hand wobble
        return (pad + u * bw + rng.normal(0, 0.02 * bw), pad + v * bh + rng.normal(0, 0.02 * bh))

    if rng.random() < 0.75:
        start, low, end = p(0.15, 0.5), p(0.42, 0.85), p(rng.uniform(0.9, 1.25), rng.uniform(-0.3, 0.1))
        mid = ((low[0] + end[0]) / 2 + rng.normal(0, 0.05 * bw), (low[1] + end[1]) / 2)
        strokes = [list(map(tuple, np.vstack([_bezier(start, start, low, low, 8),
                                              _bezier(low, mid, mid, end, 16)])))]
    else:
        strokes = [list(map(tuple, _bezier(p(0.12, 0.12), p(0.4, 0.45), p(0.6, 0.55), p(0.9, 0.9), 12))),
                   list(map(tuple, _bezier(p(0.88, 0.1), p(0.6, 0.4), p(0.4, 0.6), p(0.1, 0.92), 12)))]
    a = _stroke_alpha(size, strokes, mm_to_px(rng.uniform(0.35, 0.6), dpi))
    _ink(img, a * rng.uniform(0.85, 1.0), int(bx) - pad, int(by) - pad, _pen(rng, img))
    return img


def sign(img: Image.Image, page_layout, name: str, dpi, rng=None) -> Image.Image:
    """A scribbled signature in signature box `name`: 1-3 'words' of looping cubic Bezier strokes along a
    slightly tilted baseline, plus sometimes an underline flourish. Keeps clear of the box's caption
    (top-left) and mostly inside the box."""
    rng = _rng(rng)
    bx, by, bw, bh = _rect_px(page_layout.signatures[name], dpi)
    pad = int(bh * 0.3)
    size = (int(bw) + 2 * pad, int(bh) + 2 * pad)
    x_start, x_end = pad + bw * rng.uniform(0.15, 0.3), pad + bw * rng.uniform(0.7, 0.92)
    base = pad + bh * rng.uniform(0.6, 0.72)
    tilt = rng.normal(0, 0.04)
    amp = bh * rng.uniform(0.18, 0.3)
    words = int(rng.integers(1, 4))
    edges = np.sort(rng.uniform(x_start, x_end, words - 1)) if words > 1 else np.array([])
    bounds = [x_start, *edges, x_end]
    strokes = []
    for i in range(words):
        x0, x1 = bounds[i] + (bw * 0.02 if i else 0), bounds[i + 1] - bw * 0.02
        if x1 - x0 < bw * 0.05:
            continue
        steps = [x0]
        while steps[-1] < x1:
            steps.append(steps[-1] + amp * rng.uniform(0.35, 0.9))
        xs = np.clip(np.array(steps), x0, x1)
        pts = []
        prev = (x0, base + tilt * (x0 - pad))
        for k in range(1, len(xs)):
            up = k % 2 == 1
            if up:  # mostly small letters, now and then an ascender
                rise = amp * (rng.uniform(0.3, 0.6) if rng.random() < 0.7 else rng.uniform(0.9, 1.3))
                if i == 0 and k == 1:
                    rise = amp * rng.uniform(1.1, 1.5)  # a taller capital
            else:
                rise = -amp * rng.uniform(-0.1, 0.25)
            nxt = (xs[k], base + tilt * (xs[k] - pad) - rise)
            loop = rng.random() < 0.3  # control points going back make a loop
            dxs = nxt[0] - prev[0]
            c1 = (prev[0] + dxs * (1.6 if loop else 0.4), prev[1] + rng.normal(0, amp * 0.25))
            c2 = (nxt[0] - dxs * (1.6 if loop else 0.4), nxt[1] + rng.normal(0, amp * 0.25))
            pts.append(_bezier(prev, c1, c2, nxt, 20))
            prev = nxt
        strokes.append(list(map(tuple, np.vstack(pts))))
    if rng.random() < 0.5:
        y = base + amp * rng.uniform(0.4, 0.7)
        a0, a1 = (x_start - bw * 0.03, y + tilt * (x_start - pad)), (x_end + bw * 0.03, y + tilt * (x_end - pad))
        strokes.append(list(map(tuple, _bezier(a0, (a0[0] + bw * 0.3, y + amp * 0.3),
                                               (a1[0] - bw * 0.3, y - amp * 0.3), a1, 30))))
    a = _stroke_alpha(size, strokes, mm_to_px(rng.uniform(0.3, 0.55), dpi))
    _ink(img, a * rng.uniform(0.85, 1.0), int(bx) - pad, int(by) - pad, _pen(rng, img))
    return img


def paste_id_copy(img: Image.Image, rect_mm, dpi, card_image, *, rng=None, fill: float = 0.92) -> Image.Image:
    """Paste `card_image` (a PIL image, or anything with an `.image`, e.g. tests.idcards.Sample) into the
    paste area rect_mm, scaled to fit `fill` of it and centred, in place. With rng: a small random tilt and
    offset, as glued by hand."""
    if hasattr(card_image, "image") and not isinstance(card_image, Image.Image):
        card_image = card_image.image
    card = card_image.convert(img.mode)
    x, y, w, h = _rect_px(rect_mm, dpi)
    k = min(w * fill / card.width, h * fill / card.height)
    card = card.resize((max(1, round(card.width * k)), max(1, round(card.height * k))), Image.Resampling.LANCZOS)
    mask = Image.new("L", card.size, 255)
    dx = dy = 0.0
    if rng is not None:
        rng = _rng(rng)
        angle = float(rng.normal(0, 1.0))
        card = card.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True,
                           fillcolor=255 if img.mode == "L" else (255, 255, 255))
        mask = mask.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=0)
        dx, dy = rng.uniform(-0.3, 0.3) * (w - card.width), rng.uniform(-0.3, 0.3) * (h - card.height)
    left = int(round(x + (w - card.width) / 2 + dx))
    top = int(round(y + (h - card.height) / 2 + dy))
    img.paste(card, (left, top), mask)
    return img


def copies_on_a4(cards, dpi, rng=None) -> Image.Image:
    """A returned sheet of copied cards: each of `cards` (PIL images or tests.idcards Samples, at most three)
    enlarged into its own band of an A4 page, glued by hand (a small tilt and offset), then scanned: turned
    any quarter, skewed up to 2 degrees, noise, JPEG. Grey."""
    rng = _rng(rng)
    page = Image.new("L", (round(210 / MM_PER_INCH * dpi), round(297 / MM_PER_INCH * dpi)), 255)
    for k, card in enumerate(cards):
        paste_id_copy(page, (20, 20 + 90 * k, 170, 80), dpi, card, rng=rng)
    scan, _ = degrade(page, dpi, rng, rotate=int(rng.choice([0, 90, 180, 270])),
                      skew_deg=float(rng.uniform(-2, 2)), noise=4.0, jpeg_quality=80)
    return scan.convert("L")


# ----------------------------------------------------------------------------------------------- scanning

@dataclass(frozen=True)
class ScanTruth:
    """Where the page went: `matrix` (3x3) maps source-image px (x, y, 1) to scan px; src_dpi is the dpi
    of the image given to degrade, dpi_xy the scan's. `unrotated` is the matrix before the final 90-degree
    turn (i.e. into the scan turned back upright by `rotate` degrees clockwise)."""
    matrix: np.ndarray
    unrotated: np.ndarray
    src_dpi: float
    dpi_xy: tuple
    rotate: int
    size: tuple[int, int]

    def mm_to_px(self, points_mm, *, upright: bool = False) -> np.ndarray:
        """Layout mm points (N x 2) -> scan px (or px of the scan turned back upright when upright=True)."""
        pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 2) * (self.src_dpi / MM_PER_INCH)
        m = self.unrotated if upright else self.matrix
        return (np.hstack([pts, np.ones((len(pts), 1))]) @ m.T)[:, :2]

    def homography_mm(self) -> np.ndarray:
        """3x3 mm -> scan px (compare with pipeline.scan.align.PageTransform.homography)."""
        s = self.src_dpi / MM_PER_INCH
        return self.matrix @ np.diag([s, s, 1.0])


def truth_of(img: Image.Image) -> ScanTruth:
    return img.info["scansim"]


def upright(img: Image.Image) -> Image.Image:
    """A degraded scan turned back by its `rotate` (exactly), keeping its ScanTruth."""
    truth = truth_of(img)
    turn = {0: None, 90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180,
            270: Image.Transpose.ROTATE_90}[truth.rotate]
    out = img.copy() if turn is None else img.transpose(turn)
    out.info["scansim"] = truth
    return out


def _dpi_value(v: float):
    return int(round(v)) if abs(v - round(v)) < 1e-9 else v


def degrade(img: Image.Image, dpi, rng=None, *, rotate: int = 0, skew_deg: float = 0.0, noise: float = 0.0,
            blur: float = 0.0, jpeg_quality: int | None = None, target_dpi: int | None = None,
            bilevel: bool = False, threshold: int | None = None, fax: bool = False, speckle: float = 0.0,
            brightness: float = 0.0, contrast: float = 0.0, shift_mm: tuple[float, float] = (0.0, 0.0),
            expand: bool = True, fill: int = 255) -> tuple[Image.Image, tuple]:
    """Scan a (filled-in) page image of `dpi`: returns (scan image, (dpi_x, dpi_y)).

    Steps, in order:
      1. shift_mm (dx, dy: paper offset, + = right/down) and skew_deg (paper turned counter-clockwise by that
         many degrees about the page centre), with `fill` (scanner lid: 255 white) where there is no paper.
         expand=True grows the canvas to hold the whole turned page (an over-scanning ADF); expand=False
         keeps the page-sized canvas and cuts what falls outside (a fixed-size flatbed);
      2. blur: Gaussian sigma in source px;
      3. resample to target_dpi (default: unchanged); fax=True means 200 x 100 dpi (x at 200, vertical
         resolution halved: the consumer resamples) and implies bilevel;
      4. brightness / contrast jitter (a random offset within +-brightness grey levels, gain within
         1 +- contrast), gaussian `noise` (std in grey levels), `speckle` (fraction of pixels hit by dust dots,
         mostly dark, 1-2 px);
      5. bilevel: threshold at `threshold` or Otsu's (clamped to 90..200) -> mode "1";
      6. rotate 0/90/180/270: the page turned counter-clockwise by that much, exactly (dpi x/y swap on 90/270);
      7. jpeg_quality: a JPEG round trip (a bilevel image becomes grey "L").
    The result's info["scansim"] is the ScanTruth (source px -> scan px) and info["dpi"] the dpi pair.
    """
    rng = _rng(rng)
    if rotate not in (0, 90, 180, 270):
        raise ValueError("rotate must be 0, 90, 180 or 270")
    if img.mode not in ("L", "RGB"):
        img = img.convert("L")
    a = np.asarray(img, dtype=np.float32)
    src_dpi = float(dpi)
    m = np.eye(3)
    fill_v = fill if a.ndim == 2 else (fill, fill, fill)

    # 1. shift / skew
    dx, dy = mm_to_px(shift_mm[0], src_dpi), mm_to_px(shift_mm[1], src_dpi)
    if skew_deg or dx or dy:
        h, w = a.shape[:2]
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), float(skew_deg), 1.0)
        rot = np.vstack([rot, [0, 0, 1]])
        out_w, out_h = w, h
        if expand and skew_deg:
            corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], dtype=np.float64) @ rot.T
            lo, hi = corners[:, :2].min(axis=0), corners[:, :2].max(axis=0)
            out_w, out_h = int(np.ceil(hi[0] - lo[0])), int(np.ceil(hi[1] - lo[1]))
            rot = np.array([[1, 0, -lo[0]], [0, 1, -lo[1]], [0, 0, 1]]) @ rot
        step = np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]]) @ rot
        a = cv2.warpAffine(a, step[:2], (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=fill_v)
        m = step @ m

    # 2. blur
    if blur > 0:
        a = cv2.GaussianBlur(a, (0, 0), float(blur))

    # 3. resample
    if fax:
        bilevel = True
        tx, ty = 200.0, 100.0
    else:
        tx = ty = float(target_dpi) if target_dpi else src_dpi
    if (tx, ty) != (src_dpi, src_dpi):
        h, w = a.shape[:2]
        nw, nh = max(1, round(w * tx / src_dpi)), max(1, round(h * ty / src_dpi))
        interp = cv2.INTER_AREA if nw < w or nh < h else cv2.INTER_LINEAR
        a = cv2.resize(a, (nw, nh), interpolation=interp)
        sx, sy = nw / w, nh / h
        # pixel centres: x' + 0.5 = (x + 0.5) * sx
        m = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]]) @ m

    # 4. exposure, noise, speckle
    if brightness or contrast:
        gain = 1.0 + rng.uniform(-contrast, contrast)
        offset = rng.uniform(-brightness, brightness)
        a = (a - 128.0) * gain + 128.0 + offset
    if noise > 0:
        a = a + rng.standard_normal(a.shape, dtype=np.float32) * np.float32(noise)
    if speckle > 0:
        h, w = a.shape[:2]
        count = int(rng.binomial(h * w, min(1.0, speckle)))
        ys, xs = rng.integers(0, h, count), rng.integers(0, w, count)
        dark = rng.random(count) < 0.85
        vals = np.where(dark, rng.uniform(0, 70, count), 255.0).astype(np.float32)
        big = rng.random(count) < 0.4  # some dots are 2x2
        for oy, ox, sel in ((0, 0, slice(None)), (0, 1, big), (1, 0, big), (1, 1, big)):
            yy, xx = np.minimum(ys[sel] + oy, h - 1), np.minimum(xs[sel] + ox, w - 1)
            if a.ndim == 3:
                a[yy, xx, :] = vals[sel][:, None]
            else:
                a[yy, xx] = vals[sel]
    a = np.clip(a + 0.5, 0, 255).astype(np.uint8)

    # 5. bilevel
    if bilevel:
        grey = a if a.ndim == 2 else cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
        if threshold is None:
            t, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
            t = float(np.clip(t, 90, 200))
        else:
            t = float(threshold)
        a = grey > t  # True = white

    # 6. rotate (counter-clockwise)
    k = rotate // 90
    if k:
        h, w = a.shape[:2]
        a = np.ascontiguousarray(np.rot90(a, k))
        turn = {1: [[0, 1, 0], [-1, 0, w - 1], [0, 0, 1]],
                2: [[-1, 0, w - 1], [0, -1, h - 1], [0, 0, 1]],
                3: [[0, -1, h - 1], [1, 0, 0], [0, 0, 1]]}[k]
        unrotated = m
        m = np.array(turn, dtype=np.float64) @ m
        if k % 2:
            tx, ty = ty, tx
    else:
        unrotated = m

    out = Image.fromarray(a) if a.dtype != bool else Image.fromarray(a).convert("1")
    if a.dtype == bool and out.mode != "1":
        out = out.convert("1")

    # 7. JPEG
    if jpeg_quality:
        if out.mode == "1":
            out = out.convert("L")
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=int(jpeg_quality))
        buf.seek(0)
        out = Image.open(buf)
        out.load()

    dpi_xy = (_dpi_value(tx), _dpi_value(ty))
    out.info["dpi"] = dpi_xy
    out.info["scansim"] = ScanTruth(matrix=m, unrotated=unrotated, src_dpi=src_dpi, dpi_xy=dpi_xy,
                                    rotate=rotate, size=out.size)
    return out, dpi_xy


# ----------------------------------------------------------------------------------------------- files

def _g4_strip(img: Image.Image) -> tuple[bytes, int]:
    """CCITT Group 4 data of a mode "1" image: Pillow/libtiff writes a one-strip group4 TIFF; take the strip."""
    buf = io.BytesIO()
    img.save(buf, format="TIFF", compression="group4", tiffinfo={278: img.height})  # RowsPerStrip = height
    buf.seek(0)
    with Image.open(buf) as tif:
        offsets, counts = tif.tag_v2[273], tif.tag_v2[279]
        photometric = tif.tag_v2.get(262, 0)
        fill_order = tif.tag_v2.get(266, 1)
    offsets = offsets if isinstance(offsets, tuple) else (offsets,)
    counts = counts if isinstance(counts, tuple) else (counts,)
    if len(offsets) != 1 or fill_order != 1:
        raise RuntimeError("Pillow wrote a group4 TIFF this simulator cannot lift into a PDF")
    data = buf.getvalue()
    return data[offsets[0]:offsets[0] + counts[0]], photometric


def make_scan_pdf(pages, path, *, jpeg_quality: int = 85, bilevel_codec: str = "g4") -> Path:
    """A scanner-like PDF: one page per (image, dpi_xy), each page just that image (no text layer).

    Grey ("L") and colour ("RGB") pages are JPEG (DCTDecode); bilevel ("1") pages CCITT G4 (bilevel_codec
    "g4") or 1-bit Flate ("flate"). Page size = image size / dpi in points, so a 300 dpi A4 scan is A4.
    """
    import pikepdf

    pdf = pikepdf.new()
    pdf.docinfo["/Producer"] = "scansim virtual scanner"
    for img, dpi_xy in pages:
        dpi_x, dpi_y = (dpi_xy, dpi_xy) if np.ndim(dpi_xy) == 0 else dpi_xy
        w, h = img.size
        if img.mode == "1":
            if bilevel_codec == "g4":
                data, photometric = _g4_strip(img)
                # libtiff codes 0-bits as white runs for WhiteIsZero (0) and black for BlackIsZero (1).
                xobj = pikepdf.Stream(pdf, data)
                xobj.Filter = pikepdf.Name.CCITTFaxDecode
                xobj.DecodeParms = pikepdf.Dictionary(K=-1, Columns=w, Rows=h, BlackIs1=bool(photometric == 1))
            else:
                packed = np.packbits(np.asarray(img, dtype=bool), axis=1)  # 1 = white, rows byte-aligned
                import zlib
                xobj = pikepdf.Stream(pdf, zlib.compress(packed.tobytes(), 9))
                xobj.Filter = pikepdf.Name.FlateDecode
            xobj.ColorSpace = pikepdf.Name.DeviceGray
            xobj.BitsPerComponent = 1
        else:
            if img.mode not in ("L", "RGB"):
                img = img.convert("L")
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=int(jpeg_quality), dpi=(dpi_x, dpi_y))
            xobj = pikepdf.Stream(pdf, buf.getvalue())
            xobj.Filter = pikepdf.Name.DCTDecode
            xobj.ColorSpace = pikepdf.Name.DeviceGray if img.mode == "L" else pikepdf.Name.DeviceRGB
            xobj.BitsPerComponent = 8
        xobj.Type = pikepdf.Name.XObject
        xobj.Subtype = pikepdf.Name.Image
        xobj.Width, xobj.Height = w, h
        wpt, hpt = w * 72.0 / float(dpi_x), h * 72.0 / float(dpi_y)
        content = pikepdf.Stream(pdf, f"q {wpt:.4f} 0 0 {hpt:.4f} 0 0 cm /Im0 Do Q".encode())
        page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, round(wpt, 4), round(hpt, 4)],
                                  Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=xobj)),
                                  Contents=content)
        pdf.pages.append(pikepdf.Page(page))
    path = Path(path)
    pdf.save(path)
    return path


def make_multipage_tiff(pages, path, *, grey_compression: str = "tiff_lzw") -> Path:
    """A multi-page TIFF, each page with its own dpi tags; bilevel pages group4, others `grey_compression`
    (Pillow's names: "tiff_lzw", "tiff_adobe_deflate", "jpeg", "raw")."""
    from PIL import TiffImagePlugin

    path = Path(path)
    with TiffImagePlugin.AppendingTiffWriter(str(path), new=True) as tf:
        for img, dpi_xy in pages:
            dpi_x, dpi_y = (dpi_xy, dpi_xy) if np.ndim(dpi_xy) == 0 else dpi_xy
            compression = "group4" if img.mode == "1" else grey_compression
            img.save(tf, format="TIFF", compression=compression, dpi=(float(dpi_x), float(dpi_y)))
            tf.newFrame()
    return path


# ----------------------------------------------------------------------------------------------- numbers

def random_valid_number(rng=None) -> str:
    """11 random digits + their check digit: passes the check, synthetic (not taken from anyone)."""
    rng = _rng(rng)
    base = "".join(str(d) for d in rng.integers(0, 10, 11))
    return base + str(_number.check_digit(base))


def miswritten(number: str, rng=None) -> str:
    """`number` with exactly one digit changed so that the check digit fails (a slip of the pen)."""
    rng = _rng(rng)
    for _ in range(1000):
        pos = int(rng.integers(len(number)))
        new = str((int(number[pos]) + int(rng.integers(1, 10))) % 10)
        out = number[:pos] + new + number[pos + 1:]
        if not _number.is_valid_digits(out):
            return out
    raise RuntimeError("no single-digit change breaks the check digit")  # not reachable for 12 digits


# ----------------------------------------------------------------------------------------------- printed kits

def print_provision_forms(folder: Path, people: int) -> list[int]:
    """Init a data home in `folder`, print kits for `people` (three dependents each) and return the page
    indices of their provision forms in folder/kits.pdf."""
    import csv
    import subprocess
    import sys

    lines = ["person_id,name,name_kana,postal_code,address,site,kind,dependents"]
    for i in range(people):
        lines.append(f"E{i:06d},山田 太郎{i},,100-0001,東京都千代田区1-1,本社,employee,花子;一郎;次郎")
    (folder / "roster.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, "MYNUMBER_HOME": str(folder / "home")}
    env.pop("MYNUMBER_DB_URL", None)

    repo = Path(__file__).resolve().parent.parent

    def run(*a):
        subprocess.run([sys.executable, "-m", "pipeline.cli", *a], env=env, check=True, capture_output=True, cwd=repo)

    run("--as", "admin", "init")
    run("--as", "admin", "users", "add", "hr", "--role", "handler")
    run("--as", "hr", "kits", "print", str(folder / "roster.csv"), "--out", str(folder / "kits.pdf"),
        "--manifest", str(folder / "manifest.csv"))
    rows = list(csv.DictReader((folder / "manifest.csv").open(encoding="utf-8")))
    return [i for i, r in enumerate(rows) if r["document"] == "provision_form"]
