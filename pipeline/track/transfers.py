"""Packages between sites: sent by a named person with a carrier (and tracking number), confirmed on receipt
by someone at the receiving site. A package not confirmed within its due days is overdue, and its sender and
carrier are who a loss in transit is asked of.

Where an item is follows from its transfers: an item in a package still on its way (or declared lost) cannot
be sent again, and an item that arrived at a site can next be sent only from that site.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..errors import NotFound, PermissionDenied, StateError, UsageError
from . import audit, notes, states
from .documents import mark_lost as mark_documents_lost
from .models import Document, Kit, Transfer, TransferItem, utcnow
from .service import CARRIERS, reserve

# Registered mail and Letter Pack always come with a tracking number; without it a loss has no trace.
TRACKED_CARRIERS = frozenset({"simple_registered", "letterpack"})
NOT_SENDABLE_KITS = frozenset({"void"})
NOT_SENDABLE_DOCUMENTS = frozenset({"disposed", "lost"})


@dataclass(frozen=True)
class Contents:
    kits: list[str]
    documents: list[str]


def carrier_code(text: str) -> str:
    code = CARRIERS.get(text.strip())
    if code is None:
        raise UsageError(f"carrier {text!r} is not known; use one of 簡易書留, レターパック, 社内便, 手渡し "
                         "(or simple_registered, letterpack, internal_mail, hand_over)")
    return code


def by_code(session: Session, code: str, *, lock: bool = False) -> Transfer:
    query = select(Transfer).where(Transfer.code == code)
    if lock:
        query = query.with_for_update()
    transfer = session.execute(query).scalar_one_or_none()
    if transfer is None:
        raise NotFound(f"transfer {code} does not exist")
    return transfer


def contents(session: Session, transfer: Transfer) -> Contents:
    kits = session.execute(select(Kit.code).join(TransferItem, TransferItem.kit_id == Kit.id)
                           .where(TransferItem.transfer_id == transfer.id).order_by(Kit.code)).scalars().all()
    documents = session.execute(select(Document.code).join(TransferItem, TransferItem.document_id == Document.id)
                                .where(TransferItem.transfer_id == transfer.id)
                                .order_by(Document.code)).scalars().all()
    return Contents(list(kits), list(documents))


def _unique(codes: list[str]) -> list[str]:
    return list(dict.fromkeys(c.strip() for c in codes if c.strip()))


def _last_transfers(session: Session, column, ids: list[int]) -> dict[int, Transfer]:
    """The newest transfer of each item: where it went, and whether it got there."""
    rows = session.execute(select(column, Transfer).join(Transfer, TransferItem.transfer_id == Transfer.id)
                           .where(column.in_(ids)).order_by(Transfer.id)).all()
    return {item_id: transfer for item_id, transfer in rows}


def _check_whereabouts(kind: str, code: str, last: Transfer | None, from_site: str) -> None:
    if last is None:
        return
    if last.state == "in_transit":
        raise StateError(f"{kind} {code} is in transfer {last.code} from {last.from_site} to {last.to_site}, "
                         "not yet confirmed; it cannot be sent again until that transfer is received")
    if last.state == "lost":
        raise StateError(f"{kind} {code} was lost in transfer {last.code}; if the package turned up, receive "
                         f"that transfer first (mynumber transfer receive {last.code})")
    if last.to_site != from_site:
        raise StateError(f"{kind} {code} arrived at {last.to_site} with transfer {last.code}; "
                         f"it cannot be sent from {from_site}")


def send(session: Session, *, from_site: str, to_site: str, carrier: str, tracking_number: str | None,
         due_days: int, kit_codes: list[str], document_codes: list[str], actor: str) -> Transfer:
    audit.serialise_writers(session)
    from_site, to_site = from_site.strip(), to_site.strip()
    if not from_site or not to_site or from_site == to_site:
        raise UsageError(f"a transfer goes from one site to another (got from {from_site!r} to {to_site!r})")
    carrier = carrier_code(carrier)
    tracking_number = (tracking_number or "").strip() or None
    if carrier in TRACKED_CARRIERS and tracking_number is None:
        raise UsageError(f"carrier {carrier} always has a tracking number: give it with --tracking")
    if due_days < 0:
        raise UsageError(f"--due-days must be 0 or more (got {due_days})")
    kit_codes, document_codes = _unique(kit_codes), _unique(document_codes)
    if not kit_codes and not document_codes:
        raise UsageError("a transfer needs at least one kit (--kits) or document (--documents)")

    # Locking the items serialises two people sending the same item at once (PostgreSQL; SQLite already is).
    kits = {k.code: k for k in session.execute(select(Kit).where(Kit.code.in_(kit_codes)).with_for_update()).scalars()}
    documents = {d.code: d for d in session.execute(
        select(Document).where(Document.code.in_(document_codes)).with_for_update()).scalars()}
    missing = [c for c in kit_codes if c not in kits] + [c for c in document_codes if c not in documents]
    if missing:
        raise NotFound(f"{', '.join(missing)} {'does' if len(missing) == 1 else 'do'} not exist; nothing was sent")
    last_kit = _last_transfers(session, TransferItem.kit_id, [k.id for k in kits.values()])
    last_doc = _last_transfers(session, TransferItem.document_id, [d.id for d in documents.values()])
    for code in kit_codes:
        kit = kits[code]
        if kit.state in NOT_SENDABLE_KITS:
            raise StateError(f"kit {code} is {kit.state}; it cannot be transferred")
        _check_whereabouts("kit", code, last_kit.get(kit.id), from_site)
    for code in document_codes:
        document = documents[code]
        if document.state in NOT_SENDABLE_DOCUMENTS:
            raise StateError(f"document {code} is {document.state}; it cannot be transferred")
        _check_whereabouts("document", code, last_doc.get(document.id), from_site)

    transfer = Transfer(code=f"T{reserve(session, 'transfer', 1):07d}", from_site=from_site, to_site=to_site,
                        sender=actor, carrier=carrier, tracking_number=tracking_number, state="in_transit",
                        sent_at=utcnow(), due_days=due_days)
    session.add(transfer)
    session.flush()
    session.add_all([TransferItem(transfer_id=transfer.id, kit_id=kits[c].id) for c in kit_codes]
                    + [TransferItem(transfer_id=transfer.id, document_id=documents[c].id) for c in document_codes])
    audit.append(session, actor=actor, action="transfer.sent", object_type="transfer", object_id=transfer.code,
                 site=from_site, details={"to_site": to_site, "carrier": carrier, "tracking_number": tracking_number,
                                          "due_days": due_days, "kits": kit_codes, "documents": document_codes})
    _item_events(session, "transferred", kit_codes, document_codes, transfer, actor=actor, site=from_site)
    return transfer


def _item_events(session: Session, verb: str, kit_codes: list[str], document_codes: list[str], transfer: Transfer,
                 *, actor: str, site: str) -> None:
    """Each item's own history shows the package it travelled in."""
    details = {"transfer": transfer.code, "from_site": transfer.from_site, "to_site": transfer.to_site}
    for code in kit_codes:
        audit.append(session, actor=actor, action=f"kit.{verb}", object_type="kit", object_id=code, site=site,
                     details=details)
    for code in document_codes:
        audit.append(session, actor=actor, action=f"document.{verb}", object_type="document", object_id=code,
                     site=site, details=details)


def receive(session: Session, code: str, *, actor: str, site: str | None = None) -> Transfer:
    audit.serialise_writers(session)
    transfer = by_code(session, code, lock=True)
    if transfer.state == "received":
        raise StateError(f"transfer {code} was already received at {transfer.to_site} by {transfer.received_by} "
                         f"on {transfer.received_at:%Y-%m-%d %H:%M} UTC; it cannot be received twice")
    if site is not None and site.strip() != transfer.to_site:
        raise StateError(f"transfer {code} goes to {transfer.to_site}; it cannot be confirmed at {site.strip()}")
    if actor == transfer.sender:
        raise PermissionDenied(f"{actor} sent transfer {code}; its receipt must be confirmed by someone at "
                               f"{transfer.to_site}, not by the sender")
    states.require("transfer", code, transfer.state, "received", states.TRANSFER_TRANSITIONS)
    previous = transfer.state
    transfer.state, transfer.received_at, transfer.received_by = "received", utcnow(), actor
    items = contents(session, transfer)
    details = {"from_state": previous, "sender": transfer.sender, "from_site": transfer.from_site,
               "hours_in_transit": round((transfer.received_at - transfer.sent_at).total_seconds() / 3600, 1),
               "kits": len(items.kits), "documents": len(items.documents)}
    audit.append(session, actor=actor, action="transfer.received", object_type="transfer", object_id=code,
                 site=transfer.to_site, details=details)
    _item_events(session, "transfer_received", items.kits, items.documents, transfer, actor=actor,
                 site=transfer.to_site)
    return transfer


def mark_lost(session: Session, code: str, *, actor: str, note: str | None = None) -> Transfer:
    """Declare a package lost. Its documents become lost too (they can no longer be stored or disposed of);
    the event names the sender and carrier who own the loss. If the package turns up it is received after all;
    its documents stay lost until the mailroom checks them again (`mynumber documents check`), an explicit act."""
    audit.serialise_writers(session)
    note = notes.clean(note, "the note")
    transfer = by_code(session, code, lock=True)
    states.require("transfer", code, transfer.state, "lost", states.TRANSFER_TRANSITIONS)
    transfer.state = "lost"
    items = contents(session, transfer)
    audit.append(session, actor=actor, action="transfer.lost", object_type="transfer", object_id=code,
                 site=transfer.from_site,
                 details={"sender": transfer.sender, "carrier": transfer.carrier,
                          "tracking_number": transfer.tracking_number, "to_site": transfer.to_site,
                          "note": note, "kits": items.kits, "documents": items.documents})
    _item_events(session, "transfer_lost", items.kits, [], transfer, actor=actor, site=transfer.from_site)
    if items.documents:
        mark_documents_lost(session, items.documents, actor=actor,
                            note=f"lost in transfer {code}" + (f": {note}" if note else ""))
    return transfer


def due_at(transfer: Transfer) -> dt.datetime:
    return transfer.sent_at + dt.timedelta(days=transfer.due_days)


def overdue(session: Session, as_of: dt.datetime) -> list[Transfer]:
    """Transfers that were still unconfirmed past their due time at `as_of` (UTC). For a past `as_of` this
    includes transfers confirmed only later, so the question "what was overdue at month end" has an answer."""
    candidates = session.execute(
        select(Transfer).where(Transfer.sent_at <= as_of,
                               or_(Transfer.state == "in_transit",
                                   (Transfer.state == "received") & (Transfer.received_at > as_of)))
        .order_by(Transfer.sent_at, Transfer.code)).scalars().all()
    return [t for t in candidates if due_at(t) < as_of]


def listing(session: Session, state: str | None = None) -> list[Transfer]:
    query = select(Transfer).order_by(Transfer.sent_at, Transfer.code)
    if state:
        query = query.where(Transfer.state == state)
    return list(session.execute(query).scalars())


def item_counts(session: Session, transfer_ids: list[int]) -> dict[int, tuple[int, int]]:
    counts: dict[int, list[int]] = {i: [0, 0] for i in transfer_ids}
    for transfer_id, kit_id, document_id in session.execute(
            select(TransferItem.transfer_id, TransferItem.kit_id, TransferItem.document_id)
            .where(TransferItem.transfer_id.in_(transfer_ids))):
        counts[transfer_id][0 if kit_id is not None else 1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}
