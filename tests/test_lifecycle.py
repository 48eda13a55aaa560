"""Document lifecycle: check, storage, retention planning, people leaving — each transition and each refusal.

Documents come into being the way the scan intake records them (pipeline/track/receiving.record_page, the step
after the scan stages have read a page); tests/test_disposal.py runs the same path from real scanned images.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pypdfium2
import pytest
from sqlalchemy import select

from pipeline import config, db
from pipeline.errors import ConfigError
from pipeline.track import audit, retention
from pipeline.track.models import Document, Event, Kit, Person
from pipeline.track.receiving import FieldOutcome, PageFacts, record_page
from pipeline.track.sealed import Sealer
from tests import scansim

ROSTER = ("person_id,name,name_kana,postal_code,address,site,kind,dependents\n"
          "E0101,山田 太郎,ヤマダ タロウ,100-0001,東京都千代田区千代田1-1,本社,employee,山田 花子\n"
          "E0102,佐藤 次郎,サトウ ジロウ,100-0001,東京都千代田区千代田1-2,本社,employee,\n"
          "P0101,鈴木 講師,スズキ コウシ,060-0001,北海道札幌市中央区北1条西2丁目,本社,payee,\n")
TODAY = dt.date.today()


@dataclass
class Office:
    settings: config.Settings
    kit: dict[str, str]            # person_id -> kit code
    numbers: dict[tuple[str, str], str]
    tmp: Path


def print_and_send(cli, tmp: Path, roster_text: str = ROSTER) -> dict[str, str]:
    roster = tmp / "roster.csv"
    roster.write_text(roster_text, encoding="utf-8")
    code, _, err = cli("kits", "print", roster, "--out", tmp / "kits.pdf", "--manifest", tmp / "manifest.csv",
                       actor="hr")
    assert code == 0, err
    rows = list(csv.DictReader((tmp / "manifest.csv").open(encoding="utf-8")))
    kits = {r["person_id"]: r["kit_id"] for r in rows}
    sent = tmp / "sent.csv"
    sent.write_text("kit_id,carrier,tracking_number\n"
                    + "".join(f"{k},簡易書留,TR{i:04d}\n" for i, k in enumerate(sorted(set(kits.values())))),
                    encoding="utf-8")
    code, _, err = cli("kits", "send", "--manifest", sent, actor="mailroom")
    assert code == 0, err
    return kits


def receive(settings: config.Settings, kit: str, pages: list[tuple], *, source: str = "returned.pdf") -> None:
    """Record returned pages as the scan intake does once their tags and fields are read:
    (document, page, {field: digits, or (decision, crop PNG bytes) for a field the reader was unsure of}, checks)."""
    sealer = Sealer(settings)
    sha = hashlib.sha256(f"{kit}/{source}".encode()).hexdigest()
    with db.session_scope(settings.db_url) as session:
        for index, (document, page, fields, checks) in enumerate(pages):
            outcomes = [FieldOutcome(name, "accept", 0.999, value) if isinstance(value, str)
                        else FieldOutcome(name, value[0], 0.4, None, value[1], "test: unsure")
                        for name, value in fields.items()]
            status = "id_copy" if document == "id_copy" else "kit_page"
            facts = PageFacts(sha, source, index, status, kit, None if status == "id_copy" else document,
                              None if status == "id_copy" else page, checks=checks, fields=outcomes,
                              image_bytes=f"page image {index}".encode(), image_kind="page")
            record_page(session, sealer, facts, actor="mailroom", site="本社")


@pytest.fixture
def office(home, cli, tmp_path) -> Office:
    kits = print_and_send(cli, tmp_path)
    rng = np.random.default_rng(61)
    numbers = {("E0101", f): scansim.random_valid_number(rng) for f in ("self", "dependent1")}
    numbers[("E0102", "self")] = scansim.random_valid_number(rng)
    signed = {"consent": True, "signed": True}
    receive(home, kits["E0101"], [
        ("provision_form", 1, {"self": numbers[("E0101", "self")], "dependent1": numbers[("E0101", "dependent1")]},
         signed),
        ("id_copy", None, {}, {"pasted": True}),
        ("delegation_agreement", 1, {}, {"signed": True}),
        ("envelope_label", 1, {}, {}),
    ])
    receive(home, kits["E0102"], [("provision_form", 1, {"self": numbers[("E0102", "self")]}, signed)])
    return Office(home, kits, numbers, tmp_path)


def docs(settings, **where) -> dict[str, Document]:
    """document type (+ page) of a kit -> Document, e.g. docs(s, kit="K0000001")["provision_form"]."""
    with db.session_scope(settings.db_url) as s:
        q = select(Document, Kit).join(Kit, Document.kit_id == Kit.id).order_by(Document.code)
        if "kit" in where:
            q = q.where(Kit.code == where["kit"])
        return {d.document: d for d, _ in s.execute(q).all()}


def events(settings, action: str, object_id: str | None = None) -> list[Event]:
    with db.session_scope(settings.db_url) as s:
        q = select(Event).where(Event.action == action).order_by(Event.seq)
        if object_id:
            q = q.where(Event.object_id == object_id)
        return list(s.execute(q).scalars())


def in_years(day: dt.date, years: int) -> dt.date:
    return retention.add_period(day, years, "y")


# --- retention rules -------------------------------------------------------------------------------------

def test_rules_parse_and_periods_count_calendar_days():
    rules = retention.parse_rules({"provision_form": "7y after leave", "id_copy": "0d after checked",
                                   "envelope_label": "18M after received", "default": "7y after received"})
    assert rules.for_document("provision_form").label == "provision_form: 7y after leave"
    assert rules.for_document("refusal_form").label == "default: 7y after received"
    assert rules.for_document("envelope_label").text == "18m after received"
    assert retention.add_period(dt.date(2024, 2, 29), 7, "y") == dt.date(2031, 2, 28)
    assert retention.add_period(dt.date(2026, 1, 31), 1, "m") == dt.date(2026, 2, 28)
    assert retention.add_period(dt.date(2026, 12, 31), 0, "d") == dt.date(2026, 12, 31)


@pytest.mark.parametrize("section, named", [
    ({"provison_form": "7y after leave", "default": "7y after received"}, "[retention] provison_form"),
    ({"provision_form": "7 years after leave", "default": "7y after received"}, "[retention] provision_form"),
    ({"provision_form": "7y after hired", "default": "7y after received"}, "'hired'"),
    ({"id_copy": 0, "default": "7y after received"}, "[retention] id_copy"),
    ({"provision_form": "7y after leave"}, "`default`"),
])
def test_bad_rules_are_refused_naming_the_key(section, named):
    with pytest.raises(ConfigError) as caught:
        retention.parse_rules(section)
    assert named in caught.value.message


def test_a_bad_rule_in_config_toml_stops_the_command_with_the_key(office, cli):
    path = office.settings.config_path
    path.write_text(path.read_text(encoding="utf-8").replace('id_copy = "0d after checked"',
                                                             'id_copy = "soon"'), encoding="utf-8")
    code, out, err = cli("documents", "check", office.kit["E0101"], actor="mailroom")
    assert code == 78 and "[retention] id_copy" in err and "soon" in err
    assert all(d.state == "received" for d in docs(office.settings, kit=office.kit["E0101"]).values())


# --- planning at receipt, check, leave -------------------------------------------------------------------

def test_receipt_records_the_rule_and_fixes_only_dates_whose_event_happened(office):
    d = docs(office.settings, kit=office.kit["E0101"])
    assert d["provision_form"].retention_rule == "provision_form: 7y after leave"
    assert d["provision_form"].disposal_due_on is None          # the person has not left
    assert d["id_copy"].retention_rule == "id_copy: 0d after checked" and d["id_copy"].disposal_due_on is None
    received = retention.local_date(d["envelope_label"].received_at)
    assert d["envelope_label"].disposal_due_on == in_years(received, 1)
    planned = {e.object_id: e.details for e in events(office.settings, "document.disposal_planned")}
    assert planned[d["envelope_label"].code] == {"kit": office.kit["E0101"], "rule": "envelope_label: 1y after received",
                                                "reason": "received", "old": None,
                                                "new": d["envelope_label"].disposal_due_on.isoformat()}
    assert planned[d["provision_form"].code]["waiting_for"] == "leave"


def test_check_fixes_id_copy_disposal_and_refuses_a_second_check(office, cli):
    kit = office.kit["E0101"]
    code, out, err = cli("documents", "check", kit, "--note", "ID copy, form, agreement, label", actor="mailroom")
    assert code == 0, err
    assert "4 documents checked" in out
    d = docs(office.settings, kit=kit)
    assert {x.state for x in d.values()} == {"checked"}
    checked_on = retention.local_date(d["id_copy"].checked_at)
    assert d["id_copy"].disposal_due_on == checked_on           # "0d after checked"
    moved = events(office.settings, "document.disposal_planned", d["id_copy"].code)
    assert [(e.details["old"], e.details["new"], e.details["reason"]) for e in moved][-1] == \
        (None, checked_on.isoformat(), "checked")
    assert events(office.settings, "document.checked", d["id_copy"].code)[0].actor == "mailroom"

    code, _, err = cli("documents", "check", kit, actor="mailroom")
    assert code == 70 and f"kit {kit}: no document is waiting for the check" in err
    code, _, err = cli("documents", "check", d["provision_form"].code, actor="mailroom")
    assert code == 70 and "was already checked" in err and d["provision_form"].code in err
    code, _, err = cli("documents", "check", "D9999999", actor="mailroom")
    assert code == 66 and "D9999999 does not exist" in err


def test_a_kit_never_received_has_nothing_to_check_store_or_dispose(office, cli):
    never = office.kit["P0101"]
    code, _, err = cli("documents", "check", never, actor="mailroom")
    assert code == 70 and f"kit {never} is sent: nothing of it was ever received" in err
    cli("store", "locations", "add", "CAB-1", "--kind", "cabinet", actor="mailroom")
    code, _, err = cli("store", never, "--location", "CAB-1", actor="mailroom")
    assert code == 70 and "nothing of it was ever received" in err
    code, _, err = cli("disposal", "run", "--method", "shredding", "--executor", "佐藤", "--manager", "manager",
                       "--documents", never, "--out", office.tmp / "c.pdf", actor="manager")
    assert code == 70 and "nothing of it was ever received" in err and not (office.tmp / "c.pdf").exists()


def test_leaving_moves_the_planned_disposal_and_is_corrected_only_on_purpose(office, cli):
    kit = office.kit["E0101"]
    left = TODAY - dt.timedelta(days=20)
    code, out, err = cli("people", "leave", "E0101", "--date", left.isoformat(), actor="hr")
    assert code == 0, err
    d = docs(office.settings, kit=kit)
    assert d["provision_form"].disposal_due_on == in_years(left, 7)
    assert d["delegation_agreement"].disposal_due_on == in_years(left, 7)
    assert d["id_copy"].disposal_due_on is None                 # still waits for its check
    assert f"{d['provision_form'].code} provision_form: planned disposal not fixed -> {in_years(left, 7)}" in out
    with db.session_scope(office.settings.db_url) as s:
        assert s.execute(select(Person.left_on).where(Person.person_id == "E0101")).scalar_one() == left
    left_event = events(office.settings, "person.left", "E0101")
    assert left_event[0].actor == "hr" and left_event[0].details == {"left_on": left.isoformat(), "previous": None}

    # the same fact again changes nothing; another date needs --correct
    before = len(events(office.settings, "document.disposal_planned"))
    code, out, _ = cli("people", "leave", "E0101", "--date", left.isoformat(), actor="hr")
    assert code == 0 and "nothing changed" in out
    assert len(events(office.settings, "document.disposal_planned")) == before
    later = left + dt.timedelta(days=10)
    code, _, err = cli("people", "leave", "E0101", "--date", later.isoformat(), actor="hr")
    assert code == 70 and f"already left on {left.isoformat()}" in err and "--correct" in err
    code, out, err = cli("people", "leave", "E0101", "--date", later.isoformat(), "--correct", actor="hr")
    assert code == 0, err
    moved = events(office.settings, "document.disposal_planned", d["provision_form"].code)[-1]
    assert (moved.details["old"], moved.details["new"]) == (in_years(left, 7).isoformat(),
                                                            in_years(later, 7).isoformat())
    assert events(office.settings, "person.left_corrected", "E0101")[0].details["previous"] == left.isoformat()
    # another person's documents are untouched
    assert docs(office.settings, kit=office.kit["E0102"])["provision_form"].disposal_due_on is None

    code, _, err = cli("people", "leave", "X404", "--date", "2026-01-01", actor="hr")
    assert code == 66 and "X404" in err
    with pytest.raises(SystemExit):
        cli("people", "leave", "E0102", "--date", "31/03/2026", actor="hr")


def test_documents_received_after_the_person_left_are_planned_from_the_leaving_date(home, cli, tmp_path):
    kits = print_and_send(cli, tmp_path)
    left = TODAY - dt.timedelta(days=400)
    assert cli("people", "leave", "E0102", "--date", left.isoformat(), actor="hr")[0] == 0
    receive(home, kits["E0102"], [("provision_form", 1, {}, {"consent": True, "signed": True})])
    assert docs(home, kit=kits["E0102"])["provision_form"].disposal_due_on == in_years(left, 7)


def test_a_rule_counted_from_storage_is_fixed_when_first_stored(office, cli):
    path = office.settings.config_path
    path.write_text(path.read_text(encoding="utf-8").replace('envelope_label = "1y after received"',
                                                             'envelope_label = "30d after stored"'),
                    encoding="utf-8")
    kit = office.kit["E0102"]
    receive(office.settings, kit, [("envelope_label", 1, {}, {})], source="later.pdf")
    label = docs(office.settings, kit=kit)["envelope_label"]
    assert label.retention_rule == "envelope_label: 30d after stored" and label.disposal_due_on is None
    assert cli("documents", "check", label.code, actor="mailroom")[0] == 0
    for code in ("CAB-1", "CAB-2"):
        assert cli("store", "locations", "add", code, "--kind", "cabinet", actor="mailroom")[0] == 0
    assert cli("store", label.code, "--location", "CAB-1", actor="mailroom")[0] == 0
    stored = docs(office.settings, kit=kit)["envelope_label"]
    assert stored.disposal_due_on == retention.local_date(stored.stored_at) + dt.timedelta(days=30)
    # moving it to another cabinet is not "use beginning" again: the date stays
    code, out, _ = cli("store", label.code, "--location", "CAB-2", actor="mailroom")
    assert code == 0 and f"moved {label.code} (envelope_label) from CAB-1" in out
    assert docs(office.settings, kit=kit)["envelope_label"].disposal_due_on == stored.disposal_due_on


# --- storage ---------------------------------------------------------------------------------------------

def test_storage_locations_and_their_refusals(office, cli):
    code, out, err = cli("store", "locations", "add", "BOX-42", "--kind", "box", "--site", "本社",
                         "--provider", "東京文書保管株式会社", actor="mailroom")
    assert code == 0 and "added box BOX-42" in out, err
    code, _, err = cli("store", "locations", "add", "BOX-42", "--kind", "box", actor="mailroom")
    assert code == 70 and "BOX-42 already exists" in err
    code, _, err = cli("store", "locations", "add", "CAB-9", "--kind", "cabinet", "--provider", "X", actor="mailroom")
    assert code == 2 and "--provider is for boxes" in err
    code, _, err = cli("store", "locations", "add", "CAB-9", actor="mailroom")
    assert code == 2 and "--kind" in err
    code, _, err = cli("store", "locations", "add", "CAB-9", "--kind", "cabinet", "--out", "x.pdf", actor="mailroom")
    assert code == 2 and "does not take --out" in err
    code, out, _ = cli("store", "locations", "list", "--format", "json", actor="mailroom")
    assert json.loads(out)["locations"] == [{"code": "BOX-42", "kind": "box", "site": "本社",
                                             "provider": "東京文書保管株式会社", "documents": 0}]
    assert events(office.settings, "location.added", "BOX-42")[0].actor == "mailroom"


def test_store_requires_the_check_and_refuses_what_cannot_be_stored(office, cli):
    kit = office.kit["E0101"]
    d = docs(office.settings, kit=kit)
    assert cli("store", "locations", "add", "BOX-1", "--kind", "box", "--provider", "倉庫", actor="mailroom")[0] == 0
    code, _, err = cli("store", kit, "--location", "BOX-1", actor="mailroom")
    assert code == 70 and "not checked" in err and "documents check" in err
    assert {x.state for x in docs(office.settings, kit=kit).values()} == {"received"}   # all or nothing
    code, _, err = cli("store", d["provision_form"].code, "--location", "NOWHERE", actor="mailroom")
    assert code == 66 and "NOWHERE does not exist" in err
    code, _, err = cli("store", d["provision_form"].code, actor="mailroom")
    assert code == 2 and "--location" in err

    assert cli("documents", "check", kit, actor="mailroom")[0] == 0
    code, out, err = cli("store", kit, "--location", "BOX-1", actor="mailroom")
    assert code == 0 and "4 documents in BOX-1" in out, err
    stored = docs(office.settings, kit=kit)
    assert {x.state for x in stored.values()} == {"stored"} and all(x.stored_at for x in stored.values())
    assert [e.details["location"] for e in events(office.settings, "document.stored", d["id_copy"].code)] == ["BOX-1"]
    code, _, err = cli("store", d["id_copy"].code, "--location", "BOX-1", actor="mailroom")
    assert code == 70 and "already stored in BOX-1" in err


def test_box_contents_list_as_table_csv_json_and_printable_pdf(office, cli):
    kit = office.kit["E0101"]
    cli("store", "locations", "add", "BOX-7", "--kind", "box", "--provider", "東京文書保管株式会社", actor="mailroom")
    cli("documents", "check", kit, actor="mailroom")
    cli("store", kit, "--location", "BOX-7", actor="mailroom")
    d = docs(office.settings, kit=kit)
    codes = sorted(x.code for x in d.values())

    code, out, _ = cli("store", "contents", "BOX-7", actor="mailroom")
    assert code == 0 and "4 documents in box BOX-7" in out and all(c in out for c in codes)
    code, out, _ = cli("store", "contents", "BOX-7", "--format", "csv", actor="mailroom")
    rows = list(csv.DictReader(out.splitlines()))
    assert [r["document"] for r in rows] == codes and {r["kit"] for r in rows} == {kit}
    code, out, _ = cli("store", "contents", "BOX-7", "--json", actor="mailroom")
    listing = json.loads(out)
    assert listing["location"]["provider"] == "東京文書保管株式会社" and len(listing["documents"]) == 4

    pdf = office.tmp / "box7.pdf"
    code, out, err = cli("store", "contents", "BOX-7", "--out", pdf, actor="mailroom")
    assert code == 0, err
    text = pdf_text(pdf)
    assert "保管箱内容一覧" in text and "BOX-7" in text and "東京文書保管株式会社" in text
    assert all(c in text for c in codes) and "個人番号提供書" in text and "作成者" in text and "確認者" in text
    assert not any(n in text for n in office.numbers.values())
    assert not list(pdf.parent.glob(".*.partial"))


def pdf_text(path: Path) -> str:
    document = pypdfium2.PdfDocument(str(path))
    try:
        return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    finally:
        document.close()


def test_documents_list_filters_and_formats(office, cli):
    cli("documents", "check", office.kit["E0102"], actor="mailroom")
    code, out, _ = cli("documents", "list", "--json", actor="auditor")
    listed = json.loads(out)["documents"]
    assert len(listed) == 5 and {r["person_id"] for r in listed} == {"E0101", "E0102"}
    code, out, _ = cli("documents", "list", "--kit", office.kit["E0102"], "--state", "checked", "--json",
                       actor="auditor")
    assert [r["type"] for r in json.loads(out)["documents"]] == ["provision_form"]
    code, out, _ = cli("documents", "list", "--state", "received", actor="auditor")
    assert code == 0 and "received 4" in out
    code, _, err = cli("documents", "list", "--state", "shredded", actor="auditor")
    assert code == 2 and "not a document state" in err
    code, _, err = cli("documents", "list", "--kit", "K9999999", actor="auditor")
    assert code == 66


def test_lost_documents_cannot_be_stored_and_count_as_checked_when_found(office, cli):
    d = docs(office.settings, kit=office.kit["E0101"])
    code, out, err = cli("documents", "lost", d["envelope_label"].code, "--note", "not in the envelope",
                         actor="mailroom")
    assert code == 0, err
    assert docs(office.settings, kit=office.kit["E0101"])["envelope_label"].state == "lost"
    cli("store", "locations", "add", "CAB-1", "--kind", "cabinet", actor="mailroom")
    code, _, err = cli("store", d["envelope_label"].code, "--location", "CAB-1", actor="mailroom")
    assert code == 70 and "is lost; it cannot become stored" in err
    code, _, err = cli("documents", "lost", d["envelope_label"].code, "--note", "again", actor="mailroom")
    assert code == 70 and "is lost; it cannot become lost" in err
    code, out, err = cli("documents", "check", office.kit["E0101"], actor="mailroom")
    assert code == 0 and "3 documents checked" in out, err      # a kit's check does not find a lost page
    assert docs(office.settings, kit=office.kit["E0101"])["envelope_label"].state == "lost"
    code, out, err = cli("documents", "check", d["envelope_label"].code, actor="mailroom")
    assert code == 0, err
    found = events(office.settings, "document.checked", d["envelope_label"].code)[-1]
    assert found.details.get("found_again") is True


def test_the_log_verifies_after_the_lifecycle(office, cli):
    kit = office.kit["E0101"]
    cli("documents", "check", kit, actor="mailroom")
    cli("store", "locations", "add", "CAB-1", "--kind", "cabinet", actor="mailroom")
    cli("store", kit, "--location", "CAB-1", actor="mailroom")
    cli("people", "leave", "E0101", "--date", TODAY.isoformat(), actor="hr")
    with db.session_scope(office.settings.db_url) as s:
        assert audit.verify(s).ok
        details = [json.dumps(e.details) for e in s.execute(select(Event)).scalars()]
    assert not any(n in text for n in office.numbers.values() for text in details)
