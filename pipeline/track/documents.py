"""Returned paper from the mailroom's check to storage: check, store, move, lose; storage locations; people
leaving (which moves the planned disposal date of their documents).

Every change is made here together with its audit event, in the caller's transaction. Storing requires the
check first: the check is the mailroom's attestation that the envelope held what the checklist says, so it is
never recorded on someone's behalf.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import NotFound, StateError, UsageError
from . import audit, retention, states
from .models import Document, Kit, Person, StorageLocation, utcnow

LOCATION_KINDS = ("cabinet", "box")
IN_LOCATION = ("stored", "disposal_due")   # states in which a document sits in its location


def is_kit_code(code: str) -> bool:
    return code.upper().startswith("K")


def document_by_code(session: Session, code: str) -> Document:
    document = session.execute(select(Document).where(Document.code == code.upper())).scalar_one_or_none()
    if document is None:
        raise NotFound(f"document {code} does not exist (document ids look like D0000001; "
                       "`mynumber documents list` shows them)")
    return document


def kit_by_code(session: Session, code: str) -> Kit:
    kit = session.execute(select(Kit).where(Kit.code == code.upper())).scalar_one_or_none()
    if kit is None:
        raise NotFound(f"kit {code} does not exist")
    return kit


def documents_of_kit(session: Session, kit: Kit) -> list[Document]:
    documents = session.execute(select(Document).where(Document.kit_id == kit.id)
                                .order_by(Document.code)).scalars().all()
    if not documents:
        raise StateError(f"kit {kit.code} is {kit.state}: nothing of it was ever received, so it has no "
                         "documents")
    return list(documents)


def _kit_of(session: Session, document: Document) -> Kit:
    return session.get(Kit, document.kit_id)


def _describe(document: Document) -> str:
    page = f" p{document.doc_page}" if document.doc_page else ""
    return f"document {document.code} ({document.document}{page})"


def _require(document: Document, target: str) -> None:
    states.require("document", document.code, document.state, target, states.DOCUMENT_TRANSITIONS)


# --- check -----------------------------------------------------------------------------------------------

def check(session: Session, code: str, *, actor: str, site: str | None = None,
          note: str | None = None) -> list[Document]:
    """The mailroom compared the contents with the checklist. A kit code checks each of its documents still
    waiting for the check (a later page may arrive after the first check); a document code exactly that one
    (a lost document found again is checked by its own code, never as part of its kit)."""
    audit.serialise_writers(session)
    if is_kit_code(code):
        kit = kit_by_code(session, code)
        kit_documents = documents_of_kit(session, kit)
        waiting = [d for d in kit_documents if d.state == "received"]
        if not waiting:
            held = ", ".join(f"{d.code} {d.state}" for d in kit_documents)
            raise StateError(f"kit {kit.code}: no document is waiting for the check; all were already checked "
                             f"({held})")
    else:
        document = document_by_code(session, code)
        if document.checked_at is not None and document.state != "lost":
            raise StateError(f"{_describe(document)} was already checked on "
                             f"{retention.local_date(document.checked_at)}; it is {document.state} now")
        waiting = [document]
    for document in waiting:
        _require(document, "checked")
        kit = _kit_of(session, document)
        found_again = document.state == "lost"
        document.state, document.checked_at = "checked", utcnow()
        details = {"kit": kit.code, "document": document.document, "doc_page": document.doc_page}
        if note:
            details["note"] = note
        if found_again:
            details["found_again"] = True
        audit.append(session, actor=actor, action="document.checked", object_type="document",
                     object_id=document.code, site=site or kit.received_site, details=details)
        retention.plan(session, document, kit, actor=actor, reason="checked", site=site or kit.received_site)
    return waiting


# --- storage locations -----------------------------------------------------------------------------------

def location_by_code(session: Session, code: str) -> StorageLocation:
    location = session.execute(select(StorageLocation).where(StorageLocation.code == code)).scalar_one_or_none()
    if location is None:
        raise NotFound(f"storage location {code} does not exist (add it with `mynumber store locations add`)")
    return location


def add_location(session: Session, code: str, kind: str, *, site: str | None, provider: str | None,
                 description: str | None, actor: str) -> StorageLocation:
    audit.serialise_writers(session)
    if kind not in LOCATION_KINDS:
        raise UsageError(f"storage location {code}: kind {kind!r} is not one of {', '.join(LOCATION_KINDS)}")
    if kind == "cabinet" and provider:
        raise UsageError(f"storage location {code}: a cabinet is the company's own; --provider is for boxes "
                         "kept by an outside storage company")
    if not code.strip() or len(code) > 40:
        raise UsageError("a storage location code must be 1 to 40 characters")
    existing = session.execute(select(StorageLocation).where(StorageLocation.code == code)).scalar_one_or_none()
    if existing is not None:
        raise StateError(f"storage location {code} already exists ({existing.kind}"
                         + (f", {existing.site}" if existing.site else "") + ")")
    location = StorageLocation(code=code, kind=kind, site=site, provider=provider, description=description)
    session.add(location)
    session.flush()
    audit.append(session, actor=actor, action="location.added", object_type="location", object_id=code, site=site,
                 details={"kind": kind, "provider": provider, "description": description})
    return location


def list_locations(session: Session) -> list[dict]:
    out = []
    for location in session.execute(select(StorageLocation).order_by(StorageLocation.code)).scalars():
        count = len(contents(session, location))
        out.append({"code": location.code, "kind": location.kind, "site": location.site,
                    "provider": location.provider, "documents": count})
    return out


def contents(session: Session, location: StorageLocation) -> list[Document]:
    """What the company's own records say is in this location now."""
    return list(session.execute(select(Document).where(Document.location_id == location.id,
                                                       Document.state.in_(IN_LOCATION))
                                .order_by(Document.code)).scalars())


# --- store -----------------------------------------------------------------------------------------------

@dataclass
class Stored:
    document: Document
    previous: str | None     # the location it was moved from


def expand(session: Session, codes: list[str], *, open_only_in_kits: bool = False) -> list[Document]:
    """Document codes as given, kit codes as all of the kit's documents (with `open_only_in_kits`, those not
    yet disposed of or lost); each once, in the order named."""
    seen: dict[int, Document] = {}
    for code in codes:
        if is_kit_code(code):
            found = documents_of_kit(session, kit_by_code(session, code))
            if open_only_in_kits:
                found = [d for d in found if d.state not in retention.FINAL_STATES]
        else:
            found = [document_by_code(session, code)]
        for document in found:
            seen.setdefault(document.id, document)
    return list(seen.values())


def store(session: Session, codes: list[str], location_code: str, *, actor: str) -> list[Stored]:
    """Put checked documents into a location, or move stored ones to another. All or nothing."""
    audit.serialise_writers(session)
    location = location_by_code(session, location_code)
    documents = expand(session, codes, open_only_in_kits=True)
    done = []
    for document in documents:
        if document.state == "received":
            raise StateError(f"{_describe(document)} is received but not checked; check it against the checklist "
                             f"first (`mynumber documents check {document.code}`), then store it")
        if document.state in IN_LOCATION and document.location_id == location.id:
            raise StateError(f"{_describe(document)} is already stored in {location.code}")
        _require(document, "stored")
        previous = session.get(StorageLocation, document.location_id).code if document.location_id else None
        kit = _kit_of(session, document)
        first_time = document.stored_at is None
        document.state, document.location_id = "stored", location.id
        if first_time:
            document.stored_at = utcnow()
        audit.append(session, actor=actor, action="document.stored" if previous is None else "document.moved",
                     object_type="document", object_id=document.code, site=location.site,
                     details={"kit": kit.code, "location": location.code, "kind": location.kind}
                     | ({"from": previous} if previous else {}))
        if first_time:
            retention.plan(session, document, kit, actor=actor, reason="stored", site=location.site)
        done.append(Stored(document, previous))
    return done


def mark_lost(session: Session, codes: list[str], *, actor: str, note: str) -> list[Document]:
    audit.serialise_writers(session)
    documents = expand(session, codes, open_only_in_kits=True)
    for document in documents:
        _require(document, "lost")
        kit = _kit_of(session, document)
        location = session.get(StorageLocation, document.location_id) if document.location_id else None
        previous = document.state
        document.state = "lost"
        audit.append(session, actor=actor, action="document.lost", object_type="document", object_id=document.code,
                     site=location.site if location else kit.received_site,
                     details={"kit": kit.code, "from_state": previous, "note": note,
                              "location": location.code if location else None})
    return documents


# --- people leaving --------------------------------------------------------------------------------------

@dataclass
class Leaving:
    person: Person
    previous: dt.date | None
    moved: list[tuple[Document, str | None]]   # (document, old planned date)
    changed: bool


def person_left(session: Session, person_id: str, left_on: dt.date, *, actor: str,
                correct: bool = False) -> Leaving:
    """Record the leaving date and move the planned disposal of the person's documents counted from it."""
    audit.serialise_writers(session)
    person = session.execute(select(Person).where(Person.person_id == person_id)).scalar_one_or_none()
    if person is None:
        raise NotFound(f"person {person_id} does not exist (people come from the roster)")
    previous = person.left_on
    if previous == left_on:
        return Leaving(person, previous, [], False)   # the same fact again: nothing changes
    if previous is not None and not correct:
        raise StateError(f"person {person_id} already left on {previous.isoformat()}; to change the date to "
                         f"{left_on.isoformat()} say so with --correct")
    person.left_on = left_on
    audit.append(session, actor=actor, action="person.left" if previous is None else "person.left_corrected",
                 object_type="person", object_id=person.person_id, site=person.site,
                 details={"left_on": left_on.isoformat(), "previous": previous.isoformat() if previous else None})
    moved = retention.replan_person(session, person, actor=actor,
                                    reason=f"person {person.person_id} left on {left_on.isoformat()}")
    return Leaving(person, previous, moved, True)


# --- listing ---------------------------------------------------------------------------------------------

def rows(session: Session, *, kit: str | None = None, state: str | None = None,
         person: str | None = None, location: str | None = None) -> list[dict]:
    q = (select(Document, Kit, Person, StorageLocation)
         .join(Kit, Document.kit_id == Kit.id).join(Person, Kit.person_id == Person.id)
         .outerjoin(StorageLocation, Document.location_id == StorageLocation.id).order_by(Document.code))
    if kit:
        q = q.where(Kit.code == kit_by_code(session, kit).code)
    if state:
        if state not in states.DOCUMENT_TRANSITIONS:
            raise UsageError(f"--state {state!r} is not a document state; states are "
                             f"{', '.join(states.DOCUMENT_TRANSITIONS)}")
        q = q.where(Document.state == state)
    if person:
        q = q.where(Person.person_id == person)
    if location:
        q = q.where(StorageLocation.code == location_by_code(session, location).code)
    return [row(d, k, p, loc) for d, k, p, loc in session.execute(q).all()]


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return value.isoformat()


def row(document: Document, kit: Kit, person: Person, location: StorageLocation | None) -> dict:
    return {"document": document.code, "kit": kit.code, "person_id": person.person_id, "type": document.document,
            "page": document.doc_page, "state": document.state, "location": location.code if location else None,
            "retention_rule": document.retention_rule, "disposal_due_on": _iso(document.disposal_due_on),
            "received_at": _iso(document.received_at), "checked_at": _iso(document.checked_at),
            "stored_at": _iso(document.stored_at), "disposed_at": _iso(document.disposed_at)}
