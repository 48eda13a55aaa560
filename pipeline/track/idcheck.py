"""Settle handwritten number fields with the number on the kit's own ID copy (番号確認).

A kit's ID-copy sheet carries a number-check document: the number card's back, the notification card or a
residence certificate. The redactor reads its number (printed, check digit valid, usually also from the card's
QR code) before blacking it out. A field the classifier's accept rule left for review is settled when its
boxes agree with such a number (pipeline/scan/fusion.agrees_with_document): two independent readers, the
person's handwriting and the printed document, then say the same. A field written clearly otherwise (a slip of
the pen, or another person's number) stays in review.

Both halves are sealed like every other number: the valid numbers read on an ID copy in `id_numbers/<page>.bin`,
the per-box probabilities of a field left for review in `field_reading/<kit>-<field>-<page id>.bin` (next to the
field's crop, and disposed of with it). Pages may come in any order: settling runs whenever a kit gains either.
"""
from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..scan.fusion import agrees_with_document
from . import audit
from .models import DataKey, Kit, NumberRecord, ReviewItem, ScannedPage, StoredFile, utcnow
from .sealed import Sealer

ID_NUMBERS = "id_numbers"
FIELD_READING = "field_reading"


def id_numbers_name(page: ScannedPage) -> str:
    return f"{page.source_sha256[:20]}-{page.page_index}"


def reading_name(kit: Kit, field: str, page_id: int) -> str:
    """The name a field's sealed files go by: its crop (kind field_crop) and its reading (field_reading)."""
    return f"{kit.code}-{field}-{page_id}"


def store_id_numbers(session: Session, sealer: Sealer, page: ScannedPage, numbers: list[str]) -> None:
    sealer.store_file(session, ID_NUMBERS, id_numbers_name(page), json.dumps(sorted(numbers)).encode(),
                      kit_id=page.kit_id)


def store_reading(session: Session, sealer: Sealer, kit: Kit, field: str, page_id: int, probs: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.asarray(probs, dtype=np.float32), allow_pickle=False)
    sealer.store_file(session, FIELD_READING, reading_name(kit, field, page_id), buf.getvalue(), kit_id=kit.id)


def assign_id_numbers(session: Session, page: ScannedPage) -> bool:
    """An untagged ID copy was assigned to a kit: its numbers now belong to that kit too. False when the page
    had none."""
    stored = stored_file(session, ID_NUMBERS, id_numbers_name(page))
    if stored is not None:
        stored.kit_id = page.kit_id
    return stored is not None


def stored_file(session: Session, kind: str, name: str) -> StoredFile | None:
    """The sealed file of this kind and name (`Sealer.store_file` names it `<kind>/<name>.bin`), if any."""
    return session.execute(select(StoredFile).where(StoredFile.relpath == f"{kind}/{name}.bin")).scalar_one_or_none()


@dataclass(frozen=True)
class _Candidate:
    item: ReviewItem
    record: NumberRecord
    probs: np.ndarray


def _kit_numbers(session: Session, sealer: Sealer, kit: Kit) -> dict[str, ScannedPage]:
    """Every valid number read on the kit's ID copies, with the page it was read on."""
    files = session.execute(select(StoredFile).where(StoredFile.kind == ID_NUMBERS, StoredFile.kit_id == kit.id)
                            .order_by(StoredFile.id)).scalars().all()
    if not files:
        return {}
    pages = {f"{ID_NUMBERS}/{id_numbers_name(p)}.bin": p for p in session.execute(
        select(ScannedPage).where(ScannedPage.kit_id == kit.id)).scalars()}
    out: dict[str, ScannedPage] = {}
    for stored in files:
        page = pages.get(stored.relpath)
        if page is None or not _readable(session, stored):
            continue
        for digits in json.loads(sealer.read_file(session, stored)):
            out.setdefault(digits, page)
    return out


def _open_items(session: Session, sealer: Sealer, kit: Kit) -> list[_Candidate]:
    rows = session.execute(select(ReviewItem, NumberRecord).join(NumberRecord,
                                                                 ReviewItem.number_record_id == NumberRecord.id)
                           .where(NumberRecord.kit_id == kit.id, ReviewItem.state == "open")
                           .order_by(ReviewItem.id)).all()
    out = []
    for item, record in rows:
        stored = stored_file(session, FIELD_READING, reading_name(kit, record.field, record.scanned_page_id))
        if stored is None or not _readable(session, stored):
            continue   # a field with an empty box, or read before readings were kept: people key it
        probs = np.load(io.BytesIO(sealer.read_file(session, stored)), allow_pickle=False)
        out.append(_Candidate(item, record, probs))
    return out


def pair(readings: dict, numbers) -> dict:
    """Which field each number settles: {key: (digits, boxes read otherwise)} for the keys of `readings`
    ({key: (12, 10) probabilities}) that agree with exactly one of `numbers`, where no other field agrees with
    that number. A field that agrees with two numbers, or a number two fields agree with, is left to people."""
    agreeing: dict = {}
    for key, probs in readings.items():
        for digits in numbers:
            verdict = agrees_with_document(probs, digits)
            if verdict.agrees:
                agreeing.setdefault(key, []).append((digits, verdict.differing))
    claims = Counter(digits for pairs in agreeing.values() for digits, _ in pairs)
    return {key: pairs[0] for key, pairs in agreeing.items() if len(pairs) == 1 and claims[pairs[0][0]] == 1}


def settle(session: Session, sealer: Sealer, kit: Kit, *, actor: str, site: str | None) -> int:
    """Settle the kit's open review items that agree with a number read on its ID copies (see `pair`);
    returns how many. A number already accepted for another field or kit is left to people too (the same
    check the reader's own acceptances get)."""
    numbers = _kit_numbers(session, sealer, kit)
    if not numbers:
        return 0
    candidates = {c.item.id: c for c in _open_items(session, sealer, kit)}
    settled = 0
    for item_id, (digits, differing) in pair({k: c.probs for k, c in candidates.items()}, numbers).items():
        if _accepted_elsewhere(session, sealer, digits):
            continue
        c, page = candidates[item_id], numbers[digits]
        c.record.status, c.record.source, c.record.confidence = "accepted", "id_copy", None
        sealer.seal_number(session, c.record, digits)
        c.item.state, c.item.settled_at = "settled", utcnow()
        audit.append(session, actor=actor, action="review.settled_by_id_copy", object_type="kit",
                     object_id=kit.code, site=site,
                     details={"item": c.item.id, "field": c.record.field, "boxes_read_otherwise": differing,
                              "id_copy": {"file": page.source_name, "page": page.page_index}})
        settled += 1
    return settled


def _readable(session: Session, stored: StoredFile) -> bool:
    """False once the file's key was destroyed (disposed of)."""
    key = session.get(DataKey, stored.data_key_id)
    return key is not None and key.wrapped is not None


def _accepted_elsewhere(session: Session, sealer: Sealer, digits: str) -> bool:
    return session.execute(select(NumberRecord.id).where(NumberRecord.number_hash == sealer.number_hash(digits),
                                                         NumberRecord.status == "accepted")).first() is not None
