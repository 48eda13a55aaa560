"""Disposal end to end (print -> send -> scan -> check -> store -> leave -> due -> dispose -> certificate: the
numbers are gone and the log shows who did what), reconciliation with a box's contents list, and refusals."""
from __future__ import annotations

import csv
import datetime as dt
import json
import re

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from pipeline import db, layout
from pipeline.errors import ConfigError
from pipeline.kit.compose import fields_in_use
from pipeline.track import audit
from pipeline.track.models import (DataKey, DisposalBatch, Document, Event, Kit, NumberRecord, ReviewItem, ScannedPage,
                                   StoredFile)
from pipeline.track.sealed import Sealer
from tests import idcards, scansim
from tests.test_lifecycle import TODAY, docs, events, in_years, pdf_text, print_and_send, receive

DPI = 300


def _spellings(number: str) -> list[str]:
    return [number, f"{number[:4]} {number[4:8]} {number[8:]}", f"{number[:4]}-{number[4:8]}-{number[8:]}"]


def _fill_and_scan_pdf(tmp, rng) -> tuple[dict[tuple[str, str], str], list[str]]:
    """E0101 returns the provision form (self + one dependent), the delegation agreement, the envelope label and
    a loose copy of the back of the number card; E0102 only the provision form. Printed digits, mild scanner
    degradation. Returns what was written and the numbers printed on the ID card."""
    rows = list(csv.DictReader((tmp / "manifest.csv").open(encoding="utf-8")))
    kit_layout = layout.load()
    truth: dict[tuple[str, str], str] = {}
    pages, card_numbers = [], []
    wanted = {"E0101": ("provision_form", "delegation_agreement", "envelope_label"), "E0102": ("provision_form",)}
    for index, row in enumerate(rows):
        person, document, doc_page = row["person_id"], row["document"], int(row["doc_page"])
        if document not in wanted.get(person, ()):
            continue
        page_layout = kit_layout.documents[document].page(doc_page)
        img = scansim.rasterise(tmp / "kits.pdf", index, DPI)
        dependents = 1 if person == "E0101" else 0
        for field in fields_in_use(document, doc_page, dependents):
            number = scansim.random_valid_number(rng)
            truth[(person, field)] = number
            scansim.write_digits(img, page_layout, field, number, DPI, style="printed", rng=rng)
        if "consent" in page_layout.checkboxes:
            scansim.tick_checkbox(img, page_layout, "consent", DPI, rng)
        for name in page_layout.signatures:
            scansim.sign(img, page_layout, name, DPI, rng)
        pages.append(scansim.degrade(img, DPI, rng, rotate=int(rng.choice([0, 180])), noise=3.0, jpeg_quality=85))
        if person == "E0101" and document == "provision_form":
            card = idcards.make_sample("card_back", seed=5, rotation=0)
            card_numbers += [n.digits for n in card.numbers]
            a4 = Image.new("L", (2480, 3508), 255)
            a4.paste(card.image.convert("L"), (300, 400))
            pages.append(scansim.degrade(a4, DPI, rng, rotate=0, noise=3.0, jpeg_quality=85))
    scansim.make_scan_pdf(pages, tmp / "returned.pdf")
    return truth, card_numbers


def test_disposal_end_to_end_erases_numbers_and_scans_and_certifies_by_document_id(home, cli, tmp_path):
    kits = print_and_send(cli, tmp_path)
    truth, card_numbers = _fill_and_scan_pdf(tmp_path, np.random.default_rng(7))
    code, out, err = cli("scan", tmp_path / "returned.pdf", "--site", "本社", "--operator", "mailroom", "--json",
                         actor="mailroom")
    assert code == 0, err
    statuses = [json.loads(line).get("status") for line in out.splitlines()[:-1]]
    assert statuses.count("id_copy") == 1 and statuses.count("kit_page") == 4
    with db.session_scope(home.db_url) as s:
        accepted = {(k.person.person_id, r.field) for r, k in s.execute(
            select(NumberRecord, Kit).join(Kit).where(NumberRecord.status == "accepted")).all()}
    assert accepted == set(truth), "every printed number must be read and accepted for this test to mean much"
    # who is who in the database
    e0101 = docs(home, kit=kits["E0101"])
    assert set(e0101) == {"provision_form", "delegation_agreement", "envelope_label", "id_copy"}
    e0102 = docs(home, kit=kits["E0102"])

    # check, store (E0101's paper goes to an outside box, E0102's stays in the cabinet), leave
    for kit in (kits["E0101"], kits["E0102"]):
        assert cli("documents", "check", kit, actor="mailroom")[0] == 0
    assert cli("store", "locations", "add", "BOX-42", "--kind", "box", "--site", "本社", "--provider",
               "東京文書保管株式会社", actor="mailroom")[0] == 0
    assert cli("store", "locations", "add", "CAB-1", "--kind", "cabinet", "--site", "本社", actor="mailroom")[0] == 0
    assert cli("store", kits["E0101"], "--location", "BOX-42", actor="mailroom")[0] == 0
    assert cli("store", kits["E0102"], "--location", "CAB-1", actor="mailroom")[0] == 0
    assert cli("store", "contents", "BOX-42", "--out", tmp_path / "box42.pdf", actor="mailroom")[0] == 0
    assert all(d.code in pdf_text(tmp_path / "box42.pdf") for d in e0101.values())
    left = TODAY - dt.timedelta(days=3)
    assert cli("people", "leave", "E0101", "--date", left.isoformat(), actor="hr")[0] == 0

    # due: today only the ID copy (disposed of once checked); seven years on, all of E0101's paper
    code, out, _ = cli("disposal", "due", "--format", "json", actor="auditor")
    assert [r["document"] for r in json.loads(out)["due"]] == [e0101["id_copy"].code]
    seven_years = in_years(left, 7)
    code, out, _ = cli("disposal", "due", "--before", seven_years.isoformat(), "--format", "csv", actor="manager")
    due = [r["document"] for r in csv.DictReader(out.splitlines())]
    assert due == sorted(d.code for d in e0101.values())
    assert {d.state for d in docs(home, kit=kits["E0101"]).values()} == {"stored"}     # listing changed nothing
    code, out, _ = cli("disposal", "due", "--before", (seven_years - dt.timedelta(days=1)).isoformat(),
                       "--format", "json", actor="manager")
    assert e0101["provision_form"].code not in {r["document"] for r in json.loads(out)["due"]}

    with db.session_scope(home.db_url) as s:
        pages = {d.code: s.get(ScannedPage, d.scanned_page_id) for d in list(e0101.values()) + list(e0102.values())}
        files = {code: home.store_dir / s.get(StoredFile, p.stored_file_id).relpath for code, p in pages.items()}
    assert all(path.exists() for path in files.values())

    cert = tmp_path / "certificate.pdf"
    code, out, err = cli("disposal", "run", "--method", "dissolving", "--executor", "佐藤 一郎",
                         "--manager", "manager", "--contractor", "東京溶解センター", "--certificate-number",
                         "YK-2033-0042", "--box", "BOX-42", "--before", seven_years.isoformat(), "--out", cert,
                         actor="manager")
    assert code == 0, err
    assert "4 documents disposed of (dissolving)" in out
    assert "erased 2 numbers" in out and "0 differences with the box contents lists" in out
    assert "note: 3 documents were disposed of before their planned date" in out

    # the certificate names documents by id, never by number
    text = pdf_text(cert)
    assert "廃棄証明書" in text and "YK-2033-0042" in text and "東京溶解センター" in text and "佐藤 一郎" in text
    assert "溶解" in text and kits["E0101"] in text and "差異なし" in text and "責任者" in text
    assert "廃棄予定日前の廃棄 3 件" in text
    assert all(d.code in text for d in e0101.values())
    assert not any(d.code in text for d in e0102.values())
    for number in list(truth.values()) + card_numbers:
        for spelled in _spellings(number):
            assert spelled not in text and spelled not in out and spelled not in err

    # the numbers are gone: export, decrypt, keys, files
    code, _, err = cli("numbers", "export", "--out", tmp_path / "numbers.csv", actor="hr")
    assert code == 0, err
    exported = {(r["person_id"], r["field"]): r["number"]
                for r in csv.DictReader((tmp_path / "numbers.csv").open(encoding="utf-8"))}
    assert exported == {("E0102", "self"): truth[("E0102", "self")]}
    sealer = Sealer(home)
    with db.session_scope(home.db_url) as s:
        for record, kit in s.execute(select(NumberRecord, Kit).join(Kit).where(Kit.code == kits["E0101"])).all():
            assert record.status == "accepted"                      # the history stays: it had been accepted
            assert record.ciphertext is None and record.number_hash is None
            assert s.get(DataKey, record.data_key_id).wrapped is None
            assert s.get(DataKey, record.data_key_id).destroyed_by == "manager"
            with pytest.raises(ConfigError):
                sealer.open_number(s, record)
        for code_, page in pages.items():
            stored = s.get(StoredFile, page.stored_file_id)
            gone = code_ in {d.code for d in e0101.values()}
            assert (s.get(DataKey, stored.data_key_id).wrapped is None) == gone
        batch = s.execute(select(DisposalBatch)).scalar_one()
        assert (batch.method, batch.executor, batch.manager, batch.contractor, batch.certificate_number) == \
            ("dissolving", "佐藤 一郎", "manager", "東京溶解センター", "YK-2033-0042")
        assert batch.certificate_file == str(cert.resolve())
        assert batch.reconciliation["differences"] == 0
        for d in s.execute(select(Document).join(Kit).where(Kit.code == kits["E0101"])).scalars():
            assert d.state == "disposed" and d.disposal_batch_id == batch.id and d.location_id is not None
        assert audit.verify(s).ok
    for code_, path in files.items():
        assert path.exists() == (code_ in {d.code for d in e0102.values()})
    assert docs(home, kit=kits["E0102"])["provision_form"].state == "stored"

    # nothing of a number anywhere in the data home, in clear
    db.engine_for(home.db_url).dispose()
    for path in home.home.rglob("*"):
        if path.is_file():
            blob = path.read_bytes().decode("latin-1")
            assert not any(n in blob for n in truth.values())

    # the log: who did what
    by_action = {}
    for event in events(home, "document.checked") + events(home, "document.stored") + \
            events(home, "person.left") + events(home, "disposal.run") + events(home, "document.disposed") + \
            events(home, "number.erased") + events(home, "file.erased") + events(home, "disposal.certificate_written"):
        by_action.setdefault(event.action, set()).add(event.actor)
    assert by_action == {"document.checked": {"mailroom"}, "document.stored": {"mailroom"}, "person.left": {"hr"},
                         "disposal.run": {"manager"}, "document.disposed": {"manager"},
                         "number.erased": {"manager"}, "file.erased": {"manager"},
                         "disposal.certificate_written": {"manager"}}
    run_event = events(home, "disposal.run")[0]
    assert run_event.details == {"method": "dissolving", "executor": "佐藤 一郎", "manager": "manager",
                                 "contractor": "東京溶解センター", "certificate_number": "YK-2033-0042",
                                 "due_by": seven_years.isoformat(), "documents": 4, "numbers_erased": 2,
                                 "files_erased": 5, "boxes": ["BOX-42"], "differences": 0,
                                 "ahead_of_plan": 3}    # all but the ID copy were due later than today
    # five files: four page scans and the numbers read on the ID copy (sealed for the ID-copy check)
    assert sorted(e.details["kind"] for e in events(home, "file.erased")) == \
        ["id_copy_redacted", "id_numbers", "page", "page", "page"]
    erased = {e.details["field"] for e in events(home, "number.erased")}
    assert erased == {"self", "dependent1"}
    assert {e.object_id for e in events(home, "document.disposed")} == {d.code for d in e0101.values()}

    # the same batch cannot be run twice: what was disposed of is no longer due
    code, _, err = cli("disposal", "run", "--method", "shredding", "--executor", "佐藤", "--manager", "manager",
                       "--documents", e0101["provision_form"].code, "--before", seven_years.isoformat(),
                       "--out", tmp_path / "again.pdf", actor="manager")
    assert code == 70 and "is disposed; it cannot become disposed" in err
    # the certificate can be printed again from the record, identical
    code, _, err = cli("disposal", "certificate", batch.code, "--out", tmp_path / "reprint.pdf", actor="auditor")
    assert code == 0, err
    assert (tmp_path / "reprint.pdf").read_bytes() == cert.read_bytes()


@pytest.fixture
def stored_office(home, cli, tmp_path):
    """Two people's returned paper, checked; E0101's in box BOX-9 plus one of E0102's documents, E0101 left
    eight years ago (so E0101's paper is due), E0102 stays."""
    kits = print_and_send(cli, tmp_path)
    rng = np.random.default_rng(3)
    receive(home, kits["E0101"], [("provision_form", 1, {"self": scansim.random_valid_number(rng),
                                                         "dependent1": scansim.random_valid_number(rng)},
                                   {"consent": True, "signed": True}),
                                  ("delegation_agreement", 1, {}, {"signed": True})])
    receive(home, kits["E0102"], [("provision_form", 1, {"self": scansim.random_valid_number(rng)},
                                   {"consent": True, "signed": True}), ("id_copy", None, {}, {"pasted": True})])
    for kit in kits.values():
        if kit != kits["P0101"]:
            assert cli("documents", "check", kit, actor="mailroom")[0] == 0
    cli("store", "locations", "add", "BOX-9", "--kind", "box", "--provider", "東京文書保管株式会社", actor="mailroom")
    cli("store", "locations", "add", "CAB-1", "--kind", "cabinet", actor="mailroom")
    assert cli("store", kits["E0101"], "--location", "BOX-9", actor="mailroom")[0] == 0
    assert cli("people", "leave", "E0101", "--date", in_years(TODAY, -8).isoformat(), actor="hr")[0] == 0
    return kits


def test_reconciliation_names_a_listed_document_not_disposed_and_a_disposed_one_not_listed(stored_office, home,
                                                                                            cli, tmp_path):
    kits = stored_office
    e0102 = docs(home, kit=kits["E0102"])
    # the box's list also holds E0102's provision form (not due: E0102 has not left)
    assert cli("store", e0102["provision_form"].code, "--location", "BOX-9", actor="mailroom")[0] == 0
    assert cli("store", e0102["id_copy"].code, "--location", "CAB-1", actor="mailroom")[0] == 0
    code, out, _ = cli("store", "contents", "BOX-9", "--format", "json", actor="mailroom")
    listed = [r["document"] for r in json.loads(out)["documents"]]
    assert len(listed) == 3 and e0102["provision_form"].code in listed

    # the preview names the difference before anything happens
    code, out, _ = cli("disposal", "due", "--box", "BOX-9", actor="manager")
    assert code == 0 and f"difference: {e0102['provision_form'].code} is in the contents list of box BOX-9" in out
    assert "waits for person E0102 to leave" in out

    cert = tmp_path / "box9.pdf"
    code, out, err = cli("disposal", "run", "--method", "dissolving", "--executor", "東京文書保管株式会社 田中",
                         "--manager", "manager", "--contractor", "東京文書保管株式会社", "--certificate-number", "B9-1",
                         "--box", "BOX-9", "--documents", e0102["id_copy"].code, "--out", cert, actor="manager")
    assert code == 0, err
    assert f"difference: {e0102['provision_form'].code} is in the contents list of box BOX-9 but is not disposed " \
           "of: its rule (provision_form: 7y after leave) waits for person E0102 to leave" in out
    assert f"difference: {e0102['id_copy'].code} is disposed of but not in the contents list of box BOX-9 " \
           "(location CAB-1)" in out
    assert "2 differences with the box contents lists" in out
    with db.session_scope(home.db_url) as s:
        recon = s.execute(select(DisposalBatch)).scalar_one().reconciliation
    assert recon["boxes"] == [{"box": "BOX-9", "provider": "東京文書保管株式会社", "listed": 3, "disposed": 2}]
    assert [i["document"] for i in recon["listed_not_disposed"]] == [e0102["provision_form"].code]
    assert recon["disposed_not_listed"] == [{"document": e0102["id_copy"].code, "location": "CAB-1",
                                             "state": "stored"}]
    text = pdf_text(cert)
    assert "保管箱内容一覧との照合" in text and "差異" in text
    assert re.search(rf"{e0102['provision_form'].code}\s+BOX-9 の一覧に記載があるが廃棄していない", text)
    assert re.search(rf"{e0102['id_copy'].code}\s+廃棄したが保管箱の一覧に記載がない", text)
    # the listed document that was not due is still stored, with its numbers
    assert docs(home, kit=kits["E0102"])["provision_form"].state == "stored"
    with db.session_scope(home.db_url) as s:
        assert s.execute(select(NumberRecord).join(Kit).where(Kit.code == kits["E0102"])).scalar_one().ciphertext
        assert [e.object_id for e in s.execute(select(Event).where(Event.action == "location.reconciled")).scalars()] \
            == ["BOX-9"]


def test_disposal_refusals_change_nothing(stored_office, home, cli, tmp_path):
    kits = stored_office
    e0101, e0102 = docs(home, kit=kits["E0101"]), docs(home, kit=kits["E0102"])
    out = tmp_path / "c.pdf"
    base = ("disposal", "run", "--method", "shredding", "--executor", "佐藤", "--manager", "manager", "--out", out)
    cases = [
        (("--documents", e0102["provision_form"].code), 70, "waits for person E0102 to leave"),
        (("--documents", e0101["provision_form"].code, "--before", in_years(TODAY, -2).isoformat()), 70,
         "is not due until"),
        (("--documents", "D7777777"), 66, "D7777777 does not exist"),
        (("--box", "NOBOX"), 66, "NOBOX does not exist"),
        (("--box", "CAB-1"), 2, "CAB-1 is a cabinet"),
        (("--documents", kits["P0101"]), 70, "nothing of it was ever received"),
        (("--before", in_years(TODAY, -20).isoformat()), 70, "nothing is due for disposal"),
    ]
    for extra, exit_code, message in cases:
        code, _, err = cli(*base, *extra, actor="manager")
        assert (code, message in err) == (exit_code, True), (extra, err)
    code, _, err = cli("disposal", "run", "--method", "dissolving", "--executor", "佐藤", "--manager", "manager",
                       "--out", out, actor="manager")
    assert code == 2 and "--contractor" in err
    code, _, err = cli(*base, "--certificate-number", "X-1", actor="manager")
    assert code == 2 and "name the contractor" in err
    out.write_bytes(b"an older certificate")
    code, _, err = cli(*base, actor="manager")
    assert code == 2 and "never overwritten" in err
    out.unlink()
    with db.session_scope(home.db_url) as s:
        assert s.execute(select(DisposalBatch)).first() is None
        assert s.execute(select(Event).where(Event.action.like("disposal.%"))).first() is None
        assert {d.state for d in s.execute(select(Document)).scalars()} == {"stored", "checked"}

    # a document disposed of cannot be stored, checked or disposed of again
    assert cli(*base, "--documents", e0102["id_copy"].code, actor="manager")[0] == 0
    for argv, message in ((("store", e0102["id_copy"].code, "--location", "CAB-1"), "cannot become stored"),
                          (("documents", "check", e0102["id_copy"].code), "was already checked"),
                          (("documents", "lost", e0102["id_copy"].code, "--note", "x"), "cannot become lost")):
        code, _, err = cli(*argv, actor="mailroom")
        assert code == 70 and message in err, (argv, err)


def test_mark_sets_due_documents_aside_and_due_only_lists(stored_office, home, cli, tmp_path):
    kits = stored_office
    code, out, _ = cli("disposal", "due", "--json", actor="auditor")
    due = {r["document"] for r in json.loads(out)["due"]}
    e0101, e0102 = docs(home, kit=kits["E0101"]), docs(home, kit=kits["E0102"])
    assert due == {e0101["provision_form"].code, e0101["delegation_agreement"].code, e0102["id_copy"].code}
    assert {d.state for d in docs(home, kit=kits["E0101"]).values()} == {"stored"}
    code, out, err = cli("disposal", "mark", "--box", "BOX-9", actor="manager")
    assert code == 0 and "2 documents set aside for disposal" in out, err
    assert {d.state for d in docs(home, kit=kits["E0101"]).values()} == {"disposal_due"}
    assert len(events(home, "document.disposal_due")) == 2
    code, out, _ = cli("disposal", "mark", "--box", "BOX-9", actor="manager")
    assert "0 documents set aside" in out
    # still in the box's list, still due; a postponed one goes back into storage
    code, out, _ = cli("store", "contents", "BOX-9", "--json", actor="mailroom")
    assert {r["state"] for r in json.loads(out)["documents"]} == {"disposal_due"}
    code, _, err = cli("store", e0101["delegation_agreement"].code, "--location", "BOX-9", actor="mailroom")
    assert code == 70 and "already stored in BOX-9" in err
    code, out, err = cli("store", e0101["delegation_agreement"].code, "--location", "CAB-1", actor="mailroom")
    assert code == 0, err
    assert docs(home, kit=kits["E0101"])["delegation_agreement"].state == "stored"
    # a disposal of marked documents
    code, out, err = cli("disposal", "run", "--method", "shredding", "--executor", "佐藤", "--manager", "manager",
                         "--documents", kits["E0101"], "--out", tmp_path / "c.pdf", actor="manager")
    assert code == 0 and "2 documents disposed of" in out, err
    froms = {e.object_id: e.details["from_state"] for e in events(home, "document.disposed")}
    assert froms == {e0101["provision_form"].code: "disposal_due", e0101["delegation_agreement"].code: "stored"}


def test_roles_decide_who_disposes(stored_office, cli, tmp_path):
    code, _, err = cli("disposal", "run", "--method", "shredding", "--executor", "佐藤", "--manager", "manager",
                       "--out", tmp_path / "c.pdf", actor="mailroom")
    assert code == 77
    assert not (tmp_path / "c.pdf").exists()


def test_crops_of_unsure_fields_are_erased_with_their_page_and_open_reviews_closed(home, cli, tmp_path):
    kits = print_and_send(cli, tmp_path)
    rng = np.random.default_rng(11)
    receive(home, kits["E0101"], [("provision_form", 1, {"self": scansim.random_valid_number(rng),
                                                         "dependent1": ("review", b"crop of dependent1")},
                                   {"consent": True, "signed": True})])
    receive(home, kits["E0102"], [("provision_form", 1, {"self": ("miswritten", b"crop of self")},
                                   {"consent": True, "signed": True})])
    with db.session_scope(home.db_url) as s:
        crops = {f.relpath: f for f in s.execute(select(StoredFile).where(StoredFile.kind == "field_crop")).scalars()}
        assert len(crops) == 2 and all((home.store_dir / r).exists() for r in crops)
        assert s.execute(select(ReviewItem.state)).scalars().all() == ["open"]
    for person in ("E0101", "E0102"):
        assert cli("people", "leave", person, "--date", in_years(TODAY, -8).isoformat(), actor="hr")[0] == 0
    code, out, err = cli("disposal", "run", "--method", "shredding", "--executor", "佐藤", "--manager", "manager",
                         "--out", tmp_path / "c.pdf", actor="manager")
    assert code == 0, err
    assert "2 documents disposed of" in out and "erased 1 numbers and 4 files" in out
    with db.session_scope(home.db_url) as s:
        for relpath, stored in crops.items():
            assert not (home.store_dir / relpath).exists()
            assert s.get(DataKey, stored.data_key_id).wrapped is None
        assert s.execute(select(ReviewItem.state)).scalars().all() == ["closed"]
        statuses = {r.field if r.kit_id == s.execute(select(Kit.id).where(Kit.code == kits["E0101"])).scalar_one()
                    else "E0102 " + r.field: r.status for r in s.execute(select(NumberRecord)).scalars()}
    assert statuses == {"self": "accepted", "dependent1": "review", "E0102 self": "miswritten"}
    closed = events(home, "review.closed")
    assert len(closed) == 1 and closed[0].details["field"] == "dependent1" and closed[0].actor == "manager"
    assert sorted((e.object_id, e.details["field"], e.details["had_number"]) for e in events(home, "number.erased")) \
        == sorted([(kits["E0101"], "self", True), (kits["E0101"], "dependent1", False),
                   (kits["E0102"], "self", False)])
