"""Two scan processes on one PostgreSQL database at once: every page recorded once, every event kept.

Each process starts with a file of its own holding another scan of the same forms (so both record the same kit
page and the same kit's receipt at the same moment), then both scan the same file (racing to record the very
same pages and to assign the same untagged page). Whatever the interleaving, the end state must be the one a
single process would leave.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select, text

from pipeline import db, layout
from pipeline.kit.compose import fields_in_use
from pipeline.track import audit
from pipeline.track.models import ChainHead, Document, Event, Kit, NumberRecord, ScannedPage
from tests import idcards, scansim
from tests.conftest import TEST_DB
from tests.test_scan import ROSTER

pytestmark = pytest.mark.skipif(TEST_DB != "postgresql", reason="the PostgreSQL pass runs it "
                                "(MYNUMBER_TEST_DB=postgresql; scripts/test.sh does)")

DPI = 300
DEPENDENTS = {"E0001": 2, "E0002": 0, "P0001": 0, "E0003": 4}   # kits/examples/roster.csv


def _returned_pages(tmp_path, rows, rng) -> dict[tuple[str, str, int], object]:
    """Every form a person fills in and sends back, filled in with printed digits, ticked and signed:
    (person_id, document, doc_page) -> the page image before scanning."""
    kit_layout = layout.load()
    filled = {}
    for i, row in enumerate(rows):
        document, doc_page = row["document"], int(row["doc_page"])
        if document not in ("provision_form", "delegation_agreement"):
            continue
        page_layout = kit_layout.documents[document].page(doc_page)
        img = scansim.rasterise(tmp_path / "kits.pdf", i, DPI)
        for f in page_layout.number_fields:
            if f.field in fields_in_use(document, doc_page, DEPENDENTS[row["person_id"]]):
                scansim.write_digits(img, page_layout, f.field, scansim.random_valid_number(rng), DPI,
                                     style="printed", rng=rng)
        if "consent" in page_layout.checkboxes:
            scansim.tick_checkbox(img, page_layout, "consent", DPI, rng)
        for name in page_layout.signatures:
            scansim.sign(img, page_layout, name, DPI, rng)
        filled[(row["person_id"], document, doc_page)] = img
    return filled


def _scan(img, rng, rotate: int):
    return scansim.degrade(img, DPI, rng, rotate=rotate, skew_deg=float(rng.uniform(-2, 2)), noise=4.0,
                           jpeg_quality=85)


def _scan_process(home, files, name, tmp_path):
    env = {**os.environ, "MYNUMBER_HOME": str(home.home), "MYNUMBER_DB_URL": home.db_url,
           "MYNUMBER_USER": "mailroom", "OMP_THREAD_LIMIT": "1"}
    with (tmp_path / f"scan_{name}.jsonl").open("w") as out, (tmp_path / f"scan_{name}.err").open("w") as err:
        return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "scan", *map(str, files), "--json"],
                                env=env, stdout=out, stderr=err)


def _waiting_for_a_lock(url: str) -> int:
    """Sessions of this database blocked on a lock (a new transaction each time: the view is per transaction)."""
    with db.engine_for(url).connect() as conn:
        return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND wait_event_type = 'Lock'")).scalar_one()


def test_two_scan_processes_at_once_record_every_page_and_event_once(home, cli, tmp_path):
    code, _, err = cli("kits", "print", ROSTER, "--out", tmp_path / "kits.pdf", "--manifest",
                       tmp_path / "manifest.csv")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "manifest.csv").open(encoding="utf-8")))
    kit_of = {r["person_id"]: r["kit_id"] for r in rows}
    rng = np.random.default_rng(6)
    paper = _returned_pages(tmp_path, rows, rng)
    loose_id = Image.new("L", (2480, 3508), 255)
    loose_id.paste(idcards.make_sample("card_back", seed=5).image.convert("L"), (300, 400))

    # Each process first scans a file of its own: other scans of the same three forms, so both record the same
    # kit pages and the same kits' receipts from different files. Then both scan the same file, racing to record
    # the very same pages; it starts with an untagged ID copy that both hold as unassigned until the next tagged
    # page, and then both try to assign it to that page's kit.
    own = [paper["P0001", "provision_form", 1], paper["E0003", "provision_form", 2],
           paper["E0003", "delegation_agreement", 1]]
    shared = [loose_id, paper["E0001", "provision_form", 1], paper["E0001", "delegation_agreement", 1],
              paper["E0002", "provision_form", 1], paper["E0003", "provision_form", 1]]
    files = {}
    # The two scans of a form differ only in noise and skew, so both processes spend about as long on them and
    # keep reaching the database together after the first page.
    for name, pages in (("own_a", own), ("own_b", own), ("shared", shared)):
        files[name] = scansim.make_scan_pdf([_scan(p, rng, rotate=90 * (i % 4)) for i, p in enumerate(pages)],
                                            tmp_path / f"{name}.pdf")

    # The test holds the event chain's head (the lock every page's transaction takes) until both processes are
    # waiting for it with their first page in hand, so their first pages (two scans of one form) are recorded
    # at the same moment.
    procs = {}
    try:
        with db.session_scope(home.db_url) as gate:
            gate.execute(select(ChainHead).where(ChainHead.id == 1).with_for_update()).scalar_one()
            procs = {"a": _scan_process(home, [files["own_a"], files["shared"]], "a", tmp_path),
                     "b": _scan_process(home, [files["own_b"], files["shared"]], "b", tmp_path)}
            deadline = time.monotonic() + 600
            while _waiting_for_a_lock(home.db_url) < 2 and all(p.poll() is None for p in procs.values()):
                assert time.monotonic() < deadline, "the scan processes never reached the database"
                time.sleep(0.2)
        for proc in procs.values():
            proc.wait(timeout=600)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for name, proc in procs.items():
        errors = (tmp_path / f"scan_{name}.err").read_text()
        assert proc.returncode == 0, f"scan process {name} failed:\n{errors}"
        assert "Traceback" not in errors
    out = {name: [json.loads(line) for line in (tmp_path / f"scan_{name}.jsonl").read_text().splitlines()]
           for name in procs}
    summaries = {name: lines[-1]["summary"] for name, lines in out.items()}

    # Each page was recorded by exactly one of the two processes, and skipped by the other where both had it.
    pages_total = len(shared) + 2 * len(own)
    assert sum(s["pages"] for s in summaries.values()) == pages_total, summaries
    assert sum(s["already_recorded"] for s in summaries.values()) == len(shared), summaries
    assert summaries["a"]["pages"] >= len(own) and summaries["b"]["pages"] >= len(own)
    assert not any(s["problems"] for s in summaries.values()), summaries

    with db.session_scope(home.db_url) as s:
        result = audit.verify(s)
        assert result.ok, result.problem
        seqs = s.scalars(select(Event.seq).order_by(Event.seq)).all()
        assert seqs == list(range(1, len(seqs) + 1)) and result.events == len(seqs)
        actions = Counter(s.scalars(select(Event.action)).all())
        received = Counter(s.scalars(select(Event.object_id).where(Event.action == "kit.received")).all())
        code_of = {k.id: k.code for k in s.scalars(select(Kit))}
        pages = s.scalars(select(ScannedPage)).all()
        records = [(code_of[r.kit_id], r.field, r.status) for r in s.scalars(select(NumberRecord))]
        number_events = Counter((e.object_id, e.details["field"]) for e in s.scalars(
            select(Event).where(Event.action.like("number.%"))))
        documents = s.scalars(select(Document.scanned_page_id)).all()
        pages_per_event = Counter((e.details["file"], e.details["page"]) for e in s.scalars(
            select(Event).where(Event.action.in_(("page.received", "page.duplicate", "page.unassigned")))))
        assert s.scalar(select(func.count()).select_from(Kit)) == 4

    # Every page once: no two rows for one (file, page), every page of every file present.
    assert len({(p.source_sha256, p.page_index) for p in pages}) == len(pages) == pages_total
    assert Counter(p.source_name for p in pages) == {"shared.pdf": 5, "own_a.pdf": 3, "own_b.pdf": 3}
    statuses = Counter(p.status for p in pages)
    assert statuses == {"kit_page": 7, "duplicate": 3, "id_copy": 1}, statuses
    kit_pages = Counter((p.kit_id, p.document, p.doc_page) for p in pages if p.status == "kit_page")
    assert all(n == 1 for n in kit_pages.values())
    loose = next(p for p in pages if p.status == "id_copy")
    assert (loose.source_name, loose.page_index, code_of[loose.kit_id]) == ("shared.pdf", 1, kit_of["E0001"])
    # Every kit received once, each page's own event written once, one document per paper.
    assert received == {code: 1 for code in kit_of.values()}, received
    assert pages_per_event == {(p.source_name, p.page_index): 1 for p in pages}
    assert actions["page.received"] == 7 and actions["page.duplicate"] == 3
    assert actions["page.unassigned"] == 1 and actions["idcopy.assigned"] == 1
    assert len(documents) == len(set(documents)) == actions["document.received"] == 8
    # Number records: one per field of every returned form, each decided by exactly one event.
    expected_fields = {(kit_of[person], f) for (person, document, page) in paper
                       for f in fields_in_use(document, page, DEPENDENTS[person])}
    assert len(records) == len({(k, f) for k, f, _ in records})
    assert {(k, f) for k, f, _ in records} == expected_fields
    assert number_events == {key: 1 for key in expected_fields}
    assert all(status in ("accepted", "review") for _, _, status in records), records
