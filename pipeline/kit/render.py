"""Drawing one kit page onto a PdfWriter page, from the layout (where) and the template (what text).

Everything a reader needs later (QR tag, registration marks, number boxes, check boxes, signature boxes) is
drawn from the PageLayout, so printing and reading can never disagree about geometry.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..layout import PageLayout
from ..qrtag import matrix as qr_matrix
from .compose import fields_in_use
from .pdfwriter import Page, PdfWriter
from .templates import fill

BODY_PT = 10.5
LINE_MM = 6.2
TITLE_PT = 17
# Characters that must not start a line (禁則処理), carried to the end of the previous line instead.
_NO_LINE_START = frozenset("、。，．・：；？！）」』】〕ー…")


@dataclass(frozen=True)
class PageContext:
    """What one printed page shows about its kit. Nothing here goes into the QR except through `qr_payload`."""
    kit_code: str
    values: dict[str, str]            # template placeholders: company, name, address, date, ...
    dependents: tuple[str, ...]
    qr_payload: str
    page_index: int                   # 1-based position in the kit
    page_count: int


def wrap(writer: PdfWriter, text: str, width_mm: float, size_pt: float) -> list[str]:
    return list(_wrap_cached(writer, text, width_mm, size_pt))


@lru_cache(maxsize=4096)
def _wrap_cached(writer: PdfWriter, text: str, width_mm: float, size_pt: float) -> tuple[str, ...]:
    if not text:
        return ("",)
    lines, current, used = [], [], 0.0
    for ch in text:
        w = writer.text_width(ch, size_pt)
        if current and used + w > width_mm and ch not in _NO_LINE_START:
            # Keep Latin words together when the line has a break opportunity before the word.
            word_start = len(current)
            while word_start > 0 and current[word_start - 1].isascii() and current[word_start - 1].isalnum():
                word_start -= 1
            if ch.isascii() and ch.isalnum() and 0 < word_start < len(current):
                carry = current[word_start:]
                lines.append("".join(current[:word_start]).rstrip())
                current = carry + [ch]
                used = sum(writer.text_width(c, size_pt) for c in current)
                continue
            lines.append("".join(current).rstrip())
            current, used = [], 0.0
            if ch == " " or ch == "\u3000":
                continue
        current.append(ch)
        used += w
    if current:
        lines.append("".join(current))
    return tuple(lines)


def _paragraphs(page: Page, writer: PdfWriter, paragraphs, values, x: float, y: float, width: float,
                size: float = BODY_PT, line: float = LINE_MM) -> float:
    for para in paragraphs:
        for text in wrap(writer, fill(para, values), width, size):
            if text:
                page.text(x, y, text, size)
            y += line
    return y


def draw_common(page: Page, layout: PageLayout, ctx: PageContext) -> None:
    qx, qy, qw, _ = layout.qr_mm
    matrix = qr_matrix(ctx.qr_payload)
    page.modules(qx, qy, qw / len(matrix), matrix)
    s = layout.mark_size_mm
    for mx, my in layout.marks_mm:
        page.rect(mx, my, s, s, stroke=False, fill=True)
    cx, cy = layout.caption_mm
    page.text(cx, cy, f"{ctx.kit_code}  {ctx.page_index}/{ctx.page_count}", 8, anchor="center")


def _title(page: Page, layout: PageLayout, text: str, y: float = 32.0) -> None:
    page.text(layout.body_mm[0], y, text, TITLE_PT)


def _signature(page: Page, layout: PageLayout, template: dict, values: dict) -> None:
    for rect in layout.signatures.values():
        x, y, w, h = rect
        page.rect(x, y, w, h, line_width_pt=0.8)
        page.text(x + 1.5, y + 4.5, fill(template.get("signature_label", "署名"), values), 8, gray=0.3)
        if "date_label" in template:
            page.text(x - 78, y + h - 4, fill(template["date_label"], values), BODY_PT)


def _checkbox(page: Page, rect, label: str) -> None:
    x, y, w, h = rect
    page.rect(x, y, w, h, line_width_pt=1.0)
    page.text(x + w + 3, y + h - 1.2, label, BODY_PT)


def draw_letter(page: Page, writer: PdfWriter, layout: PageLayout, t: dict, ctx: PageContext) -> None:
    v = ctx.values
    ax, ay, aw, _ = layout.extra["address_mm"]
    page.text(ax, ay + 6, f"〒{v['postal_code']}", 11)
    y = _paragraphs(page, writer, [v["address"]], v, ax, ay + 13, aw, size=11, line=5.5)
    page.text(ax, y + 4, fill(t.get("salutation", "{name} 様"), v), 14)
    page.text(ax, y + 10.5, f"（{ctx.kit_code}）", 8, gray=0.3)
    x, top, width = layout.body_mm
    page.text(x + width, 62, v["date"], BODY_PT, anchor="right")
    page.text(x + width, 67.5, v["company_name"], BODY_PT, anchor="right")
    y = float(layout.extra["body_top_mm"])
    page.text(x + width / 2, y, t["title"], 14, anchor="center")
    y = _paragraphs(page, writer, t.get("paragraphs", []), v, x, y + 10, width)
    if "closing" in t:
        page.text(x + width, y + 6, fill(t["closing"], v), BODY_PT, anchor="right")


def draw_provision_form(page: Page, writer: PdfWriter, layout: PageLayout, t: dict, ctx: PageContext) -> None:
    v = ctx.values
    x, _, width = layout.body_mm
    if layout.page == 1:
        _title(page, layout, t["title"])
        _paragraphs(page, writer, t.get("paragraphs", []), v, x, float(layout.extra["body_top_mm"]), width)
    else:
        _title(page, layout, fill(t.get("continued", t["title"]), v))
    in_use = fields_in_use("provision_form", layout.page, len(ctx.dependents))
    for nf in layout.number_fields:
        if nf.field not in in_use:
            continue
        bx, by, bw, bh = nf.boxes_mm[0]
        if nf.field == "self":
            label = fill(t["self_label"], v)
        else:
            ordinal = int(nf.field.removeprefix("dependent"))
            label = fill(t["dependent_label"], {**v, "ordinal": str(ordinal),
                                                "dependent": ctx.dependents[ordinal - 1]})
        page.text(bx, by - 2.5, label, 11)
        for i, (bx, by, bw, bh) in enumerate(nf.boxes_mm):
            page.rect(bx, by, bw, bh, line_width_pt=0.9)
            if i in (3, 7):  # a faint dash between digit groups, as on the card (1234-5678-9012)
                page.line(bx + bw + 0.4, by + bh / 2, bx + bw + 1.6, by + bh / 2, line_width_pt=0.5, gray=0.6)
    for name, rect in layout.checkboxes.items():
        _checkbox(page, rect, fill(t.get(name, ""), v))
    _signature(page, layout, t, v)


def draw_delegation(page: Page, writer: PdfWriter, layout: PageLayout, t: dict, ctx: PageContext) -> None:
    v = {**ctx.values, "dependents": "、".join(ctx.dependents)}
    x, _, width = layout.body_mm
    _title(page, layout, t["title"])
    _paragraphs(page, writer, t.get("paragraphs", []), v, x, float(layout.extra["body_top_mm"]), width)
    for name, rect in layout.checkboxes.items():
        _checkbox(page, rect, fill(t.get(name, ""), v))
    _signature(page, layout, t, v)


def draw_refusal(page: Page, writer: PdfWriter, layout: PageLayout, t: dict, ctx: PageContext) -> None:
    v = ctx.values
    x, _, width = layout.body_mm
    _title(page, layout, t["title"])
    _paragraphs(page, writer, t.get("paragraphs", []), v, x, float(layout.extra["body_top_mm"]), width)
    for rect, reason in zip(layout.checkboxes.values(), t.get("reasons", [])):
        _checkbox(page, rect, fill(reason, v))
    for bx, by, bw, bh in layout.text_boxes.values():
        page.rect(bx, by, bw, bh, line_width_pt=0.6)
    _signature(page, layout, t, v)


def draw_id_copy_sheet(page: Page, writer: PdfWriter, layout: PageLayout, t: dict, ctx: PageContext) -> None:
    """Page 1: the person's own documents; page 2: the dependents' number-check documents ([dependents])."""
    v = ctx.values
    if layout.page == 2:
        t = {**t, **t.get("dependents", {})}
    x, _, width = layout.body_mm
    _title(page, layout, t["title"])
    _paragraphs(page, writer, t.get("paragraphs", []), v, x, float(layout.extra["body_top_mm"]), width)
    for name, (bx, by, bw, bh) in layout.paste_areas.items():
        page.rect(bx, by, bw, bh, line_width_pt=0.6, gray=0.4, dash=(2.0, 1.5))
        page.text(bx + 2, by + 6, fill(t.get(f"{name}_label", ""), v), BODY_PT, gray=0.3)
    page.text(x, layout.footer_y_mm, fill("氏名　{name}", v), 9)


def draw_envelope_label(page: Page, writer: PdfWriter, layout: PageLayout, t: dict, ctx: PageContext) -> None:
    v = ctx.values
    x, _, width = layout.body_mm
    _title(page, layout, t["title"])
    _paragraphs(page, writer, t.get("paragraphs", []), v, x, float(layout.extra["body_top_mm"]), width)
    lx, ly, lw, lh = layout.extra["label_mm"]
    page.rect(lx, ly, lw, lh, line_width_pt=0.6, gray=0.4, dash=(3.0, 2.0))
    y = _paragraphs(page, writer, [t.get("recipient", "")], v, lx + 8, ly + 22, lw - 16, size=15, line=8)
    page.text(lx + lw - 8, y + 8, "御中", 15, anchor="right")
    page.rect(lx + 8, ly + lh - 30, 56, 10, line_width_pt=1.2)
    page.text(lx + 36, ly + lh - 23, fill(t.get("note", ""), v), 10, anchor="center")
    page.text(lx + 8, ly + lh - 8, fill(t.get("sender_label", ""), v) + f"（{ctx.kit_code}）", 10)


def draw_filler(page: Page, writer: PdfWriter, layout: PageLayout, t: dict, ctx: PageContext) -> None:
    w, h = layout.size_mm
    _paragraphs(page, writer, t.get("paragraphs", []), ctx.values, w / 2 - 20, h / 2, 60)


def draw_reminder_letter(page: Page, writer: PdfWriter, layout: PageLayout, t: dict, ctx: PageContext) -> None:
    """Outside payees get the softer wording of the template's [payee] table (asking twice offends sooner)."""
    if ctx.values.get("kind") == "payee":
        t = {**t, **t.get("payee", {})}
    draw_letter(page, writer, layout, {**t, "title": fill(t["title"], ctx.values)}, ctx)   # the title names the round


DRAWERS = {"cover_letter": draw_letter, "notice_letter": draw_letter, "provision_form": draw_provision_form,
           "delegation_agreement": draw_delegation, "refusal_form": draw_refusal,
           "id_copy_sheet": draw_id_copy_sheet, "envelope_label": draw_envelope_label, "filler": draw_filler,
           "reminder_letter": draw_reminder_letter}


def draw_page(writer: PdfWriter, layout: PageLayout, template: dict, ctx: PageContext) -> None:
    page = writer.begin_page(*layout.size_mm)
    DRAWERS[layout.document](page, writer, layout, template, ctx)
    draw_common(page, layout, ctx)
    page.text(layout.body_mm[0], layout.footer_y_mm + 6, f"{ctx.values['company_name']}　{ctx.kit_code}", 7,
              gray=0.4)
    writer.end_page()
