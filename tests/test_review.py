"""Review station: double entry settles items, disagreements go to a third operator, bad entries are refused."""
from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest
from sqlalchemy import select

from pipeline import db, layout, number
from pipeline.track.models import Event
from tests import scansim
from tests.conftest import add_users
from tests.test_scan import ROSTER

DPI = 200


@pytest.fixture
def queued(home, tmp_path, monkeypatch, cli):
    """A data home whose scan left two review items: fields with boxes the person left empty."""
    settings = home
    code, _, err = cli("kits", "print", ROSTER, "--out", tmp_path / "kits.pdf", "--manifest", tmp_path / "manifest.csv")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "manifest.csv").open(encoding="utf-8")))
    add_users(settings, {"alice": ["handler"], "bob": ["handler"], "carol": ["handler"]})
    rng = np.random.default_rng(4)
    kit_layout = layout.load()
    pages, meant = [], {}
    for i, row in enumerate(rows):
        if row["document"] != "provision_form" or row["person_id"] not in ("E0001", "E0002"):
            continue
        page_layout = kit_layout.documents["provision_form"].page(1)
        img = scansim.rasterise(tmp_path / "kits.pdf", i, DPI)
        full = scansim.random_valid_number(rng)
        meant[(row["person_id"], "self")] = full
        scansim.write_digits(img, page_layout, "self", full[:9] + "   ", DPI, style="printed", rng=rng)
        scansim.tick_checkbox(img, page_layout, "consent", DPI, rng)
        scansim.sign(img, page_layout, "signature", DPI, rng)
        pages.append(scansim.degrade(img, DPI, rng, rotate=90, noise=3.0, jpeg_quality=85))
    scansim.make_scan_pdf(pages, tmp_path / "scan.pdf")
    code, out, err = cli("scan", tmp_path / "scan.pdf", "--json")
    assert code == 0, err
    return settings, meant


def _key(cli, monkeypatch, operator, answers):
    feed = iter(answers)
    monkeypatch.setattr("builtins.input", lambda prompt="": next(feed))
    return cli("review", actor=operator)


def test_double_entry_settles_and_export_has_the_number(queued, cli, monkeypatch, tmp_path):
    settings, meant = queued
    code, out, _ = cli("review", "--json")
    items = json.loads(out)["items"]
    assert len(items) == 2 and all(i["reason"] == "3 of 12 boxes empty" for i in items)
    assert not any(n in out for n in meant.values())
    person_of_kit = {}
    with db.session_scope(settings.db_url) as s:
        from pipeline.track.models import Kit
        for kit in s.execute(select(Kit)).scalars():
            person_of_kit[kit.code] = kit.person.person_id
    order = [meant[(person_of_kit[i["kit"]], "self")] for i in items]   # the queue is shown oldest first

    bad = order[0][:11] + str((int(order[0][11]) + 1) % 10)
    code, out, err = _key(cli, monkeypatch, "alice", [bad, order[0], order[1]])
    assert code == 0 and "does not match" in err          # the check digit refused it at the prompt
    assert out.count("a second operator must key it") == 2
    assert "█" in out or "▀" in out                        # the crop was shown
    assert not any(n in out + err for n in meant.values())

    code, out, _ = _key(cli, monkeypatch, "alice", ["q"])
    assert "no review items left for alice" in out         # alice cannot key her own items twice

    code, out, _ = _key(cli, monkeypatch, "bob", [order[0], order[1]])
    assert out.count("settled") == 2

    code, out, _ = cli("review", "--json")
    assert json.loads(out)["items"] == []
    assert cli("numbers", "export", "--out", tmp_path / "n.csv")[0] == 0
    exported = {(r["person_id"], r["field"]): r["number"] for r in csv.DictReader((tmp_path / "n.csv").open())}
    assert exported == meant
    code, out, _ = cli("kits", "status", "--json")
    states = {k["person_id"]: k for k in json.loads(out)["kits"]}
    assert states["E0002"]["state"] == "incomplete" and states["E0002"]["missing"] == ["ID copy"]
    assert states["E0002"]["fields"] == {"self": "accepted"}
    with db.session_scope(settings.db_url) as s:
        actions = [e.action for e in s.execute(select(Event).order_by(Event.seq)).scalars()]
        details = [json.dumps(e.details) for e in s.execute(select(Event)).scalars()]
    assert actions.count("review.entry") == 4 and actions.count("review.settled") == 2
    assert "review.entry_refused" in actions and actions.count("review.crop_shown") >= 4
    assert not any(n in d for n in meant.values() for d in details)


def test_disagreement_goes_to_a_third_operator(queued, cli, monkeypatch):
    settings, meant = queued
    code, out, _ = cli("review", "--json")
    first = json.loads(out)["items"][0]
    right = [n for n in meant.values()][0]
    # whichever item is first, the two operators type two different valid numbers
    wrong = scansim.random_valid_number(np.random.default_rng(99))
    _key(cli, monkeypatch, "alice", [right, "q"])
    code, out, _ = _key(cli, monkeypatch, "bob", [wrong, "q"])
    assert "entries disagree" in out
    code, out, _ = cli("review", "--json")
    item = [i for i in json.loads(out)["items"] if i["id"] == first["id"]][0]
    assert item["entries"] == 2 and item["operators"] == ["alice", "bob"]
    code, out, _ = _key(cli, monkeypatch, "carol", [right, "q"])
    assert "settled" in out


def test_same_operator_twice_only_when_configured(queued, cli, monkeypatch):
    settings, meant = queued
    code, out, _ = cli("review", "--json")
    items = json.loads(out)["items"]
    person_of = {k["kit_id"]: k["person_id"] for k in json.loads(cli("kits", "list", "--json")[1])["kits"]}
    first = meant[(person_of[items[0]["kit"]], "self")]
    _key(cli, monkeypatch, "alice", [first, "q"])
    code, out, _ = _key(cli, monkeypatch, "alice", ["q"])
    assert "no review items left for alice" not in out or len(items) == 1   # her own item is not offered again
    config_path = settings.config_path
    config_path.write_text(config_path.read_text(encoding="utf-8").replace(
        "allow_same_operator = false", "allow_same_operator = true"), encoding="utf-8")
    code, out, _ = _key(cli, monkeypatch, "alice", [first, "q"])
    assert "settled" in out
    remaining = json.loads(cli("review", "--json")[1])["items"]
    assert len(remaining) == len(items) - 1 and items[0]["id"] not in {i["id"] for i in remaining}
    assert number.is_valid_digits(first)


def test_two_operators_keying_the_same_item_at_once_settle_it_once(queued):
    """Both entries arrive together. Each transaction must see the other's entry (the writers serialise on the
    chain head), so one waits and the other settles; unserialised on PostgreSQL, both would see no entry yet
    and the item would stay open with two agreeing entries."""
    import threading

    from pipeline.track import audit, review
    from pipeline.track.models import ReviewItem
    from pipeline.track.sealed import Sealer

    settings, meant = queued
    with db.session_scope(settings.db_url) as s:
        item = s.scalars(select(ReviewItem).order_by(ReviewItem.id)).first()
        item_id = item.id
    typed = next(iter(meant.values()))
    outcomes, errors = [], []

    def key(operator):
        try:
            with db.session_scope(settings.db_url) as s:
                outcomes.append(review.submit(s, Sealer(settings), item_id, typed, operator=operator,
                                              allow_same_operator=False).outcome)
        except Exception as exc:  # reported below; a thread's exception would otherwise vanish
            errors.append(exc)

    with db.session_scope(settings.db_url) as gate:
        audit.serialise_writers(gate)           # hold the writers' lock until both operators are waiting
        threads = [threading.Thread(target=key, args=(op,)) for op in ("alice", "bob")]
        for t in threads:
            t.start()
        time.sleep(1.0)
    for t in threads:
        t.join(60)
    assert not errors, errors
    with db.session_scope(settings.db_url) as s:
        item = s.get(ReviewItem, item_id)
        settled_events = s.scalars(select(Event).where(Event.action == "review.settled")).all()
    assert sorted(outcomes) == ["settled", "waiting"]
    assert item.state == "settled" and len(settled_events) == 1
