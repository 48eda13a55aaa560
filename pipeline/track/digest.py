"""The daily digest: one printed page a responsible manager stamps, fixing the audit chain's head on paper.

Whoever later alters the database cannot alter the stamped page: `mynumber audit verify --anchor SEQ:HASH`
with the seq and hash printed here fails if the chain no longer reaches that head. The hash is printed in full,
in fixed-width cells and groups of four, so it can be read aloud and typed back without losing one's place.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..kit.pdfwriter import Page, PdfWriter

A4 = (210.0, 297.0)
MARGIN = 15.0
HASH_PT = 15
HASH_CELL_MM = 4.3          # one hex digit per cell: a monospaced look from a proportional font
GROUP = 4
GROUPS_PER_LINE = 8
ROW_MM = 5.6
FIRST_PAGE_ROWS = 2 * 16    # two columns of (action, count) under the head box
NEXT_PAGE_ROWS = 2 * 38


@dataclass(frozen=True)
class DigestFacts:
    company: str
    day: dt.date                               # the local day the counts are for
    zone: str                                  # e.g. "+09:00 JST"
    head_seq: int
    head_hash: str
    head_at: str | None                        # local time of the head event
    anchored_at: str                           # local time the anchor was made
    anchored_by: str
    total_events: int
    day_first_seq: int | None
    day_last_seq: int | None
    actions: Sequence[tuple[str, int]]         # (action, count) for the day
    anchor_file: str | None


def hash_groups(digest: str) -> list[str]:
    return [digest[i:i + GROUP] for i in range(0, len(digest), GROUP)]


def _mono(page: Page, x: float, y: float, text: str, size: float, cell: float) -> float:
    for i, ch in enumerate(text):
        page.text(x + cell * (i + 0.5), y, ch, size, anchor="center")
    return x + cell * len(text)


def _header(page: Page, facts: DigestFacts, number: int, pages: int) -> float:
    left, right = MARGIN, A4[0] - MARGIN
    page.text(left, 22, "監査ログ 日次ダイジェスト", 18)
    page.text(left, 28.5, "Audit log daily digest — chain head fixed on paper", 8.5, gray=0.3)
    page.text(right, 22, facts.company, 10, anchor="right")
    page.text(right, 28.5, f"{number} / {pages} 頁", 8.5, anchor="right", gray=0.3)
    page.line(left, 31.5, right, 31.5, line_width_pt=0.8)
    page.text(left, 40, f"対象日  {facts.day.isoformat()}  (時刻はすべて {facts.zone})", 11)
    return 46


def _head_box(page: Page, facts: DigestFacts, y: float) -> float:
    left, right = MARGIN, A4[0] - MARGIN
    height = 52
    page.rect(left, y, right - left, height, line_width_pt=1.0)
    page.text(left + 4, y + 7, "連鎖の先頭 (chain head)", 10)
    page.text(left + 4, y + 16, "seq", 9, gray=0.3)
    _mono(page, left + 14, y + 16.5, str(facts.head_seq), 16, 5.2)
    page.text(right - 4, y + 7, f"全イベント数 {facts.total_events:,}", 9, anchor="right")
    page.text(right - 4, y + 13, f"先頭イベント時刻 {facts.head_at or '-'}", 8, anchor="right", gray=0.3)
    page.text(left + 4, y + 25, "hash (SHA-256)", 9, gray=0.3)
    groups = hash_groups(facts.head_hash)
    line_width = GROUPS_PER_LINE * GROUP * HASH_CELL_MM + (GROUPS_PER_LINE - 1) * 3.2
    x0 = left + (right - left - line_width) / 2
    for line in range(0, len(groups), GROUPS_PER_LINE):
        yy = y + 33 + (line // GROUPS_PER_LINE) * 9
        x = x0
        for group in groups[line:line + GROUPS_PER_LINE]:
            x = _mono(page, x, yy, group, HASH_PT, HASH_CELL_MM) + 3.2
    page.text(left + 4, y + height - 3.5,
              f"照合: mynumber audit verify --anchor {facts.head_seq}:{facts.head_hash}", 6.5, gray=0.25)
    return y + height + 6


def _facts_lines(page: Page, facts: DigestFacts, y: float) -> float:
    if facts.day_first_seq is None:
        span = "この日のイベントはありません"
    else:
        span = f"この日のイベント seq {facts.day_first_seq} – {facts.day_last_seq}"
    total = sum(n for _, n in facts.actions)
    page.text(MARGIN, y, f"{span}  (計 {total:,} 件)", 10)
    page.text(MARGIN, y + 6, f"記録 {facts.anchored_at}  実行者 {facts.anchored_by}"
              + (f"  アンカー {facts.anchor_file}" if facts.anchor_file else ""), 8, gray=0.3)
    return y + 12


def _table(page: Page, rows: Sequence[tuple[str, int]], y: float) -> float:
    left, right = MARGIN, A4[0] - MARGIN
    col_width = (right - left - 6) / 2
    per_column = (len(rows) + 1) // 2 if rows else 0
    for col in range(2):
        x = left + col * (col_width + 6)
        chunk = rows[col * per_column:(col + 1) * per_column]
        if not chunk and col:
            continue
        page.rect(x, y, col_width, ROW_MM, fill=True, stroke=False, fill_gray=0.9)
        page.text(x + 2, y + 4, "操作 (action)", 8.5)
        page.text(x + col_width - 2, y + 4, "件数", 8.5, anchor="right")
        for i, (action, count) in enumerate(chunk, start=1):
            yy = y + i * ROW_MM
            page.line(x, yy, x + col_width, yy, line_width_pt=0.3, gray=0.6)
            page.text(x + 2, yy + 4, action, 8.5)
            page.text(x + col_width - 2, yy + 4, f"{count:,}", 8.5, anchor="right")
        page.line(x, y + (len(chunk) + 1) * ROW_MM, x + col_width, y + (len(chunk) + 1) * ROW_MM,
                  line_width_pt=0.3, gray=0.6)
    return y + (per_column + 1) * ROW_MM + 4


def _stamp(page: Page) -> None:
    right, bottom = A4[0] - MARGIN, A4[1] - 20
    size = 32
    x, y = right - size, bottom - size
    page.rect(x, y, size, size, line_width_pt=0.8)
    page.rect(x, y - 6, size, 6, line_width_pt=0.8)
    page.text(x + size / 2, y - 1.8, "責任者印", 9, anchor="center")
    left = MARGIN
    page.text(left, y + 4, "上記の連鎖の先頭を確認しました。", 9.5)
    page.text(left, y + 16, "署名", 9.5)
    page.line(left + 12, y + 17, x - 10, y + 17, line_width_pt=0.6)
    page.text(left, y + 28, "確認日", 9.5)
    page.line(left + 12, y + 29, x - 10, y + 29, line_width_pt=0.6)


def write_digest(path: Path, facts: DigestFacts, font_path: Path) -> int:
    """Write the digest PDF; returns its page count. The stamp box is on the first page, which carries the
    head; later pages (only for days with many kinds of action) repeat the head seq in their header."""
    rows = list(facts.actions)
    pages = 1 + (max(0, len(rows) - FIRST_PAGE_ROWS) + NEXT_PAGE_ROWS - 1) // NEXT_PAGE_ROWS
    path.parent.mkdir(parents=True, exist_ok=True)
    with PdfWriter(path, font_path, title=f"監査ログ 日次ダイジェスト {facts.day.isoformat()}") as writer:
        page = writer.begin_page(*A4)
        y = _header(page, facts, 1, pages)
        y = _head_box(page, facts, y)
        y = _facts_lines(page, facts, y)
        _table(page, rows[:FIRST_PAGE_ROWS], y)
        _stamp(page)
        writer.end_page()
        rest = rows[FIRST_PAGE_ROWS:]
        for number in range(2, pages + 1):
            page = writer.begin_page(*A4)
            y = _header(page, facts, number, pages)
            page.text(MARGIN, y, f"(続き) 連鎖の先頭 seq {facts.head_seq}  {' '.join(hash_groups(facts.head_hash))}",
                      7.5, gray=0.25)
            _table(page, rest[:NEXT_PAGE_ROWS], y + 6)
            rest = rest[NEXT_PAGE_ROWS:]
            writer.end_page()
    return pages
