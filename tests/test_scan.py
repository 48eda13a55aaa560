"""Scan intake end to end: print kits, rasterise, fill, degrade like a scanner, shuffle, scan, check."""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pikepdf
import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import func, select

from pipeline import config, db, layout
from pipeline.track import audit
from pipeline.track.models import Event, Kit, NumberRecord, ScannedPage
from tests import idcards, scansim
from tests.conftest import TEST_USERS, add_users, shared

REPO = Path(__file__).resolve().parents[1]
ROSTER = REPO / "kits" / "examples" / "roster.csv"
DPI = 300


def _use_home(path: Path, monkeypatch) -> config.Settings:
    monkeypatch.setenv("MYNUMBER_HOME", str(path))
    monkeypatch.delenv("MYNUMBER_DB_URL", raising=False)
    return config.load()


def _print_kits(home: Path, out: Path) -> list[dict]:
    env = {**os.environ, "MYNUMBER_HOME": str(home), "MYNUMBER_USER": "hr"}
    env.pop("MYNUMBER_DB_URL", None)
    run = lambda *a: subprocess.run([sys.executable, "-m", "pipeline.cli", *a], env=env, check=True,
                                    capture_output=True, text=True)
    run("--as", "tester", "init")
    add_users(config.load(home), TEST_USERS)
    db.engine_for(config.database_url(home)).dispose()
    run("kits", "print", str(ROSTER), "--out", str(out / "kits.pdf"), "--manifest", str(out / "manifest.csv"))
    return list(csv.DictReader((out / "manifest.csv").open(encoding="utf-8")))


class Scenario:
    """Four kits returned in known ways; `truth[(kit, field)]` is what the person wrote."""

    def __init__(self, base: Path):
        self.base = base
        self.template = base / "template"
        self.rows = _print_kits(self.template, base)
        self.kit_of = {r["person_id"]: r["kit_id"] for r in self.rows}
        self.truth: dict[tuple[str, str], str] = {}
        self.rng = np.random.default_rng(2026)
        self.layout = layout.load()
        pages = {}   # kit -> list of (image, dpi, untagged)
        fill = {     # person -> how they returned their kit
            "E0001": dict(miswrite={"dependent2"}, consent=True, sign=True, loose_id="card_back"),
            "E0002": dict(consent=True, sign=False, pasted_id="notification"),
            "P0001": dict(refuse=True),
            "E0003": dict(consent=True, sign=True, loose_id="card_back"),
        }
        for i, row in enumerate(self.rows):
            how = fill[row["person_id"]]
            kit, document, doc_page = row["kit_id"], row["document"], int(row["doc_page"])
            if document in ("cover_letter", "notice_letter", "filler"):
                continue  # kept by the person
            if how.get("refuse") and document not in ("refusal_form", "envelope_label"):
                continue
            if document == "refusal_form" and not how.get("refuse"):
                continue
            if document == "id_copy_sheet" and "pasted_id" not in how:
                continue
            page_layout = self.layout.documents[document].page(doc_page)
            img = scansim.rasterise(base / "kits.pdf", i, DPI)
            for f in page_layout.number_fields:
                if f.field not in self._fields_in_use(row):
                    continue
                number = scansim.random_valid_number(self.rng)
                if f.field in how.get("miswrite", ()):
                    number = scansim.miswritten(number, self.rng)
                self.truth[(kit, f.field)] = number
                scansim.write_digits(img, page_layout, f.field, number, DPI, style="printed", rng=self.rng)
            if how.get("consent") and "consent" in page_layout.checkboxes:
                scansim.tick_checkbox(img, page_layout, "consent", DPI, self.rng)
            if document == "refusal_form":
                scansim.tick_checkbox(img, page_layout, "reason_unwilling", DPI, self.rng)
            if page_layout.signatures and (how.get("sign") or how.get("refuse")):
                for name in page_layout.signatures:
                    scansim.sign(img, page_layout, name, DPI, self.rng)
            if document == "id_copy_sheet":
                card = idcards.make_sample(how["pasted_id"], seed=7)
                scansim.paste_id_copy(img, page_layout.paste_areas["number_check"], DPI, card, rng=self.rng)
            pages.setdefault(kit, []).append((self._degrade(img), False))
            if how.get("loose_id") and document == "provision_form" and doc_page == 1:
                card = idcards.make_sample(how["loose_id"], seed=11 + i, rotation=0)
                a4 = Image.new("L", (2480, 3508), 255)
                a4.paste(card.image.convert("L"), (300, 400))
                pages[kit].append((self._degrade(a4, rotate=0), True))
        self.pages = pages
        # File 1 (PDF): kits of E0001 and P0001 interleaved; file 2 (TIFF): the other two kits one after another.
        a, b = pages[self.kit_of["E0001"]], pages[self.kit_of["P0001"]]
        interleaved = [a[0], a[1], b[0], a[2], b[1]] + a[3:] + b[2:]
        scansim.make_scan_pdf([p for p, _ in interleaved], base / "batch1.pdf")
        scansim.make_multipage_tiff([p for p, _ in pages[self.kit_of["E0002"]] + pages[self.kit_of["E0003"]]],
                                    base / "batch2.tif")
        self.files = [base / "batch1.pdf", base / "batch2.tif"]
        db.engine_for(config.database_url(self.template)).dispose()

    def _fields_in_use(self, row) -> list[str]:
        from pipeline.kit.compose import fields_in_use
        deps = {"E0001": 2, "E0002": 0, "P0001": 0, "E0003": 4}[row["person_id"]]
        return fields_in_use(row["document"], int(row["doc_page"]), deps)

    def _degrade(self, img, rotate=None):
        rotate = int(self.rng.choice([0, 90, 180, 270])) if rotate is None else rotate
        return scansim.degrade(img, DPI, self.rng, rotate=rotate, skew_deg=float(self.rng.uniform(-3, 3)),
                               noise=5.0, jpeg_quality=80, shift_mm=(float(self.rng.uniform(-2, 2)),
                                                                     float(self.rng.uniform(-2, 2))))

    def home(self, tmp_path: Path, monkeypatch) -> config.Settings:
        target = tmp_path / "home"
        shutil.copytree(self.template, target)
        return _use_home(target, monkeypatch)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return Scenario(tmp_path_factory.mktemp("scan-scenario"))


def _state(settings) -> dict:
    with db.session_scope(settings.db_url) as s:
        kits = {k.code: (k.state, tuple(k.missing or [])) for k in s.execute(select(Kit)).scalars()}
        fields = {(s.get(Kit, r.kit_id).code, r.field): r.status for r in s.execute(select(NumberRecord)).scalars()}
        pages = sorted((p.source_name, p.page_index, p.status, p.kit_id, p.document, p.doc_page)
                       for p in s.execute(select(ScannedPage)).scalars())
        actions = sorted(s.execute(select(Event.action, func.count()).group_by(Event.action)).all())
        assert audit.verify(s).ok
    return {"kits": kits, "fields": fields, "pages": pages, "actions": actions}


def test_round_trip_every_kit_and_number(scenario, tmp_path, monkeypatch, cli):
    settings = scenario.home(tmp_path, monkeypatch)
    code, out, err = cli("scan", *scenario.files, "--site", "本社", "--operator", "mailroom", "--json", actor="mailroom")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    summary = lines[-1]["summary"]
    assert summary["problems"] == []
    assert all(p["status"] in ("kit_page", "id_copy") for p in lines[:-1])
    k = scenario.kit_of
    state = _state(settings)
    assert state["kits"][k["P0001"]][0] == "refused"
    assert state["kits"][k["E0003"]] == ("complete", ())
    assert state["kits"][k["E0002"]] == ("incomplete", ("provision form: not signed",))
    assert state["kits"][k["E0001"]] == ("incomplete", ("number dependent2: miswritten, ask the person again",))
    for (kit, field), written in scenario.truth.items():
        expected = "miswritten" if (kit == k["E0001"] and field == "dependent2") else "accepted"
        assert state["fields"][(kit, field)] == expected, (kit, field)
    # loose ID copies were redacted and attached to the kit they were scanned with
    id_pages = [p for p in lines[:-1] if p["status"] == "id_copy"]
    assert {p["kit"] for p in id_pages} == {k["E0001"], k["E0003"]}
    assert all(p["checks"]["numbers_covered"] >= 1 and p["checks"]["proof_clean"] for p in id_pages)

    code, out, _ = cli("numbers", "export", "--out", tmp_path / "export.csv", actor="hr")
    assert code == 0
    exported = {(r["person_id"], r["field"]): r["number"]
                for r in csv.DictReader((tmp_path / "export.csv").open(encoding="utf-8"))}
    person_of = {v: p for p, v in k.items()}
    expected = {(person_of[kit], f): n for (kit, f), n in scenario.truth.items()
                if not (kit == k["E0001"] and f == "dependent2")}
    assert exported == expected

    code, out, _ = cli("kits", "status", "--json")
    status = {r["kit_id"]: r for r in json.loads(out)["kits"]}
    assert status[k["E0001"]]["fields"]["dependent2"] == "miswritten"
    assert status[k["E0003"]]["fields"] == {f: "accepted" for f in
                                            ("self", "dependent1", "dependent2", "dependent3", "dependent4")}


def test_numbers_never_appear_in_clear(scenario, tmp_path, monkeypatch, cli):
    settings = scenario.home(tmp_path, monkeypatch)
    code, out, err = cli("-v", "scan", *scenario.files, "--json")
    code2, out2, err2 = cli("kits", "status", "--json")
    db.engine_for(settings.db_url).dispose()
    blobs = [out, err, out2, err2]
    for path in settings.home.rglob("*"):
        if path.is_file():
            blobs.append(path.read_bytes().decode("latin-1"))
    for number in scenario.truth.values():
        for text in blobs:
            assert number not in text
            assert " ".join((number[:4], number[4:8], number[8:])) not in text
    leftovers = [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("*mynumber*") if p.stat().st_mtime > time.time() - 120]
    assert not [p for p in leftovers if p.suffix in (".png", ".jpg", ".tif", ".pdf")]


def test_rerun_is_a_no_op_and_a_killed_run_converges(scenario, tmp_path, monkeypatch, cli):
    reference = _use_home(shutil.copytree(scenario.template, tmp_path / "ref"), monkeypatch)
    assert cli("scan", *scenario.files)[0] == 0
    expected = _state(reference)
    code, out, _ = cli("scan", *scenario.files)
    assert code == 0 and "already recorded" in out
    assert _state(reference) == expected

    killed = _use_home(shutil.copytree(scenario.template, tmp_path / "killed"), monkeypatch)
    env = {**os.environ, "MYNUMBER_HOME": str(killed.home), "MYNUMBER_USER": "mailroom"}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "scan", *map(str, scenario.files)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        with db.session_scope(killed.db_url) as s:
            if s.scalar(select(func.count()).select_from(ScannedPage)) >= 4:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)  # worker processes die with their parent, not linger
    lingering = subprocess.run(["pgrep", "-f", f"pipeline.cli scan {scenario.files[0]}"], capture_output=True, text=True)
    assert lingering.stdout.strip() == ""
    with db.session_scope(killed.db_url) as s:
        partial = s.scalar(select(func.count()).select_from(ScannedPage))
    assert 0 < partial < len(expected["pages"])
    assert cli("scan", *scenario.files)[0] == 0
    assert _state(killed) == expected


def test_duplicate_page_changes_nothing(scenario, tmp_path, monkeypatch, cli):
    settings = scenario.home(tmp_path, monkeypatch)
    assert cli("scan", *scenario.files)[0] == 0
    before = _state(settings)
    again, _ = scenario.pages[scenario.kit_of["E0003"]][0]
    rescan = scansim.degrade(scansim.upright(again[0]), DPI, 5, rotate=180, noise=3.0, jpeg_quality=70)
    scansim.make_scan_pdf([rescan], tmp_path / "rescan.pdf")
    code, out, _ = cli("scan", tmp_path / "rescan.pdf", "--json")
    assert code == 0 and json.loads(out.splitlines()[0])["status"] == "duplicate"
    after = _state(settings)
    assert after["kits"] == before["kits"] and after["fields"] == before["fields"]


def _other_company_page(tmp_path: Path) -> Image.Image:
    _print_kits(tmp_path / "other-home", tmp_path)
    db.engine_for(config.database_url(tmp_path / "other-home")).dispose()
    return scansim.rasterise(tmp_path / "kits.pdf", 1, 200)


def test_bad_input_is_named_and_the_rest_of_the_batch_goes_on(scenario, tmp_path, monkeypatch, cli):
    settings = scenario.home(tmp_path, monkeypatch)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a-empty.pdf").write_bytes(b"")
    whole = scenario.files[0].read_bytes()
    (bad / "b-truncated.pdf").write_bytes(whole[: len(whole) // 3])
    with pikepdf.open(scenario.files[0]) as pdf:
        pdf.save(bad / "c-encrypted.pdf", encryption=pikepdf.Encryption(owner="o", user="secret"))
    (bad / "d-letter.docx").write_bytes(b"PK\x03\x04 not a scan")
    other = _other_company_page(tmp_path)
    code128 = Image.fromarray(np.asarray(
        zxingcpp.create_barcode("ASN0042", zxingcpp.BarcodeFormat.Code128).to_image(scale=4)))
    foreign = Image.new("L", (1700, 2200), 255)
    foreign.paste(code128, (200, 200))
    scansim.make_scan_pdf([(other, (200, 200)), (foreign, (200, 200))], bad / "e-other.pdf")
    code, out, err = cli("scan", *sorted(bad.iterdir()), scenario.files[1], "--json")
    assert code == 65
    lines = [json.loads(line) for line in out.splitlines()]
    by_file = {}
    for line in lines[:-1]:
        by_file.setdefault(line["file"], []).append(line)
    assert "a-empty.pdf" in err and "empty" in err
    assert "c-encrypted.pdf" in err and "encrypted" in err
    assert "d-letter.docx" in err
    assert by_file["e-other.pdf"][0]["status"] == "rejected_tag"
    assert "another" in by_file["e-other.pdf"][0]["message"]
    assert by_file["e-other.pdf"][1]["status"] == "foreign"
    assert "Traceback" not in err
    # the good file in the same batch was processed completely
    assert all(p["status"] in ("kit_page", "id_copy") for p in by_file["batch2.tif"])
    state = _state(settings)
    assert state["kits"][scenario.kit_of["E0003"]] == ("complete", ())


def test_hot_folder_moves_files_to_done_and_failed(scenario, tmp_path, monkeypatch, cli):
    scenario.home(tmp_path, monkeypatch)
    hot = tmp_path / "hot"
    hot.mkdir()
    shutil.copy(scenario.files[1], hot / "batch2.tif")
    (hot / "broken.pdf").write_bytes(b"%PDF-1.7 garbage")
    old = time.time() - 60
    for p in hot.iterdir():
        os.utime(p, (old, old))
    code, out, err = cli("scan", "--watch", hot, "--once")
    assert code == 0
    assert (hot / "done" / "batch2.tif").exists()
    assert (hot / "failed" / "broken.pdf").exists()
    reason = (hot / "failed" / "broken.pdf.reason.txt").read_text(encoding="utf-8")
    assert "broken.pdf" in reason
    assert not (hot / "batch2.tif").exists()


def test_outside_scans_are_foreign_or_refused_never_a_crash(home, cli, tmp_path):
    """Other systems' barcode sheets (paperless-ngx test files): foreign pages, or, where a 'scan' is really a
    typed PDF page without an image, a clear problem. Never a kit page, never a traceback."""
    folder = shared("scans", "paperless-ngx")
    expected = json.loads((folder / "expected_barcodes.json").read_text(encoding="utf-8"))["files"]
    files = [folder / name for name in sorted(expected)]
    code, out, err = cli("scan", *files, "--json")
    assert "Traceback" not in err
    pages = [json.loads(line) for line in out.splitlines()][:-1]
    assert pages
    for p in pages:
        assert p["status"] in ("foreign", "problem", "id_copy", "unassigned"), p
        if p["status"] == "problem":
            assert p["message"] and p["file"] and p["page"]
    tiffs = [p for p in pages if p["file"].endswith(".tiff")]
    assert tiffs and any(p["status"] == "foreign" for p in tiffs)


def test_qr_photos_from_other_projects_decode(tmp_path):
    from pipeline.scan import qr
    folder = shared("qr")
    images = sorted(folder.rglob("*.png"))[:60]
    decoded = expected = 0
    for image_path in images:
        truth = image_path.with_suffix(".txt")
        if not truth.exists():
            continue
        expected += 1
        codes = qr.find_all_codes(Image.open(image_path).convert("L"))
        if any(c.text.strip() == truth.read_text(encoding="utf-8", errors="replace").strip() for c in codes):
            decoded += 1
    assert expected >= 10
    assert decoded / expected >= 0.6, (decoded, expected)


def test_an_id_copy_whose_redaction_cannot_be_proven_is_not_stored(scenario, tmp_path, monkeypatch):
    """The proof is the redactor's (tests/test_redact.py); here: what the intake does when it fails."""
    from pipeline.redact.engine import RedactionFailed
    from pipeline.scan.intake import Intake

    class Unproven:
        proof_clean, numbers_covered, barcodes_covered = False, 1, 0

        def require_clean(self):
            raise RedactionFailed("a My Number is still readable after redaction; the page must not be stored")

    settings = scenario.home(tmp_path, monkeypatch)
    summary = Intake(settings, actor="mailroom", site=None, redact=lambda image, dpi: Unproven()).run(
        [scenario.files[0]])
    with db.session_scope(settings.db_url) as s:
        pages = s.execute(select(ScannedPage).where(ScannedPage.document.is_(None))).scalars().all()
        assert pages and all(p.status == "problem" and p.stored_file_id is None for p in pages)
        assert all("black it out by hand" in p.message for p in pages)
    assert any("could not be proven clean" in p for p in summary.problems)


def test_worker_processes_record_what_one_process_records(scenario, tmp_path, monkeypatch):
    """With worker processes, JPEG pages travel to them undecoded and are decoded there (a damaged one too):
    what is recorded must be what one process records."""
    import io

    from pipeline.scan import sources
    from pipeline.scan.intake import PARALLEL_FROM_PAGES, Intake

    pages = [p for kit_pages in scenario.pages.values() for p, untagged in kit_pages if not untagged]
    path = scansim.make_scan_pdf(pages + pages[:1], tmp_path / "long.pdf")
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        xobjects = pdf.pages[-1].Resources.XObject
        (name,) = list(xobjects.keys())
        raw = xobjects[name].read_raw_bytes()
        xobjects[name].write(raw[: len(raw) // 2], filter=pikepdf.Name.DCTDecode)
        pdf.save(path)
    assert len(pages) + 1 >= PARALLEL_FROM_PAGES
    assert all(isinstance(p, sources.EncodedPage) for p in sources.iter_pages(path, defer_jpeg=True))
    outcomes = []
    for workers in (0, 2):
        settings = _use_home(shutil.copytree(scenario.template, tmp_path / f"home-{workers}"), monkeypatch)
        out = io.StringIO()
        summary = Intake(settings, actor="mailroom", site=None, workers=workers).run([path], json_out=out)
        outcomes.append((out.getvalue(), _state(settings), summary.problems))
        db.engine_for(settings.db_url).dispose()
    assert outcomes[0] == outcomes[1]
    (problem,) = outcomes[0][2]
    assert f"page {len(pages) + 1}: the page's image data is damaged" in problem
