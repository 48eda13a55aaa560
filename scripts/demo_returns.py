"""Demo only: what people send back. Fills the returned pages of printed kits with random valid numbers (each
person's own by hand, dependents' typed), ticks and signatures, pastes a copy of the person's number card on the
ID-copy sheet, and degrades everything like a sheet-fed scan.
Usage: python scripts/demo_returns.py KITS.pdf MANIFEST.csv OUT_SCAN.pdf"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline import layout  # noqa: E402
from pipeline.kit.compose import fields_in_use  # noqa: E402
from tests import idcards, scansim  # noqa: E402

RETURNED = ("provision_form", "delegation_agreement", "envelope_label", "id_copy_sheet")


def main(kits_pdf: str, manifest: str, out: str) -> None:
    rng = np.random.default_rng(2026)
    rows = list(csv.DictReader(open(manifest, encoding="utf-8")))
    dependents = {}
    for r in rows:
        if r["document"] == "provision_form":
            page = layout.load().documents["provision_form"].page(int(r["doc_page"]))
            dependents[r["person_id"]] = max(dependents.get(r["person_id"], 0),
                                             max((int(f.field[9:]) for f in page.number_fields
                                                  if f.field.startswith("dependent")), default=0))
    numbers = {}   # (person, field) -> the number written on the form, and on the card copied for the kit
    pages = []
    for i, r in enumerate(rows):
        if r["document"] not in RETURNED:
            continue
        page_layout = layout.load().documents[r["document"]].page(int(r["doc_page"]))
        img = scansim.rasterise(kits_pdf, i, 300)
        for f in page_layout.number_fields:
            if any(f.field == name for name in fields_in_use(r["document"], int(r["doc_page"]), 8)):
                number = numbers.setdefault((r["person_id"], f.field), scansim.random_valid_number(rng))
                # the person's own by hand (the reader may be unsure, and the card copy settles it)
                scansim.write_digits(img, page_layout, f.field, number, 300, rng=rng,
                                     style="handwritten" if f.field == "self" else "printed")
        if "consent" in page_layout.checkboxes:
            scansim.tick_checkbox(img, page_layout, "consent", 300, rng)
        for name in page_layout.signatures:
            scansim.sign(img, page_layout, name, 300, rng)
        if r["document"] == "id_copy_sheet" and r["doc_page"] == "1":
            number = numbers.setdefault((r["person_id"], "self"), scansim.random_valid_number(rng))
            scansim.paste_id_copy(img, page_layout.paste_areas["number_check"], 300,
                                  idcards.make_sample("card_back", seed=i, digits=number), rng=rng)
        elif r["document"] == "id_copy_sheet":   # the optional page: the first dependent's notification card
            number = numbers.setdefault((r["person_id"], "dependent1"), scansim.random_valid_number(rng))
            scansim.paste_id_copy(img, page_layout.paste_areas["dependents_number_check"], 300,
                                  idcards.make_sample("notification", seed=i, digits=number), rng=rng, fill=0.5)
        pages.append(scansim.degrade(img, 300, rng, rotate=int(rng.choice([0, 90, 180, 270])),
                                     skew_deg=float(rng.uniform(-2, 2)), noise=4.0, jpeg_quality=80))
    scansim.make_scan_pdf(pages, out)
    print(f"{len(pages)} returned pages 'scanned' into {out}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
