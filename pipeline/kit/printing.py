"""`kits print`: roster in, kits registered (state printed), one print-ready PDF and a manifest out.

The PDF is written to a temporary file beside the target and renamed at the end, so an interrupted run
leaves no half PDF; the kits it registered stay registered and a re-run prints the same kits again.
"""
from __future__ import annotations

import csv
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import config, db, layout as layout_mod, qrtag, vault
from ..errors import InputError
from ..progress import Progress
from ..track import service
from ..track.models import Kit, Person
from . import roster as roster_mod
from . import templates as templates_mod
from .pdfwriter import PdfWriter
from .render import PageContext, draw_page

FONT_PATH = Path(os.environ.get("MYNUMBER_FONT", "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"))
MANIFEST_COLUMNS = ("pdf_page", "kit_id", "person_id", "document", "doc_page")
CHUNK = 500


@dataclass
class PrintResult:
    kits: int
    pages: int
    skipped: list[tuple[str, str, str]]
    imported: service.ImportSummary | None


def company_values(settings: config.Settings, today: dt.date) -> dict[str, str]:
    c = settings.company
    return {"company_name": c.name, "department": c.department, "company_phone": c.phone,
            "company_address": c.address, "company_postal_code": c.postal_code,
            "return_address": c.return_address, "date": today.isoformat()}


def print_kits(settings: config.Settings, roster_path: Path, out_pdf: Path, *, manifest: Path | None,
               site: str | None, actor: str, progress: bool | None = None,
               today: dt.date | None = None) -> PrintResult:
    if not FONT_PATH.exists():
        raise InputError(f"the Japanese font {FONT_PATH} is missing: install fonts-ipaexfont-gothic "
                         "(scripts/setup.sh does)")
    layout = layout_mod.load()
    templates = templates_mod.load()
    tag_key = vault.load_key(settings.keys_dir, "tag")
    rows = roster_mod.read(roster_path)
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        imported = service.import_roster(session, rows, actor=actor, source=roster_path.name)
        registration = service.register_kits(
            session, [r.person_id for r in rows], layout, actor=actor, site=site,
            dependents_copies=bool(settings.section("kits").get("ask_for_dependents_copies", True)))
        codes = [k.code for k in registration.kits]
        total_pages = sum(k.pages for k in registration.kits)

    values = company_values(settings, today or dt.date.today())
    out_pdf.parent.mkdir(parents=True, exist_ok=True)
    tmp_pdf = out_pdf.with_name(f".{out_pdf.name}.partial")
    tmp_manifest = manifest.with_name(f".{manifest.name}.partial") if manifest else None
    bar = Progress(total_pages, "printing", enabled=progress)
    try:
        with PdfWriter(tmp_pdf, FONT_PATH, title="個人番号収集キット") as writer, \
                _manifest_writer(tmp_manifest) as manifest_rows:
            pdf_page = 0
            for start in range(0, len(codes), CHUNK):
                with db.session_scope(settings.db_url) as session:
                    kits = session.execute(
                        select(Kit).where(Kit.code.in_(codes[start:start + CHUNK]))
                        .options(selectinload(Kit.pages),
                                 selectinload(Kit.person).selectinload(Person.dependents))).scalars().all()
                    order = {c: i for i, c in enumerate(codes[start:start + CHUNK])}
                    kits.sort(key=lambda k: order[k.code])
                    for kit in kits:
                        person = kit.person
                        dependents = tuple(d.name for d in person.dependents)
                        kit_values = {**values, "name": person.name, "postal_code": person.postal_code,
                                      "address": person.address, "site": person.site, "kit_code": kit.code,
                                      "dependents": "、".join(dependents)}
                        for kp in kit.pages:
                            doc = layout.documents[kp.document]
                            payload = qrtag.encode(qrtag.Tag(kit.code, doc.code, kp.page, doc.fingerprint), tag_key)
                            ctx = PageContext(kit.code, kit_values, dependents, payload, kp.seq, len(kit.pages))
                            draw_page(writer, doc.page(kp.page), templates[kp.document], ctx)
                            pdf_page += 1
                            if manifest_rows is not None:
                                manifest_rows.writerow([pdf_page, kit.code, person.person_id, kp.document, kp.page])
                            bar.advance()
        os.replace(tmp_pdf, out_pdf)
        if manifest and tmp_manifest:
            os.replace(tmp_manifest, manifest)
    finally:
        bar.close()
        for tmp in (tmp_pdf, tmp_manifest):
            if tmp is not None and tmp.exists():
                tmp.unlink()
    return PrintResult(len(codes), pdf_page, registration.skipped, imported)


class _manifest_writer:
    def __init__(self, path: Path | None):
        self.path, self.fh = path, None

    def __enter__(self):
        if self.path is None:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "w", newline="", encoding="utf-8")
        w = csv.writer(self.fh)
        w.writerow(MANIFEST_COLUMNS)
        return w

    def __exit__(self, *exc):
        if self.fh:
            self.fh.close()
