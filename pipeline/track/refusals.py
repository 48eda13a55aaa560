"""Refusals to provide the number (提供拒否), kept with their reason and evidence so the company can show that
it asked, and why it has no number. A refusal is recorded, never argued with: a refused kit gets no more
reminders (pipeline/track/reminders.py).

Two sources: the refusal form came back (the scan intake calls `record` with the ticked reasons and the
scanned page as evidence), or the person said so by phone, mail or in person (`record_stated`: no paper, so
the reason and a note are the record)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import StateError, UsageError
from . import audit, notes
from .models import Document, Kit, Refusal, ScannedPage
from .service import kit_by_code

# A complete kit has given the number; a void kit was replaced. Neither can be refused any more.
NOT_REFUSABLE = frozenset({"complete", "void"})


def _evidence(session: Session, page_id: int | None) -> dict:
    if page_id is None:
        return {}
    page = session.get(ScannedPage, page_id)
    document = session.execute(select(Document.code).where(Document.scanned_page_id == page_id)).scalar_one_or_none()
    out = {"evidence_page": page_id, "evidence_document": document}
    if page is not None:
        out |= {"file": page.source_name, "page": page.page_index}
    return out


def record(session: Session, kit: Kit, reasons: list[str], evidence_page_id: int | None, *, actor: str,
           site: str | None = None) -> Refusal:
    """The refusal a returned form states. Idempotent per evidence page: recomputing a kit again (a later page,
    a re-run) never adds a second row for the same form."""
    existing = session.execute(select(Refusal).where(Refusal.kit_id == kit.id,
                                                     Refusal.evidence_page_id == evidence_page_id)).scalars().first()
    if existing is not None and evidence_page_id is not None:
        return existing
    refusal = Refusal(kit_id=kit.id, reasons=list(reasons), evidence_page_id=evidence_page_id, recorded_by=actor)
    session.add(refusal)
    session.flush()
    audit.append(session, actor=actor, action="refusal.recorded", object_type="kit", object_id=kit.code, site=site,
                 details={"source": "form", "reasons": list(reasons)} | _evidence(session, evidence_page_id))
    return refusal


def record_stated(session: Session, code: str, reason: str, *, actor: str, note: str | None = None,
                  site: str | None = None) -> tuple[Refusal, bool]:
    """A refusal told by phone, e-mail or in person. Returns (refusal, created); the same statement recorded
    again (a re-run of the command) is not duplicated."""
    audit.serialise_writers(session)
    reason = notes.clean(reason, "the reason")
    if reason is None:
        raise UsageError("a refusal needs its reason (--reason); write 'not given' when the person gave none")
    note = notes.clean(note, "the note")
    kit = kit_by_code(session, code)
    if kit.state in NOT_REFUSABLE:
        raise StateError(f"kit {code} is {kit.state}; a refusal cannot be recorded for it "
                         f"(not for kits that are {' or '.join(sorted(NOT_REFUSABLE))})")
    for existing in session.execute(select(Refusal).where(Refusal.kit_id == kit.id,
                                                          Refusal.evidence_page_id.is_(None))).scalars():
        if existing.reasons == [reason] and existing.note == note:
            return existing, False
    refusal = Refusal(kit_id=kit.id, reasons=[reason], note=note, evidence_page_id=None, recorded_by=actor)
    session.add(refusal)
    session.flush()
    audit.append(session, actor=actor, action="refusal.recorded", object_type="kit", object_id=kit.code,
                 site=site or kit.site, details={"source": "stated", "reasons": [reason], "note": note,
                                                 "kit_state": kit.state})
    return refusal, True


def of_kits(session: Session, kit_ids: list[int]) -> list[Refusal]:
    return list(session.execute(select(Refusal).where(Refusal.kit_id.in_(kit_ids))
                                .order_by(Refusal.recorded_at, Refusal.id)).scalars())


def evidence_document(session: Session, refusal: Refusal) -> str | None:
    if refusal.evidence_page_id is None:
        return None
    return session.execute(select(Document.code).where(
        Document.scanned_page_id == refusal.evidence_page_id)).scalar_one_or_none()
