"""The review queue: fields the reader did not accept, settled only by agreeing double entry.

An item is settled when two entries by two different operators agree (or by the same operator twice, when
`[review] allow_same_operator = true`); a disagreement leaves the item open for a third entry. Entries are
kept as keyed hashes only: agreement is checked without storing what anyone typed. Each entry, refusal and
settlement is an event (who, when, which item — never the number).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import number
from ..errors import NotFound, StateError
from . import audit
from .models import Kit, NumberRecord, ReviewEntry, ReviewItem, utcnow
from .receiving import recompute
from .sealed import Sealer


@dataclass
class QueueItem:
    id: int
    kit: str
    field: str
    reason: str
    entries: int
    operators: list[str]
    created_at: str


def queue(session: Session) -> list[QueueItem]:
    rows = session.execute(select(ReviewItem, NumberRecord, Kit)
                           .join(NumberRecord, ReviewItem.number_record_id == NumberRecord.id)
                           .join(Kit, NumberRecord.kit_id == Kit.id)
                           .where(ReviewItem.state == "open").order_by(ReviewItem.id)).all()
    out = []
    for item, record, kit in rows:
        entries = session.execute(select(ReviewEntry.operator).where(ReviewEntry.review_item_id == item.id)).scalars().all()
        out.append(QueueItem(item.id, kit.code, record.field, item.reason, len(entries), sorted(set(entries)),
                             item.created_at.isoformat(timespec="seconds")))
    return out


def next_for(session: Session, operator: str, *, allow_same_operator: bool,
             skip: set[int] = frozenset()) -> QueueItem | None:
    for item in queue(session):
        if item.id not in skip and (allow_same_operator or operator not in item.operators):
            return item
    return None


@dataclass
class EntryResult:
    outcome: str      # settled | waiting | disagreement | refused (failed validation; logged, not stored)
    entries: int
    message: str = ""


def submit(session: Session, sealer: Sealer, item_id: int, typed: str, *, operator: str,
           allow_same_operator: bool, site: str | None = None) -> EntryResult:
    audit.serialise_writers(session)
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise NotFound(f"review item {item_id} does not exist")
    if item.state != "open":
        raise StateError(f"review item {item_id} is already {item.state}")
    record = session.get(NumberRecord, item.number_record_id)
    kit = session.get(Kit, record.kit_id)
    verdict = number.validate(typed)
    if not verdict.valid:
        audit.append(session, actor=operator, action="review.entry_refused", object_type="review_item",
                     object_id=str(item.id), site=site, details={"kit": kit.code, "field": record.field,
                                                                 "reason": verdict.reason})
        return EntryResult("refused", 0, f"not accepted: {verdict.detail}; type the number again")
    entries = session.execute(select(ReviewEntry).where(ReviewEntry.review_item_id == item.id)).scalars().all()
    if not allow_same_operator and any(e.operator == operator for e in entries):
        raise StateError(f"you already keyed review item {item.id}; a second operator must key it")
    digest = sealer.number_hash(verdict.digits)
    session.add(ReviewEntry(review_item_id=item.id, operator=operator, entry_hash=digest))
    entries = [*entries, ReviewEntry(operator=operator, entry_hash=digest)]
    audit.append(session, actor=operator, action="review.entry", object_type="review_item", object_id=str(item.id),
                 site=site, details={"kit": kit.code, "field": record.field, "entry": len(entries)})
    agreeing = Counter(e.entry_hash for e in entries)[digest]
    operators = {e.operator for e in entries if e.entry_hash == digest}
    if agreeing >= 2 and (len(operators) >= 2 or allow_same_operator):
        record.status, record.source, record.confidence = "accepted", "review", None
        sealer.seal_number(session, record, verdict.digits)
        item.state, item.settled_at = "settled", utcnow()
        audit.append(session, actor=operator, action="review.settled", object_type="kit", object_id=kit.code,
                     site=site, details={"item": item.id, "field": record.field, "entries": len(entries),
                                         "operators": sorted(operators)})
        recompute(session, kit, actor=operator, site=site)
        return EntryResult("settled", len(entries))
    if len(entries) >= 2 and agreeing == 1:
        audit.append(session, actor=operator, action="review.disagreement", object_type="review_item",
                     object_id=str(item.id), site=site, details={"kit": kit.code, "field": record.field,
                                                                 "entries": len(entries)})
        return EntryResult("disagreement", len(entries))
    return EntryResult("waiting", len(entries))


def crop_of(session: Session, sealer: Sealer, item_id: int, *, operator: str, site: str | None = None) -> bytes:
    """The field crop (PNG bytes, in memory only). Showing it is logged: it shows a number."""
    from .models import StoredFile
    item = session.get(ReviewItem, item_id)
    if item is None or item.crop_file_id is None:
        raise NotFound(f"review item {item_id} has no crop")
    data = sealer.read_file(session, session.get(StoredFile, item.crop_file_id))
    audit.append(session, actor=operator, action="review.crop_shown", object_type="review_item",
                 object_id=str(item_id), site=site, details={})
    return data
