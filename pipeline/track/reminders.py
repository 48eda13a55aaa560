"""Reminders (督促): letters in numbered rounds, and calls, e-mails and visits, each recorded with date, method
and who, so that for any person the company can show in time order what it did to get the number.

Rounds: a kit's reminders are numbered 1, 2, 3, ... A letter run gives each kit that is due its next round
(one more than the highest so far); a call or visit is logged in the kit's current round. A kit is due for a
letter when it was sent at least `after_days` ago, is still out (state `sent`: kits handed over on site are
recorded as sent with carrier 手渡し; printed kits never reached anyone), nobody refused, and the last attempt
is at least `days_between_rounds` old. Naming a round (`--round N`) prints that round: kits already reminded
in it get the same letter again (no new record), kits whose next round is N get a new one.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import exists, func, select, true
from sqlalchemy.orm import Session, selectinload

from ..errors import NotFound, StateError, UsageError
from . import audit, notes, refusals
from .models import Event, Kit, Person, Refusal, Reminder, utcnow
from .service import kit_by_code

METHODS = ("letter", "phone", "email", "visit")
# States in which something is still owed, so reminding makes sense. Not: printed (never reached anyone),
# complete (nothing missing), refused (a refusal is respected), void (replaced).
REMINDABLE = frozenset({"sent", "returned_undeliverable", "lost", "received", "incomplete"})
LETTER_STATE = "sent"   # letters go only to kits that are out with their person and not back yet
FUTURE_SLACK = dt.timedelta(minutes=5)   # clocks differ a little; an attempt "tomorrow" is a typo


@dataclass
class LetterPlan:
    kit: Kit
    round: int
    new: bool                           # False: a reprint of a letter already recorded
    letter_date: dt.datetime            # UTC; the date printed on the letter
    reminder: Reminder | None = None


@dataclass
class LetterSelection:
    plans: list[LetterPlan] = field(default_factory=list)
    not_due: list[tuple[str, str]] = field(default_factory=list)    # (kit, why not)
    refused: int = 0                    # kits refused (on paper or stated): never reminded


def _rounds(session: Session, kit_ids: list[int]) -> dict[int, list[Reminder]]:
    out: dict[int, list[Reminder]] = {i: [] for i in kit_ids}
    for start in range(0, len(kit_ids), 500):
        chunk = kit_ids[start:start + 500]
        for r in session.execute(select(Reminder).where(Reminder.kit_id.in_(chunk))
                                 .order_by(Reminder.at, Reminder.id)).scalars():
            out[r.kit_id].append(r)
    return out


def select_letters(session: Session, *, now: dt.datetime, after_days: int, days_between_rounds: int,
                   round_: int | None = None, site: str | None = None, lock: bool = False) -> LetterSelection:
    if after_days < 0 or days_between_rounds < 0:
        raise UsageError("--after and days_between_rounds must be 0 or more")
    if round_ is not None and round_ < 1:
        raise UsageError(f"rounds are numbered from 1 (got {round_})")
    here = (Kit.site == site) if site else true()
    refused = exists().where(Refusal.kit_id == Kit.id)
    selection = LetterSelection(refused=session.scalar(select(func.count()).select_from(Kit).where(
        here, (Kit.state == "refused") | ((Kit.state == LETTER_STATE) & refused))))
    query = select(Kit).where(here, Kit.state == LETTER_STATE, ~refused).options(selectinload(Kit.person)).order_by(Kit.site, Kit.code)
    if lock:   # two letter runs at once on PostgreSQL: the second waits and then sees the first one's rounds
        query = query.with_for_update(of=Kit)
    kits = session.execute(query).scalars().all()
    history = _rounds(session, [k.id for k in kits])
    sent_before = now - dt.timedelta(days=after_days)
    spacing = dt.timedelta(days=days_between_rounds)
    for kit in kits:
        attempts = history[kit.id]
        highest = max((r.round for r in attempts), default=0)
        letters = {r.round: r for r in attempts if r.method == "letter"}
        if round_ is not None and round_ in letters:
            old = letters[round_]
            selection.plans.append(LetterPlan(kit, round_, False, old.at, old))
            continue
        if kit.sent_at is None or kit.sent_at > sent_before:
            selection.not_due.append((kit.code, f"sent less than {after_days} days ago"))
            continue
        if round_ is None:
            if attempts and attempts[-1].at > now - spacing:
                selection.not_due.append((kit.code, f"last reminder (round {highest}, {attempts[-1].method}) "
                                                    f"less than {days_between_rounds} days ago"))
                continue
            selection.plans.append(LetterPlan(kit, highest + 1, True, now))
        elif highest + 1 == round_:
            selection.plans.append(LetterPlan(kit, round_, True, now))
        else:
            selection.not_due.append((kit.code, f"its next round is {highest + 1}, not {round_}"))
    return selection


def record_letters(session: Session, selection: LetterSelection, *, actor: str, file_name: str) -> None:
    """One Reminder per new letter, each with its event; a reprint is logged but is not a new attempt."""
    audit.serialise_writers(session)
    for plan in selection.plans:
        kit = plan.kit
        if plan.new:
            plan.reminder = Reminder(kit_id=kit.id, round=plan.round, method="letter", at=plan.letter_date, by=actor,
                                     note=f"reminder letter round {plan.round} ({file_name})")
            session.add(plan.reminder)
            audit.append(session, actor=actor, action="reminder.letter", object_type="kit", object_id=kit.code,
                         site=kit.site, details={"round": plan.round, "method": "letter", "file": file_name,
                                                 "person_id": kit.person.person_id})
        else:
            audit.append(session, actor=actor, action="reminder.letter_reprinted", object_type="kit",
                         object_id=kit.code, site=kit.site,
                         details={"round": plan.round, "file": file_name, "reminder_of": plan.letter_date.isoformat()})
    session.flush()


def log_attempt(session: Session, code: str, *, method: str, note: str | None, at: dt.datetime | None,
                round_: int | None, actor: str) -> Reminder:
    """A call, e-mail, visit (or a letter written by hand) made to get the kit back."""
    audit.serialise_writers(session)
    if method not in METHODS:
        raise UsageError(f"method {method!r} is not one of {', '.join(METHODS)}")
    note = notes.clean(note, "the note")
    now = utcnow()
    at = at or now
    if at > now + FUTURE_SLACK:
        raise UsageError(f"--at {at:%Y-%m-%d %H:%M} UTC is in the future; record an attempt once it was made")
    kit = kit_by_code(session, code)
    if at < kit.printed_at:
        raise UsageError(f"--at {at:%Y-%m-%d %H:%M} UTC is before kit {code} was printed "
                         f"({kit.printed_at:%Y-%m-%d %H:%M} UTC); it cannot be a reminder about it")
    refused = session.execute(select(Refusal).where(Refusal.kit_id == kit.id)
                              .order_by(Refusal.recorded_at)).scalars().first()
    if refused is not None:
        raise StateError(f"kit {code}: the person refused on {refused.recorded_at:%Y-%m-%d} "
                         f"({'; '.join(refused.reasons) or 'no reason given'}); a refused kit is not reminded")
    if kit.state not in REMINDABLE:
        raise StateError(f"kit {code} is {kit.state}; reminders are recorded only for kits that are "
                         f"{', '.join(sorted(REMINDABLE))}")
    highest = session.execute(select(Reminder.round).where(Reminder.kit_id == kit.id)
                              .order_by(Reminder.round.desc())).scalars().first()
    if round_ is None:
        round_ = highest or 1
    elif round_ < 1 or round_ > (highest or 0) + 1:
        raise UsageError(f"kit {code}: round {round_} does not follow its reminders so far "
                         f"(highest round {highest or 0}); use a round from 1 to {(highest or 0) + 1}")
    reminder = Reminder(kit_id=kit.id, round=round_, method=method, at=at, by=actor, note=note)
    session.add(reminder)
    audit.append(session, actor=actor, action=f"reminder.{method}", object_type="kit", object_id=kit.code,
                 site=kit.site, details={"round": round_, "method": method, "at": at.isoformat(timespec="seconds"),
                                         "note": note})
    return reminder


# --- the effort record -------------------------------------------------------------------------------------

# Kit events that belong in the chronology next to the reminders (reminder events themselves are not repeated:
# the Reminder rows carry the time the attempt was made, which for a logged call is not the time it was typed).
HISTORY_EVENTS = {
    "kit.printed": "printed", "kit.sent": "sent", "kit.returned_undeliverable": "returned undeliverable",
    "kit.lost": "lost in the post", "kit.received": "received", "kit.complete": "complete",
    "kit.incomplete": "incomplete", "kit.refused": "refused (form)", "kit.void": "void",
}


@dataclass
class HistoryLine:
    at: dt.datetime
    kit: str
    what: str
    method: str | None
    by: str
    round: int | None
    note: str | None
    order: tuple = field(repr=False, default=())


def _event_note(event: Event) -> str | None:
    d = event.details or {}
    if event.action == "kit.sent":
        return f"carrier {d.get('carrier')}" + (f", tracking {d['tracking_number']}" if d.get("tracking_number") else "")
    if event.action == "kit.received":
        return f"at {event.site or 'unknown site'}, via {d.get('via')}"
    if event.action == "kit.incomplete":
        return "; ".join(d.get("missing") or []) or None
    if event.action == "kit.refused":
        return "reasons: " + (", ".join(d.get("reasons") or []) or "none ticked")
    if event.action in ("kit.returned_undeliverable", "kit.lost"):
        return d.get("note")
    return None


def history(session: Session, person_id: str) -> tuple[Person, list[HistoryLine]]:
    person = session.execute(select(Person).where(Person.person_id == person_id)).scalar_one_or_none()
    if person is None:
        raise NotFound(f"person {person_id} does not exist")
    kits = {k.id: k.code for k in person.kits}
    lines: list[HistoryLine] = []
    if not kits:
        return person, lines
    events = session.execute(select(Event).where(Event.object_type == "kit", Event.object_id.in_(kits.values()),
                                                 Event.action.in_(HISTORY_EVENTS))).scalars()
    for ev in events:
        lines.append(HistoryLine(ev.at, ev.object_id, HISTORY_EVENTS[ev.action], None, ev.actor, None,
                                 _event_note(ev), (ev.at, 0, ev.seq)))
    for r in session.execute(select(Reminder).where(Reminder.kit_id.in_(kits))).scalars():
        lines.append(HistoryLine(r.at, kits[r.kit_id], "reminder", r.method, r.by, r.round, r.note, (r.at, 1, r.id)))
    for refusal in refusals.of_kits(session, list(kits)):
        evidence = refusals.evidence_document(session, refusal)
        parts = ["reasons: " + ("; ".join(refusal.reasons) or "none given")]
        if refusal.note:
            parts.append(refusal.note)
        parts.append(f"evidence {evidence}" if evidence else "stated, no paper")
        lines.append(HistoryLine(refusal.recorded_at, kits[refusal.kit_id], "refusal recorded",
                                 None, refusal.recorded_by, None, "; ".join(parts),
                                 (refusal.recorded_at, 2, refusal.id)))
    lines.sort(key=lambda line: line.order)
    return person, lines
