"""Every state change of people and kits, each written together with its audit event in one transaction.

kit/ and scan/ change state only through these functions; the caller owns the session (`db.session_scope`).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..errors import NotFound
from ..kit.compose import plan
from ..kit.roster import RosterRow
from ..layout import KitLayout
from . import audit, states
from .models import Counter, Dependent, Kit, KitPage, Person, utcnow

CARRIERS = {"簡易書留": "simple_registered", "レターパック": "letterpack", "社内便": "internal_mail",
            "手渡し": "hand_over", "simple_registered": "simple_registered", "letterpack": "letterpack",
            "internal_mail": "internal_mail", "hand_over": "hand_over", "hand-over": "hand_over"}


@dataclass
class ImportSummary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


CHUNK = 500  # rows handled per flush; objects are then dropped from the session so memory stays flat


def _chunks(items: list, size: int = CHUNK):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def reserve(session: Session, name: str, count: int) -> int:
    """Reserve `count` consecutive values of a counter; returns the first."""
    counter = session.execute(select(Counter).where(Counter.name == name).with_for_update()).scalar_one_or_none()
    if counter is None:
        counter = Counter(name=name, value=0)
        session.add(counter)
    first = counter.value + 1
    counter.value += count
    session.flush()
    return first


def import_roster(session: Session, rows: list[RosterRow], *, actor: str, source: str) -> ImportSummary:
    summary = ImportSummary()
    for chunk in _chunks(rows):
        existing = {p.person_id: p for p in session.execute(
            select(Person).where(Person.person_id.in_([r.person_id for r in chunk]))
            .options(selectinload(Person.dependents))).scalars()}
        for row in chunk:
            person = existing.get(row.person_id)
            fields = {"name": row.name, "name_kana": row.name_kana, "postal_code": row.postal_code,
                      "address": row.address, "site": row.site, "kind": row.kind}
            if person is None:
                person = Person(person_id=row.person_id, **fields)
                person.dependents = [Dependent(ordinal=i, name=n) for i, n in enumerate(row.dependents, start=1)]
                session.add(person)
                summary.created += 1
                action, details = "person.created", {}
            else:
                changed = sorted(k for k, v in fields.items() if getattr(person, k) != v)
                if tuple(d.name for d in person.dependents) != row.dependents:
                    changed.append("dependents")
                    person.dependents.clear()
                    session.flush()  # delete the old rows before inserting new ones with the same ordinals
                    person.dependents.extend(Dependent(ordinal=i, name=n)
                                             for i, n in enumerate(row.dependents, start=1))
                if not changed:
                    summary.unchanged += 1
                    continue
                for k, v in fields.items():
                    setattr(person, k, v)
                summary.updated += 1
                action, details = "person.updated", {"changed": changed}
            audit.append(session, actor=actor, action=action, object_type="person", object_id=row.person_id,
                         site=row.site,
                         details={"source": source, "line": row.line, "dependents": len(row.dependents)} | details)
        session.flush()
        session.expunge_all()
    audit.append(session, actor=actor, action="roster.imported", object_type="roster", object_id=source,
                 details={"rows": len(rows), "created": summary.created, "updated": summary.updated,
                          "unchanged": summary.unchanged})
    session.flush()
    return summary


@dataclass
class RegisteredKit:
    code: str
    pages: int


@dataclass
class KitRegistration:
    kits: list[RegisteredKit]             # in printing order: by site, then person_id
    skipped: list[tuple[str, str, str]]   # (person_id, kit code, state): a kit already out


def register_kits(session: Session, person_ids: list[str], layout: KitLayout, *, actor: str,
                  site: str | None = None, dependents_copies: bool = True) -> KitRegistration:
    """A kit for each person: a kit still in state `printed` is printed again as it is (same code, pages
    re-planned from the current roster); a person whose kit is already out is skipped and reported."""
    # Two columns of every person, filtered here: cheaper and simpler than a 15,000-item IN list.
    wanted = set(person_ids)
    order = [r for r in session.execute(select(Person.person_id, Person.site)).all()
             if r.person_id in wanted and (site is None or r.site == site)]
    ordered_ids = [pid for pid, _ in sorted(order, key=lambda r: (r.site, r.person_id))]
    registered, skipped = [], []
    for chunk in _chunks(ordered_ids):
        people = session.execute(select(Person).where(Person.person_id.in_(chunk))
                                 .options(selectinload(Person.dependents),
                                          selectinload(Person.kits).selectinload(Kit.pages))).scalars().all()
        by_id = {p.person_id: p for p in people}
        people = [by_id[pid] for pid in chunk]
        current = {}
        for person in people:
            open_kits = [k for k in person.kits if k.state != "void"]
            current[person.person_id] = open_kits[-1] if open_kits else None
        need_new = sum(1 for k in current.values() if k is None)
        next_code = reserve(session, "kit", need_new) if need_new else 0
        for person in people:
            kit = current[person.person_id]
            if kit is not None and kit.state != "printed":
                skipped.append((person.person_id, kit.code, kit.state))
                continue
            wanted = [(p.document, p.page) for p in plan(person.kind, len(person.dependents), layout,
                                                         dependents_copies=dependents_copies)]
            if kit is None:
                kit = Kit(code=f"K{next_code:07d}", person=person, kind=person.kind, site=person.site,
                          state="printed")
                next_code += 1
                session.add(kit)
                action = "kit.printed"
            else:
                action = "kit.reprinted"
                kit.printed_at = utcnow()
            if [(kp.document, kp.page) for kp in kit.pages] != wanted:
                if kit.pages:
                    kit.pages.clear()
                    session.flush()
                kit.pages.extend(KitPage(seq=i, document=d, page=n, fingerprint=layout.documents[d].fingerprint)
                                 for i, (d, n) in enumerate(wanted, start=1))
            audit.append(session, actor=actor, action=action, object_type="kit", object_id=kit.code,
                         site=kit.site, details={"person_id": person.person_id, "pages": len(wanted),
                                                 "documents": sorted({d for d, _ in wanted})})
            registered.append(RegisteredKit(kit.code, len(wanted)))
        session.flush()
        session.expunge_all()
    return KitRegistration(registered, skipped)


def kit_by_code(session: Session, code: str) -> Kit:
    kit = session.execute(select(Kit).where(Kit.code == code)).scalar_one_or_none()
    if kit is None:
        raise NotFound(f"kit {code} does not exist")
    return kit


def record_sent(session: Session, code: str, *, carrier: str, tracking_number: str | None, actor: str) -> Kit:
    kit = kit_by_code(session, code)
    if kit.state == "sent" and kit.carrier == carrier and kit.tracking_number == tracking_number:
        return kit  # the same manifest row again: nothing changes (re-runs are harmless)
    states.require("kit", kit.code, kit.state, "sent", states.KIT_TRANSITIONS)
    kit.state, kit.carrier, kit.tracking_number, kit.sent_at = "sent", carrier, tracking_number, utcnow()
    audit.append(session, actor=actor, action="kit.sent", object_type="kit", object_id=kit.code, site=kit.site,
                 details={"carrier": carrier, "tracking_number": tracking_number})
    return kit
