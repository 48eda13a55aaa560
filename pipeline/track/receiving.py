"""What a scanned page changes: the kit's receipt, its number records, review items, and its completeness.

Called once per page, inside the page's own transaction, so a batch killed at any point has recorded whole
pages only, and re-running it skips exactly those.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..kit.compose import fields_in_use
from . import audit, idcheck, refusals
from .models import Document, Kit, NumberRecord, ReviewItem, ScannedPage, utcnow
from .sealed import Sealer

RECEIVABLE = ("printed", "sent", "returned_undeliverable", "lost")
DONE_STATES = ("received", "complete", "incomplete", "refused")
READER_STATUS = {"accept": "accepted", "review": "review", "miswritten": "miswritten", "blank": "empty"}


@dataclass
class FieldOutcome:
    field: str
    decision: str                  # accept | review | miswritten | blank
    confidence: float | None
    digits: str | None = field(default=None, repr=False)   # only for accept; never logged
    crop_png: bytes | None = field(default=None, repr=False)
    reason: str | None = None
    # (12, 10) per-box probabilities of a field left for review, kept sealed with its review item so that the
    # kit's ID copy can settle it (pipeline/track/idcheck.py); they say what the boxes hold: never logged.
    probs: np.ndarray | None = field(default=None, repr=False)


@dataclass
class PageFacts:
    """Everything the scan stages learned about one page (never a number in clear outside `fields`)."""
    source_sha256: str
    source_name: str
    page_index: int
    status: str                    # kit_page | id_copy | foreign | rejected_tag | problem | unassigned
    kit_code: str | None = None
    document: str | None = None
    doc_page: int | None = None
    message: str | None = None
    checks: dict = field(default_factory=dict)
    fields: list[FieldOutcome] = field(default_factory=list)
    image_bytes: bytes | None = field(default=None, repr=False)   # the page as stored (redacted for ID copies)
    image_kind: str = "page"
    # valid numbers the redactor read on an ID copy (sealed when recorded; never logged)
    id_numbers: list[str] = field(default_factory=list, repr=False)
    settled_by_id_copy: int = 0    # set by record_page: review items of the kit its ID copies settled


def serialise(session: Session) -> None:
    """Make this transaction the only one recording pages until it ends: take the event chain's head lock
    before reading anything the page's changes depend on (is the page recorded, is the kit received, is the
    untagged page still unassigned). Two scan processes on PostgreSQL would otherwise both decide from the
    same snapshot and record a page, a receipt or a document twice. SQLite's BEGIN IMMEDIATE already does this."""
    audit.serialise_writers(session)


def already_recorded(session: Session, sha: str, index: int) -> ScannedPage | None:
    return session.execute(select(ScannedPage).where(ScannedPage.source_sha256 == sha,
                                                     ScannedPage.page_index == index)).scalar_one_or_none()


def _kit(session: Session, code: str | None) -> Kit | None:
    if code is None:
        return None
    return session.execute(select(Kit).where(Kit.code == code)).scalar_one_or_none()


def record_page(session: Session, sealer: Sealer, facts: PageFacts, *, actor: str, site: str | None) -> ScannedPage:
    serialise(session)
    kit = _kit(session, facts.kit_code)
    status = facts.status
    if status == "kit_page" and kit is not None and _already_have(session, kit, facts.document, facts.doc_page):
        status = "duplicate"
    page = ScannedPage(source_sha256=facts.source_sha256, source_name=facts.source_name, page_index=facts.page_index,
                       status=status, kit_id=kit.id if kit else None, document=facts.document,
                       doc_page=facts.doc_page, message=facts.message, checks=facts.checks, operator=actor, site=site)
    session.add(page)
    session.flush()
    where = {"file": facts.source_name, "page": facts.page_index}
    if status == "duplicate":
        page.message = f"{facts.document} page {facts.doc_page} of kit {kit.code} was already received; nothing changed"
        audit.append(session, actor=actor, action="page.duplicate", object_type="kit", object_id=kit.code, site=site,
                     details={**where, "document": facts.document, "doc_page": facts.doc_page})
        return page
    if facts.image_bytes is not None and status in ("kit_page", "id_copy", "unassigned"):
        stored = sealer.store_file(session, facts.image_kind, f"{facts.source_sha256[:20]}-{facts.page_index}",
                                   facts.image_bytes, kit_id=kit.id if kit else None)
        page.stored_file_id = stored.id
    if facts.id_numbers and status in ("kit_page", "id_copy", "unassigned"):
        idcheck.store_id_numbers(session, sealer, page, facts.id_numbers)
    if kit is None:
        audit.append(session, actor=actor, action=f"page.{status}", object_type="scan", object_id=facts.source_sha256[:16],
                     site=site, details={**where, "reason": facts.message} | _public_checks(facts.checks))
        return page
    _receive(session, kit, facts, actor=actor, site=site)
    add_document(session, kit, page, actor=actor, site=site)
    audit.append(session, actor=actor, action="page.received" if status == "kit_page" else "idcopy.received",
                 object_type="kit", object_id=kit.code, site=site,
                 details={**where, "document": facts.document, "doc_page": facts.doc_page} | _public_checks(facts.checks))
    for outcome in facts.fields:
        _record_field(session, sealer, kit, page, outcome, actor=actor, site=site)
    # only a page that brings one half of a pair (numbers read on an ID copy, or a reading left for review) can
    # settle anything: the others skip the lookup of the kit's sealed files
    if facts.id_numbers or any(o.probs is not None for o in facts.fields):
        facts.settled_by_id_copy = settle_with_id_copies(session, sealer, kit, actor=actor, site=site)
    recompute(session, kit, actor=actor, site=site)
    return page


def settle_with_id_copies(session: Session, sealer: Sealer, kit: Kit, *, actor: str, site: str | None) -> int:
    """Review items of the kit that its ID copies settle ([review] settle_with_id_copy, on by default)."""
    if not sealer.settings.section("review").get("settle_with_id_copy", True):
        return 0
    return idcheck.settle(session, sealer, kit, actor=actor, site=site)


def assign_unassigned(session: Session, sealer: Sealer, pages: list[int], kit_code: str, *, actor: str,
                      site: str | None) -> int:
    """Give untagged pages (ID copies) to a kit; returns how many of its review items they settled."""
    serialise(session)
    kit = _kit(session, kit_code)
    if kit is None:
        return 0
    brought_numbers = False
    for page_id in pages:
        page = session.get(ScannedPage, page_id)
        if page is None or page.status != "unassigned":
            continue
        page.status, page.kit_id = "id_copy", kit.id
        page.message = "untagged page assigned to the kit of the next tagged page"
        brought_numbers |= idcheck.assign_id_numbers(session, page)
        add_document(session, kit, page, actor=actor, site=site)
        audit.append(session, actor=actor, action="idcopy.assigned", object_type="kit", object_id=kit.code, site=site,
                     details={"file": page.source_name, "page": page.page_index})
    settled = settle_with_id_copies(session, sealer, kit, actor=actor, site=site) if brought_numbers else 0
    recompute(session, kit, actor=actor, site=site)
    return settled


def add_document(session: Session, kit: Kit, page: ScannedPage, *, actor: str, site: str | None) -> Document:
    """The paper this page is: tracked from here to storage and disposal."""
    from .service import reserve
    document = Document(code=f"D{reserve(session, 'document', 1):07d}", kit_id=kit.id, scanned_page_id=page.id,
                        document=page.document or "id_copy", doc_page=page.doc_page, state="received")
    session.add(document)
    session.flush()
    from . import retention
    retention.plan(session, document, kit, actor=actor)
    audit.append(session, actor=actor, action="document.received", object_type="document", object_id=document.code,
                 site=site, details={"kit": kit.code, "document": document.document, "doc_page": document.doc_page,
                                     "file": page.source_name, "page": page.page_index})
    return document


def _public_checks(checks: dict) -> dict:
    return {k: v for k, v in checks.items() if k in ("consent", "signed", "numbers_covered", "barcodes_covered",
                                                     "reasons", "pasted", "proof_clean")}


def _already_have(session: Session, kit: Kit, document: str | None, doc_page: int | None) -> bool:
    return session.execute(select(ScannedPage.id).where(
        ScannedPage.kit_id == kit.id, ScannedPage.status == "kit_page", ScannedPage.document == document,
        ScannedPage.doc_page == doc_page)).first() is not None


def _receive(session: Session, kit: Kit, facts: PageFacts, *, actor: str, site: str | None) -> None:
    if kit.state in RECEIVABLE:
        previous = kit.state
        kit.state, kit.received_at, kit.received_site, kit.received_by = "received", utcnow(), site, actor
        audit.append(session, actor=actor, action="kit.received", object_type="kit", object_id=kit.code, site=site,
                     details={"from_state": previous, "via": facts.document or "untagged page",
                              "file": facts.source_name, "page": facts.page_index})


def _record_field(session: Session, sealer: Sealer, kit: Kit, page: ScannedPage, outcome: FieldOutcome, *,
                  actor: str, site: str | None) -> None:
    record = session.execute(select(NumberRecord).where(NumberRecord.kit_id == kit.id,
                                                        NumberRecord.field == outcome.field)).scalar_one_or_none()
    if record is None:
        record = NumberRecord(kit_id=kit.id, field=outcome.field, status="empty")
        session.add(record)
    elif record.status == "accepted":
        return  # an accepted number is never replaced by a later read
    status = READER_STATUS[outcome.decision]
    reason = outcome.reason
    if status == "accepted":
        other = _same_number_elsewhere(session, sealer, kit, outcome.digits)
        if other is not None:
            status, reason = "review", f"the same number was already accepted for kit {other} ({'same' if other == kit.code else 'another'} person?)"
    record.status, record.confidence, record.scanned_page_id, record.source = status, outcome.confidence, page.id, "reader"
    session.flush()
    if status == "accepted":
        sealer.seal_number(session, record, outcome.digits)
    crop_id = None
    if status in ("review", "miswritten") and outcome.crop_png is not None:
        crop_id = sealer.store_file(session, "field_crop", idcheck.reading_name(kit, outcome.field, page.id),
                                    outcome.crop_png, kit_id=kit.id).id
    if status == "review":
        session.add(ReviewItem(number_record_id=record.id, crop_file_id=crop_id,
                               reason=reason or "the reader is not sure of every digit"))
        if outcome.probs is not None:
            idcheck.store_reading(session, sealer, kit, outcome.field, page.id, outcome.probs)
    details = {"field": outcome.field, "status": status, "file": page.source_name, "page": page.page_index}
    if outcome.confidence is not None:
        details["confidence"] = round(outcome.confidence, 6)
    if reason:
        details["reason"] = reason
    audit.append(session, actor=actor, action=f"number.{status}", object_type="kit", object_id=kit.code, site=site,
                 details=details)


def _same_number_elsewhere(session: Session, sealer: Sealer, kit: Kit, digits: str | None) -> str | None:
    if not digits:
        return None
    digest = sealer.number_hash(digits)
    row = session.execute(select(Kit.code).join(NumberRecord, NumberRecord.kit_id == Kit.id).where(
        NumberRecord.number_hash == digest, NumberRecord.status == "accepted")).first()
    return row[0] if row else None


def kit_report(session: Session, kit: Kit) -> tuple[str, list[str], dict[str, str], dict]:
    """(state it should be in, what is missing, field statuses, refusal details)."""
    pages = session.execute(select(ScannedPage).where(ScannedPage.kit_id == kit.id,
                                                      ScannedPage.status.in_(("kit_page", "id_copy")))).scalars().all()
    got = {(p.document, p.doc_page): p for p in pages if p.status == "kit_page"}
    id_copies = [p for p in pages if p.status == "id_copy"]
    records = {r.field: r.status for r in session.execute(
        select(NumberRecord).where(NumberRecord.kit_id == kit.id)).scalars()}
    dependents = len(kit.person.dependents)
    planned = [(kp.document, kp.page) for kp in kit.pages]
    fields: dict[str, str] = {}
    for document, page in planned:
        for f in fields_in_use(document, page, dependents):
            fields[f] = records.get(f, "not received")

    refusal = got.get(("refusal_form", 1))
    if refusal is not None and (refusal.checks.get("reasons") or refusal.checks.get("signed")):
        return "refused", [], fields, {"reasons": refusal.checks.get("reasons", []), "evidence_page": refusal.id}

    missing: list[str] = []
    for document, page in planned:
        if document in ("provision_form", "delegation_agreement") and (document, page) not in got:
            missing.append(f"{document.replace('_', ' ')}" + (f" page {page}" if document == "provision_form" else ""))
    pasted = any(p.checks.get("pasted") for (d, _), p in got.items() if d == "id_copy_sheet")
    if not id_copies and not pasted:
        missing.append("ID copy")
    for name, status in fields.items():
        if status == "review":
            missing.append(f"number {name}: under review")
        elif status == "miswritten":
            missing.append(f"number {name}: miswritten, ask the person again")
        elif status == "empty":
            missing.append(f"number {name}: left empty")
    pf1 = got.get(("provision_form", 1))
    if pf1 is not None:
        if pf1.checks.get("consent") is False:
            missing.append("provision form: consent box not ticked")
        if pf1.checks.get("signed") is False:
            missing.append("provision form: not signed")
    da = got.get(("delegation_agreement", 1))
    if da is not None and da.checks.get("signed") is False:
        missing.append("delegation agreement: not signed")
    return ("incomplete" if missing else "complete"), missing, fields, {}


def recompute(session: Session, kit: Kit, *, actor: str, site: str | None) -> None:
    if kit.state not in DONE_STATES:
        return
    session.flush()
    state, missing, _, refusal = kit_report(session, kit)
    if state == kit.state and missing == (kit.missing or []):
        return
    previous = kit.state
    kit.state, kit.missing = state, missing
    details = {"from_state": previous, "missing": missing}
    if refusal:
        details |= refusal
    audit.append(session, actor=actor, action=f"kit.{state}", object_type="kit", object_id=kit.code, site=site,
                 details=details)
    if state == "refused":   # the form is the evidence the refusal is kept with (idempotent per page)
        refusals.record(session, kit, refusal.get("reasons", []), refusal.get("evidence_page"), actor=actor, site=site)
