"""Reminder letters (督促状): one A4 page per kit, tagged with the kit's own id (document code RM), so a reply
that comes back with the letter is recognised by the scanner as a page of that kit, and the untagged pages
scanned after it (ID copies) are attached to the same kit."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from .. import config, layout as layout_mod, qrtag, vault
from ..errors import InputError
from . import templates as templates_mod
from .pdfwriter import PdfWriter
from .printing import FONT_PATH, company_values
from .render import PageContext, draw_page

DOCUMENT = "reminder_letter"


@dataclass(frozen=True)
class Letter:
    kit_code: str
    kind: str                 # employee | payee: payees get the template's softer [payee] wording
    name: str
    postal_code: str
    address: str
    site: str
    round: int
    date: dt.date             # printed on the letter
    sent_on: dt.date | None   # when the kit itself was sent


def write(settings: config.Settings, letters: list[Letter], out_pdf: Path) -> int:
    """Write the letters to `out_pdf` (the caller makes the file appear atomically). Returns the page count."""
    if not FONT_PATH.exists():
        raise InputError(f"the Japanese font {FONT_PATH} is missing: install fonts-ipaexfont-gothic "
                         "(scripts/setup.sh does)")
    document = layout_mod.load().documents[DOCUMENT]
    page_layout = document.page(1)
    template = templates_mod.load()[DOCUMENT]
    tag_key = vault.load_key(settings.keys_dir, "tag")
    with PdfWriter(out_pdf, FONT_PATH, title="マイナンバー（個人番号）ご提供のお願い（督促）") as writer:
        for letter in letters:
            values = {**company_values(settings, letter.date), "name": letter.name,
                      "postal_code": letter.postal_code, "address": letter.address, "site": letter.site,
                      "kit_code": letter.kit_code, "round": str(letter.round), "kind": letter.kind,
                      "sent_date": _japanese_date(letter.sent_on) if letter.sent_on else "先日"}
            payload = qrtag.encode(qrtag.Tag(letter.kit_code, document.code, 1, document.fingerprint), tag_key)
            draw_page(writer, page_layout, template, PageContext(letter.kit_code, values, (), payload, 1, 1))
        return writer.page_count


def _japanese_date(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"
