"""Reading inputs as page images, and writing redacted outputs as flattened rasters.

Inputs: PNG, JPEG, TIFF (every frame is a page), BMP, WebP, PDF (each page rasterised with pdfium at the
resolution of its largest image, clamped to 150-400 dpi, or 300 dpi for pages without images).

Outputs keep the input's name and format, pages keep their size and orientation, and nothing but pixels
survives: images are written from a fresh raster without EXIF/ICC/text chunks or DPI; a PDF is built
from scratch (pikepdf) with one image per page drawn over the whole page, no text layer, no fonts, no
annotations, no /Metadata and no /Info. `verify_pdf` checks exactly that on what was written.
"""
from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PIL import Image, ImageSequence

from ..errors import InputError, NotFound

IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
                 ".bmp": "BMP", ".webp": "WEBP"}
SUPPORTED = frozenset(IMAGE_FORMATS) | {".pdf"}
LOSSY = {"JPEG", "WEBP"}
JPEG_QUALITY = 90
DEFAULT_PDF_DPI = 300.0
Image.MAX_IMAGE_PIXELS = 200_000_000      # a 1200 dpi A3 scan, not a decompression bomb


@dataclass
class InputPage:
    image: Image.Image
    dpi: float | None = None
    size_pt: tuple[float, float] | None = None   # PDF pages: the displayed page size in points


def kind_of(path: Path) -> str:
    ext = path.suffix.lower()
    if ext not in SUPPORTED:
        raise InputError(f"{path.name}: unsupported file type {ext or '(none)'}; "
                         f"use one of {', '.join(sorted(SUPPORTED))}")
    return "PDF" if ext == ".pdf" else IMAGE_FORMATS[ext]


def read_pages(path: Path, *, pdf_dpi: float | None = None) -> list[InputPage]:
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    kind = kind_of(path)
    if kind == "PDF":
        return _read_pdf(path, pdf_dpi)
    try:
        with Image.open(path) as im:
            pages = []
            for frame in ImageSequence.Iterator(im):
                dpi = frame.info.get("dpi")
                dpi = float(dpi[0]) if dpi and dpi[0] and 30 <= float(dpi[0]) <= 2400 else None
                frame.load()
                pages.append(InputPage(frame.copy(), dpi))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path.name}: not a readable {kind} image ({exc.__class__.__name__})") from None
    if not pages:
        raise InputError(f"{path.name}: no pages")
    return pages


def _page_dpi(page) -> float | None:
    import pypdfium2.raw as pdfium_c
    best = None
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):
        try:
            w_px, h_px = obj.get_px_size()
            l, b, r, t = obj.get_bounds()
        except Exception:  # noqa: BLE001 - a broken image object only loses its resolution hint
            continue
        if r - l > 1 and t - b > 1:
            dpi = max(w_px / ((r - l) / 72.0), h_px / ((t - b) / 72.0))
            best = dpi if best is None else max(best, dpi)
    return best


def _read_pdf(path: Path, pdf_dpi: float | None) -> list[InputPage]:
    import pypdfium2 as pdfium
    try:
        doc = pdfium.PdfDocument(str(path))
    except Exception as exc:  # noqa: BLE001 - pdfium raises its own PdfiumError and friends
        raise InputError(f"{path.name}: not a readable PDF ({exc.__class__.__name__})") from None
    pages = []
    try:
        if len(doc) == 0:
            raise InputError(f"{path.name}: the PDF has no pages")
        for i in range(len(doc)):
            page = doc[i]
            w, h = page.get_size()              # displayed size (rotation applied)
            dpi = pdf_dpi or _page_dpi(page) or DEFAULT_PDF_DPI
            dpi = float(min(400.0, max(150.0, dpi))) if not pdf_dpi else float(pdf_dpi)
            bitmap = page.render(scale=dpi / 72.0, may_draw_forms=True)
            image = bitmap.to_pil()
            if image.mode != "L":
                image = image.convert("RGB")
            pages.append(InputPage(image, dpi, (float(w), float(h))))
            page.close()
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path.name}: page {len(pages) + 1} could not be rendered "
                         f"({exc.__class__.__name__})") from None
    finally:
        doc.close()
    return pages


# ---------------------------------------------------------------------------------------- writing

def encoder_for(kind: str) -> Callable[[Image.Image], bytes]:
    """How one page is encoded for output `kind` (the proof reads the decoded result of this)."""
    def encode(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        if kind in ("JPEG", "PDF"):
            img.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=False)
        elif kind == "WEBP":
            img.save(buf, format="WEBP", quality=JPEG_QUALITY)
        else:
            img.save(buf, format="PNG", compress_level=6)   # lossless stand-in for TIFF/BMP/PNG pages
        return buf.getvalue()
    return encode


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_images(target: Path, kind: str, pages: list[Image.Image], payloads: list[bytes | None]) -> None:
    """Write the pages of an image input (TIFF may hold several)."""
    def write(tmp: Path) -> None:
        if kind in ("JPEG", "WEBP", "PNG") and len(pages) == 1 and payloads[0] is not None:
            tmp.write_bytes(payloads[0])        # exactly the bytes the proof read
        elif kind == "TIFF":
            pages[0].save(tmp, format="TIFF", save_all=True, append_images=pages[1:], compression="tiff_deflate")
        else:
            pages[0].save(tmp, format=kind)
    _atomic_write(target, write)


def write_pdf(target: Path, pages: list[tuple[Image.Image, bytes, tuple[float, float]]]) -> None:
    """A new PDF: per page, one JPEG image (the bytes the proof read) drawn over the whole page."""
    import pikepdf
    from pikepdf import Dictionary, Name

    pdf = pikepdf.new()
    for image, jpeg, (w, h) in pages:
        xobj = pikepdf.Stream(pdf, jpeg)
        xobj.Type = Name.XObject
        xobj.Subtype = Name.Image
        xobj.Width, xobj.Height = image.width, image.height
        xobj.ColorSpace = Name.DeviceGray if image.mode == "L" else Name.DeviceRGB
        xobj.BitsPerComponent = 8
        xobj.Filter = Name.DCTDecode
        content = pdf.make_stream(f"q {w:.4f} 0 0 {h:.4f} 0 0 cm /Im0 Do Q".encode())
        page = Dictionary(Type=Name.Page, MediaBox=[0, 0, round(w, 4), round(h, 4)],
                          Resources=Dictionary(XObject=Dictionary(Im0=xobj)), Contents=content)
        pdf.pages.append(pikepdf.Page(page))
    if "/Info" in pdf.trailer:
        del pdf.trailer["/Info"]

    def write(tmp: Path) -> None:
        pdf.save(tmp, deterministic_id=True)
    _atomic_write(target, write)
    verify_pdf(target, len(pages))


def verify_pdf(path: Path, expected_pages: int | None = None) -> None:
    """Raise InputError unless the PDF is flattened: per page exactly one image XObject and nothing else
    to show (no fonts, annotations, forms), no /Metadata, no /Info, no /Names or JavaScript."""
    import pikepdf
    with pikepdf.open(path) as pdf:
        problems = []
        if expected_pages is not None and len(pdf.pages) != expected_pages:
            problems.append(f"{len(pdf.pages)} pages instead of {expected_pages}")
        if "/Info" in pdf.trailer and len(pdf.trailer.Info.keys()):
            problems.append("document information")
        for key in ("/Metadata", "/Names", "/OpenAction", "/AcroForm", "/StructTreeRoot", "/Outlines"):
            if key in pdf.Root:
                problems.append(key)
        for n, page in enumerate(pdf.pages, 1):
            res = page.obj.get("/Resources", {})
            xobjs = res.get("/XObject", {}) if res else {}
            images = [k for k in xobjs.keys() if xobjs[k].get("/Subtype") == "/Image"]
            if len(images) != 1 or len(xobjs.keys()) != 1:
                problems.append(f"page {n}: {len(xobjs.keys())} objects")
            if res and any(k in res for k in ("/Font", "/Properties", "/Pattern", "/Shading")):
                problems.append(f"page {n}: text or vector resources")
            if "/Annots" in page.obj:
                problems.append(f"page {n}: annotations")
    if problems:
        raise InputError(f"{Path(path).name}: written PDF is not flattened ({'; '.join(problems)})")
