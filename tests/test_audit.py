"""The audit log end to end: a real chain built by real commands, tampered with directly in the database (each
kind of tampering detected, naming the first bad event), anchors and the stamped digest, and the history, log
and access queries in all three formats. Tampering runs on SQLite and on PostgreSQL."""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from sqlalchemy import delete, select, text, update

from pipeline import config, db, layout
from pipeline.track import audit
from pipeline.track.models import ChainHead, Event
from tests import pg, scansim

REPO = Path(__file__).resolve().parents[1]
ROSTER = REPO / "kits" / "examples" / "roster.csv"
NUMBER = "123456789018"          # what E0002 writes on the form; must never show in audit output
DATABASES = ("sqlite", "postgresql")


# --- building a real chain -----------------------------------------------------------------------------------

@dataclass
class World:
    home: Path
    url: str | None                  # MYNUMBER_DB_URL, None for the home's SQLite
    base: Path
    kit_of: dict[str, str]           # person_id -> kit code

    @property
    def settings(self) -> config.Settings:
        return config.load(self.home)


def _run(*argv, actor: str) -> tuple[int, str, str]:
    """`mynumber` in-process, for fixtures wider than one test (the `cli` fixture needs capsys)."""
    from pipeline.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--as", actor, *map(str, argv)])
    assert code == 0, (argv, err.getvalue())
    return code, out.getvalue(), err.getvalue()


def build_chain(base: Path, *, returns: bool) -> World:
    """Users, kits printed for the example roster and sent; with `returns`, E0002's provision form comes back
    (scanned: kit received, document, accepted number), the document travels to head office, and the
    number is exported and revealed."""
    from pipeline.commands.init import initialise
    settings = config.load()
    initialise(settings, "admin")
    for name, role in (("hr", "handler"), ("mail", "mailroom"), ("mail2", "mailroom"), ("boss", "manager"),
                       ("audra", "auditor")):
        _run("users", "add", name, "--role", role, actor="admin")
    _run("users", "appoint", "hr", actor="boss")
    _run("users", "train", "hr", actor="boss")
    _run("kits", "print", ROSTER, "--out", base / "kits.pdf", "--manifest", base / "manifest.csv", actor="hr")
    rows = list(csv.DictReader((base / "manifest.csv").open(encoding="utf-8")))
    kit_of = {r["person_id"]: r["kit_id"] for r in rows}
    sent = base / "sent.csv"
    sent.write_text("kit_id,carrier,tracking_number\n"
                    + "".join(f"{k},簡易書留,TRK-{k}\n" for k in kit_of.values()), encoding="utf-8")
    _run("kits", "send", "--manifest", sent, actor="mail")
    if returns:
        kit_layout, rng = layout.load(), np.random.default_rng(6)
        pages = []
        for i, row in enumerate(rows):
            if row["person_id"] == "E0002" and row["document"] == "provision_form":
                page_layout = kit_layout.documents["provision_form"].page(int(row["doc_page"]))
                image = scansim.rasterise(base / "kits.pdf", i, 200)
                scansim.write_digits(image, page_layout, "self", NUMBER, 200, style="printed", rng=rng)
                scansim.tick_checkbox(image, page_layout, "consent", 200, rng)
                for name in page_layout.signatures:
                    scansim.sign(image, page_layout, name, 200, rng)
                pages.append((image, (200, 200)))
        scansim.make_scan_pdf(pages, base / "return.pdf")
        _run("scan", base / "return.pdf", "--site", "大阪支店", actor="mail")
        _run("transfer", "send", "--from", "大阪支店", "--to", "本社", "--carrier", "社内便", "--documents", "D0000001",
             actor="mail")
        _run("transfer", "receive", "T0000001", "--site", "本社", actor="mail2")
        _run("numbers", "export", "--out", base / "export.csv", "--reason", "給与システム取込", actor="hr")
        _run("numbers", "reveal", "E0002", "--reason", "本人からの問い合わせ", actor="hr")
    return World(settings.home, os.environ.get("MYNUMBER_DB_URL"), base, kit_of)


@contextlib.contextmanager
def database(kind: str, home: Path, patch: pytest.MonkeyPatch):
    patch.setenv("MYNUMBER_HOME", str(home))
    if kind == "sqlite":
        patch.delenv("MYNUMBER_DB_URL", raising=False)
        yield None
        db.engine_for(config.database_url(home)).dispose()
        return
    if not pg.available():
        pytest.skip("PostgreSQL is not installed")
    url = pg.fresh_database()
    patch.setenv("MYNUMBER_DB_URL", url)
    try:
        yield url
    finally:
        pg.drop_database(url)


@pytest.fixture(params=DATABASES)
def chain(request, tmp_path, monkeypatch) -> World:
    """A fresh chain of ~30 events (users, kits printed and sent) on SQLite or PostgreSQL, for one test."""
    with database(request.param, tmp_path / "home", monkeypatch):
        yield build_chain(tmp_path, returns=False)


@pytest.fixture(scope="module", params=DATABASES)
def built_world(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"audit-world-{request.param}")
    with pytest.MonkeyPatch.context() as patch, database(request.param, base / "home", patch):
        yield build_chain(base, returns=True)


@pytest.fixture
def world(built_world, monkeypatch) -> World:
    """The module's chain with a returned kit, read by the query tests (they only add events, never edit)."""
    monkeypatch.setenv("MYNUMBER_HOME", str(built_world.home))
    if built_world.url:
        monkeypatch.setenv("MYNUMBER_DB_URL", built_world.url)
    else:
        monkeypatch.delenv("MYNUMBER_DB_URL", raising=False)
    monkeypatch.setenv("TZ", "Asia/Tokyo")   # times are shown in local time with the offset
    time.tzset()
    yield built_world
    monkeypatch.undo()
    time.tzset()


# --- tampering helpers ---------------------------------------------------------------------------------------

def _events(world: World) -> list[Event]:
    with db.session_scope(world.settings.db_url) as s:
        return list(s.execute(select(Event).order_by(Event.seq)).scalars())


def _seq_of(world: World, action: str, object_id: str | None = None) -> int:
    for e in _events(world):
        if e.action == action and (object_id is None or e.object_id == object_id):
            return e.seq
    raise AssertionError(f"no {action} event")


def _tamper(world: World, *statements) -> None:
    with db.session_scope(world.settings.db_url) as s:
        for statement in statements:
            s.execute(statement)


def _json_param(world: World) -> str:
    return "CAST(:d AS json)" if world.url else ":d"


def _broken_at(cli, seq: int, *anchors) -> str:
    args = ["audit", "verify"] + [a for anchor in anchors for a in ("--anchor", anchor)]
    code, out, err = cli(*args, actor="boss")
    assert code == 4, (out, err)
    assert f"audit log broken at event seq {seq}:" in err, err
    return err


def _intact(cli, *anchors) -> str:
    args = ["audit", "verify"] + [a for anchor in anchors for a in ("--anchor", anchor)]
    code, out, err = cli(*args, actor="boss")
    assert code == 0, err
    assert out.startswith("audit log intact:"), out
    return out


def _anchor(cli, world: World, name: str = "anchor.json") -> tuple[Path, dict]:
    path = world.base / name
    code, out, err = cli("audit", "anchor", "--out", path, actor="boss")
    assert code == 0, err
    return path, json.loads(path.read_text(encoding="utf-8"))


def _relink(world: World, from_seq: int, *, head: bool = True) -> None:
    """What a careful forger does: recompute every hash from `from_seq` on (and the head row)."""
    with db.session_scope(world.settings.db_url) as s:
        prev = s.execute(select(Event.hash).where(Event.seq == from_seq - 1)).scalar_one()
        for event in s.execute(select(Event).where(Event.seq >= from_seq).order_by(Event.seq)).scalars():
            event.prev_hash, event.hash = prev, audit.link(prev, event)
            prev = event.hash
        if head:
            s.execute(update(ChainHead).where(ChainHead.id == 1).values(hash=prev))


# --- tampering -----------------------------------------------------------------------------------------------

def test_a_clean_chain_verifies(chain, cli):
    out = _intact(cli)
    events = _events(chain)
    assert f"{len(events):,} events, head seq {events[-1].seq} hash {events[-1].hash}" in out
    path, anchor = _anchor(cli, chain)
    out = _intact(cli, path, f"{anchor['seq']}:{anchor['hash']}")
    assert f"reaches anchor {path}" in out


@pytest.mark.parametrize("field", ["details", "actor", "at", "object_id", "action"])
def test_an_edited_event_is_named(chain, cli, field):
    seq = _seq_of(chain, "kit.sent", chain.kit_of["E0003"])
    before = next(e for e in _events(chain) if e.seq == seq)
    if field == "details":
        change = text(f"UPDATE events SET details = {_json_param(chain)} WHERE seq = :s").bindparams(
            d=json.dumps({**before.details, "tracking_number": "FORGED"}), s=seq)
    elif field == "at":
        shifted = before.at.replace(microsecond=(before.at.microsecond + 1) % 10**6)
        change = update(Event).where(Event.seq == seq).values(at=shifted)
    else:
        change = update(Event).where(Event.seq == seq).values({field: getattr(before, field) + "x"})
    _tamper(chain, change)
    err = _broken_at(cli, seq)
    assert "altered" in err


def test_a_deleted_event_is_named(chain, cli):
    seq = _seq_of(chain, "kit.sent", chain.kit_of["E0001"])
    _tamper(chain, delete(Event).where(Event.seq == seq))
    err = _broken_at(cli, seq)
    assert f"event seq {seq} is missing" in err


def test_an_inserted_event_with_a_recomputed_hash_is_named(chain, cli):
    """The forger renumbers everything after seq k and slips in a well-formed event k+1 that links to k."""
    k = _seq_of(chain, "kit.sent", chain.kit_of["E0001"])
    _tamper(chain, update(Event).where(Event.seq > k).values(seq=-(Event.seq + 1)),
            update(Event).where(Event.seq < 0).values(seq=-Event.seq),
            update(ChainHead).where(ChainHead.id == 1).values(seq=ChainHead.seq + 1))
    with db.session_scope(chain.settings.db_url) as s:
        previous = s.execute(select(Event).where(Event.seq == k)).scalar_one()
        forged = Event(seq=k + 1, at=previous.at, actor="mail", action="kit.sent", object_type="kit",
                       object_id=chain.kit_of["E0002"], site="大阪支店",
                       details={"carrier": "hand_over", "tracking_number": None}, prev_hash=previous.hash)
        forged.hash = audit.link(previous.hash, forged)
        s.add(forged)
    err = _broken_at(cli, k + 1)
    assert "inserted" in err


def test_swapped_events_are_named(chain, cli):
    a = _seq_of(chain, "kit.printed")
    b = a + 2
    _tamper(chain, update(Event).where(Event.seq == a).values(seq=-1),
            update(Event).where(Event.seq == b).values(seq=a),
            update(Event).where(Event.seq == -1).values(seq=b))
    err = _broken_at(cli, a)
    assert "moved" in err or "altered" in err


def test_an_event_rewritten_with_its_own_hash_recomputed_is_named(chain, cli):
    seq = _seq_of(chain, "kit.sent", chain.kit_of["P0001"])
    with db.session_scope(chain.settings.db_url) as s:
        event = s.execute(select(Event).where(Event.seq == seq)).scalar_one()
        event.details = {**event.details, "carrier": "hand_over"}
        event.hash = audit.link(event.prev_hash, event)
    err = _broken_at(cli, seq)
    assert f"seq {seq} was replaced or altered and its hash recomputed" in err


def test_truncation_is_caught_by_the_head_row_and_by_anchors(chain, cli):
    path, anchor = _anchor(cli, chain)
    last = anchor["seq"]
    _tamper(chain, delete(Event).where(Event.seq > last - 3))
    err = _broken_at(cli, last - 2)
    assert "removed from the end" in err
    # A forger who also rewinds the chain-head row leaves a chain that is consistent in itself...
    with db.session_scope(chain.settings.db_url) as s:
        new_last = s.execute(select(Event).order_by(Event.seq.desc()).limit(1)).scalar_one()
        s.execute(update(ChainHead).where(ChainHead.id == 1).values(seq=new_last.seq, hash=new_last.hash))
    _intact(cli)
    # ... but no longer reaches the anchored head, whether given as the file or as typed from the digest.
    err = _broken_at(cli, last - 2, path)
    assert f"recorded head seq {last}" in err and str(path) in err
    _broken_at(cli, last - 2, f"{anchor['seq']}:{anchor['hash']}")


def test_a_rewritten_and_relinked_history_is_caught_by_an_anchor(chain, cli):
    path, anchor = _anchor(cli, chain)
    seq = _seq_of(chain, "kit.sent", chain.kit_of["E0002"])
    with db.session_scope(chain.settings.db_url) as s:
        event = s.execute(select(Event).where(Event.seq == seq)).scalar_one()
        event.details = {**event.details, "tracking_number": "REWRITTEN"}
    _relink(chain, seq)
    _intact(cli)                 # a perfect forgery of the database alone ...
    err = _broken_at(cli, anchor["seq"], path)     # ... does not match the head fixed outside it
    assert f"rewritten at or before seq {anchor['seq']}" in err


def test_events_added_behind_the_head_row_are_named(chain, cli):
    last = _events(chain)[-1]
    with db.session_scope(chain.settings.db_url) as s:
        extra = Event(seq=last.seq + 1, at=last.at, actor="mail", action="kit.received", object_type="kit",
                      object_id=chain.kit_of["E0001"], site="本社", details={}, prev_hash=last.hash)
        extra.hash = audit.link(last.hash, extra)
        s.add(extra)
    err = _broken_at(cli, last.seq + 1)
    assert "added outside the program" in err


def test_a_bad_anchor_file_is_refused(chain, cli):
    bad = chain.base / "not-an-anchor.json"
    bad.write_text('{"seq": 3}', encoding="utf-8")
    code, _, err = cli("audit", "verify", "--anchor", bad, actor="boss")
    assert code == 65 and "not an anchor file" in err
    code, _, err = cli("audit", "verify", "--anchor", chain.base / "missing.json", actor="boss")
    assert code == 65 and "no such file" in err


# --- canonical form on both databases ------------------------------------------------------------------------

TRICKY = {"quote": 'say "hi"', "backslash": "C:\\dir\\file", "controls": "tab\tnewline\nreturn\rbell\x07\x1f",
          "japanese": "佐藤 次郎（大阪支店）", "emoji": "📮", "separators": "\u2028\u2029\x7f", "empty": "",
          "nested": {"b": [1, 2.5, -0.0, 1e-7, 12345678901234567890, True, False, None], "a": {"z": 1, "y": []}},
          "float": 0.1, "big": 2**63, 3: "int key"}


def test_details_hash_the_same_on_sqlite_and_postgresql(chain, cli):
    """What append hashes is exactly what the database gives back, and the database builds the same canonical
    text itself (the fast path of verify) for every kind of value."""
    with db.session_scope(chain.settings.db_url) as s:
        for i in range(3):
            audit.append(s, actor=f"佐藤{i}\"\\", action="test.tricky", object_type="test", object_id=f"T{i}\n",
                         site=None if i else "本社\t", details=TRICKY)
    _intact(cli)
    with db.session_scope(chain.settings.db_url) as s:
        rows = [r for batch in audit.chain_material(s) for r in batch]
        stored = [audit.stored_row(s, r[0]) for r in rows]
    assert all(audit.row_matches(r) for r in stored)
    fast = [r[0] for r in rows if r[1] is not None and hashlib.sha256(r[1]).hexdigest() == r[3]]
    assert fast == [r[0] for r in rows], "the database-built canonical text differs for some events"


def test_events_stored_in_other_json_formatting_still_verify(chain, cli):
    """Chains written before JSON was stored canonically (Python's default formatting, ASCII escapes) verify
    through the careful path; a real change in them is still caught."""
    events = _events(chain)
    _tamper(chain, *[text(f"UPDATE events SET details = {_json_param(chain)} WHERE seq = :s")
                     .bindparams(d=json.dumps(e.details), s=e.seq) for e in events])
    _intact(cli)
    target = next(e for e in events if e.action == "kit.sent")
    _tamper(chain, text(f"UPDATE events SET details = {_json_param(chain)} WHERE seq = :s")
            .bindparams(d=json.dumps({**target.details, "carrier": "letterpack"}), s=target.seq))
    _broken_at(cli, target.seq)


# --- anchor and digest ---------------------------------------------------------------------------------------

def test_anchor_writes_the_head_and_a_digest_to_stamp(world, cli):
    out_file = world.base / "anchors" / "2026-head.json"
    code, out, err = cli("audit", "anchor", "--out", out_file, actor="boss")
    assert code == 0, err
    anchor = json.loads(out_file.read_text(encoding="utf-8"))
    last = _events(world)[-1]
    assert (anchor["seq"], anchor["hash"], anchor["count"]) == (last.seq, last.hash, len(_events(world)))
    assert last.action == "audit.anchored" and last.actor == "boss"
    assert anchor["at"].endswith("+09:00") and anchor["anchored_by"] == "boss"
    pdf_path = out_file.with_suffix(".pdf")
    assert pdf_path.exists() and not list(out_file.parent.glob(".*partial"))
    pdf = pdfium.PdfDocument(pdf_path)
    page_text = pdf[0].get_textpage().get_text_range()
    squeezed = "".join(page_text.split())
    assert squeezed.count(anchor["hash"]) >= 2          # in the big grouped rows and in the verify line
    lines = ["".join(line.split()) for line in page_text.splitlines()]
    assert anchor["hash"][:32] in lines and anchor["hash"][32:] in lines   # two rows of large digits
    assert "責任者印" in page_text and "署名" in page_text
    assert f"seq{anchor['seq']}" in squeezed or f"{anchor['seq']}:{anchor['hash']}" in squeezed
    for action in ("kit.printed", "kit.sent", "page.received", "numbers.exported", "audit.anchored"):
        assert action in page_text
    assert re.search(r"kit\.printed\s*4\b", page_text)
    width, height = pdf[0].get_size()
    assert (round(width), round(height)) == (595, 842)   # A4
    pdf.close()
    _intact(cli, out_file)


def test_anchor_refuses_to_bless_a_broken_chain(chain, cli):
    seq = _seq_of(chain, "kit.sent")
    _tamper(chain, delete(Event).where(Event.seq == seq))
    code, _, err = cli("audit", "anchor", "--out", chain.base / "a.json", actor="boss")
    assert code == 4 and f"seq {seq}" in err
    assert not (chain.base / "a.json").exists() and not (chain.base / "a.pdf").exists()


# --- history, log, access ------------------------------------------------------------------------------------

def _csv(out: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(out)))


def test_history_of_a_person_covers_kits_documents_and_number_access(world, cli):
    code, out, err = cli("audit", "history", "E0002", "--format", "json", actor="audra")
    assert code == 0, err
    data = json.loads(out)
    assert data["subject"] == {"kind": "person", "id": "E0002", "person_id": "E0002"}
    events = data["events"]
    actions = [e["action"] for e in events]
    for expected in ("person.created", "kit.printed", "kit.sent", "kit.received", "document.received",
                     "page.received", "number.accepted", "document.transferred", "transfer.sent",
                     "transfer.received", "numbers.exported", "number.revealed"):
        assert expected in actions, expected
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    kit = world.kit_of["E0002"]
    others = {world.kit_of[p] for p in ("E0001", "P0001", "E0003")} | {"E0001", "P0001", "E0003"}
    assert not [e for e in events if e["object"].split()[1] in others]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+09:00", e["time"]) for e in events)
    sent = next(e for e in events if e["action"] == "kit.sent")
    assert sent["object"] == f"kit {kit}" and sent["actor"] == "mail"
    assert sent["details"]["tracking_number"] == f"TRK-{kit}"

    code, out, _ = cli("audit", "history", "E0002", "--format", "csv", actor="audra")
    rows = _csv(out)
    assert list(rows[0]) == ["seq", "time", "actor", "action", "object", "site", "details"]
    assert [r["action"] for r in rows] == actions
    assert json.loads(rows[0]["details"]) == events[0]["details"]

    code, out, _ = cli("audit", "history", "E0002", actor="audra")
    lines = out.splitlines()
    assert lines[0] == f"history of person E0002: {len(events)} events"
    assert lines[1].split() == ["seq", "time", "actor", "action", "object", "site", "details"]
    assert len(lines) == 2 + len(events) and "+09:00" in lines[2]


def test_history_of_a_kit_and_of_a_document(world, cli):
    kit = world.kit_of["E0002"]
    code, out, _ = cli("audit", "history", kit, "--format", "json", actor="boss")
    data = json.loads(out)
    assert data["subject"]["kind"] == "kit" and data["subject"]["person_id"] == "E0002"
    actions = [e["action"] for e in data["events"]]
    assert actions[:2] == ["kit.printed", "kit.sent"] and "document.received" in actions
    assert "person.created" not in actions and "numbers.exported" not in actions

    code, out, _ = cli("audit", "history", "D0000001", "--format", "json", actor="boss")
    data = json.loads(out)
    assert data["subject"] == {"kind": "document", "id": "D0000001", "person_id": "E0002"}
    actions = [e["action"] for e in data["events"]]
    # its own events, its package, and the kit's events about this very page (not the kit's others)
    for expected in ("document.received", "page.received", "number.accepted", "document.transferred",
                     "transfer.sent", "transfer.received"):
        assert expected in actions, expected
    assert "kit.printed" not in actions and "kit.sent" not in actions

    code, _, err = cli("audit", "history", "K9999999", actor="boss")
    assert code == 66 and "K9999999" in err


def test_log_filters_by_time_actor_and_action(world, cli):
    code, out, err = cli("audit", "log", "--actor", "mail", "--action", "kit.", "--format", "csv", actor="audra")
    assert code == 0, err
    rows = _csv(out)
    assert rows and all(r["actor"] == "mail" and r["action"].startswith("kit.") for r in rows)
    assert {r["action"] for r in rows} >= {"kit.sent", "kit.received"}
    code, out, _ = cli("audit", "log", "--action", "kit.sent", "--format", "json", actor="audra")
    events = json.loads(out)["events"]
    assert len(events) == 4 and {e["action"] for e in events} == {"kit.sent"}
    code, out, _ = cli("audit", "log", "--action", "number*", "--action", "user.added", actor="audra")
    body = out.splitlines()[1:]
    assert body and all(re.search(r"\s(number\.\w+|numbers\.exported|user\.added)\s", line) for line in body)
    today = time.strftime("%Y-%m-%d")
    tomorrow = time.strftime("%Y-%m-%d", time.localtime(time.time() + 86400))
    yesterday = time.strftime("%Y-%m-%d", time.localtime(time.time() - 86400))
    code, out, _ = cli("audit", "log", "--from", today, "--to", today, "--format", "json", actor="audra")
    assert len(json.loads(out)["events"]) == len(_events(world))
    for window in (["--from", tomorrow], ["--to", yesterday]):
        code, out, _ = cli("audit", "log", *window, "--format", "json", actor="audra")
        assert json.loads(out)["events"] == []
    code, out, _ = cli("audit", "log", "--limit", "3", "--format", "csv", actor="audra")
    assert [r["seq"] for r in _csv(out)] == ["1", "2", "3"]


def test_access_report_names_who_saw_whose_number(world, cli):
    code, out, err = cli("audit", "access", "--format", "json", actor="audra")
    assert code == 0, err
    rows = json.loads(out)["access"]
    assert [(r["action"], r["actor"], r["person_id"]) for r in rows] == [
        ("numbers.exported", "hr", "E0002"), ("number.revealed", "hr", "E0002")]
    assert rows[0]["reason"] == "給与システム取込" and "export.csv" in rows[0]["via"]
    assert rows[1]["reason"] == "本人からの問い合わせ" and "self" in rows[1]["via"]
    code, out, _ = cli("audit", "access", "--person", "E0002", "--format", "csv", actor="audra")
    assert [r["action"] for r in _csv(out)] == ["numbers.exported", "number.revealed"]
    code, out, _ = cli("audit", "access", "--person", "E0001", "--format", "csv", actor="audra")
    assert _csv(out) == []
    code, out, _ = cli("audit", "access", "--actor", "hr", actor="audra")
    assert len(out.splitlines()) == 3 and "E0002" in out


def test_audit_output_never_shows_a_number(world, cli):
    outputs = []
    for args in (["history", "E0002"], ["log"], ["access"]):
        for fmt in ("table", "csv", "json"):
            code, out, err = cli("audit", *args, "--format", fmt, actor="audra")
            assert code == 0, err
            outputs += [out, err]
    code, out, err = cli("audit", "verify", actor="audra")
    outputs += [out, err]
    for blob in outputs:
        assert NUMBER not in blob and "1234 5678 9018" not in blob


def test_only_managers_and_auditors_read_the_audit_log(world, cli):
    code, _, err = cli("audit", "history", "E0002", actor="mail")
    assert code == 77
    refused = [e for e in _events(world) if e.action == "access.refused" and e.object_id == "audit.history"]
    assert refused and refused[-1].actor == "mail"
    _intact(cli)


@pytest.mark.parametrize("tampering", ["none", "edit", "delete", "truncate"])
def test_parallel_ranges_give_the_same_verdict_as_one_pass(chain, monkeypatch, tampering):
    """Long chains are checked in parallel ranges; any trouble there is re-walked in order, so the verdict and
    the named event are the same as one pass gives."""
    events = _events(chain)
    middle = events[len(events) // 2]
    if tampering == "edit":
        _tamper(chain, update(Event).where(Event.seq == middle.seq).values(actor="someone else"))
    elif tampering == "delete":
        _tamper(chain, delete(Event).where(Event.seq == events[len(events) // 3].seq))
    elif tampering == "truncate":
        _tamper(chain, delete(Event).where(Event.seq > events[-3].seq))
    anchors = [audit.Anchor(middle.seq, middle.hash, source="test")]
    monkeypatch.setattr(audit, "PARALLEL_FROM", 1)
    parallel_spans = []
    walk = audit._parallel_walk
    monkeypatch.setattr(audit, "_parallel_walk", lambda *a: parallel_spans.append(walk(*a)) or parallel_spans[-1])
    results = []
    for workers in (1, 3, 7):
        with db.session_scope(chain.settings.db_url) as s:
            results.append(audit.verify(s, workers=workers, anchors=anchors))
    assert results[0].ok == (tampering == "none")
    assert all(r == results[0] for r in results[1:]), results
    assert len(parallel_spans) == 2
    if tampering == "none":   # the parallel pass itself vouched for the chain (no re-walk needed)
        assert all(span is not None and span.count == len(events) for span in parallel_spans)


def test_history_says_which_object_when_an_id_is_ambiguous(world, cli, tmp_path):
    """A company's person id may look like one of our kit codes: the user is asked to say which one is meant."""
    kit = world.kit_of["E0001"]
    roster = tmp_path / "odd.csv"
    roster.write_text("person_id,name,postal_code,address,site,kind\n"
                      f"{kit},外部 講師,100-0001,東京都千代田区千代田1-1,本社,payee\n", encoding="utf-8")
    code, _, err = cli("roster", "import", roster, actor="hr")
    assert code == 0, err
    code, _, err = cli("audit", "history", kit, actor="audra")
    assert code == 2 and "both a kit and a person" in err and "--kind" in err
    code, out, _ = cli("audit", "history", kit, "--kind", "kit", "--format", "json", actor="audra")
    data = json.loads(out)
    assert data["subject"] == {"kind": "kit", "id": kit, "person_id": "E0001"}
    assert {e["action"] for e in data["events"]} >= {"kit.printed", "kit.sent"}
    code, out, _ = cli("audit", "history", kit, "--kind", "person", "--format", "json", actor="audra")
    data = json.loads(out)
    assert data["subject"]["kind"] == "person"
    assert [e["action"] for e in data["events"]] == ["person.created"]
    code, _, err = cli("audit", "history", "E0001", "--kind", "document", actor="audra")
    assert code == 66 and "no document 'E0001'" in err
