"""Kit dashboard: per site and overall, what went out and what came back, what is missing, reminders due and
transfers overdue, returns per day; and one kit's whole story (drill-down)."""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, fields

from flask import Blueprint, abort, render_template, request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from .. import db
from ..errors import NotFound
from ..track import queries, receiving, refusals, reminders, transfers
from ..track.models import Document, Kit, Person, Reminder, StorageLocation, Transfer, TransferItem, utcnow
from .access import requires, station
from .charts import returns_per_day
from .text import under_review

bp = Blueprint("dashboard", __name__)
INCOMPLETE_SHOWN = 300


@dataclass
class Counts:
    printed: int = 0
    sent: int = 0
    received: int = 0
    complete: int = 0
    incomplete: int = 0
    under_review: int = 0
    refused: int = 0
    undeliverable: int = 0
    lost: int = 0
    reminders_due: int = 0
    overdue_transfers: int = 0

    def add(self, other: "Counts") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def site_counts(session: Session, now: dt.datetime, after_days: int, between: int) -> dict[str, Counts]:
    by_site: dict[str, Counts] = {}
    for site, state, total, sent, received in session.execute(
            select(Kit.site, Kit.state, func.count(Kit.id), func.count(Kit.sent_at), func.count(Kit.received_at))
            .group_by(Kit.site, Kit.state)):
        c = by_site.setdefault(site, Counts())
        c.printed += total          # every kit was printed
        c.sent += sent
        c.received += received
        if state in ("complete", "incomplete", "refused", "lost"):
            setattr(c, state, getattr(c, state) + total)
        elif state == "returned_undeliverable":
            c.undeliverable += total
    for site, missing in session.execute(select(Kit.site, Kit.missing).where(Kit.state == "incomplete")):
        if under_review(missing):
            by_site[site].under_review += 1
    letters = reminders.select_letters(session, now=now, after_days=after_days, days_between_rounds=between)
    for plan in letters.plans:
        by_site.setdefault(plan.kit.site, Counts()).reminders_due += 1
    for transfer in transfers.overdue(session, now):
        by_site.setdefault(transfer.to_site, Counts()).overdue_transfers += 1
    return by_site


@bp.get("/dashboard")
@requires("web.dashboard")
def overview():
    st = station()
    cfg = st.settings.section("reminders")
    now = utcnow()
    with db.session_scope(st.settings.db_url) as s:
        by_site = site_counts(s, now, int(cfg.get("after_days", 14)), int(cfg.get("days_between_rounds", 7)))
        sites = sorted(by_site)
        site = request.args.get("site")
        if site not in by_site:
            site = None
        overall = Counts()
        for counts in by_site.values():
            overall.add(counts)
        received = select(Kit.received_at).where(Kit.received_at.is_not(None))
        incomplete = (select(Kit.code, Kit.site, Person.person_id, Person.name, Kit.missing, Kit.received_at)
                      .join(Person, Kit.person_id == Person.id).where(Kit.state == "incomplete")
                      .order_by(Kit.site, Kit.code))
        if site:
            received = received.where(Kit.site == site)
            incomplete = incomplete.where(Kit.site == site)
        per_day = Counter(value.replace(tzinfo=dt.timezone.utc).astimezone().date()
                          for value in s.execute(received).scalars())
        incomplete_rows = s.execute(incomplete.limit(INCOMPLETE_SHOWN + 1)).all()
        overdue = [{"code": t.code, "from": t.from_site, "to": t.to_site, "carrier": t.carrier,
                    "tracking": t.tracking_number, "sent_at": t.sent_at, "due_at": transfers.due_at(t)}
                   for t in transfers.overdue(s, now) if not site or site in (t.from_site, t.to_site)]
    chart = returns_per_day(per_day, dt.date.today())
    return render_template("dashboard.html", sites=sites, site=site, by_site=by_site, overall=overall,
                           shown=by_site[site] if site else overall, chart=chart,
                           incomplete=incomplete_rows[:INCOMPLETE_SHOWN],
                           more_incomplete=len(incomplete_rows) > INCOMPLETE_SHOWN, overdue=overdue)


@bp.get("/kits/<code>")
@requires("web.kit")
def kit(code: str):
    st = station()
    with db.session_scope(st.settings.db_url) as s:
        kit_row = s.execute(select(Kit).where(Kit.code == code.upper())).scalar_one_or_none()
        if kit_row is None:
            abort(404)
        person = kit_row.person
        field_states = receiving.kit_report(s, kit_row)[2]
        documents = s.execute(select(Document, StorageLocation.code).outerjoin(
            StorageLocation, Document.location_id == StorageLocation.id)
            .where(Document.kit_id == kit_row.id).order_by(Document.code)).all()
        attempts = s.execute(select(Reminder).where(Reminder.kit_id == kit_row.id)
                             .order_by(Reminder.at, Reminder.id)).scalars().all()
        documents_of_kit = select(Document.id).where(Document.kit_id == kit_row.id)
        moves = s.execute(select(Transfer).join(TransferItem, TransferItem.transfer_id == Transfer.id)
                          .where(or_(TransferItem.kit_id == kit_row.id, TransferItem.document_id.in_(documents_of_kit)))
                          .distinct().order_by(Transfer.sent_at)).scalars().all()
        refused = refusals.of_kits(s, [kit_row.id])
        try:
            _, events = queries.history(s, kit_row.code, "kit")
        except NotFound:
            events = []
    return render_template("kit.html", kit=kit_row, person=person, missing=kit_row.missing or [],
                           fields=field_states, documents=documents, attempts=attempts, moves=moves,
                           refused=refused, events=events, due_at=transfers.due_at)
