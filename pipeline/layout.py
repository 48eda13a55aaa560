"""Form layouts from kits/layouts/*.toml: the one geometry (mm) that printing draws and reading measures.

Each document's fingerprint is a hash of the geometry the reader depends on (page size, QR, marks, boxes,
check boxes, signature boxes). It is printed in every QR tag, so a scan of a page printed from another
version of the layout is caught instead of being cropped in the wrong places (SDAPS does the same).
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from . import config
from .errors import LayoutError

DOCUMENTS = ("cover_letter", "notice_letter", "provision_form", "delegation_agreement", "refusal_form",
             "id_copy_sheet", "envelope_label", "filler", "reminder_letter")
NUMBER_LENGTH = 12

Rect = tuple[float, float, float, float]


@dataclass(frozen=True)
class NumberField:
    field: str
    boxes_mm: tuple[Rect, ...]


@dataclass(frozen=True)
class PageLayout:
    document: str
    page: int
    size_mm: tuple[float, float]
    qr_mm: Rect
    mark_size_mm: float
    marks_mm: tuple[tuple[float, float], ...]
    caption_mm: tuple[float, float]
    body_mm: tuple[float, float, float]
    footer_y_mm: float
    number_fields: tuple[NumberField, ...] = ()
    checkboxes: dict[str, Rect] = field(default_factory=dict)
    signatures: dict[str, Rect] = field(default_factory=dict)
    text_boxes: dict[str, Rect] = field(default_factory=dict)
    paste_areas: dict[str, Rect] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # drawing-only positions (address block, body top, label)

    def field_named(self, name: str) -> NumberField:
        for f in self.number_fields:
            if f.field == name:
                return f
        raise KeyError(name)

    def reading_geometry(self) -> dict:
        """What the reader depends on; hashed into the fingerprint."""
        return {"size_mm": list(self.size_mm), "qr_mm": list(self.qr_mm), "mark_size_mm": self.mark_size_mm,
                "marks_mm": [list(m) for m in self.marks_mm],
                "number_fields": [{"field": f.field, "boxes_mm": [list(b) for b in f.boxes_mm]}
                                  for f in self.number_fields],
                "checkboxes": {k: list(v) for k, v in sorted(self.checkboxes.items())},
                "signatures": {k: list(v) for k, v in sorted(self.signatures.items())}}


@dataclass(frozen=True)
class DocumentLayout:
    document: str
    code: str
    pages: tuple[PageLayout, ...]
    fingerprint: str

    def page(self, number: int) -> PageLayout:
        for p in self.pages:
            if p.page == number:
                return p
        raise LayoutError(f"{self.document} has no page {number}")


@dataclass(frozen=True)
class KitLayout:
    documents: dict[str, DocumentLayout]

    def by_code(self, code: str) -> DocumentLayout:
        for d in self.documents.values():
            if d.code == code:
                return d
        raise KeyError(code)

    def to_json(self) -> dict:
        out = []
        for d in self.documents.values():
            pages = []
            for p in d.pages:
                geo = p.reading_geometry()
                pages.append({"page": p.page, "size_mm": geo["size_mm"], "qr_mm": geo["qr_mm"],
                              "number_fields": geo["number_fields"], "marks_mm": geo["marks_mm"],
                              "mark_size_mm": geo["mark_size_mm"], "checkboxes": geo["checkboxes"],
                              "signatures": geo["signatures"]})
            out.append({"document": d.document, "code": d.code, "fingerprint": d.fingerprint, "pages": pages})
        return {"documents": out}


def _rect(value, where: str) -> Rect:
    if not (isinstance(value, list) and len(value) == 4 and all(isinstance(v, (int, float)) for v in value)):
        raise LayoutError(f"{where}: expected [x, y, w, h] in mm, got {value!r}")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def _named_rects(items: list[dict], key: str, where: str) -> dict[str, Rect]:
    out = {}
    for i, item in enumerate(items):
        name = item.get("name")
        if not name:
            raise LayoutError(f"{where}: {key}[{i}] has no name")
        out[name] = _rect(item.get("rect_mm"), f"{where} {key} {name}")
    return out


def _number_field(raw: dict, where: str) -> NumberField:
    try:
        x0, y0 = (float(v) for v in raw["origin_mm"])
        w, h = (float(v) for v in raw["box_mm"])
        pitch = float(raw["pitch_mm"])
        name = str(raw["field"])
    except (KeyError, TypeError, ValueError) as exc:
        raise LayoutError(f"{where}: number field needs field, origin_mm, box_mm, pitch_mm ({exc})") from None
    if pitch < w:
        raise LayoutError(f"{where}: field {name}: pitch_mm {pitch} is smaller than the box width {w}")
    return NumberField(name, tuple((round(x0 + i * pitch, 3), y0, w, h) for i in range(NUMBER_LENGTH)))


def fingerprint_of(document: str, pages: list[PageLayout]) -> str:
    canon = json.dumps([document, [p.reading_geometry() for p in pages]], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:8].upper()


def _load_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LayoutError(f"layout file {path} is missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise LayoutError(f"{path}: not valid TOML: {exc}") from None


@lru_cache(maxsize=4)
def load(layouts_dir: Path | None = None) -> KitLayout:
    layouts_dir = layouts_dir or (config.KITS_DIR / "layouts")
    common = _load_toml(layouts_dir / "_page.toml")
    documents: dict[str, DocumentLayout] = {}
    codes: set[str] = set()
    for document in DOCUMENTS:
        path = layouts_dir / f"{document}.toml"
        raw = _load_toml(path)
        code = str(raw.get("code", ""))
        if len(code) != 2 or not code.isupper() or code in codes:
            raise LayoutError(f"{path}: code must be two capital letters, unique across documents")
        codes.add(code)
        pages = []
        for praw in raw.get("pages", []):
            merged = {**common, **praw}
            where = f"{path} page {praw.get('page')}"
            known = {"page", "size_mm", "qr_mm", "mark_size_mm", "marks_mm", "caption_mm", "body_mm",
                     "footer_y_mm", "number_fields", "checkboxes", "signatures", "text_boxes", "paste_areas"}
            pages.append(PageLayout(
                document=document, page=int(merged["page"]),
                size_mm=tuple(float(v) for v in merged["size_mm"]),  # type: ignore[arg-type]
                qr_mm=_rect(merged["qr_mm"], where),
                mark_size_mm=float(merged["mark_size_mm"]),
                marks_mm=tuple((float(x), float(y)) for x, y in merged["marks_mm"]),
                caption_mm=tuple(float(v) for v in merged["caption_mm"]),  # type: ignore[arg-type]
                body_mm=tuple(float(v) for v in merged["body_mm"]),  # type: ignore[arg-type]
                footer_y_mm=float(merged["footer_y_mm"]),
                number_fields=tuple(_number_field(f, where) for f in merged.get("number_fields", [])),
                checkboxes=_named_rects(merged.get("checkboxes", []), "checkboxes", where),
                signatures=_named_rects(merged.get("signatures", []), "signatures", where),
                text_boxes=_named_rects(merged.get("text_boxes", []), "text_boxes", where),
                paste_areas=_named_rects(merged.get("paste_areas", []), "paste_areas", where),
                extra={k: v for k, v in praw.items() if k not in known},
            ))
        if not pages or [p.page for p in pages] != list(range(1, len(pages) + 1)):
            raise LayoutError(f"{path}: pages must be numbered 1, 2, ... in order")
        documents[document] = DocumentLayout(document, code, tuple(pages), fingerprint_of(document, pages))
    return KitLayout(documents)
