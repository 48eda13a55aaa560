"""The scan simulator itself: what it writes lands where the layout says, and what it scans stays readable."""
import csv

import cv2
import numpy as np
import pikepdf
import pypdfium2 as pdfium
import pytest
import zxingcpp
from PIL import Image, ImageDraw

from pipeline import layout, number
from tests import scansim

DPI = 300
# The kit is printed into a data home only to get a page image: nothing here depends on the database.
pytestmark = pytest.mark.sqlite_only


@pytest.fixture
def provision_page(home, cli, roster_csv, tmp_path):
    """E0001's provision form page 1 (self + two dependents printed) at 300 dpi, and its layout."""
    pdf, manifest = tmp_path / "kits.pdf", tmp_path / "manifest.csv"
    code, _, err = cli("kits", "print", roster_csv, "--out", pdf, "--manifest", manifest)
    assert code == 0, err
    rows = list(csv.DictReader(manifest.open(encoding="utf-8")))
    row = next(r for r in rows if r["person_id"] == "E0001" and r["document"] == "provision_form")
    page = scansim.rasterise(pdf, int(row["pdf_page"]) - 1, DPI)
    return page, layout.load().documents["provision_form"].page(1)


def _dark_fraction(gray: np.ndarray, quad: np.ndarray, level: int = 128) -> float:
    """Share of pixels darker than level inside the quadrilateral quad (4 x 2 px)."""
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    crop = gray[y0:y1 + 1, x0:x1 + 1]
    mask = np.zeros(crop.shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(quad - [x0, y0]).astype(np.int32), 1)
    return float((crop[mask == 1] < level).mean())


def _inset_quad(truth, rect_mm, inset_mm: float) -> np.ndarray:
    x, y, w, h = rect_mm
    corners = [(x + inset_mm, y + inset_mm), (x + w - inset_mm, y + inset_mm),
               (x + w - inset_mm, y + h - inset_mm), (x + inset_mm, y + h - inset_mm)]
    return truth.mm_to_px(corners, upright=True)


def test_printed_digits_survive_a_turned_skewed_noisy_jpeg_scan(provision_page, tmp_path):
    page, pf = provision_page
    rng = np.random.default_rng(7)
    digits = scansim.random_valid_number(rng)
    scansim.write_digits(page, pf, "self", digits[:5] + " " + digits[6:], DPI, style="printed", rng=rng)
    scan, dpi_xy = scansim.degrade(page, DPI, rng, rotate=90, skew_deg=3.0, noise=8.0, jpeg_quality=60,
                                   brightness=10, contrast=0.1)
    assert dpi_xy == (DPI, DPI) and scan.mode == "L" and scan.width > scan.height  # turned: landscape

    # The tag still decodes, where the simulator says the QR went.
    truth = scansim.truth_of(scan)
    codes = [c for c in zxingcpp.read_barcodes(scan) if c.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(codes) == 1 and codes[0].text.startswith("MN1/")
    p = codes[0].position
    found = np.mean([[q.x, q.y] for q in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)], axis=0)
    qx, qy, qw, qh = pf.qr_mm
    expected = truth.mm_to_px([(qx + qw / 2, qy + qh / 2)])[0]
    assert np.hypot(*(found - expected)) < scansim.mm_to_px(1.5, DPI)

    # Turned back exactly; each written digit is ink inside its box, the blank box and the unfilled field none.
    up = np.asarray(scansim.upright(scan))
    assert up.shape == (truth.size[0], truth.size[1])
    for char, box in zip(digits[:5] + " " + digits[6:], pf.field_named("self").boxes_mm):
        share = _dark_fraction(up, _inset_quad(truth, box, 1.5))
        assert (share > 0.03) if char != " " else (share < 0.002), (char, share)
    for box in pf.field_named("dependent1").boxes_mm:
        assert _dark_fraction(up, _inset_quad(truth, box, 1.5)) < 0.002
    # ...and the box outlines are where the layout puts them (a thin ring around each box is inked).
    x, y, w, h = pf.field_named("self").boxes_mm[0]
    top_edge = truth.mm_to_px([(x + 2, y - 0.4), (x + w - 2, y - 0.4), (x + w - 2, y + 0.4), (x + 2, y + 0.4)],
                              upright=True)
    assert _dark_fraction(up, top_edge) > 0.2

    # A scanner-like PDF of it: one image per page, page size = pixels / dpi.
    fax, fax_dpi = scansim.degrade(page, DPI, rng, fax=True, speckle=0.0002)
    out = scansim.make_scan_pdf([(scan, dpi_xy), (fax, fax_dpi)], tmp_path / "scan.pdf")
    with pikepdf.open(out) as pdf:
        assert len(pdf.pages) == 2
        for pg, (img, (dx, dy)) in zip(pdf.pages, [(scan, dpi_xy), (fax, fax_dpi)]):
            images = [v for v in pg.Resources.XObject.values() if v.Subtype == "/Image"]
            assert len(images) == 1 and "/Font" not in pg.Resources
            assert (int(images[0].Width), int(images[0].Height)) == img.size
            box = [float(v) for v in pg.MediaBox]
            assert box[2] == pytest.approx(img.width * 72 / dx, abs=0.01)
            assert box[3] == pytest.approx(img.height * 72 / dy, abs=0.01)
        assert pdf.pages[0].Resources.XObject.Im0.Filter == "/DCTDecode"
        assert pdf.pages[1].Resources.XObject.Im0.Filter == "/CCITTFaxDecode"
    # The G4 page renders as the bilevel image it came from (polarity and geometry).
    doc = pdfium.PdfDocument(out)
    rendered = doc[1].render(scale=200 / 72, grayscale=True).to_pil().convert("L").resize(fax.size, Image.BOX)
    assert doc[0].get_textpage().get_text_range().strip() == ""
    doc.close()
    assert ((np.asarray(rendered) < 128) == ~np.asarray(fax)).mean() > 0.995
    codes = zxingcpp.read_barcodes(np.asarray(rendered))  # a fax-grade page still carries a readable tag
    assert any(c.text.startswith("MN1/") for c in codes)


def test_handwritten_digits_ticks_and_signature_stay_in_their_boxes(provision_page):
    page, pf = provision_page
    rng = np.random.default_rng(11)
    source = scansim.load_mnist_test()  # None without the MNIST files: a font-based stand-in is used
    written = scansim.random_valid_number(rng)
    scansim.write_digits(page, pf, "dependent1", written, DPI, style="handwritten", rng=rng,
                         handwritten_source=source)
    scansim.tick_checkbox(page, pf, "consent", DPI, rng)
    scansim.sign(page, pf, "signature", DPI, rng)
    scan, _ = scansim.degrade(page, DPI, rng, rotate=180, skew_deg=-1.5, shift_mm=(2, -3), noise=5,
                              jpeg_quality=70, target_dpi=200)
    truth = scansim.truth_of(scan)
    up = np.asarray(scansim.upright(scan))
    for box in pf.field_named("dependent1").boxes_mm:
        assert _dark_fraction(up, _inset_quad(truth, box, 1.2)) > 0.01
    for box in pf.field_named("self").boxes_mm + pf.field_named("dependent2").boxes_mm:
        assert _dark_fraction(up, _inset_quad(truth, box, 1.2)) < 0.002
    assert _dark_fraction(up, _inset_quad(truth, pf.checkboxes["consent"], 0.8)) > 0.03
    x, y, w, h = pf.signatures["signature"]
    assert _dark_fraction(up, _inset_quad(truth, (x, y + 8, w, h - 8), 1.0)) > 0.005  # below the caption


def test_fax_mode_bilevel_and_multipage_tiff(tmp_path):
    page = Image.new("L", (2480, 3508), 255)  # an A4 sheet at 300 dpi with one 20 x 10 mm black bar
    bar_mm = (50.0, 100.0, 20.0, 10.0)
    x, y, w, h = (scansim.mm_to_px(v, DPI) for v in bar_mm)
    ImageDraw.Draw(page).rectangle((x, y, x + w - 1, y + h - 1), fill=0)
    fax, dpi_xy = scansim.degrade(page, DPI, 5, fax=True)
    assert dpi_xy == (200, 100) and fax.mode == "1"
    assert fax.size == (round(2480 * 200 / 300), round(3508 * 100 / 300))
    truth = scansim.truth_of(fax)
    corners = truth.mm_to_px([(50.5, 100.5), (69.5, 109.5)])
    (cx0, cy0), (cx1, cy1) = np.round(corners).astype(int)
    assert not np.asarray(fax)[cy0:cy1, cx0:cx1].any()  # all black where the bar went
    turned, turned_dpi = scansim.degrade(page, DPI, 5, fax=True, rotate=90)
    assert turned_dpi == (100, 200) and turned.size == fax.size[::-1]
    grey, grey_dpi = scansim.degrade(page, DPI, 5, target_dpi=150, noise=4)
    path = scansim.make_multipage_tiff([(fax, dpi_xy), (grey, grey_dpi)], tmp_path / "scan.tif")
    with Image.open(path) as tif:
        assert tif.n_frames == 2
        assert tif.mode == "1" and tuple(tif.info["dpi"]) == (200, 100) and tif.info["compression"] == "group4"
        tif.seek(1)
        assert tif.mode == "L" and tuple(tif.info["dpi"]) == (150, 150)


def test_degrade_is_deterministic_and_numbers_are_synthetic():
    page = Image.new("L", (600, 800), 255)
    a, _ = scansim.degrade(page, 100, np.random.default_rng(3), noise=10, speckle=0.001, skew_deg=2)
    b, _ = scansim.degrade(page, 100, np.random.default_rng(3), noise=10, speckle=0.001, skew_deg=2)
    assert a.tobytes() == b.tobytes()
    rng = np.random.default_rng(0)
    numbers = [scansim.random_valid_number(rng) for _ in range(200)]
    assert len(set(numbers)) == 200
    for n in numbers:
        assert number.is_valid_digits(n)
        bad = scansim.miswritten(n, rng)
        assert not number.is_valid_digits(bad) and len(bad) == 12
        assert sum(p != q for p, q in zip(n, bad)) == 1
