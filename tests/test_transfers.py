"""Packages between sites (`mynumber transfer`) and what becomes of a kit's outgoing envelope
(`mynumber kits undeliverable|lost`): every move recorded with who and when, every illegal move refused."""
from __future__ import annotations

import csv
import datetime as dt
import json

import pytest
from sqlalchemy import select

from pipeline import db
from pipeline.track import audit
from pipeline.track.models import Document, Event, Kit
from tests import scansim
from tests.conftest import add_users

DPI = 200


@pytest.fixture
def kits(home, cli, roster_csv, tmp_path) -> dict[str, str]:
    """The roster's kits, printed; person_id -> kit code. A second mailroom user works at 大阪支店."""
    add_users(home, {"osaka": ["mailroom"]})
    code, _, err = cli("kits", "print", roster_csv, "--out", tmp_path / "kits.pdf", "--manifest",
                       tmp_path / "manifest.csv")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "manifest.csv").open(encoding="utf-8")))
    return {r["person_id"]: r["kit_id"] for r in rows}


def _transfers(cli, *extra) -> dict[str, dict]:
    code, out, err = cli("transfer", "list", "--format", "json", *extra, actor="auditor")
    assert code == 0, err
    return {t["transfer"]: t for t in json.loads(out)["transfers"]}


def _events(settings, object_id: str) -> list[Event]:
    with db.session_scope(settings.db_url) as s:
        rows = s.execute(select(Event).where(Event.object_id == object_id).order_by(Event.seq)).scalars().all()
        s.expunge_all()
        return rows


def _send(cli, *items, frm="本社", to="大阪支店", carrier="簡易書留", tracking="1234-5678-9012", actor="mailroom",
          extra=()):
    args = ["transfer", "send", "--from", frm, "--to", to, "--carrier", carrier, *extra]
    if tracking:
        args += ["--tracking", tracking]
    args += ["--kits", *items]
    code, out, err = cli(*args, actor=actor)
    return code, out, err


def _code_of(out: str) -> str:
    return out.split()[1].rstrip(":")


def test_send_then_receive_records_sender_carrier_receiver(home, cli, kits):
    k1, k2 = kits["E0001"], kits["E0002"]
    code, out, err = _send(cli, k1, k2)
    assert code == 0, err
    tcode = _code_of(out)
    assert tcode == "T0000001" and "2 kits" in out and "by mailroom" in out
    t = _transfers(cli)[tcode]
    assert (t["state"], t["sender"], t["carrier"], t["tracking_number"]) == \
           ("in_transit", "mailroom", "simple_registered", "1234-5678-9012")
    assert (t["from_site"], t["to_site"], t["kits"], t["documents"]) == ("本社", "大阪支店", 2, 0)
    assert t["received_at"] is None

    code, out, err = cli("transfer", "receive", tcode, "--site", "大阪支店", actor="osaka")
    assert code == 0, err
    assert k1 in out and k2 in out          # the list to check the contents against
    t = _transfers(cli)[tcode]
    assert (t["state"], t["received_by"]) == ("received", "osaka")
    assert dt.datetime.fromisoformat(t["received_at"]) >= dt.datetime.fromisoformat(t["sent_at"])

    actions = [(e.action, e.actor, e.site) for e in _events(home, tcode)]
    assert actions == [("transfer.sent", "mailroom", "本社"), ("transfer.received", "osaka", "大阪支店")]
    kit_actions = [(e.action, e.details["transfer"]) for e in _events(home, k1) if "transfer" in e.details]
    assert kit_actions == [("kit.transferred", tcode), ("kit.transfer_received", tcode)]
    with db.session_scope(home.db_url) as s:
        assert audit.verify(s).ok


def test_receiving_twice_at_the_wrong_site_or_by_the_sender_is_refused(home, cli, kits):
    tcode = _code_of(_send(cli, kits["E0001"])[1])

    code, _, err = cli("transfer", "receive", tcode, "--site", "福岡支店", actor="osaka")
    assert code == 70 and "goes to 大阪支店" in err and "福岡支店" in err

    code, _, err = cli("transfer", "receive", tcode, actor="mailroom")   # the sender cannot confirm their own
    assert code == 77 and "sender" in err
    refused = [e for e in _events(home, tcode) if e.action == "transfer.receive_refused"]
    assert len(refused) == 1 and refused[0].actor == "mailroom"
    assert _transfers(cli)[tcode]["state"] == "in_transit"

    assert cli("transfer", "receive", tcode, actor="osaka")[0] == 0
    code, _, err = cli("transfer", "receive", tcode, actor="hr")
    assert code == 70 and "already received" in err and "by osaka" in err and "twice" in err
    assert _transfers(cli)[tcode]["received_by"] == "osaka"
    assert [e.action for e in _events(home, tcode)].count("transfer.received") == 1


def test_overdue_lists_unconfirmed_packages_with_their_owner(home, cli, kits):
    late = _code_of(_send(cli, kits["E0001"], extra=("--due-days", "0"))[1])
    normal = _code_of(_send(cli, kits["E0002"], carrier="社内便", tracking=None)[1])   # default: 3 days

    code, out, err = cli("transfer", "overdue", "--format", "json", actor="auditor")
    assert code == 0, err
    rows = json.loads(out)["overdue"]
    assert [r["transfer"] for r in rows] == [late]
    assert (rows[0]["sender"], rows[0]["carrier"], rows[0]["tracking_number"]) == \
           ("mailroom", "simple_registered", "1234-5678-9012")

    # Four days on, the 3-day package is overdue too; the report is the same in CSV.
    in_four_days = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=4)).isoformat()
    code, out, err = cli("transfer", "overdue", "--as-of", in_four_days, "--format", "csv", actor="auditor")
    rows = list(csv.DictReader(out.splitlines()))
    assert [r["transfer"] for r in rows] == [late, normal]
    assert rows[1]["sender"] == "mailroom" and rows[1]["carrier"] == "internal_mail"
    assert [r["days_overdue"] for r in rows] == ["4", "1"]

    # Once confirmed, a package is no longer overdue; and before it was sent, it was not overdue either.
    assert cli("transfer", "receive", late, actor="osaka")[0] == 0
    code, out, _ = cli("transfer", "overdue", "--format", "json", actor="auditor")
    assert json.loads(out)["overdue"] == []
    yesterday = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).isoformat()
    code, out, _ = cli("transfer", "overdue", "--as-of", yesterday, "--format", "json", actor="auditor")
    assert json.loads(out)["overdue"] == []
    code, out, _ = cli("transfer", "overdue", actor="auditor")      # the table has the same columns
    assert out.splitlines()[0].split()[:4] == ["transfer", "from_site", "to_site", "sender"]


def test_lost_transfer_owns_its_items_until_found(home, cli, kits):
    k1 = kits["E0001"]
    tcode = _code_of(_send(cli, k1, extra=("--due-days", "0"))[1])
    code, out, err = cli("transfer", "lost", tcode, "--note", "郵便局に調査依頼済み", actor="mailroom")
    assert code == 0, err
    assert "sent by mailroom" in out and "simple_registered" in out and "1234-5678-9012" in out
    lost = [e for e in _events(home, tcode) if e.action == "transfer.lost"][0]
    assert lost.details["sender"] == "mailroom" and lost.details["kits"] == [k1]
    assert _transfers(cli, "--state", "lost")[tcode]["state"] == "lost"
    code, out, _ = cli("transfer", "overdue", "--format", "json", actor="auditor")
    assert json.loads(out)["overdue"] == []                          # declared lost: no longer just late

    code, _, err = cli("transfer", "lost", tcode, actor="mailroom")
    assert code == 70 and "lost" in err
    code, _, err = _send(cli, k1)                                     # what is lost cannot be sent on
    assert code == 70 and f"lost in transfer {tcode}" in err

    assert cli("transfer", "receive", tcode, actor="osaka")[0] == 0    # it turned up after all
    assert [e.action for e in _events(home, tcode)] == ["transfer.sent", "transfer.lost", "transfer.received"]
    code, _, err = cli("transfer", "lost", tcode, actor="mailroom")
    assert code == 70 and "received" in err


def test_items_move_only_from_where_they_are(home, cli, kits):
    k1 = kits["E0001"]
    first = _code_of(_send(cli, k1)[1])
    code, _, err = _send(cli, k1)
    assert code == 70 and f"in transfer {first}" in err and "not yet confirmed" in err
    assert cli("transfer", "receive", first, actor="osaka")[0] == 0
    code, _, err = _send(cli, k1)                                    # it is in 大阪支店 now, not 本社
    assert code == 70 and "arrived at 大阪支店" in err and "cannot be sent from 本社" in err
    code, out, err = _send(cli, k1, frm="大阪支店", to="本社", actor="osaka")
    assert code == 0, err
    assert len(_transfers(cli)) == 2


@pytest.mark.parametrize("args, exit_code, words", [
    (("--carrier", "飛脚便", "--kits", "KIT"), 2, "飛脚便"),
    (("--carrier", "レターパック", "--kits", "KIT"), 2, "tracking number"),
    (("--carrier", "社内便", "--to", "本社", "--kits", "KIT"), 2, "from one site to another"),
    (("--carrier", "社内便", "--kits", "K9999999"), 66, "K9999999"),
    (("--carrier", "社内便", "--documents", "D9999999"), 66, "D9999999"),
    (("--carrier", "社内便", "--due-days", "-1", "--kits", "KIT"), 2, "due-days"),
])
def test_bad_sends_are_refused_and_nothing_is_recorded(home, cli, kits, args, exit_code, words):
    args = [kits["E0001"] if a == "KIT" else a for a in args]
    base = ["transfer", "send", "--from", "本社"] + ([] if "--to" in args else ["--to", "大阪支店"])
    code, _, err = cli(*base, *args, actor="mailroom")
    assert code == exit_code and words in err
    assert _transfers(cli) == {}


def test_roles_and_notes(home, cli, kits):
    code, _, err = _send(cli, kits["E0001"], actor="auditor")
    assert code == 77
    tcode = _code_of(_send(cli, kits["E0001"])[1])
    code, _, err = cli("transfer", "lost", tcode, "--note", "中身は 1234 5678 9018 の書類", actor="mailroom")
    assert code == 65 and "1234" not in err                    # a number in a note is refused, never echoed
    assert _transfers(cli)[tcode]["state"] == "in_transit"
    with db.session_scope(home.db_url) as s:
        assert all("9018" not in json.dumps(e.details, ensure_ascii=False) for e in s.execute(select(Event)).scalars())


def _scan_envelope_label(cli, tmp_path, kits_pdf, manifest_rows, kit_code) -> None:
    """Scan one returned page of a kit (its envelope label: no numbers on it), which creates a Document."""
    index = next(i for i, r in enumerate(manifest_rows)
                 if r["kit_id"] == kit_code and r["document"] == "envelope_label")
    page = scansim.degrade(scansim.rasterise(kits_pdf, index, DPI), DPI, 1, noise=2.0)
    scansim.make_scan_pdf([page], tmp_path / "returned.pdf")
    code, out, err = cli("scan", tmp_path / "returned.pdf", "--site", "大阪支店", "--json")
    assert code == 0, err
    assert json.loads(out.splitlines()[0])["status"] == "kit_page"


def test_documents_travel_and_a_lost_package_loses_them(home, cli, kits, tmp_path):
    rows = list(csv.DictReader((tmp_path / "manifest.csv").open(encoding="utf-8")))
    kit = kits["E0002"]
    _scan_envelope_label(cli, tmp_path, tmp_path / "kits.pdf", rows, kit)
    with db.session_scope(home.db_url) as s:
        document = s.execute(select(Document.code).join(Kit, Kit.id == Document.kit_id)
                             .where(Kit.code == kit)).scalar_one()
    code, out, err = cli("transfer", "send", "--from", "大阪支店", "--to", "本社", "--carrier", "社内便",
                         "--documents", document, actor="osaka")
    assert code == 0, err
    tcode = _code_of(out)
    assert _transfers(cli)[tcode]["documents"] == 1
    assert [e.action for e in _events(home, document)][-1] == "document.transferred"

    assert cli("transfer", "lost", tcode, actor="osaka")[0] == 0
    with db.session_scope(home.db_url) as s:
        assert s.execute(select(Document.state).where(Document.code == document)).scalar_one() == "lost"
    assert "document.lost" in [e.action for e in _events(home, document)]
    code, _, err = cli("transfer", "send", "--from", "大阪支店", "--to", "本社", "--carrier", "社内便",
                       "--documents", document, actor="osaka")
    assert code == 70 and "lost" in err


def test_kit_envelopes_undeliverable_lost_and_illegal_moves(home, cli, kits, tmp_path):
    k1, k2, k3 = kits["E0001"], kits["E0002"], kits["P0001"]
    code, _, err = cli("kits", "lost", k1, actor="mailroom")            # never sent: cannot be lost in the post
    assert code == 70 and f"kit {k1} is printed" in err and "cannot become lost" in err
    code, _, err = cli("kits", "undeliverable", k1, actor="mailroom")
    assert code == 70 and "cannot become returned_undeliverable" in err

    manifest = tmp_path / "sent.csv"
    manifest.write_text(f"kit_id,carrier,tracking_number\n{k1},簡易書留,111122223333\n{k2},レターパック,444455556666\n"
                        f"{k3},社内便,\n", encoding="utf-8")
    assert cli("kits", "send", "--manifest", manifest, actor="mailroom")[0] == 0
    code, out, err = cli("kits", "undeliverable", k1, "--note", "宛所尋ねあたりません", actor="mailroom")
    assert code == 0, err
    assert cli("kits", "lost", k2, "--note", "追跡で所在不明", actor="mailroom")[0] == 0
    code, _, err = cli("kits", "undeliverable", k1, actor="mailroom")   # twice
    assert code == 70 and "returned_undeliverable" in err
    code, _, err = cli("kits", "undeliverable", k2, actor="mailroom")   # lost is not undeliverable
    assert code == 70
    code, _, err = cli("kits", "lost", k3, actor="auditor")              # not their job
    assert code == 77

    code, out, _ = cli("kits", "list", "--json")
    state = {k["kit_id"]: k["state"] for k in json.loads(out)["kits"]}
    assert (state[k1], state[k2], state[k3]) == ("returned_undeliverable", "lost", "sent")
    ev = [e for e in _events(home, k1) if e.action == "kit.returned_undeliverable"][0]
    assert ev.actor == "mailroom" and ev.details["note"] == "宛所尋ねあたりません" and ev.details["carrier"] == "simple_registered"

    # Sent again with a corrected address: back to sent.
    manifest.write_text(f"kit_id,carrier,tracking_number\n{k1},簡易書留,999988887777\n", encoding="utf-8")
    assert cli("kits", "send", "--manifest", manifest, actor="mailroom")[0] == 0
    code, out, _ = cli("kits", "list", "--json")
    assert {k["kit_id"]: k["state"] for k in json.loads(out)["kits"]}[k1] == "sent"
    with db.session_scope(home.db_url) as s:
        assert audit.verify(s).ok
