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


def next_value(session: Session, name: str) -> int:
    counter = session.execute(select(Counter).where(Counter.name == name).with_for_update()).scalar_one_or_none()
    if counter is None:
        counter = Counter(name=name, value=0)
        session.add(counter)
    counter.value += 1
    session.flush()
    return counter.value


def import_roster(session: Session, rows: list[RosterRow], *, actor: str, source: str) -> ImportSummary:
    summary = ImportSummary()
    existing = {p.person_id: p for p in session.execute(
        select(Person).where(Person.person_id.in_([r.person_id for r in rows]))
        .options(selectinload(Person.dependents))).scalars()}
    for row in rows:
        person = existing.get(row.person_id)
        fields = {"name": row.name, "name_kana": row.name_kana, "postal_code": row.postal_code,
                  "address": row.address, "site": row.site, "kind": row.kind}
        if person is None:
            person = Person(person_id=row.person_id, **fields)
            person.dependents = [Dependent(ordinal=i, name=n) for i, n in enumerate(row.dependents, start=1)]
            session.add(person)
            summary.created += 1
            action = "person.created"
        else:
            changed = sorted(k for k, v in fields.items() if getattr(person, k) != v)
            if tuple(d.name for d in person.dependents) != row.dependents:
                changed.append("dependents")
                person.dependents = [Dependent(ordinal=i, name=n) for i, n in enumerate(row.dependents, start=1)]
                session.flush()
            if not changed:
                summary.unchanged += 1
                continue
            for k, v in fields.items():
                setattr(person, k, v)
            summary.updated += 1
            action = "person.updated"
        audit.append(session, actor=actor, action=action, object_type="person", object_id=row.person_id,
                     site=row.site, details={"source": source, "line": row.line, "dependents": len(row.dependents)}
                     | ({"changed": changed} if action == "person.updated" else {}))
    audit.append(session, actor=actor, action="roster.imported", object_type="roster", object_id=source,
                 details={"rows": len(rows), "created": summary.created, "updated": summary.updated,
                          "unchanged": summary.unchanged})
    return summary


@dataclass
class KitRegistration:
    kits: list[Kit]
    skipped: list[tuple[str, str, str]]  # (person_id, kit code, state): a kit already out


def register_kits(session: Session, person_ids: list[str], layout: KitLayout, *, actor: str,
                  site: str | None = None) -> KitRegistration:
    """A kit for each person: a kit still in state `printed` is printed again as it is (same code, pages
    re-planned from the current roster); a person whose kit is already out is skipped and reported."""
    people = session.execute(select(Person).where(Person.person_id.in_(person_ids))
                             .options(selectinload(Person.dependents), selectinload(Person.kits))).scalars().all()
    if site is not None:
        people = [p for p in people if p.site == site]
    people.sort(key=lambda p: (p.site, p.person_id))
    kits, skipped = [], []
    for person in people:
        open_kits = [k for k in person.kits if k.state != "void"]
        current = open_kits[-1] if open_kits else None
        if current is not None and current.state != "printed":
            skipped.append((person.person_id, current.code, current.state))
            continue
        pages = plan(person.kind, len(person.dependents), layout)
        if current is None:
            current = Kit(code=f"K{next_value(session, 'kit'):07d}", person=person, kind=person.kind,
                          site=person.site, state="printed")
            session.add(current)
            action = "kit.printed"
        else:
            action = "kit.reprinted"
            current.printed_at = utcnow()
        wanted = [(p.document, p.page) for p in pages]
        if [(kp.document, kp.page) for kp in current.pages] != wanted:
            current.pages.clear()
            session.flush()
            current.pages.extend(
                KitPage(seq=i, document=d, page=n, fingerprint=layout.documents[d].fingerprint)
                for i, (d, n) in enumerate(wanted, start=1))
        session.flush()
        audit.append(session, actor=actor, action=action, object_type="kit", object_id=current.code,
                     site=current.site, details={"person_id": person.person_id, "pages": len(wanted),
                                                 "documents": sorted({d for d, _ in wanted})})
        kits.append(current)
    return KitRegistration(kits, skipped)


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
