"""Tests for the streaming PDF writer (pipeline.kit.pdfwriter)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tracemalloc

import pytest

pdfium = pytest.importorskip("pypdfium2")
pikepdf = pytest.importorskip("pikepdf")
segno = pytest.importorskip("segno")

from pipeline.kit.pdfwriter import PdfWriter  # noqa: E402

FONT = "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"
pytestmark = pytest.mark.skipif(not os.path.exists(FONT), reason="fonts-ipaexfont-gothic not installed")

PT = 72 / 25.4
SCALE = 2  # render scale: px per pt
QR_TEXT = "MN1/K0000001/PF/1/3FA2B9C1/ABCDEFGHIJKLM"


class NullSink(io.RawIOBase):
    def writable(self):
        return True

    def write(self, b):
        return len(b)


def px(mm: float) -> int:
    return int(round(mm * PT * SCALE))


def sample_pdf(target, *, pages: int = 2, compress: bool = True, title: str = "収集キット") -> None:
    with PdfWriter(target, FONT, title=title, compress=compress) as w:
        for i in range(pages):
            p = w.begin_page(210, 297)
            p.text(20, 30, "個人番号提供書", 16)
            p.text(20, 45, "山田 太郎", 12)
            p.text(20, 60, f"ASCII text page {i + 1}", 10)
            p.text(105, 75, "中央 center", 10, anchor="center", gray=0.3)
            p.rect(20, 100, 40, 20, stroke=False, fill=True)                    # solid black
            p.rect(80, 100, 40, 20, fill=True, fill_gray=0.85, dash=(1, 1))
            p.line(20, 130, 190, 130, line_width_pt=1)
            p.modules(150, 200, 1.0, segno.make(QR_TEXT, error="m").matrix)
            w.end_page()


@pytest.fixture(scope="module")
def pdf_bytes() -> bytes:
    buf = io.BytesIO()
    sample_pdf(buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def pdf_path(tmp_path_factory, pdf_bytes) -> str:
    path = tmp_path_factory.mktemp("pdf") / "kit.pdf"
    path.write_bytes(pdf_bytes)
    return str(path)


@pytest.fixture(scope="module")
def page_image(pdf_path):
    doc = pdfium.PdfDocument(pdf_path)
    img = doc[0].render(scale=SCALE).to_pil().convert("L")
    doc.close()
    return img


def test_header_and_xref_are_exact(pdf_bytes):
    assert pdf_bytes.startswith(b"%PDF-1.7\n%")
    second = pdf_bytes.split(b"\n")[1]
    assert all(b >= 128 for b in second[1:5])
    xref_pos = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", pdf_bytes).group(1))
    assert pdf_bytes[xref_pos:xref_pos + 5] == b"xref\n"
    head, _, rest = pdf_bytes[xref_pos + 5:].partition(b"\n")
    start, count = map(int, head.split())
    assert start == 0
    table = rest[: 20 * count]
    assert table.startswith(b"0000000000 65535 f \n")
    for num in range(1, count):
        entry = table[20 * num: 20 * num + 20]
        assert len(entry) == 20 and entry.endswith(b" 00000 n \n")
        off = int(entry[:10])
        assert pdf_bytes.startswith(b"%d 0 obj\n" % num, off), num
    assert rest[20 * count:].startswith(b"trailer\n")


@pytest.mark.parametrize("compress", [True, False])
def test_structure_pikepdf_and_pdfium(tmp_path, compress):
    path = tmp_path / "k.pdf"
    sample_pdf(path, pages=3, compress=compress)
    with pikepdf.open(path) as pdf:
        assert pdf.check_pdf_syntax() == []
        assert len(pdf.pages) == 3
        assert [float(v) for v in pdf.pages[0].MediaBox] == pytest.approx([0, 0, 595.28, 841.89], abs=0.01)
        assert dict(pdf.docinfo) == {"/Title": "収集キット", "/Producer": "mynumber-pipeline"}
    doc = pdfium.PdfDocument(str(path))
    assert len(doc) == 3
    assert doc[2].get_size() == pytest.approx((595.28, 841.89), abs=0.01)
    doc.close()


def test_page_tree_spans_many_leaves(tmp_path):
    path = tmp_path / "many.pdf"
    with PdfWriter(path, FONT) as w:
        for i in range(150):  # > 2 leaves of 64
            w.begin_page(210, 297).text(10, 10, f"p{i}", 10)
            w.end_page()
        assert w.page_count == 150
    with pikepdf.open(path) as pdf:
        assert len(pdf.pages) == 150
    doc = pdfium.PdfDocument(str(path))
    assert len(doc) == 150
    assert doc[149].get_textpage().get_text_range().strip() == "p149"
    doc.close()


def test_text_extraction_pdfium(pdf_path):
    doc = pdfium.PdfDocument(pdf_path)
    text = doc[0].get_textpage().get_text_range()
    doc.close()
    for s in ("個人番号提供書", "山田 太郎", "ASCII text page 1", "中央 center"):
        assert s in text


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_text_extraction_poppler(pdf_path):
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", pdf_path, "-"], capture_output=True, check=True).stdout.decode()
    for s in ("個人番号提供書", "山田 太郎", "ASCII text page 2"):
        assert s in out


def test_font_embedded_and_subset(pdf_path):
    with pikepdf.open(pdf_path) as pdf:
        f1 = pdf.pages[0].Resources.Font.F1
        assert f1.Subtype == "/Type0" and f1.Encoding == "/Identity-H"
        assert "/ToUnicode" in f1
        cid = f1.DescendantFonts[0]
        assert cid.Subtype == "/CIDFontType2" and cid.CIDToGIDMap == "/Identity"
        assert re.fullmatch(r"/[A-Z]{6}\+IPAexGothic", str(cid.BaseFont))
        ff = cid.FontDescriptor.FontFile2
        ttf = ff.read_bytes()
        assert int(ff.Length1) == len(ttf)
        assert len(ttf) < 200_000 < os.path.getsize(FONT)
        assert len(ff.read_raw_bytes()) < 50_000
    # and it is a loadable TrueType with the glyph outlines we used
    from fontTools.ttLib import TTFont
    sub = TTFont(io.BytesIO(ttf))
    full = TTFont(FONT)
    gid = full.getGlyphID(full.getBestCmap()[ord("個")])
    assert sub["glyf"][sub.getGlyphOrder()[gid]].numberOfContours > 0


def test_render_rects_and_text(page_image):
    img = page_image
    assert img.size == (px(210), px(297))
    assert img.getpixel((px(40), px(110))) < 30          # inside the solid rect
    assert 180 < img.getpixel((px(100), px(110))) < 240  # inside the light-gray rect
    assert img.getpixel((px(100), px(160))) > 250        # empty area is white
    assert img.getpixel((px(40), px(125))) > 250
    assert img.getpixel((px(100), px(130))) < 128        # the 1pt line
    # "個人番号提供書" at 16pt: ink in the band above the baseline at y=30 mm
    band = img.crop((px(20), px(25), px(70), px(30)))
    assert band.getextrema()[0] < 50


def test_qr_decodes(page_image):
    zxingcpp = pytest.importorskip("zxingcpp")
    crop = page_image.crop((px(144), px(194), px(185), px(235)))
    results = zxingcpp.read_barcodes(crop)
    assert [r.text for r in results] == [QR_TEXT]


def test_deterministic():
    a, b = io.BytesIO(), io.BytesIO()
    sample_pdf(a)
    sample_pdf(b)
    assert a.getvalue() == b.getvalue()


def _ink_extent(img, y0_mm, y1_mm):
    band = img.crop((0, px(y0_mm), img.width, px(y1_mm))).point(lambda v: 255 if v < 128 else 0)
    left, _, right, _ = band.getbbox()
    return left / (PT * SCALE), right / (PT * SCALE)


def test_text_width_matches_rendering():
    buf = io.BytesIO()
    s = "HIJKLM 個人番号 HIJ"
    with PdfWriter(buf, FONT) as w:
        width = w.text_width(s, 20)
        p = w.begin_page(210, 297)
        p.text(20, 30, s, 20)
        p.text(105, 60, s, 20, anchor="center")
        p.text(190, 90, s, 20, anchor="right")
        w.end_page()
    assert 60 < width < 90
    assert w.text_width(s, 10) == pytest.approx(width / 2)
    img = pdfium.PdfDocument(buf.getvalue())[0].render(scale=SCALE).to_pil().convert("L")
    left, right = _ink_extent(img, 20, 32)
    assert left == pytest.approx(20, abs=1.0)
    assert right == pytest.approx(20 + width, abs=1.0)
    left, right = _ink_extent(img, 50, 62)
    assert (left + right) / 2 == pytest.approx(105, abs=1.0)
    left, right = _ink_extent(img, 80, 92)
    assert right == pytest.approx(190, abs=1.0)


def test_newline_rejected_missing_glyph_tolerated():
    with PdfWriter(io.BytesIO(), FONT) as w:
        p = w.begin_page(210, 297)
        with pytest.raises(ValueError):
            p.text(10, 10, "a\nb", 10)
        with pytest.raises(ValueError):
            w.text_width("a\nb", 10)
        with pytest.raises(ValueError):
            p.text(10, 10, "x", 10, anchor="middle")
        p.text(10, 20, "絵文字\U0001F600ok", 10)   # not in IPAexGothic -> .notdef
        assert w.text_width("\U0001F600", 10) > 0
        w.end_page()


def test_page_lifecycle_errors():
    w = PdfWriter(io.BytesIO(), FONT)
    p = w.begin_page(210, 297)
    with pytest.raises(RuntimeError):
        w.begin_page(210, 297)
    w.end_page()
    with pytest.raises(RuntimeError):
        p.rect(0, 0, 1, 1)
    with pytest.raises(RuntimeError):
        w.end_page()
    w.close()
    with pytest.raises(RuntimeError):
        w.begin_page(210, 297)


def test_exception_in_context_closes_without_finishing(tmp_path):
    path = tmp_path / "broken.pdf"
    with pytest.raises(KeyError):
        with PdfWriter(path, FONT) as w:
            w.begin_page(210, 297).text(10, 10, "x", 10)
            w.end_page()
            raise KeyError("boom")
    assert w._fh.closed
    assert b"%%EOF" not in path.read_bytes()


def test_memory_does_not_grow_with_pages():
    def retained(n: int) -> tuple[int, int]:
        w = PdfWriter(NullSink(), FONT)

        def page():
            p = w.begin_page(210, 297)
            p.text(20, 20, "個人番号提供書 山田 太郎", 12)
            p.rect(10, 10, 50, 20, fill=True, fill_gray=0.8)
            w.end_page()

        page()  # warm caches (glyph lookups) before measuring
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(n):
                page()
            cur, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        w.close()
        return cur - base, peak - base

    small_cur, small_peak = retained(300)
    big_cur, big_peak = retained(3000)
    # Only the xref offsets (2 objects/page, 8 bytes each) may scale.
    assert big_cur < 32 * 3000 + 16_384
    assert big_peak < 2 * small_peak + 32 * 3000
