"""pipeline.scan.sources: files from the mailroom -> page images (PDF, TIFF, PNG, JPEG, folders), bad input."""
from __future__ import annotations

import hashlib
import io
import itertools
import pickle
import struct
import time
import types
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image, ImageDraw, ImageOps, TiffImagePlugin

from pipeline.errors import ScanInputError
from pipeline.scan import sources
from pipeline.scan.sources import (
    SUPPORTED_SUFFIXES,
    PageImage,
    PageProblem,
    count_pages,
    expand_paths,
    iter_pages,
)
from tests.conftest import shared

RNG = np.random.default_rng(20240601)


# ---------------------------------------------------------------------------------------------------------------
# Building inputs


def form_like(width: int, height: int, mode: str = "L", seed: int = 0) -> Image.Image:
    """A page-like test image with asymmetric marks (so any rotation/flip shows) and a little noise."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (width, height), (246, 244, 238))
    draw = ImageDraw.Draw(im)
    draw.rectangle([width // 20, height // 30, width // 2, height // 10], fill=(20, 20, 30))        # title bar
    draw.rectangle([width // 20, height // 6, width // 14, height // 2], fill=(60, 60, 200))        # left stripe
    draw.ellipse([width * 2 // 3, height * 3 // 4, width * 9 // 10, height * 9 // 10], fill=(150, 40, 40))
    for y in range(height // 2, height * 2 // 3, max(4, height // 60)):
        draw.line([width // 5, y, width * 4 // 5, y], fill=(90, 90, 90), width=2)
    arr = np.asarray(im).astype(np.int16) + rng.integers(-5, 6, (height, width, 1))
    im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return im if mode == "RGB" else im.convert(mode)


def jpeg_bytes(im: Image.Image, **kw) -> bytes:
    b = io.BytesIO()
    im.save(b, "JPEG", quality=90, **kw)
    return b.getvalue()


def g4_bytes(im: Image.Image) -> bytes:
    """Raw CCITT G4 data of a 1-bit image, for /BlackIs1 false (black runs are black).

    Pillow writes a one-strip TIFF (we take the strip) with PhotometricInterpretation min-is-black, where
    libtiff codes 1 bits as black runs: so the image is inverted first."""
    b = io.BytesIO()
    ImageOps.invert(im.convert("L")).convert("1").save(b, "TIFF", compression="group4", strip_size=1 << 30)
    tif = Image.open(io.BytesIO(b.getvalue()))
    offsets, counts = tif.tag_v2[273], tif.tag_v2[279]
    assert len(offsets) == 1
    return b.getvalue()[offsets[0]:offsets[0] + counts[0]]


def image_xobject(pdf: pikepdf.Pdf, data: bytes, width: int, height: int, *, colorspace: str = "/DeviceGray",
                  bpc: int = 8, filter: str | None = None, parms: dict | None = None) -> pikepdf.Stream:
    img = pikepdf.Stream(pdf, data)
    img["/Type"] = pikepdf.Name.XObject
    img["/Subtype"] = pikepdf.Name.Image
    img["/Width"] = width
    img["/Height"] = height
    img["/ColorSpace"] = pikepdf.Name(colorspace)
    img["/BitsPerComponent"] = bpc
    if filter:
        img["/Filter"] = pikepdf.Name(filter)
    if parms:
        img["/DecodeParms"] = pikepdf.Dictionary({"/" + k: v for k, v in parms.items()})
    return img


def add_page(pdf: pikepdf.Pdf, size_pt: tuple[float, float], content: bytes, xobjects: dict | None = None,
             rotate: int | None = None, fonts: dict | None = None) -> pikepdf.Page:
    page = pdf.add_blank_page(page_size=size_pt)
    res = pikepdf.Dictionary()
    if xobjects:
        res["/XObject"] = pikepdf.Dictionary({"/" + k: v for k, v in xobjects.items()})
    if fonts:
        res["/Font"] = pikepdf.Dictionary({"/" + k: v for k, v in fonts.items()})
    page.obj["/Resources"] = res
    page.obj["/Contents"] = pdf.make_stream(content)
    if rotate is not None:
        page.obj["/Rotate"] = rotate
    return page


def helvetica(pdf: pikepdf.Pdf) -> pikepdf.Dictionary:
    return pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))


def full_page_image_pdf(path: Path, images: list[Image.Image], dpi: float = 300, kind: str = "jpeg",
                        rotate: int | None = None, extra: bytes = b"") -> Path:
    """One page per image, each image drawn upright over the whole page at ``dpi``."""
    pdf = pikepdf.new()
    for im in images:
        w, h = im.size
        if kind == "jpeg":
            cs = "/DeviceRGB" if im.mode == "RGB" else "/DeviceGray"
            img = image_xobject(pdf, jpeg_bytes(im), w, h, colorspace=cs, filter="/DCTDecode")
        elif kind == "g4":
            img = image_xobject(pdf, g4_bytes(im), w, h, bpc=1, filter="/CCITTFaxDecode",
                                parms={"K": -1, "Columns": w, "Rows": h, "BlackIs1": False})
        else:
            raise AssertionError(kind)
        pw, ph = w * 72 / dpi, h * 72 / dpi
        fonts = {"F1": helvetica(pdf)} if extra else None
        add_page(pdf, (pw, ph), f"q {pw:.4f} 0 0 {ph:.4f} 0 0 cm /Im0 Do Q\n".encode() + extra,
                 {"Im0": img}, rotate=rotate, fonts=fonts)
    pdf.save(path)
    return path


def results(path: Path, **kw) -> list[PageImage | PageProblem]:
    out = list(iter_pages(path, **kw))
    for r in out:
        assert isinstance(r, (PageImage, PageProblem))
        assert r.source == path
        if isinstance(r, PageImage):
            assert r.image.mode == "L" and r.dpi > 0
        else:
            assert r.message.startswith(str(path)), r.message
            if r.index is not None:
                assert f"page {r.index}:" in r.message
    return out


def only_problem(path: Path) -> PageProblem:
    out = results(path)
    assert len(out) == 1 and isinstance(out[0], PageProblem), out
    return out[0]


def close(a: Image.Image, b: Image.Image, tol: float = 6.0) -> bool:
    """Images agree (mean absolute difference after bringing b to a's size)."""
    if b.size != a.size:
        b = b.resize(a.size, Image.Resampling.BOX)
    return float(np.abs(np.asarray(a, float) - np.asarray(b, float)).mean()) <= tol


@pytest.fixture
def no_pdfium_render(monkeypatch):
    """Fail the test if a page is rendered with pdfium (it must be extracted)."""
    def refuse(self, page_index):
        raise AssertionError(f"page {page_index + 1} was rendered, not extracted")
    monkeypatch.setattr(sources._Pdfium, "render", refuse)


@pytest.fixture
def count_renders(monkeypatch):
    calls: list[int] = []
    original = sources._Pdfium.render

    def spy(self, page_index):
        calls.append(page_index + 1)
        return original(self, page_index)
    monkeypatch.setattr(sources._Pdfium, "render", spy)
    return calls


# ---------------------------------------------------------------------------------------------------------------
# PDF: extraction of the embedded scan


def test_three_page_jpeg_pdf_is_extracted_at_300_dpi(tmp_path, no_pdfium_render):
    pages = [form_like(1240, 1748, "RGB", seed=i) for i in range(3)]       # A6 at 300 dpi
    path = full_page_image_pdf(tmp_path / "scan.pdf", pages)
    gen = iter_pages(path)
    assert isinstance(gen, types.GeneratorType)
    out = results(path)
    assert [r.index for r in out] == [1, 2, 3]
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    for r, src in zip(out, pages):
        assert isinstance(r, PageImage)
        assert r.image.size == (1240, 1748)
        assert r.dpi == pytest.approx(300, abs=0.01)
        assert r.source_sha256 == sha
        assert close(r.image, src.convert("L"), tol=3)
    assert count_pages(path) == 3


def test_ccitt_g4_bilevel_page(tmp_path, no_pdfium_render):
    src = form_like(1000, 1400, "L").point(lambda v: 255 if v > 128 else 0).convert("1")
    path = full_page_image_pdf(tmp_path / "fax.pdf", [src], dpi=200, kind="g4")
    (r,) = results(path)
    assert r.image.size == (1000, 1400) and r.dpi == pytest.approx(200)
    arr = np.asarray(r.image)
    assert set(np.unique(arr)) <= {0, 255}
    assert np.array_equal(arr, np.asarray(src.convert("L")))              # black stays black


def test_page_rotate_90_is_applied(tmp_path, no_pdfium_render):
    src = form_like(600, 900, "L")
    path = full_page_image_pdf(tmp_path / "rot.pdf", [src], rotate=90)
    (r,) = results(path)
    upright = src.transpose(Image.Transpose.ROTATE_270)                     # /Rotate 90 turns the page clockwise
    assert r.image.size == (900, 600)
    assert close(r.image, upright, tol=3)
    assert not close(r.image, src.transpose(Image.Transpose.ROTATE_90), tol=10)


def test_all_placements_and_rotations_match_pdfium(tmp_path, monkeypatch):
    """8 ways to place the image (rotations/mirrors in cm) x 4 page /Rotate values: extraction == rendering."""
    w, h = 120, 80
    src = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(src)
    draw.rectangle([5, 5, 40, 20], fill=0)
    draw.rectangle([5, 25, 12, 70], fill=80)
    draw.ellipse([80, 50, 110, 75], fill=160)
    pdf = pikepdf.new()
    wp, hp = w * 72 / 300, h * 72 / 300
    cases = list(itertools.product([(1, 0), (-1, 0), (0, 1), (0, -1)], [1, -1], [0, 90, 180, 270]))
    for (xx, xy), ysign, rotate in cases:
        if xx:
            a, b, c, d, pw, ph = xx * wp, 0.0, 0.0, ysign * hp, wp, hp
        else:
            a, b, c, d, pw, ph = 0.0, xy * wp, ysign * hp, 0.0, hp, wp
        e, f = -min(0, a) - min(0, c), -min(0, b) - min(0, d)
        img = image_xobject(pdf, zlib.compress(src.tobytes()), w, h, filter="/FlateDecode")
        add_page(pdf, (pw, ph), f"q {a:.4f} {b:.4f} {c:.4f} {d:.4f} {e:.4f} {f:.4f} cm /Im0 Do Q".encode(),
                 {"Im0": img}, rotate=rotate or None)
    path = tmp_path / "placements.pdf"
    pdf.save(path)
    rendered = results(path, force_render=True)
    original = sources._Pdfium.render
    monkeypatch.setattr(sources._Pdfium, "render", lambda self, i: (_ for _ in ()).throw(AssertionError(i)))
    extracted = results(path)
    monkeypatch.setattr(sources._Pdfium, "render", original)
    assert len(extracted) == len(cases) == 32
    for case, x, r in zip(cases, extracted, rendered):
        assert isinstance(x, PageImage), (case, x)
        assert x.dpi == pytest.approx(300, abs=0.5), case
        assert abs(x.image.width - r.image.width) <= 1 and abs(x.image.height - r.image.height) <= 1, case
        assert close(x.image, r.image, tol=6), case
        assert not close(x.image.transpose(Image.Transpose.ROTATE_180), r.image, tol=15), case


def test_form_xobject_and_invisible_ocr_text_still_extracted(tmp_path, no_pdfium_render):
    src = form_like(500, 700, "L")
    pdf = pikepdf.new()
    pw, ph = 500 * 72 / 300, 700 * 72 / 300
    img = image_xobject(pdf, jpeg_bytes(src), 500, 700, filter="/DCTDecode")
    form = pikepdf.Stream(pdf, b"q 1 0 0 1 0 0 cm /Im0 Do Q")
    form["/Type"] = pikepdf.Name.XObject
    form["/Subtype"] = pikepdf.Name.Form
    form["/BBox"] = [0, 0, 1, 1]
    form["/Resources"] = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=img))
    # scanner-made searchable PDF: the scan, then an invisible (Tr 3) OCR text layer over it
    ocr = b"BT 3 Tr /F1 12 Tf 10 10 Td (recognised text) Tj ET"
    add_page(pdf, (pw, ph), f"q {pw:.3f} 0 0 {ph:.3f} 0 0 cm /Fm0 Do Q ".encode() + ocr, {"Fm0": form},
             fonts={"F1": helvetica(pdf)})
    path = tmp_path / "ocr.pdf"
    pdf.save(path)
    (r,) = results(path)
    assert r.image.size == (500, 700) and r.dpi == pytest.approx(300)
    assert close(r.image, src, tol=3)


def test_visible_marks_over_the_scan_or_tiles_are_rendered(tmp_path, count_renders):
    src = form_like(600, 800, "L")
    stamped = full_page_image_pdf(tmp_path / "stamped.pdf", [src],
                                  extra=b"BT /F1 20 Tf 20 20 Td (RECEIVED) Tj ET")
    (r,) = results(stamped)
    assert count_renders == [1]
    assert r.image.size in ((600, 800), (601, 800), (600, 801), (601, 801)) and r.dpi == pytest.approx(300, 0.01)

    pdf = pikepdf.new()                                    # the scan in two halves
    top, bottom = src.crop((0, 0, 600, 400)), src.crop((0, 400, 600, 800))
    pw, hh = 600 * 72 / 300, 400 * 72 / 300
    add_page(pdf, (pw, 2 * hh),
             f"q {pw} 0 0 {hh} 0 {hh} cm /A Do Q q {pw} 0 0 {hh} 0 0 cm /B Do Q".encode(),
             {"A": image_xobject(pdf, jpeg_bytes(top), 600, 400, filter="/DCTDecode"),
              "B": image_xobject(pdf, jpeg_bytes(bottom), 600, 400, filter="/DCTDecode")})
    tiles = tmp_path / "tiles.pdf"
    pdf.save(tiles)
    count_renders.clear()
    (r,) = results(tiles)
    assert count_renders == [1]
    assert close(r.image, src, tol=6)


def test_non_square_pixels_in_pdf_are_resampled(tmp_path, no_pdfium_render):
    src = Image.new("L", (400, 200), 255)                 # a 2 x 2 inch fax at 200 x 100 dpi
    ImageDraw.Draw(src).rectangle([100, 50, 300, 150], fill=0)
    pdf = pikepdf.new()
    add_page(pdf, (144, 144), b"q 144 0 0 144 0 0 cm /Im0 Do Q",
             {"Im0": image_xobject(pdf, zlib.compress(src.tobytes()), 400, 200, filter="/FlateDecode")})
    path = tmp_path / "stretched.pdf"
    pdf.save(path)
    (r,) = results(path)
    assert r.image.size == (400, 400) and r.dpi == pytest.approx(200)
    assert close(r.image, src.resize((400, 400)), tol=4)


def test_page_without_image(tmp_path):
    pdf = pikepdf.new()
    add_page(pdf, (595, 842), b"BT /F1 12 Tf 72 720 Td (Typed, not scanned) Tj ET 0 0 m 300 300 l S",
             fonts={"F1": helvetica(pdf)})
    pdf.add_blank_page(page_size=(595, 842))
    path = tmp_path / "vector.pdf"
    pdf.save(path)
    out = results(path)
    assert [type(r) for r in out] == [PageProblem, PageProblem]
    assert out[0].index == 1
    assert out[0].message == f"{path} page 1: no scanned image on this page (a page that was not scanned?)"
    assert "page 2: no scanned image" in out[1].message
    rendered = results(path, render_unscanned=True)
    assert isinstance(rendered[0], PageImage) and rendered[0].dpi == 300
    assert abs(rendered[0].image.width - 2479) <= 1 and abs(rendered[0].image.height - 3508) <= 1
    assert isinstance(rendered[1], PageProblem)                         # nothing at all on page 2


def _same_result(a, b) -> None:
    assert type(a) is type(b), (a, b)
    if isinstance(a, PageProblem):
        assert (a.source, a.index, a.message) == (b.source, b.index, b.message)
        return
    assert (a.source, a.index, a.dpi, a.source_sha256, a.original_jpeg) == \
           (b.source, b.index, b.dpi, b.source_sha256, b.original_jpeg)
    assert a.image.mode == b.image.mode and np.array_equal(np.asarray(a.image), np.asarray(b.image))


def _deferred_then_decoded(path: Path) -> tuple[list, int]:
    out, deferred = [], 0
    for r in iter_pages(path, defer_jpeg=True):
        if isinstance(r, sources.EncodedPage):
            deferred += 1
            r = sources.decode(pickle.loads(pickle.dumps(r)))      # as a worker process gets it
        out.append(r)
    return out, deferred


def test_deferred_jpeg_pages_decode_to_exactly_what_iter_pages_yields(tmp_path):
    grey, colour = form_like(600, 800, "L", seed=1), form_like(600, 800, "RGB", seed=2)
    full_page_image_pdf(tmp_path / "plain.pdf", [grey, colour, form_like(500, 700, "CMYK", seed=3)])
    full_page_image_pdf(tmp_path / "turned.pdf", [grey], rotate=90)             # transposed: decoded at once
    pdf = pikepdf.new()
    good = jpeg_bytes(grey)                                 # 600 x 800 px
    for data, (w, h), (pw, ph) in [(good[: len(good) // 2], (600, 800), (144, 192)),   # damaged data
                                   (good, (600, 800), (144, 96)),                      # non-square pixels
                                   (good, (300, 400), (72, 96)),       # the PDF says another size
                                   (b"\xff\xd8\xff\xe0 not a JPEG", (600, 800), (144, 192))]:
        add_page(pdf, (pw, ph), f"q {pw} 0 0 {ph} 0 0 cm /Im0 Do Q".encode(),
                 {"Im0": image_xobject(pdf, data, w, h, filter="/DCTDecode")})
    pdf.save(tmp_path / "odd.pdf")
    deferred = {}
    for name in ("plain.pdf", "turned.pdf", "odd.pdf"):
        eager = results(tmp_path / name)
        later, deferred[name] = _deferred_then_decoded(tmp_path / name)
        assert len(later) == len(eager)
        for a, b in zip(eager, later):
            _same_result(a, b)
    assert deferred == {"plain.pdf": 3, "turned.pdf": 0, "odd.pdf": 1}     # odd.pdf: only the damaged data


def test_deferred_jpeg_that_pillow_cannot_decode_takes_the_ordinary_fallback(tmp_path, monkeypatch):
    path = full_page_image_pdf(tmp_path / "scan.pdf", [form_like(400, 600, "L")])
    monkeypatch.setattr(sources, "_decode_jpeg", lambda data: (_ for _ in ()).throw(ValueError("no decoder")))
    eager = results(path)
    later, deferred = _deferred_then_decoded(path)
    assert deferred == 1 and isinstance(eager[0], PageImage) and eager[0].original_jpeg is not None
    _same_result(eager[0], later[0])                        # pdfium decoded the image, in both cases


# ---------------------------------------------------------------------------------------------------------------
# Image files


def test_multipage_tiff_grey_bilevel_and_fax(tmp_path):
    grey = form_like(300, 420, "L", seed=1)
    bilevel = form_like(300, 420, "L", seed=2).point(lambda v: 255 if v > 128 else 0).convert("1")
    fax = Image.new("1", (400, 200), 1)                    # 2 x 2 inch at 200 x 100 dpi
    ImageDraw.Draw(fax).rectangle([100, 50, 300, 150], fill=0)
    path = tmp_path / "batch.tif"
    with TiffImagePlugin.AppendingTiffWriter(str(path), True) as tf:
        for im, dpi, comp in [(grey, (300, 300), "tiff_lzw"), (bilevel, (300, 300), "group4"),
                              (fax, (200, 100), "group4")]:
            im.save(tf, format="TIFF", dpi=dpi, compression=comp)
            tf.newFrame()
    assert count_pages(path) == 3
    out = results(path)
    assert [r.index for r in out] == [1, 2, 3]
    assert all(isinstance(r, PageImage) for r in out)
    assert out[0].image.size == (300, 420) and out[0].dpi == pytest.approx(300)
    assert np.array_equal(np.asarray(out[0].image), np.asarray(grey))
    assert np.array_equal(np.asarray(out[1].image), np.asarray(bilevel.convert("L")))
    assert out[2].image.size == (400, 400) and out[2].dpi == pytest.approx(200)      # square pixels
    assert close(out[2].image, fax.convert("L").resize((400, 400)), tol=4)


def test_png_and_jpeg(tmp_path):
    src = form_like(500, 700, "RGB")
    png = tmp_path / "a.png"
    src.save(png, dpi=(200, 200))
    (r,) = results(png)
    assert r.index == 1 and r.image.size == (500, 700) and r.dpi == pytest.approx(200, abs=0.1)
    assert np.array_equal(np.asarray(r.image), np.asarray(src.convert("L")))

    nodpi = tmp_path / "b.png"
    src.convert("L").save(nodpi)
    assert results(nodpi)[0].dpi == 300                    # unknown: estimate 300
    default72 = tmp_path / "c.jpg"
    src.save(default72, dpi=(72, 72))
    assert results(default72)[0].dpi == 300                # a software default, not a scan resolution

    alpha = tmp_path / "d.png"
    rgba = src.convert("RGBA")
    rgba.putalpha(0)                                       # fully transparent: white paper
    rgba.save(alpha)
    assert np.asarray(results(alpha)[0].image).min() == 255

    jpg = tmp_path / "e.jpeg"
    src.save(jpg, quality=92, dpi=(300, 300))
    (r,) = results(jpg)
    assert r.image.size == (500, 700) and r.dpi == pytest.approx(300)
    assert close(r.image, src.convert("L"), tol=3)


def test_jpeg_exif_orientation(tmp_path):
    src = form_like(600, 400, "RGB")                       # what the phone's sensor recorded
    exif = Image.Exif()
    exif[0x0112] = 6                                       # "rotate 90 CW to display"
    path = tmp_path / "phone.jpg"
    src.save(path, exif=exif, quality=92)
    (r,) = results(path)
    upright = ImageOps.exif_transpose(Image.open(path)).convert("L")
    assert r.image.size == upright.size == (400, 600)
    assert close(r.image, upright, tol=2)


# ---------------------------------------------------------------------------------------------------------------
# Paths


def test_expand_paths_walks_folders_sorted_skipping_hidden(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    for name in ["b.pdf", "a.PNG", "sub/c.tif", "sub/a.jpeg", ".hidden.pdf", ".git/x.pdf", "notes.txt",
                 "sub/._b.pdf", "z.jpg"]:
        (root / name).write_bytes(b"x")
    loose = tmp_path / "loose.docx"
    loose.write_bytes(b"x")
    got = expand_paths([loose, root, root / "b.pdf"])
    assert got == [loose, root / "a.PNG", root / "b.pdf", root / "sub" / "a.jpeg", root / "sub" / "c.tif",
                   root / "z.jpg"]
    assert ".pdf" in SUPPORTED_SUFFIXES and ".jpeg" in SUPPORTED_SUFFIXES

    with pytest.raises(ScanInputError) as err:
        expand_paths([root, tmp_path / "missing.pdf"])
    assert "missing.pdf" in err.value.message and err.value.exit_code == 65


# ---------------------------------------------------------------------------------------------------------------
# Bad input: a clear PageProblem each, never an exception


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    p = only_problem(path)
    assert p.index is None and "empty file" in p.message
    assert count_pages(path) is None


def test_truncated_pdf(tmp_path):
    pages = [form_like(600, 850, "RGB", seed=i) for i in range(4)]
    whole = full_page_image_pdf(tmp_path / "whole.pdf", pages).read_bytes()
    path = tmp_path / "cut.pdf"
    path.write_bytes(whole[: len(whole) // 2])
    out = results(path)
    images = [r for r in out if isinstance(r, PageImage)]
    problems = [r for r in out if isinstance(r, PageProblem)]
    assert problems, out
    assert all(p.index is not None for p in problems) or len(out) == 1
    for r in images:
        assert close(r.image, pages[r.index - 1].convert("L"), tol=3)
    assert any("damaged or truncated" in p.message or "truncated PDF" in p.message for p in problems)

    cut_early = tmp_path / "cut_early.pdf"
    cut_early.write_bytes(whole[:400])
    assert all(isinstance(r, PageProblem) for r in results(cut_early))


def test_damaged_image_data_inside_a_valid_pdf(tmp_path):
    src = form_like(300, 400, "L")
    good = jpeg_bytes(src)
    pdf = pikepdf.new()
    for data in (good[: len(good) // 2], good):
        add_page(pdf, (72, 96), b"q 72 0 0 96 0 0 cm /Im0 Do Q",
                 {"Im0": image_xobject(pdf, data, 300, 400, filter="/DCTDecode")})
    path = tmp_path / "halfjpeg.pdf"
    pdf.save(path)
    bad, ok = results(path)
    assert isinstance(bad, PageProblem) and bad.index == 1 and "damaged or truncated" in bad.message
    assert isinstance(ok, PageImage) and ok.index == 2


def test_encrypted_pdf(tmp_path):
    plain = full_page_image_pdf(tmp_path / "plain.pdf", [form_like(200, 300, "L")])
    path = tmp_path / "locked.pdf"
    with pikepdf.open(plain) as pdf:
        pdf.save(path, encryption=pikepdf.Encryption(user="secret", owner="owner"))
    p = only_problem(path)
    assert p.index is None
    assert p.message == f"{path}: encrypted: remove the password before scanning it in"

    owner_only = tmp_path / "owner_only.pdf"                # opens without a password: fine
    with pikepdf.open(plain) as pdf:
        pdf.save(owner_only, encryption=pikepdf.Encryption(user="", owner="owner"))
    assert isinstance(results(owner_only)[0], PageImage)


def test_unsupported_formats(tmp_path):
    txt = tmp_path / "letter.pdf"
    txt.write_text("Dear mailroom, this is not a PDF.\n")
    docx = tmp_path / "form.docx"
    with zipfile.ZipFile(docx, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    fake_png = tmp_path / "photo.png"
    fake_png.write_text("hello")
    for path in (txt, docx, fake_png):
        p = only_problem(path)
        assert p.index is None and "unsupported format" in p.message, p.message
        assert count_pages(path) is None


def test_damaged_png_header_and_truncated_jpeg(tmp_path):
    png = tmp_path / "bad.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    p = only_problem(png)
    assert p.index is None and "damaged PNG" in p.message

    data = jpeg_bytes(form_like(400, 500, "RGB"))
    jpg = tmp_path / "cut.jpg"
    jpg.write_bytes(data[: len(data) // 2])
    p = only_problem(jpg)
    assert p.index == 1 and "damaged or truncated" in p.message


def test_corrupt_tiff_frame_is_reported_and_the_rest_goes_on(tmp_path):
    frames = [form_like(200, 260, "L", seed=i) for i in range(3)]
    path = tmp_path / "three.tif"
    with TiffImagePlugin.AppendingTiffWriter(str(path), True) as tf:
        for im in frames:
            im.save(tf, format="TIFF", compression="tiff_adobe_deflate", dpi=(300, 300))
            tf.newFrame()
    tif = Image.open(path)
    tif.seek(1)
    offset, count = tif.tag_v2[273][0], tif.tag_v2[279][0]
    tif.close()
    data = bytearray(path.read_bytes())
    data[offset + 10: offset + count] = b"\x00" * (count - 10)           # wreck frame 2's deflate stream
    path.write_bytes(data)
    out = results(path)
    assert [r.index for r in out] == [1, 2, 3]
    assert isinstance(out[0], PageImage) and isinstance(out[2], PageImage)
    assert isinstance(out[1], PageProblem) and "page 2: image data is damaged" in out[1].message


def _huge_png(path: Path, w: int, h: int) -> None:
    b = io.BytesIO()
    Image.new("L", (8, 8), 255).save(b, "PNG")
    d = bytearray(b.getvalue())
    d[16:24] = struct.pack(">II", w, h)                                 # IHDR width, height
    d[29:33] = struct.pack(">I", zlib.crc32(bytes(d[12:29])))           # and its CRC
    path.write_bytes(d)


def _huge_tiff(path: Path, w: int, h: int) -> None:
    b = io.BytesIO()
    Image.new("1", (8, 8), 1).save(b, "TIFF")
    d = bytearray(b.getvalue())
    ifd = struct.unpack_from("<I", d, 4)[0]
    for k in range(struct.unpack_from("<H", d, ifd)[0]):
        entry = ifd + 2 + 12 * k
        tag = struct.unpack_from("<H", d, entry)[0]
        if tag in (256, 257):
            struct.pack_into("<HHII", d, entry, tag, 4, 1, w if tag == 256 else h)
    path.write_bytes(d)


def _huge_jpeg(path: Path, w: int, h: int) -> None:
    d = bytearray(jpeg_bytes(Image.new("L", (8, 8), 255)))
    sof = d.index(b"\xff\xc0")
    d[sof + 5: sof + 9] = struct.pack(">HH", h, w)
    path.write_bytes(d)


def test_decompression_bombs_are_refused_before_decoding(tmp_path):
    limit_before = Image.MAX_IMAGE_PIXELS
    expected = "image is 30000×30000 px; larger than the 12,000 px limit for a scanned page"
    files = []
    for name, make in [("huge.png", _huge_png), ("huge.tif", _huge_tiff), ("huge.jpg", _huge_jpeg)]:
        make(tmp_path / name, 30000, 30000)
        files.append(tmp_path / name)
    pdf = pikepdf.new()
    add_page(pdf, (612, 792), b"q 612 0 0 792 0 0 cm /Im0 Do Q",
             {"Im0": image_xobject(pdf, zlib.compress(b"\xff" * 1000), 30000, 30000, bpc=1,
                                   filter="/FlateDecode")})
    pdf.save(tmp_path / "huge.pdf")
    files.append(tmp_path / "huge.pdf")
    started = time.perf_counter()
    for path in files:
        p = only_problem(path)
        assert p.index == 1 and p.message == f"{path} page 1: {expected}"
    assert time.perf_counter() - started < 2
    assert Image.MAX_IMAGE_PIXELS == limit_before                       # global left alone


def test_pillow_bomb_limit_becomes_a_problem(tmp_path, monkeypatch):
    path = tmp_path / "small.tif"
    Image.new("L", (100, 100), 255).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)               # someone made Pillow stricter
    p = only_problem(path)
    assert p.index == 1 and "100×100 px" in p.message and "decompression bomb" in p.message


# ---------------------------------------------------------------------------------------------------------------
# Speed: extracting the page image vs rendering the page


def test_extraction_is_faster_than_rendering(tmp_path):
    page = form_like(2480, 3508, "RGB")                   # A4 colour scan at 300 dpi
    path = full_page_image_pdf(tmp_path / "a4.pdf", [page])

    def per_page(**kw) -> float:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            (r,) = results(path, **kw)
            best = min(best, time.perf_counter() - t)
            assert isinstance(r, PageImage) and r.dpi == pytest.approx(300, abs=0.01)
        return best

    extract, render = per_page(), per_page(force_render=True)
    print(f"\n300-dpi A4 JPEG page: extract {extract * 1000:.0f} ms, pdfium render {render * 1000:.0f} ms")
    assert extract < render


# ---------------------------------------------------------------------------------------------------------------
# Outside scans (paperless-ngx and OCRmyPDF test material)


def test_outside_scans_yield_pages_or_clear_problems():
    root = shared("scans")
    files = expand_paths([root])
    assert len(files) >= 40
    by_name: dict[str, list] = {}
    for path in files:
        out = results(path)
        assert out, path
        by_name[path.name] = out
        n = count_pages(path)
        assert n is None or n == len(out), path

    assert [r.image.size for r in by_name["cardinal.pdf"]] == [(2550, 3300), (3300, 2550)] * 2
    assert all(r.dpi == pytest.approx(300) for r in by_name["cardinal.pdf"])
    rotated = by_name["rotated_skew.pdf"][0]                          # /Rotate 90 on a landscape page
    assert isinstance(rotated, PageImage) and rotated.image.size == (2550, 3301)
    fax = by_name["barcode-fax-image.pdf"]                            # CCITT G4
    assert all(isinstance(r, PageImage) and set(np.unique(r.image)) <= {0, 255} for r in fax)
    assert all(isinstance(r, PageImage) for r in by_name["jbig2.pdf"] + by_name["ccitt.pdf"])
    assert [type(r) for r in by_name["patch-code-t-middle.tiff"]] == [PageImage] * 3
    (simple,) = by_name["simple.pdf"]
    assert isinstance(simple, PageProblem) and "no scanned image on this page" in simple.message
    assert by_name["linn.png"][0].image.size == (2550, 3300)
