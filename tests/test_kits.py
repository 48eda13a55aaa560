import csv
import json
import re

import pikepdf
import pypdfium2 as pdfium
import pytest
import zxingcpp
from sqlalchemy import select

from pipeline import db, layout, qrtag, vault
from pipeline.track import audit
from pipeline.track.models import Kit


@pytest.fixture
def printed(home, cli, roster_csv, tmp_path):
    out, manifest = tmp_path / "kits.pdf", tmp_path / "manifest.csv"
    code, stdout, err = cli("kits", "print", roster_csv, "--out", out, "--manifest", manifest)
    assert code == 0, err
    rows = list(csv.DictReader(manifest.open(encoding="utf-8")))
    return out, rows


def test_every_page_carries_a_qr_that_decodes_to_its_kit_document_and_page(home, printed):
    out, rows = printed
    key = vault.load_key(home.keys_dir, "tag")
    kit_layout = layout.load()
    pdf = pdfium.PdfDocument(out)
    # E0002 + filler, E0001 (delegation, dependents' ID page) + filler, payee + filler, E0003 (2 PF pages too)
    assert len(pdf) == len(rows) == 6 + 8 + 6 + 8
    for page, row in zip(pdf, rows):
        image = page.render(scale=150 / 72).to_pil().convert("L")
        codes = [b for b in zxingcpp.read_barcodes(image) if b.format == zxingcpp.BarcodeFormat.QRCode]
        assert len(codes) == 1, row
        tag = qrtag.decode(codes[0].text, key)
        document = kit_layout.by_code(tag.doc_code)
        assert (tag.kit, document.document, str(tag.page)) == (row["kit_id"], row["document"], row["doc_page"])
        assert tag.fingerprint == document.fingerprint


def test_payloads_hold_nothing_personal(home, printed, roster_csv):
    out, rows = printed
    key = vault.load_key(home.keys_dir, "tag")
    pdf = pdfium.PdfDocument(out)
    personal = set()
    for line in roster_csv.read_text(encoding="utf-8").splitlines()[1:]:
        personal.update(cell for cell in line.split(",") if cell)
    for i in (0, 1, 8):
        text = zxingcpp.read_barcodes(pdf[i].render(scale=2).to_pil())[0].text
        assert re.fullmatch(r"MN1/K\d{7}/[A-Z]{2}/\d/[0-9A-F]{8}/[A-Z2-7]{8}/[A-Z2-7]{16}", text)
        assert not any(value in text for value in personal if len(value) >= 3)
        qrtag.decode(text, key)


def test_pdf_text_has_every_name_and_the_kit_id(printed):
    out, rows = printed
    pdf = pdfium.PdfDocument(out)
    text = "\n".join(p.get_textpage().get_text_range() for p in pdf)
    for name in ("山田 太郎", "佐藤 次郎", "鈴木 講師", "高橋 四郎", "山田 花子", "高橋 根"):
        assert name in text
    for kit in {r["kit_id"] for r in rows}:
        assert kit in text
    assert "個人番号提供書" in text and "委託に関する合意書" in text and "マイナンバー" in text


def test_font_is_embedded_and_subset(printed):
    out, _ = printed
    with pikepdf.open(out) as pdf:
        fonts = pdf.pages[0].Resources.Font
        font = fonts[list(fonts.keys())[0]]
        descriptor = font.DescendantFonts[0].FontDescriptor
        assert "/FontFile2" in descriptor
        assert len(descriptor.FontFile2.read_bytes()) < 1_000_000  # the full IPAex font is ~6 MB


def test_kit_composition_and_duplex_fillers(printed):
    _, rows = printed
    by_kit = {}
    for r in rows:
        by_kit.setdefault(r["person_id"], []).append((r["document"], r["doc_page"]))
    assert by_kit["E0001"] == [("cover_letter", "1"), ("provision_form", "1"), ("delegation_agreement", "1"),
                               ("refusal_form", "1"), ("id_copy_sheet", "1"), ("id_copy_sheet", "2"),
                               ("envelope_label", "1"), ("filler", "1")]
    assert ("id_copy_sheet", "2") not in by_kit["E0002"]    # no dependents: no page for their copies
    assert by_kit["E0002"][-1] == ("filler", "1") and ("delegation_agreement", "1") not in by_kit["E0002"]
    assert by_kit["P0001"][0] == ("notice_letter", "1") and ("cover_letter", "1") not in by_kit["P0001"]
    assert ("provision_form", "2") in by_kit["E0003"]
    assert all(len(pages) % 2 == 0 for pages in by_kit.values())
    sites = [r["kit_id"] for r in rows]
    assert sites == sorted(sites, key=lambda k: sites.index(k))  # each kit contiguous


def test_reprinting_reuses_kits_and_keeps_the_chain_valid(home, cli, printed, roster_csv, tmp_path):
    first, rows = printed
    code, out, _ = cli("kits", "print", roster_csv, "--out", tmp_path / "again.pdf", "--manifest", tmp_path / "m2.csv")
    assert code == 0
    again = list(csv.DictReader((tmp_path / "m2.csv").open(encoding="utf-8")))
    assert again == rows
    assert (tmp_path / "again.pdf").read_bytes() == first.read_bytes()
    with db.session_scope(home.db_url) as s:
        assert len(s.execute(select(Kit)).scalars().all()) == 4
        assert audit.verify(s).ok


def test_send_list_and_layout(home, cli, printed, tmp_path):
    _, rows = printed
    kits = sorted({r["kit_id"] for r in rows})
    sent = tmp_path / "sent.csv"
    sent.write_text("kit_id,carrier,tracking_number\n" + f"{kits[0]},簡易書留,1234-5678\n{kits[1]},レターパック,\n",
                    encoding="utf-8")
    assert cli("kits", "send", "--manifest", sent)[0] == 0
    assert cli("kits", "send", "--manifest", sent)[0] == 0  # the same manifest again changes nothing
    code, out, _ = cli("kits", "list", "--state", "sent", "--json")
    listed = json.loads(out)["kits"]
    assert {k["kit_id"] for k in listed} == set(kits[:2])
    assert {k["carrier"] for k in listed} == {"simple_registered", "letterpack"}
    bad = tmp_path / "bad.csv"
    bad.write_text(f"kit_id,carrier\n{kits[2]},鳩\n", encoding="utf-8")
    code, _, err = cli("kits", "send", "--manifest", bad)
    assert code == 65 and "line 2, column carrier" in err
    unknown = tmp_path / "unknown.csv"
    unknown.write_text(f"kit_id,carrier\n{kits[2]},社内便\nK9999999,社内便\n", encoding="utf-8")
    code, _, err = cli("kits", "send", "--manifest", unknown)
    assert code == 66 and "line 3" in err and "nothing was recorded" in err
    code, out, _ = cli("kits", "list", "--state", "sent", "--json")
    assert len(json.loads(out)["kits"]) == 2

    code, out, _ = cli("kits", "layout", "--json")
    doc = {d["document"]: d for d in json.loads(out)["documents"]}
    assert set(doc) >= {"cover_letter", "notice_letter", "provision_form", "delegation_agreement", "refusal_form",
                        "id_copy_sheet", "envelope_label"}
    page1 = doc["provision_form"]["pages"][0]
    assert page1["size_mm"] == [210.0, 297.0] and len(page1["qr_mm"]) == 4
    assert page1["number_fields"][0]["field"] == "self" and len(page1["number_fields"][0]["boxes_mm"]) == 12


def test_tags_refuse_forged_foreign_and_other_versions(home):
    key = vault.load_key(home.keys_dir, "tag")
    good = qrtag.encode(qrtag.Tag("K0000001", "PF", 1, "ABCDEF12"), key)
    assert qrtag.decode(good, key).kit == "K0000001"
    altered = good.replace("K0000001", "K0000002")
    with pytest.raises(qrtag.TagProblem) as exc:
        qrtag.decode(altered, key)
    assert exc.value.reason == "forged"
    other = qrtag.encode(qrtag.Tag("K0000001", "PF", 1, "ABCDEF12"), b"x" * 32)
    with pytest.raises(qrtag.TagProblem) as exc:
        qrtag.decode(other, key)
    assert exc.value.reason == "other_issuer"
    with pytest.raises(qrtag.TagProblem) as exc:
        qrtag.decode("MN2/K0000001/PF/1/ABCDEF12/AAAAAAAA/AAAAAAAAAAAAAAAA", key)
    assert exc.value.reason == "version"
    with pytest.raises(qrtag.TagProblem) as exc:
        qrtag.decode("https://example.com/asn/0042", key)
    assert exc.value.reason == "foreign"
