"""Handwritten fields left for review are settled by the number on the kit's own ID copy (番号確認).

End to end: kits printed, provision forms filled by hand with held-out MNIST digits, ID copies (card back on
the kit's ID-copy sheet, a loose notification card) pasted and scanned, in either order; the unit tests pin
the agreement rule itself."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from pipeline import config, db, layout, number
from pipeline.scan.fusion import agrees_with_document
from pipeline.track.idcheck import pair
from pipeline.track.models import Event, Kit, NumberRecord, ReviewItem
from tests import idcards, scansim
from tests.test_lifecycle import print_and_send

DPI = 300
VALID = "123456789018"


def _probs(digits: str, sure: float = 0.999) -> np.ndarray:
    p = np.full((12, 10), (1 - sure) / 9)
    for i, c in enumerate(digits):
        p[i, int(c)] = sure
    return p


def test_a_field_agrees_with_the_document_it_reads_as():
    assert number.is_valid_digits(VALID)
    verdict = agrees_with_document(_probs(VALID), VALID)
    assert verdict.agrees and verdict.differing == 0


def test_an_unsure_box_may_read_otherwise_a_clear_one_may_not():
    p = _probs(VALID)
    p[3] = 0.0
    p[3, 7], p[3, int(VALID[3])] = 0.6, 0.4            # a 4 that looks a little like a 7
    verdict = agrees_with_document(p, VALID)
    assert verdict.agrees and verdict.differing == 1
    p[3, 7], p[3, int(VALID[3])] = 0.995, 0.005        # a clear 7: the person wrote 7 (a slip, or not theirs)
    assert not agrees_with_document(p, VALID).agrees
    p[3, 7], p[3, int(VALID[3])], p[3, 1] = 0.6, 0.001, 0.399   # unsure, but not between 4 and 7
    assert not agrees_with_document(p, VALID).agrees


def test_three_boxes_read_otherwise_do_not_agree():
    p = _probs(VALID)
    for i in (0, 5, 9):
        p[i] = 0.0
        p[i, (int(VALID[i]) + 1) % 10], p[i, int(VALID[i])] = 0.5, 0.5 - 1e-9
        p[i, (int(VALID[i]) + 2) % 10] = 1e-9
    verdict = agrees_with_document(p, VALID)
    assert not verdict.agrees and verdict.differing == 3


def test_another_number_never_agrees_and_an_invalid_document_number_is_an_error():
    other = scansim.random_valid_number(np.random.default_rng(1))
    assert not agrees_with_document(_probs(VALID, sure=0.6), other).agrees
    with pytest.raises(ValueError):
        agrees_with_document(_probs(VALID), VALID[:11] + str((int(VALID[11]) + 1) % 10))


def test_pairing_is_one_number_to_one_field():
    other = scansim.random_valid_number(np.random.default_rng(2))
    assert pair({"self": _probs(VALID), "dependent1": _probs(other)}, [other, VALID]) == \
        {"self": (VALID, 0), "dependent1": (other, 0)}
    # the same number written in two fields: which one is the person's is for people to decide
    assert pair({"self": _probs(VALID), "dependent1": _probs(VALID)}, [VALID]) == {}
    # a field that two numbers on the copies would both fit (valid numbers one digit apart exist, as two
    # residues share check digit 0): left to people too
    rng = np.random.default_rng(3)
    while True:
        base = scansim.random_valid_number(rng)
        twins = [(i, d) for i in range(11) for d in "0123456789"
                 if d != base[i] and number.is_valid_digits(base[:i] + d + base[i + 1:])]
        if twins:
            break
    i, d = twins[0]
    p = _probs(base)
    p[i] = 0.0
    p[i, int(base[i])], p[i, int(d)] = 0.5, 0.5
    assert pair({"self": p}, [base, base[:i] + d + base[i + 1:]]) == {}
    assert pair({"self": p}, [base])["self"][0] == base


# --------------------------------------------------------------------------------------------- end to end

def _handwritten_kits(tmp, rng, mnist, loose: bool = True):
    """E0101 writes self + dependent1 by hand and returns the ID-copy sheet (the back of his number card) and
    the dependent's notification card: a loose copy scanned after his sheet, or (loose=False) pasted on the
    sheet's second page, which the kit has for dependents' copies; E0102 writes self and pastes a card that is
    not his. Returns (form pages, ID pages, what each person meant)."""
    rows = list(csv.DictReader((tmp / "manifest.csv").open(encoding="utf-8")))
    kit_layout = layout.load()
    meant, forms, ids = {}, [], []
    for person in ("E0101", "E0102"):
        meant[(person, "self")] = scansim.random_valid_number(rng)
        if person == "E0101":
            meant[(person, "dependent1")] = scansim.random_valid_number(rng)
    for index, row in enumerate(rows):
        person, document = row["person_id"], row["document"]
        if person not in ("E0101", "E0102") or document not in ("provision_form", "id_copy_sheet"):
            continue
        page_layout = kit_layout.documents[document].page(int(row["doc_page"]))
        img = scansim.rasterise(tmp / "kits.pdf", index, DPI)
        if document == "id_copy_sheet" and row["doc_page"] == "2":   # the optional page for dependents' copies
            if not loose:
                card = idcards.make_sample("notification", seed=index, digits=meant[(person, "dependent1")])
                scansim.paste_id_copy(img, page_layout.paste_areas["dependents_number_check"], DPI, card, rng=rng)
                ids.append(scansim.degrade(img, DPI, rng, rotate=180, noise=3.0, jpeg_quality=85))
            continue
        if document == "provision_form":
            for (who, field), digits in meant.items():
                if who == person:
                    scansim.write_digits(img, page_layout, field, digits, DPI, style="handwritten", rng=rng,
                                         handwritten_source=mnist)
            scansim.tick_checkbox(img, page_layout, "consent", DPI, rng)
            scansim.sign(img, page_layout, "signature", DPI, rng)
            forms.append(scansim.degrade(img, DPI, rng, rotate=180, noise=3.0, jpeg_quality=85))
            continue
        shown = meant[(person, "self")] if person == "E0101" else scansim.random_valid_number(rng)
        card = idcards.make_sample("card_back", seed=index, digits=shown)
        scansim.paste_id_copy(img, page_layout.paste_areas["number_check"], DPI, card, rng=rng)
        ids.append(scansim.degrade(img, DPI, rng, rotate=0, noise=3.0, jpeg_quality=85))
        if person == "E0101" and loose:   # loose, right after his sheet: it belongs to the same kit
            loose = idcards.make_sample("notification", seed=index + 1, digits=meant[(person, "dependent1")])
            a4 = Image.new("L", (2480, 3508), 255)
            scansim.paste_id_copy(a4, (20, 30, 170, 110), DPI, loose, rng=rng)
            ids.append(scansim.degrade(a4, DPI, rng, rotate=90, noise=3.0, jpeg_quality=85))
    return forms, ids, meant


@pytest.fixture(scope="module")
def mnist_odd():
    test = scansim.load_mnist_test()
    if test is None:
        pytest.skip("the MNIST test digits (../shared/data/digits/mnist) are needed")
    images, labels = test
    return images[1::2], labels[1::2]


@pytest.mark.parametrize("forms_first, loose", [(True, True), (False, True), (True, False)],
                         ids=["forms-then-ids", "ids-then-forms", "dependents-page"])
def test_the_kits_id_copy_settles_its_handwritten_fields(home, cli, tmp_path, mnist_odd, forms_first, loose):
    print_and_send(cli, tmp_path)
    forms, ids, meant = _handwritten_kits(tmp_path, np.random.default_rng(11), mnist_odd, loose)
    scansim.make_scan_pdf(forms, tmp_path / "forms.pdf")
    scansim.make_scan_pdf(ids, tmp_path / "ids.pdf")
    batches = ["forms.pdf", "ids.pdf"] if forms_first else ["ids.pdf", "forms.pdf"]

    code, out, err = cli("scan", tmp_path / batches[0], "--operator", "mailroom", actor="mailroom")
    assert code == 0, err
    if forms_first:
        # the handwriting alone: under the strict rule these fields wait for double entry
        code, out, _ = cli("review", "--json")
        assert len(json.loads(out)["items"]) == 3
    code, out, err = cli("scan", tmp_path / batches[1], "--operator", "mailroom", actor="mailroom")
    assert code == 0, err
    assert "settled by the number on the kit's ID copy: 2" in out
    assert not any(n in out + err for n in meant.values())

    code, out, _ = cli("review", "--json")
    left = json.loads(out)["items"]
    assert len(left) == 1        # E0102's: the card he pasted shows another number
    with db.session_scope(home.db_url) as s:
        records = {(k.person.person_id, r.field): r for r, k in
                   s.execute(select(NumberRecord, Kit).join(Kit)).all()}
        assert {key: (r.status, r.source) for key, r in records.items()} == {
            ("E0101", "self"): ("accepted", "id_copy"), ("E0101", "dependent1"): ("accepted", "id_copy"),
            ("E0102", "self"): ("review", "reader")}
        assert s.execute(select(ReviewItem).where(ReviewItem.state == "settled")).scalars().all().__len__() == 2
        settled = s.execute(select(Event).where(Event.action == "review.settled_by_id_copy")).scalars().all()
        assert {e.details["field"] for e in settled} == {"self", "dependent1"}
        assert all(set(e.details) == {"item", "field", "boxes_read_otherwise", "id_copy"} for e in settled)
        details = [json.dumps(e.details) for e in s.execute(select(Event)).scalars()]
    assert not any(n in d for n in meant.values() for d in details)

    code, _, err = cli("numbers", "export", "--out", tmp_path / "n.csv", actor="hr")
    assert code == 0, err
    exported = {(r["person_id"], r["field"]): r["number"]
                for r in csv.DictReader((tmp_path / "n.csv").open(encoding="utf-8"))}
    assert exported == {k: v for k, v in meant.items() if k[0] == "E0101"}

    # nothing of a number in clear anywhere in the data home (the sealed ID-copy numbers and readings included)
    db.engine_for(home.db_url).dispose()
    for path in home.home.rglob("*"):
        if path.is_file():
            blob = path.read_bytes().decode("latin-1")
            assert not any(n in blob for n in meant.values()), path

    # scanning everything again changes nothing
    for batch in batches:
        assert cli("scan", tmp_path / batch, "--operator", "mailroom", actor="mailroom")[0] == 0
    code, out, _ = cli("review", "--json")
    assert len(json.loads(out)["items"]) == 1


def test_settling_with_id_copies_can_be_turned_off(home, cli, tmp_path, mnist_odd):
    cfg = home.home / "config.toml"
    cfg.write_text(cfg.read_text().replace("settle_with_id_copy = true", "settle_with_id_copy = false"))
    print_and_send(cli, tmp_path)
    forms, ids, _ = _handwritten_kits(tmp_path, np.random.default_rng(11), mnist_odd)
    scansim.make_scan_pdf(forms + ids, tmp_path / "all.pdf")
    code, out, err = cli("scan", tmp_path / "all.pdf", "--operator", "mailroom", actor="mailroom")
    assert code == 0, err
    assert "settled by the number" not in out
    code, out, _ = cli("review", "--json")
    assert len(json.loads(out)["items"]) == 3
