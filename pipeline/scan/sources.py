"""Turning what the mailroom hands us (PDFs, TIFFs, PNGs, JPEGs, folders of them) into page images.

``mynumber scan PATH...`` calls :func:`expand_paths` once, then :func:`iter_pages` for each file. Every page
comes out as a :class:`PageImage` (8-bit grey, square pixels, with its resolution) or, when it cannot be used,
as a :class:`PageProblem` whose message names the file and page. Bad content never raises: a zero-byte file, a
truncated or encrypted PDF, a text file called ``.png``, a 30,000-pixel "decompression bomb" or a damaged TIFF
frame each become one PageProblem, and the rest of the file (and of the batch) goes on.

Memory is bounded by one page: files are read page by page (generators; TIFF frames are decoded one at a time
with ``seek``), and a page's image is released as soon as the consumer drops it.

Scanned PDFs: the page is normally one embedded image (JPEG, Flate, CCITT G4, JBIG2...) drawn over the whole
page. Rendering that page with pdfium at 300 dpi costs several times as much as decoding the embedded image
(see the measurements in tests/test_scan_sources.py), so the image is taken out of the PDF instead: the page's
content stream (and any Form XObjects it calls) is interpreted just enough to know the placement matrix of each
image and whether anything visible is drawn over it. When there is exactly one image, it covers (nearly) the
whole page, and it is drawn axis-aligned, it is decoded with pikepdf (pdfium's image decoder when pikepdf
cannot, e.g. JBIG2 without jbig2dec) and turned upright according to its placement matrix and the page's
/Rotate. Otherwise (several images tiling the page, visible text or vector drawing over the image, a skewed
placement, an undecodable image) the page is rendered with pdfium at 300 dpi in grey. A page without any image
is reported as "no scanned image on this page" (a page that was not scanned, e.g. a PDF straight from a word
processor); ``render_unscanned=True`` renders such pages instead.

The resolution of an extracted PDF image is its pixel size against the size it is displayed at on the page;
for image files it comes from the file's resolution tags (300 dpi is assumed when there are none, or when they
hold a software default of 72/96 dpi). Non-square pixels (fax: 204x98 dpi) are resampled to square pixels at
the larger of the two resolutions.

``defer_jpeg=True`` (for callers that decode in other processes) yields an :class:`EncodedPage` instead of a
PageImage when the page is a plain JPEG that would be taken as it is (upright, square pixels): its bytes are a
tenth of the raster's, and :func:`decode` turns it into exactly the PageImage or PageProblem ``iter_pages``
would have yielded.
"""
from __future__ import annotations

import hashlib
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from PIL import Image

from pipeline.errors import ScanInputError

__all__ = [
    "SUPPORTED_SUFFIXES",
    "MAX_SIDE_PX",
    "PageImage",
    "PageProblem",
    "EncodedPage",
    "decode",
    "expand_paths",
    "iter_pages",
    "count_pages",
]

SUPPORTED_SUFFIXES = frozenset({".pdf", ".tif", ".tiff", ".png", ".jpg", ".jpeg"})

MAX_SIDE_PX = 12_000          # a 600 dpi A3 page is 7016 x 9921 px; anything beyond is not a scanned page
DEFAULT_DPI = 300.0           # assumed when an image file does not say (or says 72/96, a software default)
RENDER_DPI = 300.0            # resolution of pages that have to be rendered with pdfium
COVER_FRACTION = 0.90         # an image "covers the page" when it and the page overlap by this much of each
SQUARE_TOLERANCE = 0.01       # x and y resolutions closer than 1 % count as square pixels
AXIS_TOLERANCE = 0.01         # a placement matrix within ~0.6 degrees of axis-aligned is axis-aligned
MAX_FORM_DEPTH = 12           # nesting of Form XObjects we follow

_SOFTWARE_DEFAULT_DPI = (72.0, 96.0)
_HASH_CHUNK = 1 << 20


# ---------------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class PageImage:
    """One page, ready for the readers: 8-bit grey, square pixels."""

    source: Path          # the file
    index: int            # 1-based page number within the file
    image: Image.Image    # mode "L", square pixels
    dpi: float            # effective resolution after resampling
    source_sha256: str    # of the whole file
    # The scanner's own JPEG when `image` is exactly that JPEG decoded (upright, square pixels): it can be
    # stored as the page's evidence as it is, instead of encoding the raster again.
    original_jpeg: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.source} page {self.index}"


@dataclass(frozen=True)
class PageProblem:
    """A page (``index``) or a whole file (``index`` None) that yields no image; ``message`` is for people."""

    source: Path
    index: int | None
    message: str


@dataclass(frozen=True)
class EncodedPage:
    """A page that is the scanner's JPEG as it is, not decoded yet (see :func:`decode`)."""

    source: Path
    index: int
    jpeg: bytes = field(repr=False)
    width: int            # as the PDF declares it (and the JPEG header confirms)
    height: int
    dpi: float
    source_sha256: str

    @property
    def label(self) -> str:
        return f"{self.source} page {self.index}"


def _problem(path: Path, index: int | None, text: str) -> PageProblem:
    where = f"{path}" if index is None else f"{path} page {index}"
    return PageProblem(path, index, f"{where}: {text}")


def _too_large(width: int, height: int) -> str:
    return (f"image is {width}×{height} px; larger than the {MAX_SIDE_PX:,} px limit for a scanned page")


def _bomb(width: int, height: int) -> str:
    if width > MAX_SIDE_PX or height > MAX_SIDE_PX:
        return _too_large(width, height)
    return (f"image is {width}×{height} px; refused as a possible decompression bomb "
            "(over Pillow's MAX_IMAGE_PIXELS limit)")


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------------------------
# Paths


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files and folders -> the files to scan.

    Files named on the command line are kept whatever their suffix (iter_pages reports an unsupported one);
    folders are walked recursively and contribute the files with a supported suffix, sorted by their path
    below the folder, skipping hidden files and folders (names starting with "."). The order of the arguments
    is kept; a file reached twice is listed once. A missing path raises ScanInputError naming it.
    """
    result: list[Path] = []
    seen: set[Path] = set()

    def add(file: Path) -> None:
        try:
            key = file.resolve()
        except OSError:
            key = file.absolute()
        if key not in seen:
            seen.add(key)
            result.append(file)

    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in _walk(path):
                add(file)
        elif path.is_file():
            add(path)
        elif path.exists():
            raise ScanInputError(f"scan input is neither a file nor a folder: {path}")
        else:
            raise ScanInputError(f"scan input not found: {path}")
    return result


def _walk(folder: Path) -> list[Path]:
    def fail(err: OSError) -> None:
        raise ScanInputError(f"cannot read folder {err.filename or folder}: {err.strerror or err}")

    found: list[tuple[tuple[str, ...], Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=fail):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = Path(dirpath)
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
                continue
            file = base / name
            found.append((file.relative_to(folder).parts, file))
    found.sort(key=lambda item: item[0])
    return [file for _, file in found]


# ---------------------------------------------------------------------------------------------------------------
# Format sniffing


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if b"%PDF-" in head[:1024]:
        return "pdf"
    return None


def _describe_unknown(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive or Office document"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "an old Office document"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if head.startswith(b"BM"):
        return "a BMP image"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "a HEIC image"
    sample = head[:512]
    if sample and all(b in b"\t\n\r" or 32 <= b < 127 or b >= 128 for b in sample):
        return "text"
    return "not a PDF, TIFF, PNG or JPEG file"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Entry points


def iter_pages(path: Path, *, force_render: bool = False, render_unscanned: bool = False,
               defer_jpeg: bool = False) -> Iterator[PageImage | PageProblem | EncodedPage]:
    """The pages of one file, in order, one at a time.

    Never raises for bad content: a page that cannot be used yields a PageProblem and the next page follows;
    a file that cannot be used at all yields exactly one PageProblem with index None.

    force_render: render every PDF page with pdfium instead of extracting its image (for comparisons).
    render_unscanned: render PDF pages that hold no image (text/vector only) instead of reporting them.
    defer_jpeg: yield an EncodedPage, to be decoded later with :func:`decode`, for a PDF page that is a plain
    JPEG taken as it is.
    """
    path = Path(path)
    try:
        if not path.is_file():
            yield _problem(path, None, "not found or not a file")
            return
        if path.stat().st_size == 0:
            yield _problem(path, None, "empty file (0 bytes)")
            return
        with open(path, "rb") as f:
            head = f.read(1024)
        sha = _sha256(path)
    except OSError as exc:
        yield _problem(path, None, f"cannot be read ({exc.strerror or _short(exc)})")
        return

    kind = _sniff(head)
    if kind is None:
        yield _problem(path, None, f"unsupported format ({_describe_unknown(head)}); "
                                   "scans must be PDF, TIFF, PNG or JPEG files")
        return
    if kind == "pdf":
        yield from _iter_pdf(path, sha, force_render=force_render, render_unscanned=render_unscanned,
                             defer_jpeg=defer_jpeg)
    else:
        yield from _iter_raster(path, sha, kind)


def count_pages(path: Path) -> int | None:
    """Number of pages in a file, cheaply (for a progress bar); None when it cannot be told."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
            kind = _sniff(head)
            if kind in ("png", "jpeg"):
                return 1
            if kind == "tiff":
                f.seek(0)
                im = _open_raster(kind, f, path)
                return int(getattr(im, "n_frames", 1))
        if kind == "pdf":
            import pikepdf
            with pikepdf.open(path) as pdf:
                return len(pdf.pages)
    except Exception:  # noqa: BLE001 - a progress bar must not break a scan
        return None
    return None


# ---------------------------------------------------------------------------------------------------------------
# Image helpers shared by both paths


def _to_grey(im: Image.Image) -> Image.Image:
    """Any Pillow image -> a new mode "L" image (1-bit -> 0/255, alpha composited on white paper)."""
    import numpy as np

    mode = im.mode
    if mode == "L":
        return im.copy()
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im)
        if mode == "I":
            arr = np.clip(arr, 0, 65535)
        return Image.fromarray(((arr.astype(np.uint32) + 128) // 257).astype(np.uint8), "L")
    if mode == "F":
        return Image.fromarray(np.clip(np.asarray(im), 0, 255).astype(np.uint8), "L")
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    if mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        if mode in ("La", "RGBa"):
            im = im.convert("RGBA" if mode == "RGBa" else "LA")
        rgba = im.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(paper, rgba).convert("L")
    if mode in ("RGB", "CMYK", "YCbCr", "RGBX"):
        return im.convert("L")
    return im.convert("RGB").convert("L")


def _is_square(dpi_x: float, dpi_y: float) -> bool:
    return abs(dpi_x - dpi_y) <= SQUARE_TOLERANCE * max(dpi_x, dpi_y)


def _square(im: Image.Image, dpi_x: float, dpi_y: float) -> tuple[Image.Image, float]:
    """Resample non-square pixels to square ones at the larger resolution; returns (image, dpi)."""
    dpi = max(dpi_x, dpi_y)
    if _is_square(dpi_x, dpi_y):
        return im, dpi
    width = max(1, round(im.width * dpi / dpi_x))
    height = max(1, round(im.height * dpi / dpi_y))
    if width > MAX_SIDE_PX or height > MAX_SIDE_PX:
        raise _PageRefused(f"image is {im.width}×{im.height} px at {dpi_x:g}×{dpi_y:g} dpi; made square it "
                           f"would be {width}×{height} px, larger than the {MAX_SIDE_PX:,} px limit "
                           "for a scanned page")
    return im.resize((width, height), Image.Resampling.BICUBIC), dpi


# (transpose, flip left-right, flip top-bottom) -> one Pillow transpose (applied in that order)
_ORIENT_OPS: dict[tuple[bool, bool, bool], Image.Transpose | None] = {
    (False, False, False): None,
    (False, True, False): Image.Transpose.FLIP_LEFT_RIGHT,
    (False, False, True): Image.Transpose.FLIP_TOP_BOTTOM,
    (False, True, True): Image.Transpose.ROTATE_180,
    (True, False, False): Image.Transpose.TRANSPOSE,
    (True, True, False): Image.Transpose.ROTATE_270,
    (True, False, True): Image.Transpose.ROTATE_90,
    (True, True, True): Image.Transpose.TRANSVERSE,
}

# EXIF/TIFF Orientation tag -> the Pillow transpose that makes the image upright (as ImageOps.exif_transpose)
_EXIF_OPS: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class _PageRefused(Exception):
    """A page we refuse with a given message (becomes a PageProblem)."""


# ---------------------------------------------------------------------------------------------------------------
# Image files (PNG, JPEG, TIFF)


def _open_raster(kind: str, fp, path: Path):
    """Parse the header with the format's own Pillow plugin (and no other). Unlike Image.open this does not
    run Pillow's decompression-bomb check, so an oversized image can be refused with its own size in the
    message; nothing is decoded here."""
    if kind == "png":
        from PIL import PngImagePlugin
        return PngImagePlugin.PngImageFile(fp, str(path))
    if kind == "jpeg":
        from PIL import JpegImagePlugin
        return JpegImagePlugin.JpegImageFile(fp, str(path))
    from PIL import TiffImagePlugin
    return TiffImagePlugin.TiffImageFile(fp, str(path))


_KIND_NAMES = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF"}


def _iter_raster(path: Path, sha: str, kind: str) -> Iterator[PageImage | PageProblem]:
    name = _KIND_NAMES[kind]
    try:
        fp = open(path, "rb")
    except OSError as exc:
        yield _problem(path, None, f"cannot be read ({exc.strerror or _short(exc)})")
        return
    with fp:
        try:
            im = _open_raster(kind, fp, path)
        except Exception as exc:  # noqa: BLE001 - any header failure is a damaged file
            yield _problem(path, None, f"damaged {name} file, or not really one ({_short(exc)})")
            return
        index = 1
        while True:
            if index > 1:
                try:
                    im.seek(index - 1)
                except EOFError:
                    break
                except Exception as exc:  # noqa: BLE001 - a broken frame chain ends the file
                    yield _problem(path, index, f"TIFF frame cannot be read; the rest of the file is "
                                                f"skipped ({_short(exc)})")
                    break
            try:
                result: PageImage | PageProblem = _raster_frame(im, path, index, kind, sha)
            except _PageRefused as exc:
                result = _problem(path, index, str(exc))
            except Image.DecompressionBombError:
                result = _problem(path, index, _bomb(*im.size))
            except MemoryError:
                result = _problem(path, index, f"not enough memory to decode this {im.size[0]}×{im.size[1]} "
                                               "px image")
            except Exception as exc:  # noqa: BLE001 - damaged image data
                result = _problem(path, index, f"image data is damaged or truncated ({_short(exc)})")
            yield result
            del result
            if kind != "tiff":
                break
            index += 1
        im.close()


def _raster_frame(im, path: Path, index: int, kind: str, sha: str) -> PageImage:
    width, height = im.size
    if width > MAX_SIDE_PX or height > MAX_SIDE_PX:
        raise _PageRefused(_too_large(width, height))
    if width < 1 or height < 1:
        raise _PageRefused("image has no pixels")
    limit = Image.MAX_IMAGE_PIXELS          # honour a stricter limit set for the whole process
    if limit and width * height > 2 * limit:
        raise Image.DecompressionBombError(f"{width * height} pixels")
    if kind == "jpeg" and im.mode in ("RGB", "YCbCr"):
        im.draft("L", im.size)        # libjpeg hands out the luma channel directly: no colour conversion
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im.load()
    dpi_x, dpi_y = _raster_dpi(im, kind)
    orientation = _raster_orientation(im, kind)
    grey = _to_grey(im)
    grey, dpi = _square(grey, dpi_x, dpi_y)
    op = _EXIF_OPS.get(orientation)
    if op is not None:
        grey = grey.transpose(op)
    return PageImage(path, index, grey, round(dpi, 3), sha)


def _raster_dpi(im, kind: str) -> tuple[float, float]:
    x = y = None
    if kind == "tiff":
        tags = im.tag_v2
        xres, yres, unit = tags.get(282), tags.get(283), tags.get(296, 2)
        if xres is not None and unit in (2, 3):
            yres = xres if yres is None else yres
            factor = 2.54 if unit == 3 else 1.0
            try:
                x, y = float(xres) * factor, float(yres) * factor
            except (TypeError, ValueError, ZeroDivisionError):
                x = y = None
    else:
        dpi = im.info.get("dpi")
        if isinstance(dpi, tuple) and len(dpi) == 2:
            try:
                x, y = float(dpi[0]), float(dpi[1])
            except (TypeError, ValueError):
                x = y = None
    if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
        return DEFAULT_DPI, DEFAULT_DPI
    if x < 50 or y < 50 or x > 4800 or y > 4800:
        return DEFAULT_DPI, DEFAULT_DPI
    if abs(x - y) < 0.5 and any(abs(x - d) < 0.5 for d in _SOFTWARE_DEFAULT_DPI):
        return DEFAULT_DPI, DEFAULT_DPI
    if max(x, y) / min(x, y) > 4:
        return DEFAULT_DPI, DEFAULT_DPI      # not a plausible scanner setting
    return x, y


def _raster_orientation(im, kind: str) -> int:
    try:
        if kind == "tiff":
            value = im.tag_v2.get(274, 1)
        else:
            value = im.getexif().get(0x0112, 1)
        return int(value)
    except Exception:  # noqa: BLE001 - a broken EXIF block does not spoil the page
        return 1


# ---------------------------------------------------------------------------------------------------------------
# PDF


Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _mul(m: Matrix, n: Matrix) -> Matrix:
    """m then n (PDF row-vector convention: [x y 1] m n)."""
    a, b, c, d, e, f = m
    A, B, C, D, E, F = n
    return (a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F)


_PAINT_OPS = frozenset({"S", "s", "f", "F", "f*", "B", "B*", "b", "b*", "sh"})
_TEXT_OPS = frozenset({"Tj", "TJ", "'", '"'})
_WATCHED_OPS = "q Q cm Do Tr BI ID EI " + " ".join(sorted(_PAINT_OPS | _TEXT_OPS))


@dataclass
class _Placed:
    obj: object            # the image XObject (pikepdf.Stream)
    ctm: Matrix
    order: int             # position among drawing events


class _PageScan:
    """What a page draws, in order: images (with their matrices) and other visible marks."""

    def __init__(self) -> None:
        self.images: list[_Placed] = []
        self.inline_images = 0
        self.marks: list[int] = []       # event order numbers of visible non-image marks
        self.missing: list[str] = []     # XObjects named in the content but absent or damaged
        self.events = 0

    def mark(self) -> None:
        self.events += 1
        self.marks.append(self.events)


def _scan_content(page_obj, stream, resources, ctm: Matrix, scan: _PageScan, depth: int,
                  active: frozenset) -> None:
    import pikepdf

    instructions = pikepdf.parse_content_stream(stream, _WATCHED_OPS)
    stack: list[tuple[Matrix, int]] = []
    text_mode = 0
    xobjects = resources.get("/XObject") if isinstance(resources, pikepdf.Dictionary) else None
    for instruction in instructions:
        if isinstance(instruction, pikepdf.ContentStreamInlineImage):
            scan.inline_images += 1
            scan.mark()
            continue
        op = str(instruction.operator)
        operands = instruction.operands
        if op == "q":
            stack.append((ctm, text_mode))
        elif op == "Q":
            if stack:
                ctm, text_mode = stack.pop()
        elif op == "cm":
            if len(operands) == 6:
                ctm = _mul(tuple(float(v) for v in operands), ctm)  # type: ignore[arg-type]
        elif op == "Tr":
            try:
                text_mode = int(operands[0])
            except Exception:  # noqa: BLE001 - malformed operand: assume visible text
                text_mode = 0
        elif op in _TEXT_OPS:
            if text_mode not in (3, 7):           # 3: invisible (an OCR text layer), 7: clip only
                scan.mark()
        elif op in _PAINT_OPS:
            scan.mark()
        elif op == "Do":
            name = operands[0] if operands else None
            xobj = xobjects.get(name) if (xobjects is not None and name is not None) else None
            if not isinstance(xobj, pikepdf.Stream):
                scan.missing.append(str(name))
                continue
            subtype = xobj.get("/Subtype")
            if subtype == "/Image":
                scan.events += 1
                scan.images.append(_Placed(xobj, ctm, scan.events))
            elif subtype == "/Form":
                key = xobj.objgen
                if depth >= MAX_FORM_DEPTH or (key != (0, 0) and key in active):
                    continue
                matrix = xobj.get("/Matrix")
                form_ctm = ctm
                if isinstance(matrix, pikepdf.Array) and len(matrix) == 6:
                    form_ctm = _mul(tuple(float(v) for v in matrix), ctm)  # type: ignore[arg-type]
                form_res = xobj.get("/Resources")
                if not isinstance(form_res, pikepdf.Dictionary):
                    form_res = resources
                _scan_content(page_obj, xobj, form_res, form_ctm, scan, depth + 1, active | {key})
            else:
                scan.mark()                       # PostScript XObject or something odd: visible, unknown


def _inherited(page_obj, key: str):
    node = page_obj
    for _ in range(64):
        if node is None:
            return None
        value = node.get(key)
        if value is not None:
            return value
        node = node.get("/Parent")
    return None


def _box(value) -> tuple[float, float, float, float] | None:
    try:
        x0, y0, x1, y1 = (float(v) for v in value)
    except Exception:  # noqa: BLE001
        return None
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None
    return x0, y0, x1, y1


def _page_geometry(page_obj) -> tuple[tuple[float, float, float, float], int, float]:
    media = _box(_inherited(page_obj, "/MediaBox")) or (0.0, 0.0, 612.0, 792.0)
    crop = _box(_inherited(page_obj, "/CropBox"))
    if crop is not None:
        crop = (max(crop[0], media[0]), max(crop[1], media[1]), min(crop[2], media[2]), min(crop[3], media[3]))
        if crop[2] <= crop[0] or crop[3] <= crop[1]:
            crop = None
    try:
        rotate = int(_inherited(page_obj, "/Rotate") or 0)
    except Exception:  # noqa: BLE001
        rotate = 0
    rotate = (round(rotate / 90) * 90) % 360
    try:
        user_unit = float(page_obj.get("/UserUnit", 1) or 1)
    except Exception:  # noqa: BLE001
        user_unit = 1.0
    if not (0 < user_unit < 1e5):
        user_unit = 1.0
    return crop or media, rotate, user_unit


@dataclass
class _Orientation:
    op: Image.Transpose | None
    pts_x: float           # points per image pixel along the output's x axis
    pts_y: float           # ... and y axis


def _orientation(ctm: Matrix, width: int, height: int, rotate: int) -> _Orientation | None:
    """How the image's pixel grid lands on the upright (rotated) page; None when not axis-aligned."""
    a, b, c, d, _, _ = ctm
    # user-space change per image pixel: column u (left -> right), row v (top -> bottom)
    dxu, dyu = a / width, b / width
    dxv, dyv = -c / height, -d / height
    # user space -> output raster (x right, y down) after /Rotate (clockwise)
    def out(dx: float, dy: float) -> tuple[float, float]:
        if rotate == 90:
            return dy, dx
        if rotate == 180:
            return -dx, dy
        if rotate == 270:
            return -dy, -dx
        return dx, -dy

    m00, m10 = out(dxu, dyu)      # output (x, y) per image column
    m01, m11 = out(dxv, dyv)      # output (x, y) per image row
    scale = max(abs(m00), abs(m01), abs(m10), abs(m11))
    if scale <= 0 or not math.isfinite(scale):
        return None
    tol = AXIS_TOLERANCE * scale
    if abs(m01) <= tol and abs(m10) <= tol and abs(m00) > tol and abs(m11) > tol:
        return _Orientation(_ORIENT_OPS[(False, m00 < 0, m11 < 0)], abs(m00), abs(m11))
    if abs(m00) <= tol and abs(m11) <= tol and abs(m01) > tol and abs(m10) > tol:
        # transposed: image rows run along the output's x axis
        return _Orientation(_ORIENT_OPS[(True, m01 < 0, m10 < 0)], abs(m01), abs(m10))
    return None


def _image_bbox(ctm: Matrix) -> tuple[float, float, float, float]:
    a, b, c, d, e, f = ctm
    xs = [e, e + a, e + c, e + a + c]
    ys = [f, f + b, f + d, f + b + d]
    return min(xs), min(ys), max(xs), max(ys)


def _covers(bbox, page_box) -> bool:
    ix = min(bbox[2], page_box[2]) - max(bbox[0], page_box[0])
    iy = min(bbox[3], page_box[3]) - max(bbox[1], page_box[1])
    if ix <= 0 or iy <= 0:
        return False
    inter = ix * iy
    page_area = (page_box[2] - page_box[0]) * (page_box[3] - page_box[1])
    image_area = (bbox[2] - bbox[0]) * (bbox[3] - bbox[1])
    return inter >= COVER_FRACTION * page_area and inter >= COVER_FRACTION * image_area


_VISIBLE_ANNOTS_IGNORED = frozenset({"/Link", "/Popup"})


def _has_visible_annotations(page_obj) -> bool:
    import pikepdf

    annots = page_obj.get("/Annots")
    if not isinstance(annots, pikepdf.Array):
        return False
    for annot in annots:
        if not isinstance(annot, pikepdf.Dictionary):
            continue
        if annot.get("/Subtype") in _VISIBLE_ANNOTS_IGNORED:
            continue
        try:
            flags = int(annot.get("/F", 0))
        except Exception:  # noqa: BLE001
            flags = 0
        if flags & 0b10 or flags & 0b1_0000_0000:   # Hidden, or NoView
            continue
        if annot.get("/AP") is not None:
            return True
    return False


class _Pdfium:
    """The pdfium document, opened only when a page of the file needs it."""

    def __init__(self, path: Path):
        self.path = path
        self._doc = None

    @property
    def doc(self):
        if self._doc is None:
            import pypdfium2 as pdfium
            self._doc = pdfium.PdfDocument(str(self.path))
        return self._doc

    def render(self, page_index: int) -> tuple[Image.Image, float]:
        page = self.doc[page_index]
        try:
            width_pt, height_pt = page.get_size()
            scale = RENDER_DPI / 72.0
            longest = max(width_pt, height_pt, 1e-6)
            if longest * scale > MAX_SIDE_PX:
                scale = MAX_SIDE_PX / longest * 0.999
            bitmap = page.render(scale=scale, grayscale=True)
            try:
                pil = bitmap.to_pil()
                grey = pil.copy() if pil.mode == "L" else _to_grey(pil)
            finally:
                bitmap.close()
        finally:
            page.close()
        return grey, scale * 72.0

    def decode_single_image(self, page_index: int) -> Image.Image:
        """The pixels of the page's one image object, decoded by pdfium (not rendered)."""
        import pypdfium2.raw as pdfium_c

        page = self.doc[page_index]
        try:
            images = list(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=MAX_FORM_DEPTH))
            if len(images) != 1:
                raise ValueError(f"pdfium sees {len(images)} images on the page")
            pil = images[0].get_bitmap(render=False).to_pil()   # a foreign bitmap: pdfium frees it
            grey = pil.copy() if pil.mode == "L" else _to_grey(pil)
        finally:
            page.close()
        return grey

    def close(self) -> None:
        if self._doc is not None:
            try:
                self._doc.close()
            except Exception:  # noqa: BLE001
                pass
            self._doc = None


class _PdfFile:
    """One open PDF: pikepdf for structure and images, pdfium (lazily) for rendering."""

    def __init__(self, path: Path, sha: str, pdf) -> None:
        self.path = path
        self.sha = sha
        self.pdf = pdf
        self.pdfium = _Pdfium(path)
        self._damaged = False

    @property
    def damaged(self) -> bool:
        """Whether qpdf had to repair the file or found broken objects so far (sticky)."""
        try:
            if self.pdf.get_warnings():      # qpdf hands each warning out once
                self._damaged = True
        except Exception:  # noqa: BLE001
            pass
        return self._damaged


def _iter_pdf(path: Path, sha: str, *, force_render: bool, render_unscanned: bool,
              defer_jpeg: bool = False) -> Iterator[PageImage | PageProblem | EncodedPage]:
    import pikepdf

    try:
        pdf = pikepdf.open(path)
    except pikepdf.PasswordError:
        yield _problem(path, None, "encrypted: remove the password before scanning it in")
        return
    except Exception as exc:  # noqa: BLE001 - qpdf could not even repair it
        yield _problem(path, None, f"damaged PDF that cannot be opened ({_short(exc)})")
        return

    doc = _PdfFile(path, sha, pdf)
    try:
        try:
            count = len(pdf.pages)
        except Exception as exc:  # noqa: BLE001
            yield _problem(path, None, f"damaged PDF: its list of pages cannot be read ({_short(exc)})")
            return
        if count == 0:
            yield _problem(path, None, "PDF has no pages (damaged or truncated?)")
            return
        for i in range(count):
            result = _pdf_page_or_problem(doc, i, force_render=force_render, render_unscanned=render_unscanned,
                                          defer_jpeg=defer_jpeg)
            yield result
            del result
        try:
            declared = int(pdf.Root.Pages.get("/Count", count))
        except Exception:  # noqa: BLE001
            declared = count
        if declared > count and doc.damaged:
            yield _problem(path, count + 1, f"missing: the PDF declares {declared} pages but only {count} "
                                            "could be found (damaged or truncated PDF)")
    finally:
        doc.pdfium.close()
        pdf.close()


def _pdf_page_or_problem(doc: _PdfFile, i: int, **options) -> PageImage | PageProblem | EncodedPage:
    path, index = doc.path, i + 1
    try:
        return _pdf_page(doc, i, **options)
    except _PageRefused as exc:
        return _problem(path, index, str(exc))
    except MemoryError:
        return _problem(path, index, "not enough memory to decode this page")
    except Exception as exc:  # noqa: BLE001 - one bad page does not stop the file
        return _problem(path, index, f"page cannot be read (damaged or truncated PDF?): {_short(exc)}")


def _default_decode(obj) -> bool:
    decode = obj.get("/Decode")
    if decode is None:
        return True
    try:
        values = [float(v) for v in decode]
    except Exception:  # noqa: BLE001
        return False
    return len(values) % 2 == 0 and values == [0.0, 1.0] * (len(values) // 2)


def _is_damage(exc: BaseException) -> bool:
    """Whether a decoding error means the image data is broken (rather than in a form pikepdf cannot decode).
    Broken data is reported: pdfium would quietly paint the missing part grey or black."""
    import zlib

    import pikepdf

    text = str(exc)
    if "not available" in text or "not installed" in text:      # Pillow/pikepdf lack a decoder
        return False
    damage_types: list[type] = [OSError, SyntaxError, EOFError, zlib.error, pikepdf.DataDecodingError]
    try:
        from pikepdf.models._image_exceptions import ImageDecompressionError
        damage_types.append(ImageDecompressionError)
    except ImportError:  # pragma: no cover - older pikepdf
        pass
    return isinstance(exc, tuple(damage_types))


def _pdf_page(doc: _PdfFile, i: int, *, force_render: bool, render_unscanned: bool,
              defer_jpeg: bool = False) -> PageImage | PageProblem | EncodedPage:
    import pikepdf

    path, index = doc.path, i + 1
    page = doc.pdf.pages[i]
    page_obj = page.obj

    def rendered() -> PageImage:
        try:
            grey, dpi = doc.pdfium.render(i)
        except Exception as exc:  # noqa: BLE001
            raise _PageRefused(f"page cannot be rendered (damaged or truncated PDF?): {_short(exc)}") from exc
        return PageImage(path, index, grey, round(dpi, 3), doc.sha)

    if force_render:
        return rendered()

    page_box, rotate, user_unit = _page_geometry(page_obj)
    resources = _inherited(page_obj, "/Resources")
    if not isinstance(resources, pikepdf.Dictionary):
        resources = pikepdf.Dictionary()
    scan = _PageScan()
    if page_obj.get("/Contents") is not None:
        _scan_content(page_obj, page, resources, _IDENTITY, scan, 0, frozenset())

    for placed in scan.images:
        w, h = int(placed.obj.get("/Width", 0)), int(placed.obj.get("/Height", 0))
        if w > MAX_SIDE_PX or h > MAX_SIDE_PX:
            return _problem(path, index, _too_large(w, h))

    if not scan.images and not scan.inline_images:
        if scan.missing:
            return _problem(path, index, "the page's image is missing or damaged (truncated PDF?)")
        if not scan.marks and doc.damaged:
            return _problem(path, index, "the page's content is missing (damaged or truncated PDF)")
        if render_unscanned and scan.marks:
            return rendered()
        return _problem(path, index, "no scanned image on this page (a page that was not scanned?)")

    if len(scan.images) != 1 or scan.inline_images or scan.missing:
        return rendered()          # tiles, several images, inline images, or a damaged reference
    placed = scan.images[0]
    if any(order > placed.order for order in scan.marks) or _has_visible_annotations(page_obj):
        return rendered()          # something visible is drawn over the scan
    obj = placed.obj
    if obj.get("/ImageMask") or obj.get("/SMask") is not None or obj.get("/Mask") is not None:
        return rendered()          # stencil or transparency: let pdfium composite it
    width, height = int(obj.get("/Width", 0)), int(obj.get("/Height", 0))
    if width < 1 or height < 1:
        return rendered()
    if not _covers(_image_bbox(placed.ctm), page_box):
        return rendered()
    orient = _orientation(placed.ctm, width, height, rotate)
    if orient is None:
        return rendered()          # drawn at an angle

    dpi_x = 72.0 / (orient.pts_x * user_unit)
    dpi_y = 72.0 / (orient.pts_y * user_unit)
    if defer_jpeg and orient.op is None and _is_square(dpi_x, dpi_y):
        data = _deferrable_jpeg(obj, width, height)
        if data is not None:
            return EncodedPage(path, index, data, width, height, round(max(dpi_x, dpi_y), 3), doc.sha)

    grey: Image.Image | None
    try:
        grey = _decode_pdf_image(obj)
    except _PageRefused:
        raise
    except Image.DecompressionBombError:
        raise _PageRefused(_bomb(width, height)) from None
    except Exception as exc:  # noqa: BLE001
        if _is_damage(exc):
            return _problem(path, index, f"the page's image data is damaged or truncated ({_short(exc)})")
        grey = None                # a form pikepdf cannot decode (JBIG2 without jbig2dec, odd colour space...)
    if grey is None:
        if not _default_decode(obj):
            return rendered()      # pdfium hands out the samples before /Decode: let it render instead
        try:
            grey = doc.pdfium.decode_single_image(i)
        except Exception:  # noqa: BLE001
            return rendered()
        if grey.size != (width, height):
            return rendered()
    if orient.op is not None:
        grey = grey.transpose(orient.op)
    size_before = grey.size
    grey, dpi = _square(grey, dpi_x, dpi_y)
    original = None
    if orient.op is None and grey.size == size_before and _is_plain_jpeg(obj):
        original = bytes(obj.read_raw_bytes())
    return PageImage(path, index, grey, round(dpi, 3), doc.sha, original)


_JPEG_MODES = ("L", "RGB", "YCbCr", "CMYK")


def _open_jpeg(data: bytes):
    """The JPEG's header parsed (nothing decoded), set up to decode grey; None for modes Pillow cannot
    turn into the right grey directly (those go the general way)."""
    import io

    from PIL import JpegImagePlugin

    im = JpegImagePlugin.JpegImageFile(io.BytesIO(data))
    if im.mode in ("RGB", "YCbCr"):
        im.draft("L", im.size)        # libjpeg decodes only the luma channel when asked for grey
    return im if im.mode in _JPEG_MODES else None


def _decode_jpeg(data: bytes) -> Image.Image | None:
    """Fast path for a plain JPEG: grey, or None when it has to go the general way."""
    im = _open_jpeg(data)
    if im is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im.load()
    return im if im.mode == "L" else _to_grey(im)


def _deferrable_jpeg(obj, width: int, height: int) -> bytes | None:
    """The raw bytes of an image XObject that `_decode_pdf_image` would decode with `_decode_jpeg` (and that
    then stays as it is), or None. Only the header is parsed. A JPEG whose own size differs from what the PDF
    declares stays on the ordinary path, so the size limit checked on the PDF's numbers holds for it."""
    if not _is_plain_jpeg(obj) or not _colour_space_ok(obj.get("/ColorSpace")):
        return None
    try:
        data = bytes(obj.read_raw_bytes())
        im = _open_jpeg(data)
    except Exception:  # noqa: BLE001 - the ordinary path reports it
        return None
    if im is None or im.size != (width, height):
        return None
    return data


def decode(page: EncodedPage) -> PageImage | PageProblem:
    """What `iter_pages` (without defer_jpeg) would have yielded for the page."""
    path, index = page.source, page.index
    try:
        grey = _decode_jpeg(page.jpeg)
    except Image.DecompressionBombError:
        return _problem(path, index, _bomb(page.width, page.height))
    except Exception as exc:  # noqa: BLE001
        if _is_damage(exc):
            return _problem(path, index, f"the page's image data is damaged or truncated ({_short(exc)})")
        grey = None
    if grey is None:
        return _extract_again(page)   # the ordinary path's fallbacks need the PDF (pdfium)
    return PageImage(path, index, grey, page.dpi, page.source_sha256, page.jpeg)


def _extract_again(page: EncodedPage) -> PageImage | PageProblem:
    import pikepdf

    try:
        pdf = pikepdf.open(page.source)
    except Exception as exc:  # noqa: BLE001
        return _problem(page.source, page.index, f"page cannot be read (damaged or truncated PDF?): {_short(exc)}")
    doc = _PdfFile(page.source, page.source_sha256, pdf)
    try:
        # render_unscanned only matters for a page without an image
        return _pdf_page_or_problem(doc, page.index - 1, force_render=False, render_unscanned=False)
    finally:
        doc.pdfium.close()
        pdf.close()


def _is_plain_jpeg(obj) -> bool:
    import pikepdf
    filters = obj.get("/Filter")
    if isinstance(filters, pikepdf.Array) and len(filters) == 1:
        filters = filters[0]
    return filters == "/DCTDecode" and obj.get("/Decode") is None


_GREY_OR_COLOUR = frozenset({"/DeviceGray", "/DeviceRGB", "/DeviceCMYK", "/CalGray", "/CalRGB"})


def _colour_space_ok(cs) -> bool:
    """Colour spaces whose decoded samples Pillow turns into the right grey (others: pdfium)."""
    import pikepdf

    if cs is None:
        return True                                    # JPX carries its own; CCITT/JBIG2 are grey
    if isinstance(cs, pikepdf.Name):
        return str(cs) in _GREY_OR_COLOUR
    if isinstance(cs, pikepdf.Array) and len(cs) >= 1:
        family = str(cs[0])
        if family in ("/ICCBased", "/CalGray", "/CalRGB"):
            if family == "/ICCBased":
                try:
                    return int(cs[1].get("/N", 0)) in (1, 3, 4)
                except Exception:  # noqa: BLE001
                    return False
            return True
        if family in ("/Indexed", "/I") and len(cs) >= 2:
            return _colour_space_ok(cs[1])
    return False


def _plain_sample_mode(obj) -> str | None:
    """Pillow raw mode of an image's decoded samples when they need no colour handling: "1", "L" or "RGB"."""
    import pikepdf

    cs = obj.get("/ColorSpace")
    bpc = obj.get("/BitsPerComponent")
    components = None
    if isinstance(cs, pikepdf.Name):
        components = {"/DeviceGray": 1, "/DeviceRGB": 3, "/CalGray": 1, "/CalRGB": 3}.get(str(cs))
    elif isinstance(cs, pikepdf.Array) and len(cs) >= 2 and str(cs[0]) == "/ICCBased":
        try:
            components = int(cs[1].get("/N", 0))
        except Exception:  # noqa: BLE001
            components = None
    elif isinstance(cs, pikepdf.Array) and len(cs) >= 1 and str(cs[0]) in ("/CalGray", "/CalRGB"):
        components = 1 if str(cs[0]) == "/CalGray" else 3
    if components == 1 and bpc == 8:
        return "L"
    if components == 1 and bpc == 1:
        return "1"
    if components == 3 and bpc == 8:
        return "RGB"
    return None


def _decode_pdf_image(obj) -> Image.Image:
    """Decode one image XObject with pikepdf/Pillow into grey (in image space, no orientation applied)."""
    import pikepdf

    if not _colour_space_ok(obj.get("/ColorSpace")):
        raise ValueError("colour space left to pdfium")
    filters = obj.get("/Filter")
    if isinstance(filters, pikepdf.Array) and len(filters) == 1:
        filters = filters[0]
    if filters == "/DCTDecode" and obj.get("/Decode") is None:
        grey = _decode_jpeg(obj.read_raw_bytes())
        if grey is not None:
            return grey
    if filters == "/FlateDecode" and obj.get("/Decode") is None:
        # Fast path: plain 8-bit grey/RGB or 1-bit grey samples; qpdf inflates (and undoes PNG predictors).
        mode = _plain_sample_mode(obj)
        if mode is not None:
            width, height = int(obj.get("/Width")), int(obj.get("/Height"))
            data = obj.read_bytes()
            stride = (width * {"1": 1, "L": 8, "RGB": 24}[mode] + 7) // 8
            if len(data) < stride * height:
                raise OSError(f"image data is short: {len(data)} of {stride * height} bytes")
            im = Image.frombuffer(mode, (width, height), data, "raw", mode, 0, 1)
            return im.copy() if mode == "L" else _to_grey(im)
    pim = pikepdf.PdfImage(obj)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = pim.as_pil_image()
    if im.size != (int(obj.get("/Width")), int(obj.get("/Height"))):
        raise ValueError("decoded image has an unexpected size")
    if im.mode == "L":
        im.load()
        return im
    return _to_grey(im)
