"""Printed records a manager stamps: the destruction certificate (廃棄証明書) of a disposal batch and the contents
list (保管箱内容一覧) of a storage location.

Both list documents by their ids (D-codes, kit, document type, page) and never carry a number. They are drawn
with the streaming PDF writer (embedded IPAex font, so the Japanese prints anywhere) in mm, top-left origin;
pages are laid out first so each carries "page i / n" and a table continued on a new page repeats its header.
"""
from __future__ import annotations

import datetime as dt
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..kit.pdfwriter import Page, PdfWriter
from ..kit.printing import FONT_PATH
from ..kit.render import wrap
from ..errors import InputError
from .disposal import BatchRecord

A4 = (210.0, 297.0)
LEFT, RIGHT, TOP, BOTTOM = 18.0, 192.0, 18.0, 279.0
WIDTH = RIGHT - LEFT
BODY_PT, SMALL_PT, TABLE_PT = 10.0, 8.0, 8.5
ROW_MM = 6.0

DOCUMENT_NAMES = {"provision_form": "個人番号提供書", "delegation_agreement": "委託に関する合意書",
                  "refusal_form": "提供拒否届（不同意届）", "id_copy_sheet": "本人確認書類貼付台紙",
                  "id_copy": "本人確認書類（写し）", "envelope_label": "返信用封筒ラベル",
                  "cover_letter": "依頼状", "notice_letter": "お知らせ", "filler": "白紙"}
METHOD_NAMES = {"shredding": "細断（マイクロカットシュレッダー）", "dissolving": "溶解（委託先による溶解処理）",
                "deletion": "削除（データの消去）"}
KIND_NAMES = {"box": "保管箱（外部保管）", "cabinet": "施錠キャビネット"}


@dataclass
class Column:
    title: str
    width: float
    key: str
    align: str = "left"


@dataclass
class _Block:
    height: float
    draw: Callable[[Page, float], None]
    header: "_Block | None" = None      # drawn again at the top of a page this block starts
    keep_with_next: bool = False


class _Sheet:
    """A sequence of blocks flowed onto A4 pages."""

    def __init__(self, writer: PdfWriter, title: str, reference: str):
        self.writer, self.title, self.reference = writer, title, reference
        self.blocks: list[_Block] = []

    # blocks ------------------------------------------------------------------------------------------------
    def heading(self, text: str, size: float = 20.0) -> None:
        self.blocks.append(_Block(16.0, lambda p, y: p.text(105.0, y + 10, text, size, anchor="center")))

    def right_lines(self, lines: list[str]) -> None:
        for line in lines:
            self.blocks.append(_Block(5.0, lambda p, y, t=line: p.text(RIGHT, y + 4, t, BODY_PT, anchor="right")))

    def paragraph(self, text: str, size: float = BODY_PT, gap: float = 2.0) -> None:
        for line in wrap(self.writer, text, WIDTH, size):
            self.blocks.append(_Block(size * 0.55, lambda p, y, t=line: p.text(LEFT, y + size * 0.4, t, size)))
        self.blocks.append(_Block(gap, lambda p, y: None))

    def section(self, text: str) -> None:
        def draw(p: Page, y: float) -> None:
            p.text(LEFT, y + 6, text, 11.5)
            p.line(LEFT, y + 7.5, RIGHT, y + 7.5, line_width_pt=0.6)
        self.blocks.append(_Block(10.0, draw, keep_with_next=True))

    def pairs(self, items: list[tuple[str, str]], label_mm: float = 42.0) -> None:
        for label, value in items:
            lines = wrap(self.writer, value or "—", WIDTH - label_mm - 3, BODY_PT)
            height = 2.0 + 5.2 * len(lines)

            def draw(p: Page, y: float, label=label, lines=lines, height=height) -> None:
                p.rect(LEFT, y, label_mm, height, line_width_pt=0.4, fill=True, gray=0.0, fill_gray=0.92)
                p.rect(LEFT + label_mm, y, WIDTH - label_mm, height, line_width_pt=0.4)
                p.text(LEFT + 2, y + 5.2, label, BODY_PT)
                for i, line in enumerate(lines):
                    p.text(LEFT + label_mm + 2, y + 5.2 + 5.2 * i, line, BODY_PT)
            self.blocks.append(_Block(height, draw))
        self.blocks.append(_Block(4.0, lambda p, y: None))

    def table(self, columns: list[Column], rows: list[dict]) -> None:
        def draw_header(p: Page, y: float) -> None:
            x = LEFT
            for c in columns:
                p.rect(x, y, c.width, ROW_MM + 1, line_width_pt=0.4, fill=True, gray=0.0, fill_gray=0.88)
                p.text(x + c.width / 2, y + 4.8, c.title, TABLE_PT, anchor="center")
                x += c.width
        header = _Block(ROW_MM + 1, draw_header, keep_with_next=True)
        self.blocks.append(header)
        for row in rows:
            def draw_row(p: Page, y: float, row=row) -> None:
                x = LEFT
                for c in columns:
                    p.rect(x, y, c.width, ROW_MM, line_width_pt=0.3)
                    text = self._fit("" if row.get(c.key) is None else str(row[c.key]), c.width - 2.4)
                    if c.align == "center":
                        p.text(x + c.width / 2, y + 4.3, text, TABLE_PT, anchor="center")
                    elif c.align == "right":
                        p.text(x + c.width - 1.2, y + 4.3, text, TABLE_PT, anchor="right")
                    else:
                        p.text(x + 1.2, y + 4.3, text, TABLE_PT)
                    x += c.width
            self.blocks.append(_Block(ROW_MM, draw_row, header=header))
        self.blocks.append(_Block(5.0, lambda p, y: None))

    def stamps(self, boxes: list[tuple[str, str]]) -> None:
        """Boxes for the names and seals (押印) of the people who sign the record."""
        width, height, gap = 52.0, 34.0, 9.0

        def draw(p: Page, y: float) -> None:
            x = RIGHT - len(boxes) * width - (len(boxes) - 1) * gap
            for label, name in boxes:
                p.rect(x, y, width, 7, line_width_pt=0.5, fill=True, gray=0.0, fill_gray=0.92)
                p.text(x + width / 2, y + 5, label, BODY_PT, anchor="center")
                p.rect(x, y + 7, width, height - 7, line_width_pt=0.5)
                p.text(x + 2, y + 12, self._fit(name, width - 4), SMALL_PT)
                p.text(x + width - 4, y + height - 3, "印", SMALL_PT, anchor="right", gray=0.55)
                x += width + gap
        self.blocks.append(_Block(height + 4, draw))

    def _fit(self, text: str, width_mm: float) -> str:
        if self.writer.text_width(text, TABLE_PT) <= width_mm:
            return text
        while text and self.writer.text_width(text + "…", TABLE_PT) > width_mm:
            text = text[:-1]
        return text + "…"

    # layout and drawing ------------------------------------------------------------------------------------
    def _paginate(self) -> list[list[tuple[_Block, float]]]:
        pages: list[list[tuple[_Block, float]]] = [[]]
        y = TOP
        for i, block in enumerate(self.blocks):
            following = self.blocks[i + 1].height if block.keep_with_next and i + 1 < len(self.blocks) else 0.0
            if y + block.height + following > BOTTOM and pages[-1]:
                pages.append([])
                y = TOP
                if block.header is not None:
                    pages[-1].append((block.header, y))
                    y += block.header.height
            pages[-1].append((block, y))
            y += block.height
        return pages

    def write(self) -> int:
        pages = self._paginate()
        for number, placed in enumerate(pages, start=1):
            page = self.writer.begin_page(*A4)
            for block, y in placed:
                block.draw(page, y)
            page.line(LEFT, BOTTOM + 4, RIGHT, BOTTOM + 4, line_width_pt=0.3, gray=0.5)
            page.text(LEFT, BOTTOM + 9, f"{self.title}　{self.reference}", SMALL_PT, gray=0.3)
            page.text(RIGHT, BOTTOM + 9, f"{number} / {len(pages)}", SMALL_PT, anchor="right", gray=0.3)
            self.writer.end_page()
        return len(pages)


@contextmanager
def _pdf(path: Path, title: str) -> Iterator[PdfWriter]:
    """A PDF written beside its target and renamed into place only when complete; on any failure the partial
    file is removed, so a certificate or list on disk is always whole."""
    if not FONT_PATH.exists():
        raise InputError(f"the Japanese font {FONT_PATH} is missing: install fonts-ipaexfont-gothic "
                         "(scripts/setup.sh does)")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    writer = PdfWriter(partial, FONT_PATH, title=title)
    try:
        yield writer
        writer.close()
        os.replace(partial, path)
    except BaseException:
        writer._abort()
        partial.unlink(missing_ok=True)
        raise


DOCUMENT_COLUMNS = [Column("No.", 10, "no", "right"), Column("文書ID", 22, "document", "center"),
                    Column("キット", 22, "kit", "center"), Column("書類", 44, "type_name"),
                    Column("頁", 9, "page", "center")]


def _numbered(rows: list[dict]) -> list[dict]:
    return [{**r, "no": i, "type_name": DOCUMENT_NAMES.get(r["type"], r["type"])} for i, r in enumerate(rows, 1)]


def write_certificate(path: Path, record: BatchRecord, company) -> int:
    """The destruction certificate of one batch; returns the page count."""
    with _pdf(path, f"廃棄証明書 {record.code}") as writer:
        sheet = _Sheet(writer, "廃棄証明書", record.code)
        sheet.heading("廃棄証明書")
        sheet.right_lines([f"証明番号　{record.code}", company.name, company.department])
        verb = "削除" if record.method == "deletion" else "廃棄"
        sheet.paragraph(f"下記の書類（特定個人情報を含む書類）を、復元できない方法により{verb}したことを証明します。"
                        "あわせて、これらの書類から読み取り保存していた個人番号及び画像は、暗号鍵を破棄し"
                        "ファイルを削除することにより消去しました。書類は文書IDで示し、個人番号は記載しません。")
        due_by = f"廃棄予定日が {record.due_by} 以前の書類" if record.due_by else ""
        sheet.pairs([
            ("廃棄方法", METHOD_NAMES.get(record.method, record.method)),
            ("実施日", record.executed_on.isoformat()),
            ("実施者", record.executor),
            ("責任者", record.manager),
            ("委託先", record.contractor or "なし（社内で実施）"),
            ("委託先証明書番号", record.certificate_number or "—"),
            ("対象", f"{len(record.rows)} 件　{due_by}"
                     + (f"（うち廃棄予定日前の廃棄 {record.ahead_of_plan} 件）" if record.ahead_of_plan else "")),
            ("データの消去", f"個人番号 {record.numbers_erased} 件、画像ファイル {record.files_erased} 件"),
            ("記録者", record.recorded_by),
        ])
        recon = record.reconciliation
        if recon:
            sheet.section("保管箱内容一覧との照合")
            lines = [f"{b['box']}" + (f"（{b['provider']}）" if b.get("provider") else "")
                     + f"　一覧 {b['listed']} 件／うち廃棄 {b['disposed']} 件" for b in recon.get("boxes", [])]
            for item in recon.get("listed_not_disposed", []):
                due = item.get("due_on")
                why = f"廃棄予定日 {due} 未到来" if due else "廃棄予定日 未確定"
                lines.append(f"差異：{item['document']}　{item['box']} の一覧に記載があるが廃棄していない（{why}）")
            for item in recon.get("disposed_not_listed", []):
                lines.append(f"差異：{item['document']}　廃棄したが保管箱の一覧に記載がない"
                             f"（保管場所 {item.get('location') or 'なし'}）")
            if not recon.get("differences"):
                lines.append("差異なし")
            for line in lines:
                sheet.paragraph(line, gap=0.8)
            sheet.paragraph("", gap=1.0)
        sheet.section(f"廃棄した書類（{len(record.rows)} 件）")
        rows = _numbered(record.rows)
        for r in rows:
            r["location"] = r.get("location") or "—"
        sheet.table(DOCUMENT_COLUMNS + [Column("保管場所", 27, "location"), Column("受領日", 20, "received_on", "center"),
                                        Column("廃棄予定日", 20, "due_on", "center")], rows)
        stamps = [("実施者", record.executor), ("責任者", record.manager)]
        if record.contractor:
            stamps.append(("委託先", record.contractor))
        sheet.stamps(stamps)
        return sheet.write()


def write_contents_list(path: Path, location, rows: list[dict], company, *, printed_on: dt.date,
                        printed_by: str) -> int:
    """The contents list of a storage location, as the company's own records have it (rows: document, kit,
    type, page, stored_on, disposal_due_on); returns the page count."""
    title = "保管箱内容一覧" if location.kind == "box" else "保管場所内容一覧"
    with _pdf(path, f"{title} {location.code}") as writer:
        sheet = _Sheet(writer, title, location.code)
        sheet.heading(title)
        sheet.right_lines([company.name, company.department])
        sheet.paragraph("この一覧は、当社の記録による保管場所の内容です。書類は文書IDで示し、個人番号は記載しません。"
                        "廃棄の際は、廃棄証明書とこの一覧を照合します。")
        sheet.pairs([("保管場所", location.code), ("種類", KIND_NAMES.get(location.kind, location.kind)),
                     ("拠点", location.site or "—"), ("保管会社", location.provider or "—"),
                     ("件数", f"{len(rows)} 件"), ("作成日", printed_on.isoformat()), ("作成者", printed_by)])
        table_rows = _numbered(rows)
        for r in table_rows:
            r["due"] = r.get("disposal_due_on") or "未確定"
            r["tick"] = "□"
        sheet.table(DOCUMENT_COLUMNS + [Column("保管日", 22, "stored_on", "center"),
                                        Column("廃棄予定日", 22, "due", "center"), Column("確認", 23, "tick", "center")],
                    table_rows)
        sheet.stamps([("作成者", printed_by), ("確認者", "")])
        return sheet.write()
