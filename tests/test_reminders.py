"""Reminders and refusals: letters tagged to their kit in numbered rounds, calls and visits logged, the
chronology a tax office may ask for, and refusals kept with their reason and evidence (and never reminded)."""
from __future__ import annotations

import csv
import datetime as dt
import json
import time

import numpy as np
import pypdfium2 as pdfium
import pytest
import zxingcpp
from sqlalchemy import select

from pipeline import db, layout, qrtag, vault
from pipeline.track import audit, refusals
from pipeline.track.models import Document, Event, Kit, Refusal, Reminder, ScannedPage
from tests import scansim

DPI = 200


@pytest.fixture
def sent(home, cli, roster_csv, tmp_path) -> dict[str, str]:
    """Kits printed for the roster; E0001, E0002 and the payee P0001 sent, E0003's kit still lying printed.
    Returns person_id -> kit code."""
    code, _, err = cli("kits", "print", roster_csv, "--out", tmp_path / "kits.pdf", "--manifest",
                       tmp_path / "manifest.csv")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "manifest.csv").open(encoding="utf-8")))
    kits = {r["person_id"]: r["kit_id"] for r in rows}
    manifest = tmp_path / "sent.csv"
    manifest.write_text("kit_id,carrier,tracking_number\n" + "".join(
        f"{kits[p]},簡易書留,55556666{i:04d}\n" for i, p in enumerate(("E0001", "E0002", "P0001"))), encoding="utf-8")
    assert cli("kits", "send", "--manifest", manifest, actor="mailroom")[0] == 0
    return kits


def _remind(cli, *args, actor="hr") -> tuple[int, list[dict], str]:
    code, out, err = cli("remind", *args, "--format", "json", actor=actor)
    return code, (json.loads(out)["kits"] if code == 0 else []), err


def _reminders(settings) -> list[tuple[str, int, str, str]]:
    with db.session_scope(settings.db_url) as s:
        return sorted((code, r.round, r.method, r.by) for r, code in s.execute(
            select(Reminder, Kit.code).join(Kit, Kit.id == Reminder.kit_id)).all())


def _actions(settings, action: str) -> list[Event]:
    with db.session_scope(settings.db_url) as s:
        rows = s.execute(select(Event).where(Event.action == action).order_by(Event.seq)).scalars().all()
        s.expunge_all()
        return rows


def _tags(settings, pdf_path) -> list[qrtag.Tag]:
    key = vault.load_key(settings.keys_dir, "tag")
    tags = []
    for page in pdfium.PdfDocument(pdf_path):
        image = page.render(scale=150 / 72).to_pil().convert("L")
        codes = [c for c in zxingcpp.read_barcodes(image) if c.format == zxingcpp.BarcodeFormat.QRCode]
        assert len(codes) == 1
        tags.append(qrtag.decode(codes[0].text, key))
    return tags


def _texts(pdf_path) -> list[str]:
    return [page.get_textpage().get_text_range().replace("\r", "").replace("\n", "")
            for page in pdfium.PdfDocument(pdf_path)]


def test_letters_are_tagged_to_their_kit_worded_per_kind_and_recorded(home, cli, sent, tmp_path):
    code, rows, _ = _remind(cli, "--after", "14")         # sent just now: not due yet, nothing recorded
    assert code == 0 and rows == []

    out = tmp_path / "letters.pdf"
    code, rows, err = _remind(cli, "--after", "0", "--out", out)
    assert code == 0, err
    expected = sorted(sent[p] for p in ("E0001", "E0002", "P0001"))   # not E0003: its kit was never sent
    assert sorted(r["kit"] for r in rows) == expected
    assert {(r["round"], r["action"]) for r in rows} == {(1, "letter")}

    tags = _tags(home, out)
    fingerprint = layout.load().documents["reminder_letter"].fingerprint
    assert [t.kit for t in tags] == [r["kit"] for r in rows]           # one page per kit, in the listed order
    assert {(t.doc_code, t.page, t.fingerprint) for t in tags} == {("RM", 1, fingerprint)}

    texts = dict(zip((r["kit"] for r in rows), _texts(out)))
    for person, name in (("E0001", "山田 太郎"), ("E0002", "佐藤 次郎")):
        text = texts[sent[person]]
        assert "【第1回】マイナンバー（個人番号）ご提出のお願い" in text and name in text
        assert sent[person] in text and "03-0000-0000" in text and "人事部 マイナンバー担当" in text
    payee = texts[sent["P0001"]]
    assert "重ねてのお願い（第1回）" in payee and "誠に恐縮" in payee and "鈴木 講師" in payee
    assert "【第1回】" not in payee and "義務付け" not in payee

    assert _reminders(home) == [(k, 1, "letter", "hr") for k in expected]
    events = _actions(home, "reminder.letter")
    assert sorted(e.object_id for e in events) == expected
    assert all(e.details["round"] == 1 and e.details["file"] == "letters.pdf" for e in events)
    assert not list(tmp_path.glob(".*partial"))

    # What a person sees: the page rendered, with the letter's text in the body and the tag in the corner.
    image = np.asarray(pdfium.PdfDocument(out)[0].render(scale=100 / 72).to_pil().convert("L"))
    px = lambda mm: round(mm * 100 / 25.4)
    assert abs(image.shape[0] - px(297)) <= 1 and abs(image.shape[1] - px(210)) <= 1     # A4
    qx, qy, qw, qh = layout.load().documents["reminder_letter"].page(1).qr_mm
    assert (image[px(qy):px(qy + qh), px(qx):px(qx + qw)] < 128).mean() > 0.3     # the QR code where the scanner looks
    assert (image[px(85):px(180), px(20):px(190)] < 128).mean() > 0.01             # the body text


def test_rerunning_a_round_does_not_duplicate_reminders(home, cli, sent, tmp_path):
    kits = sorted(sent[p] for p in ("E0001", "E0002", "P0001"))
    assert _remind(cli, "--after", "0", "--out", tmp_path / "r1.pdf")[0] == 0
    first = _reminders(home)
    assert len(first) == 3

    code, rows, _ = _remind(cli, "--after", "0", "--out", tmp_path / "again.pdf")   # the same day again
    assert code == 0 and rows == [] and not (tmp_path / "again.pdf").exists()
    assert _reminders(home) == first

    code, rows, _ = _remind(cli, "--round", "1", "--out", tmp_path / "reprint.pdf")  # the printer jammed
    assert code == 0 and {r["action"] for r in rows} == {"reprint"} and len(rows) == 3
    assert [t.kit for t in _tags(home, tmp_path / "reprint.pdf")] == [r["kit"] for r in rows]
    assert _reminders(home) == first
    assert len(_actions(home, "reminder.letter_reprinted")) == 3

    code, rows, err = _remind(cli, "--round", "3", "--after", "0")   # round 2 has not happened yet
    assert code == 0 and rows == []

    # A week and a day later (the reminders are moved back in time), the next run is round 2 ...
    with db.session_scope(home.db_url) as s:
        for reminder in s.execute(select(Reminder)).scalars():
            reminder.at -= dt.timedelta(days=8)
    code, rows, _ = _remind(cli, "--after", "0", "--out", tmp_path / "r2.pdf")
    assert {(r["round"], r["action"]) for r in rows} == {(2, "letter")}
    assert all("【第2回】" in t or "（第2回）" in t for t in _texts(tmp_path / "r2.pdf"))
    # ... and running it again, by default or naming round 2, adds nothing.
    assert _remind(cli, "--after", "0", "--out", tmp_path / "r2b.pdf")[1] == []
    code, rows, _ = _remind(cli, "--round", "2", "--out", tmp_path / "r2c.pdf")
    assert {r["action"] for r in rows} == {"reprint"}
    assert _reminders(home) == sorted(first + [(k, 2, "letter", "hr") for k in kits])
    with db.session_scope(home.db_url) as s:
        assert audit.verify(s).ok


def _at(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")


def test_logged_attempts_and_history_in_time_order(home, cli, sent, tmp_path):
    kit = sent["E0002"]
    after_sending = dt.datetime.now(dt.timezone.utc)
    time.sleep(1.2)
    assert _remind(cli, "--after", "0", "--out", tmp_path / "r1.pdf")[0] == 0
    time.sleep(1.2)
    code, out, err = cli("remind", "log", kit, "--method", "phone", "--note", "不在。留守電に伝言", actor="hr")
    assert code == 0 and "round 1" in out, err
    # Typed last, but made first: a visit between the sending and the letter.
    code, out, err = cli("remind", "log", kit, "--method", "visit", "--note", "大阪支店で本人に手渡しで依頼",
                         "--at", _at(after_sending + dt.timedelta(seconds=1)), actor="hr")
    assert code == 0, err

    code, out, err = cli("remind", "history", "E0002", "--format", "json", actor="auditor")
    assert code == 0, err
    lines = json.loads(out)["history"]
    assert [(line["what"], line["method"]) for line in lines] == [
        ("printed", None), ("sent", None), ("reminder", "visit"), ("reminder", "letter"), ("reminder", "phone")]
    assert [line["by"] for line in lines] == ["hr", "mailroom", "hr", "hr", "hr"]
    assert [line["round"] for line in lines[2:]] == [1, 1, 1]
    assert lines[1]["note"] == "carrier simple_registered, tracking 555566660001"
    assert lines[2]["note"] == "大阪支店で本人に手渡しで依頼"
    times = [dt.datetime.fromisoformat(line["at"]) for line in lines]
    assert times == sorted(times)

    code, out, _ = cli("remind", "history", "E0002", "--format", "csv", actor="auditor")
    assert [r["method"] for r in csv.DictReader(out.splitlines())] == ["", "", "visit", "letter", "phone"]
    code, out, _ = cli("remind", "history", "E0002", actor="manager")
    assert out.splitlines()[0].startswith("E0002 佐藤 次郎") and "留守電に伝言" in out


@pytest.mark.parametrize("args, exit_code, words", [
    (("--method", "phone", "--note", "x", "--at", "2999-01-01 10:00"), 2, "future"),
    (("--method", "phone", "--note", "x", "--at", "2001-01-01"), 2, "before kit"),
    (("--method", "phone", "--note", "x", "--round", "3"), 2, "round 3"),
    (("--method", "phone", "--note", "番号は1234-5678-9018と聞いた"), 65, "12 digits"),
])
def test_bad_log_entries_are_refused(home, cli, sent, args, exit_code, words):
    code, _, err = cli("remind", "log", sent["E0001"], *args, actor="hr")
    assert code == exit_code and words in err
    assert "1234" not in err
    assert _reminders(home) == []


def test_log_only_for_kits_that_owe_something(home, cli, sent):
    with pytest.raises(SystemExit) as exit_:                 # argparse: not one of the methods
        cli("remind", "log", sent["E0001"], "--method", "fax", "--note", "x", actor="hr")
    assert exit_.value.code == 2
    code, _, err = cli("remind", "log", sent["E0003"], "--method", "phone", "--note", "x", actor="hr")
    assert code == 70 and "printed" in err                  # never sent: nothing to remind of
    code, _, err = cli("remind", "log", "K9999999", "--method", "phone", "--note", "x", actor="hr")
    assert code == 66
    code, _, err = cli("remind", "log", sent["E0001"], "--method", "phone", "--note", "x", actor="mailroom")
    assert code == 77
    assert cli("kits", "undeliverable", sent["E0001"], actor="mailroom")[0] == 0
    code, _, err = cli("remind", "log", sent["E0001"], "--method", "phone", "--note", "新住所を確認", actor="hr")
    assert code == 0, err                                    # asking for the new address is an attempt too
    assert sent["E0001"] not in [r["kit"] for r in _remind(cli, "--after", "0")[1]]   # but no letter: no address


def _scan_pages(cli, tmp_path, images, name: str) -> list[dict]:
    scansim.make_scan_pdf(images, tmp_path / name)
    code, out, err = cli("scan", tmp_path / name, "--site", "本社", "--json", actor="mailroom")
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()[:-1]]


def _refusal_form(tmp_path, kit: str):
    """The payee's refusal form as returned: reason "unwilling" ticked and signed (as in tests/test_scan.py)."""
    rows = list(csv.DictReader((tmp_path / "manifest.csv").open(encoding="utf-8")))
    index = next(i for i, r in enumerate(rows) if r["kit_id"] == kit and r["document"] == "refusal_form")
    page_layout = layout.load().documents["refusal_form"].page(1)
    rng = np.random.default_rng(6)
    img = scansim.rasterise(tmp_path / "kits.pdf", index, DPI)
    scansim.tick_checkbox(img, page_layout, "reason_unwilling", DPI, rng)
    scansim.sign(img, page_layout, "signature", DPI, rng)
    return scansim.degrade(img, DPI, rng, rotate=180, skew_deg=1.5, noise=4.0, jpeg_quality=80)


def test_a_refusal_form_scanned_is_kept_with_its_reason_and_evidence(home, cli, sent, tmp_path):
    kit = sent["P0001"]
    pages = _scan_pages(cli, tmp_path, [_refusal_form(tmp_path, kit)], "refusal.pdf")
    assert [(p["status"], p["kit"]) for p in pages] == [("kit_page", kit)]
    with db.session_scope(home.db_url) as s:
        k = s.execute(select(Kit).where(Kit.code == kit)).scalar_one()
        assert k.state == "refused"
        (refusal,) = s.execute(select(Refusal).where(Refusal.kit_id == k.id)).scalars().all()
        page = s.get(ScannedPage, refusal.evidence_page_id)
        assert refusal.reasons == ["reason_unwilling"] and refusal.recorded_by == "mailroom"
        assert (page.document, page.kit_id) == ("refusal_form", k.id)
        evidence = s.execute(select(Document.code).where(Document.scanned_page_id == page.id)).scalar_one()
        # Recording the same form again (a recomputation) keeps the one row.
        assert refusals.record(s, k, ["reason_unwilling"], page.id, actor="mailroom").id == refusal.id
        assert len(s.execute(select(Refusal)).scalars().all()) == 1
    (event,) = _actions(home, "refusal.recorded")
    assert event.object_id == kit and event.details["evidence_document"] == evidence
    assert event.details["reasons"] == ["reason_unwilling"] and event.details["source"] == "form"

    # A refused kit is not reminded, by letter or otherwise.
    code, out, _ = cli("remind", "--after", "0", actor="hr")
    assert kit not in out and "1 refused" in out
    code, _, err = cli("remind", "log", kit, "--method", "phone", "--note", "x", actor="hr")
    assert code == 70 and "refused" in err

    code, out, _ = cli("remind", "history", "P0001", "--format", "json", actor="auditor")
    whats = [line["what"] for line in json.loads(out)["history"]]
    assert whats[:3] == ["printed", "sent", "received"] and "refused (form)" in whats
    (recorded,) = [line for line in json.loads(out)["history"] if line["what"] == "refusal recorded"]
    assert f"evidence {evidence}" in recorded["note"] and "reason_unwilling" in recorded["note"]


def test_a_refusal_stated_by_phone(home, cli, sent):
    kit = sent["E0001"]
    args = ("remind", "refusal", kit, "--reason", "マイナンバーを会社に出したくない", "--note", "11/20 電話で本人より")
    code, out, err = cli(*args, actor="hr")
    assert code == 0 and "refusal recorded" in out, err
    code, out, _ = cli(*args, actor="hr")                                    # the same command again
    assert code == 0 and "already recorded" in out
    with db.session_scope(home.db_url) as s:
        (refusal,) = s.execute(select(Refusal)).scalars().all()
        assert refusal.reasons == ["マイナンバーを会社に出したくない"] and refusal.note == "11/20 電話で本人より"
        assert refusal.evidence_page_id is None
    assert kit not in [r["kit"] for r in _remind(cli, "--after", "0")[1]]
    code, _, err = cli("remind", "log", kit, "--method", "visit", "--note", "x", actor="hr")
    assert code == 70 and "refused" in err

    code, _, err = cli("remind", "refusal", sent["E0002"], "--reason", "番号 123456789018", actor="hr")
    assert code == 65 and "123456789018" not in err
    code, _, err = cli("remind", "refusal", "K9999999", "--reason", "x", actor="hr")
    assert code == 66
    code, _, err = cli("remind", "refusal", sent["E0002"], "--reason", "x", actor="mailroom")
    assert code == 77
    code, out, _ = cli("remind", "history", "E0001", "--format", "json", actor="auditor")
    (line,) = [x for x in json.loads(out)["history"] if x["what"] == "refusal recorded"]
    assert "stated, no paper" in line["note"] and line["by"] == "hr"


def test_a_reply_enclosing_the_reminder_letter_is_recognised(home, cli, sent, tmp_path):
    kit = sent["E0002"]
    code, rows, _ = _remind(cli, "--after", "0", "--out", tmp_path / "letters.pdf")
    index = [r["kit"] for r in rows].index(kit)
    letter = scansim.degrade(scansim.rasterise(tmp_path / "letters.pdf", index, DPI), DPI, 3, rotate=90,
                             skew_deg=-2.0, noise=4.0)
    pages = _scan_pages(cli, tmp_path, [letter], "reply.pdf")
    assert [(p["status"], p["kit"]) for p in pages] == [("kit_page", kit)]
    with db.session_scope(home.db_url) as s:
        k = s.execute(select(Kit).where(Kit.code == kit)).scalar_one()
        assert k.state == "incomplete" and k.received_by == "mailroom"      # back, with the forms still missing
        page = s.execute(select(ScannedPage).where(ScannedPage.kit_id == k.id)).scalar_one()
        assert page.document == "reminder_letter"
    assert kit not in [r["kit"] for r in _remind(cli, "--after", "0", "--round", "2")[1]]
