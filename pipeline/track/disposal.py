"""Disposal: what is due, and the disposal batch that destroys it.

A batch records the method (micro-cut shredding, dissolving by a contractor, deletion), who executed it, the
responsible manager and the contractor's certificate number. For every document in it, the data it left behind
is erased: the scanned page and any field crops (data key destroyed, file removed from disk after the commit)
and the numbers read from that page (data key destroyed, ciphertext and keyed hash cleared; the record's status
stays, so the history still says the number had been accepted). The metadata stays: documents, events, batch.

For boxes at an outside storage company the batch is reconciled with the box contents list (what the company's
own records say is in the box): documents listed but not disposed of, and disposed of but not listed, are named.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import NotFound, StateError, UsageError
from . import audit, documents as documents_mod, idcheck, retention, states
from .models import (DisposalBatch, Document, Event, Kit, NumberRecord, Person, ReviewItem, ScannedPage,
                     StorageLocation, StoredFile, utcnow)
from .sealed import destroy_key

METHODS = ("shredding", "dissolving", "deletion")
DISPOSABLE = ("received", "checked", "stored", "disposal_due")


def is_due(document: Document, before: dt.date) -> bool:
    return (document.state in DISPOSABLE and document.disposal_due_on is not None
            and document.disposal_due_on <= before)


def not_due_reason(session: Session, document: Document, before: dt.date) -> str:
    """Why a document cannot be disposed of by `before`, in words."""
    if document.state not in DISPOSABLE:
        return f"it is {document.state}"
    if document.disposal_due_on is None:
        rule = document.retention_rule or "no rule"
        anchor = rule.rsplit(" after ", 1)[-1] if " after " in rule else None
        if anchor == "leave":
            kit = session.get(Kit, document.kit_id)
            person = session.get(Person, kit.person_id)
            return f"its rule ({rule}) waits for person {person.person_id} to leave"
        return f"its rule ({rule}) waits for the document to be {anchor or 'planned'}"
    return f"it is not due until {document.disposal_due_on.isoformat()} ({document.retention_rule})"


@dataclass
class Selection:
    documents: list[Document]
    boxes: list[StorageLocation]
    listed: dict[str, list[Document]]        # box code -> what the contents list says is in it


def _boxes(session: Session, codes: list[str]) -> list[StorageLocation]:
    boxes = []
    for code in codes:
        location = documents_mod.location_by_code(session, code)
        if location.kind != "box":
            raise UsageError(f"storage location {code} is a {location.kind}; --box names boxes kept by an outside "
                             "storage company (name a cabinet's documents with --documents)")
        boxes.append(location)
    return boxes


def select_due(session: Session, before: dt.date, *, boxes: Sequence[str] = (),
               codes: Sequence[str] = ()) -> Selection:
    """What a batch would dispose of. Named documents must be due (else refused, naming why); a named kit means
    its due documents; a box means its due contents (the rest become differences); nothing named means all
    that is due by `before`."""
    locations = _boxes(session, list(boxes))
    chosen: dict[int, Document] = {}
    for code in codes:
        if documents_mod.is_kit_code(code):
            kit = documents_mod.kit_by_code(session, code)
            kit_documents = documents_mod.documents_of_kit(session, kit)
            due = [d for d in kit_documents if is_due(d, before)]
            if not due:
                raise StateError(f"kit {kit.code} has nothing due for disposal by {before.isoformat()}: "
                                 + "; ".join(f"{d.code} {not_due_reason(session, d, before)}" for d in kit_documents))
        else:
            document = documents_mod.document_by_code(session, code)
            states.require("document", document.code, document.state, "disposed", states.DOCUMENT_TRANSITIONS)
            if not is_due(document, before):
                raise StateError(f"document {document.code} ({document.document}) cannot be disposed of by "
                                 f"{before.isoformat()}: {not_due_reason(session, document, before)}")
            due = [document]
        for document in due:
            chosen.setdefault(document.id, document)
    listed = {}
    for box in locations:
        listed[box.code] = documents_mod.contents(session, box)
        for document in listed[box.code]:
            if is_due(document, before):
                chosen.setdefault(document.id, document)
    if not codes and not locations:
        for document in session.execute(select(Document).where(
                Document.state.in_(DISPOSABLE), Document.disposal_due_on.is_not(None),
                Document.disposal_due_on <= before).order_by(Document.code)).scalars():
            chosen.setdefault(document.id, document)
    ordered = sorted(chosen.values(), key=lambda d: d.code)
    return Selection(ordered, locations, listed)


def reconcile(session: Session, selection: Selection, before: dt.date) -> dict:
    """Differences between the box contents lists and what this batch disposes of (empty without boxes)."""
    if not selection.boxes:
        return {}
    disposed = {d.code for d in selection.documents}
    listed_codes = {d.code for docs in selection.listed.values() for d in docs}
    listed_not_disposed = [{"document": d.code, "box": box, "state": d.state,
                            "due_on": d.disposal_due_on.isoformat() if d.disposal_due_on else None,
                            "reason": not_due_reason(session, d, before)}
                           for box, docs in selection.listed.items() for d in docs if d.code not in disposed]
    disposed_not_listed = []
    for d in selection.documents:
        if d.code not in listed_codes:
            location = session.get(StorageLocation, d.location_id) if d.location_id else None
            disposed_not_listed.append({"document": d.code, "location": location.code if location else None,
                                        "state": d.state})
    boxes = [{"box": b.code, "provider": b.provider, "listed": len(selection.listed[b.code]),
              "disposed": sum(1 for d in selection.listed[b.code] if d.code in disposed)}
             for b in selection.boxes]
    return {"boxes": boxes, "listed_not_disposed": listed_not_disposed,
            "disposed_not_listed": disposed_not_listed,
            "differences": len(listed_not_disposed) + len(disposed_not_listed)}


def mark_due(session: Session, selection: Selection, *, actor: str) -> list[Document]:
    """Set the due documents aside for disposal (state disposal_due); those already so are left as they are."""
    audit.serialise_writers(session)
    marked = []
    for document in selection.documents:
        if document.state == "disposal_due":
            continue
        states.require("document", document.code, document.state, "disposal_due", states.DOCUMENT_TRANSITIONS)
        previous, document.state = document.state, "disposal_due"
        kit = session.get(Kit, document.kit_id)
        audit.append(session, actor=actor, action="document.disposal_due", object_type="document",
                     object_id=document.code, details={"kit": kit.code, "from_state": previous,
                                                       "due_on": document.disposal_due_on.isoformat()})
        marked.append(document)
    return marked


@dataclass
class Outcome:
    batch: DisposalBatch
    documents: list[Document]
    numbers_erased: int = 0
    files: list[str] = field(default_factory=list)    # store paths to remove once the transaction committed
    reconciliation: dict = field(default_factory=dict)
    early: list[str] = field(default_factory=list)     # disposed of before their planned date


def run(session: Session, *, method: str, executor: str, manager: str, contractor: str | None,
        certificate_number: str | None, boxes: Sequence[str], codes: Sequence[str], before: dt.date,
        actor: str) -> Outcome:
    audit.serialise_writers(session)
    _validate(method, executor, manager, contractor, certificate_number)
    selection = select_due(session, before, boxes=boxes, codes=codes)
    if not selection.documents:
        where = f" in {', '.join(boxes)}" if boxes else ""
        raise StateError(f"nothing{where} is due for disposal by {before.isoformat()}; nothing was recorded "
                         "(`mynumber disposal due` lists what is due)")
    reconciliation = reconcile(session, selection, before)
    from .service import reserve
    batch = DisposalBatch(code=f"DB{reserve(session, 'disposal_batch', 1):07d}", method=method, executor=executor,
                          manager=manager, contractor=contractor, certificate_number=certificate_number,
                          executed_at=utcnow(), reconciliation=reconciliation)
    session.add(batch)
    session.flush()
    # A cut-off date after the execution date disposes of documents ahead of their planned date: allowed (the
    # manager decides), but said so in the record.
    executed_on = retention.local_date(batch.executed_at)
    early = [d.code for d in selection.documents if d.disposal_due_on > executed_on]
    outcome = Outcome(batch, selection.documents, reconciliation=reconciliation, early=early)
    for document in selection.documents:
        _dispose(session, document, batch, outcome, actor=actor)
    for box in reconciliation.get("boxes", []):
        audit.append(session, actor=actor, action="location.reconciled", object_type="location",
                     object_id=box["box"], details={"batch": batch.code, "listed": box["listed"],
                                                    "disposed": box["disposed"]})
    audit.append(session, actor=actor, action="disposal.run", object_type="disposal_batch", object_id=batch.code,
                 details={"method": method, "executor": executor, "manager": manager, "contractor": contractor,
                          "certificate_number": certificate_number, "due_by": before.isoformat(),
                          "documents": len(selection.documents), "numbers_erased": outcome.numbers_erased,
                          "files_erased": len(outcome.files), "boxes": [b.code for b in selection.boxes],
                          "differences": reconciliation.get("differences", 0), "ahead_of_plan": len(early)})
    return outcome


def _validate(method: str, executor: str, manager: str, contractor: str | None,
              certificate_number: str | None) -> None:
    if method not in METHODS:
        raise UsageError(f"disposal method {method!r} is not one of {', '.join(METHODS)}")
    if not executor.strip() or not manager.strip():
        raise UsageError("a disposal needs the executor (--executor) and the responsible manager (--manager)")
    if method == "dissolving" and not (contractor and certificate_number):
        raise UsageError("dissolving is done by a contractor: give --contractor and the contractor's "
                         "--certificate-number")
    if certificate_number and not contractor:
        raise UsageError("--certificate-number is the contractor's; name the contractor with --contractor")


def _dispose(session: Session, document: Document, batch: DisposalBatch, outcome: Outcome, *, actor: str) -> None:
    states.require("document", document.code, document.state, "disposed", states.DOCUMENT_TRANSITIONS)
    kit = session.get(Kit, document.kit_id)
    location = session.get(StorageLocation, document.location_id) if document.location_id else None
    previous = document.state
    document.state, document.disposed_at, document.disposal_batch_id = "disposed", batch.executed_at, batch.id
    audit.append(session, actor=actor, action="document.disposed", object_type="document", object_id=document.code,
                 site=location.site if location else None,
                 details={"batch": batch.code, "method": batch.method, "kit": kit.code, "from_state": previous,
                          "location": location.code if location else None,
                          "due_on": document.disposal_due_on.isoformat()})
    page = session.get(ScannedPage, document.scanned_page_id) if document.scanned_page_id else None
    if page is None:
        return
    if page.stored_file_id is not None:
        _erase_file(session, session.get(StoredFile, page.stored_file_id), document, batch, outcome, actor=actor)
    _erase_file(session, idcheck.stored_file(session, idcheck.ID_NUMBERS, idcheck.id_numbers_name(page)), document, batch,
                outcome, actor=actor)
    records = session.execute(select(NumberRecord).where(NumberRecord.scanned_page_id == page.id)
                              .order_by(NumberRecord.field)).scalars().all()
    for record in records:
        _erase_number(session, record, kit, page, document, batch, outcome, actor=actor)


def _erase_file(session: Session, stored: StoredFile | None, document: Document, batch: DisposalBatch,
                outcome: Outcome, *, actor: str) -> None:
    if stored is None or stored.relpath in outcome.files:
        return
    destroy_key(session, stored.data_key_id, actor)
    outcome.files.append(stored.relpath)
    audit.append(session, actor=actor, action="file.erased", object_type="document", object_id=document.code,
                 details={"batch": batch.code, "kind": stored.kind, "stored_file": stored.id})


def _erase_number(session: Session, record: NumberRecord, kit: Kit, page: ScannedPage, document: Document,
                  batch: DisposalBatch, outcome: Outcome, *, actor: str) -> None:
    had_number = record.ciphertext is not None or record.number_hash is not None
    if record.data_key_id is not None:
        destroy_key(session, record.data_key_id, actor)
    record.ciphertext, record.number_hash = None, None
    # Crops of the field (kept for review, or as evidence of a miswritten number) are scans of the number too.
    crops = {item.crop_file_id for item in session.execute(
        select(ReviewItem).where(ReviewItem.number_record_id == record.id)).scalars() if item.crop_file_id}
    # ... and so is the classifier's reading of it, kept for the ID-copy check
    for kind in ("field_crop", idcheck.FIELD_READING):
        by_name = idcheck.stored_file(session, kind, idcheck.reading_name(kit, record.field, page.id))
        if by_name is not None:
            crops.add(by_name.id)
    for crop_id in sorted(crops):
        _erase_file(session, session.get(StoredFile, crop_id), document, batch, outcome, actor=actor)
    for item in session.execute(select(ReviewItem).where(ReviewItem.number_record_id == record.id,
                                                         ReviewItem.state == "open")).scalars():
        item.state = "closed"
        audit.append(session, actor=actor, action="review.closed", object_type="kit", object_id=kit.code,
                     details={"item": item.id, "field": record.field, "reason": f"disposed of in {batch.code}"})
    if not had_number and not crops:
        return   # an empty field: nothing of it was kept
    if had_number:
        outcome.numbers_erased += 1
    audit.append(session, actor=actor, action="number.erased", object_type="kit", object_id=kit.code,
                 details={"batch": batch.code, "field": record.field, "status": record.status,
                          "document": document.code, "had_number": had_number})


# --- reading a batch back (certificate, reprint) ----------------------------------------------------------

@dataclass
class BatchRecord:
    code: str
    method: str
    executor: str
    manager: str
    contractor: str | None
    certificate_number: str | None
    executed_on: dt.date
    recorded_by: str
    due_by: str | None
    numbers_erased: int
    files_erased: int
    ahead_of_plan: int
    reconciliation: dict
    rows: list[dict]


def batch_record(session: Session, code: str) -> BatchRecord:
    batch = session.execute(select(DisposalBatch).where(DisposalBatch.code == code)).scalar_one_or_none()
    if batch is None:
        raise NotFound(f"disposal batch {code} does not exist")
    event = session.execute(select(Event).where(Event.action == "disposal.run", Event.object_id == code)
                            .order_by(Event.seq.desc()).limit(1)).scalar_one_or_none()
    details = event.details if event is not None else {}
    rows = []
    q = (select(Document, Kit, StorageLocation).join(Kit, Document.kit_id == Kit.id)
         .outerjoin(StorageLocation, Document.location_id == StorageLocation.id)
         .where(Document.disposal_batch_id == batch.id).order_by(Document.code))
    for document, kit, location in session.execute(q).all():
        rows.append({"document": document.code, "kit": kit.code, "type": document.document,
                     "page": document.doc_page, "location": location.code if location else None,
                     "received_on": retention.local_date(document.received_at).isoformat(),
                     "due_on": document.disposal_due_on.isoformat() if document.disposal_due_on else None})
    return BatchRecord(batch.code, batch.method, batch.executor, batch.manager, batch.contractor,
                       batch.certificate_number, retention.local_date(batch.executed_at),
                       event.actor if event is not None else "", details.get("due_by"),
                       int(details.get("numbers_erased", 0)), int(details.get("files_erased", 0)),
                       int(details.get("ahead_of_plan", 0)), batch.reconciliation or {}, rows)
