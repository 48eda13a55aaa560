"""Scan intake throughput: pages per minute and peak memory for mixed batches of returned kits at 300 dpi.

Kits are printed for a synthetic roster, the pages people return are rasterised, filled with printed
numbers, ticked, signed, degraded like a sheet-fed scan (rotation, skew, noise, JPEG) and shuffled by kit into
one scanner PDF. Loose ID copies are left out of the main figure (their redaction is measured by
bench/bench_redact.py) and measured in a second row. Each scan runs in its own process so its peak memory is
its own. Usage:
    .venv/bin/python -m bench.bench_scan [--pages 100 500] [--with-id-copies]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

CACHE = Path(tempfile.gettempdir()) / "mynumber-bench-scan"
DPI = 300
RETURNED = ("provision_form", "delegation_agreement", "envelope_label", "refusal_form")


def _fill_page(args):
    pdf, index, document, doc_page, fields, seed = args
    from pipeline import layout
    from tests import scansim
    rng = np.random.default_rng(seed)
    page_layout = layout.load().documents[document].page(doc_page)
    img = scansim.rasterise(pdf, index, DPI)
    for field in fields:
        scansim.write_digits(img, page_layout, field, scansim.random_valid_number(rng), DPI, style="printed", rng=rng)
    if "consent" in page_layout.checkboxes:
        scansim.tick_checkbox(img, page_layout, "consent", DPI, rng)
    for name in page_layout.signatures:
        scansim.sign(img, page_layout, name, DPI, rng)
    scan, dpi = scansim.degrade(img, DPI, rng, rotate=int(rng.choice([0, 90, 180, 270])),
                                skew_deg=float(rng.uniform(-3, 3)), noise=5.0, jpeg_quality=80)
    return scan, dpi


def _id_copy(seed):
    from PIL import Image
    from tests import idcards, scansim
    card = idcards.make_sample("card_back", seed=seed)
    page = Image.new("L", (2480, 3508), 255)
    page.paste(card.image.convert("L"), (300, 400))
    return scansim.degrade(page, DPI, seed, noise=4.0, jpeg_quality=80)


def build_batch(pages: int, with_id_copies: bool) -> Path:
    """A data home with printed kits and a scan PDF of about `pages` returned pages (cached between runs)."""
    from bench.common import synthetic_roster
    from pipeline.kit.compose import fields_in_use
    from tests import scansim
    folder = CACHE / f"{pages}{'-id' if with_id_copies else ''}"
    if (folder / "scan.pdf").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    people = max(4, pages // 3)
    roster = synthetic_roster(folder / "roster.csv", people, seed=pages)
    env = {**os.environ, "MYNUMBER_HOME": str(folder / "home")}
    env.pop("MYNUMBER_DB_URL", None)
    env.pop("MYNUMBER_USER", None)
    # as an office would: the administrator adds a handler, a manager appoints and trains them, they print
    for args in (["--as", "bench", "init"], ["--as", "bench", "users", "add", "hr", "--role", "handler"],
                 ["--as", "bench", "users", "add", "boss", "--role", "manager"],
                 ["--as", "boss", "users", "appoint", "hr"], ["--as", "boss", "users", "train", "hr"],
                 ["--as", "hr", "kits", "print", str(roster), "--out", str(folder / "kits.pdf"), "--manifest",
                  str(folder / "manifest.csv")]):
        done = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"building the batch: `mynumber {' '.join(args[:4])}` failed: {done.stderr.strip()}")
    rows = list(csv.DictReader((folder / "manifest.csv").open(encoding="utf-8")))
    deps = {}
    for line in roster.read_text(encoding="utf-8").splitlines()[1:]:
        cells = line.split(",")
        deps[cells[0]] = len([d for d in cells[7].split(";") if d])
    tasks, kit_of_task = [], []
    for i, r in enumerate(rows):
        if r["document"] not in RETURNED or (r["document"] == "refusal_form" and hash(r["kit_id"]) % 4):
            continue
        fields = fields_in_use(r["document"], int(r["doc_page"]), deps[r["person_id"]])
        tasks.append((str(folder / "kits.pdf"), i, r["document"], int(r["doc_page"]), fields, i))
        kit_of_task.append(r["kit_id"])
        if len(tasks) >= pages:
            break
    with ProcessPoolExecutor(2) as pool:
        scans = list(pool.map(_fill_page, tasks, chunksize=4))
        if with_id_copies:
            extra = list(pool.map(_id_copy, range(len(tasks) // 5)))
    if with_id_copies:  # one loose ID copy after every fifth page, as stapled behind a form
        mixed = []
        for i, s in enumerate(scans):
            mixed.append(s)
            if i % 5 == 4 and extra:
                mixed.append(extra.pop())
        scans = mixed
    scansim.make_scan_pdf(scans, folder / "scan.pdf")
    return folder


def one_scan(folder: str) -> dict:
    from bench.common import peak_rss_mb, reset_peak_rss
    reset_peak_rss()
    from pipeline import config
    from pipeline.scan.intake import Intake
    home = Path(tempfile.mkdtemp(prefix="mynumber-bench-home-"))
    shutil.rmtree(home)
    shutil.copytree(Path(folder) / "home", home)
    os.environ["MYNUMBER_HOME"] = str(home)
    from pipeline.commands.init import initialise
    initialise(config.load(), "bench")   # a cached home may predate the newest migration
    try:
        intake = Intake(config.load(), actor="bench", site="本社")
        t0 = time.perf_counter()
        summary = intake.run([Path(folder) / "scan.pdf"])
        seconds = time.perf_counter() - t0
    finally:
        shutil.rmtree(home, ignore_errors=True)
    s = summary.as_dict()["summary"]
    return {"pages": s["pages"], "seconds": seconds, "pages_per_minute": 60 * s["pages"] / seconds,
            "statuses": s["statuses"], "fields": s["fields"], "problems": len(s["problems"]),
            "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--with-id-copies", action="store_true", help="also a batch with loose ID copies (redaction)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_scan(args.one)))
        return
    from bench.common import table
    rows = []
    variants = [(n, False) for n in args.pages] + ([(args.pages[0], True)] if args.with_id_copies else [])
    for pages, with_ids in variants:
        folder = build_batch(pages, with_ids)
        out = subprocess.run([sys.executable, "-m", "bench.bench_scan", "--one", str(folder)], check=True,
                             capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        fields = r["fields"]
        rows.append([r["pages"], "yes" if with_ids else "no", f"{r['seconds']:.1f}", f"{r['pages_per_minute']:.0f}",
                     f"{r['peak_rss_mb']:.0f}", fields.get("accepted", 0), fields.get("review", 0), r["problems"]])
    print(table("scan intake, 300 dpi JPEG scanner PDF, 2 cores",
                ["pages", "ID copies", "seconds", "pages/min", "peak RSS MB", "fields accepted", "fields review",
                 "problems"], rows))
    print("target: >= 600 pages/min; peak memory bounded (not growing with the batch)")


if __name__ == "__main__":
    main()
