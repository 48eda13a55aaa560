"""The hash-chained event log: append inside the caller's transaction, verify the whole chain."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ChainHead, Event, utcnow

GENESIS = "0" * 64


def canonical(event: Event) -> bytes:
    body = {
        "seq": event.seq, "at": event.at.isoformat(timespec="microseconds"), "actor": event.actor,
        "action": event.action, "object_type": event.object_type, "object_id": event.object_id,
        "site": event.site, "details": event.details or {},
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def link(prev_hash: str, event: Event) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(event)).hexdigest()


def _head(session: Session) -> ChainHead:
    # FOR UPDATE serialises concurrent writers on PostgreSQL; SQLite's BEGIN IMMEDIATE already does. The lock
    # lasts until the transaction ends, so the row is read once per transaction, not once per event.
    head = session.info.get("chain_head")
    if head is not None and head in session:
        return head
    head = session.execute(select(ChainHead).where(ChainHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = ChainHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    session.info["chain_head"] = head
    return head


def append(session: Session, *, actor: str, action: str, object_type: str, object_id: str,
           site: str | None = None, details: dict | None = None) -> Event:
    head = _head(session)
    event = Event(seq=head.seq + 1, at=utcnow(), actor=actor, action=action, object_type=object_type,
                  object_id=str(object_id), site=site, details=details or {}, prev_hash=head.hash)
    event.hash = link(head.hash, event)
    session.add(event)
    head.seq, head.hash = event.seq, event.hash
    return event


@dataclass
class VerifyResult:
    ok: bool
    events: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    first_bad_seq: int | None = None


def verify(session: Session, *, batch: int = 5000) -> VerifyResult:
    prev, expected_seq, count = GENESIS, 1, 0
    last_id = 0
    while True:
        rows = session.execute(select(Event).where(Event.id > last_id).order_by(Event.id).limit(batch)).scalars().all()
        if not rows:
            break
        for ev in rows:
            count += 1
            if ev.seq != expected_seq:
                return VerifyResult(False, count, expected_seq - 1, prev,
                                    f"event seq {ev.seq} found where seq {expected_seq} was expected "
                                    "(an event was deleted, inserted or reordered)", ev.seq)
            if ev.prev_hash != prev or link(prev, ev) != ev.hash:
                return VerifyResult(False, count, expected_seq - 1, prev,
                                    f"event seq {ev.seq} does not match its hash (edited or re-linked)", ev.seq)
            prev, expected_seq = ev.hash, expected_seq + 1
        last_id = rows[-1].id
        session.expunge_all()
    head = session.get(ChainHead, 1)
    if head is not None and (head.seq != expected_seq - 1 or head.hash != prev):
        return VerifyResult(False, count, expected_seq - 1, prev,
                            f"the chain ends at seq {expected_seq - 1} but the recorded head is seq {head.seq} "
                            "(events were removed from the end)", expected_seq)
    return VerifyResult(True, count, expected_seq - 1, prev)
