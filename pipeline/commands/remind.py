"""`mynumber remind [--after DAYS] [--round N] [--out LETTERS.pdf]`, `remind log`, `remind history`,
`remind refusal`: reminders (督促) and refusals, the record that the company tried."""
from __future__ import annotations

import os
from pathlib import Path

from .. import config, db
from ..kit import reminder_letter
from ..track import refusals, reminders
from .listing import add_format_option, emit, parse_local, to_local, utc_now

LETTER_COLUMNS = ("kit", "person_id", "kind", "site", "sent_at", "round", "action")
HISTORY_COLUMNS = ("at", "kit", "what", "method", "by", "round", "note")


def register(sub) -> None:
    p = sub.add_parser("remind", help="reminder letters for kits not returned; log calls; history; refusals")
    p.add_argument("--after", type=int, default=None, metavar="DAYS",
                   help="kits sent at least DAYS ago (default: [reminders] after_days, 14)")
    p.add_argument("--round", type=int, default=None, metavar="N",
                   help="print round N (reprints letters already made in it); default: each kit's next round")
    p.add_argument("--site", help="only the kits of this site")
    p.add_argument("--out", type=Path, metavar="LETTERS.pdf",
                   help="write the letters and record them; without it, only list the kits due")
    add_format_option(p)
    p.set_defaults(handler=run_letters)
    rs = p.add_subparsers(dest="remind_command", metavar="SUBCOMMAND")

    lg = rs.add_parser("log", help="record a call, e-mail, visit or hand-written letter")
    lg.add_argument("kit", metavar="KIT")
    lg.add_argument("--method", required=True, choices=reminders.METHODS)
    lg.add_argument("--note", required=True, help="what happened (never a number)")
    lg.add_argument("--at", type=parse_local, default=None, metavar="DATETIME",
                    help="when it happened, local time (default: now)")
    lg.add_argument("--round", type=int, default=None, metavar="N", help="default: the kit's current round")
    lg.set_defaults(handler=run_log)

    hi = rs.add_parser("history", help="a person's chronology: sending, reminders, receipt, refusal")
    hi.add_argument("person", metavar="PERSON")
    add_format_option(hi)
    hi.set_defaults(handler=run_history)

    rf = rs.add_parser("refusal", help="record a refusal stated without paper (phone, e-mail, in person)")
    rf.add_argument("kit", metavar="KIT")
    rf.add_argument("--reason", required=True, help="the reason the person gave")
    rf.add_argument("--note", help="how and when it was stated")
    rf.set_defaults(handler=run_refusal)


def _letter(plan: reminders.LetterPlan) -> reminder_letter.Letter:
    kit, person = plan.kit, plan.kit.person
    sent = to_local(kit.sent_at)
    return reminder_letter.Letter(kit_code=kit.code, kind=kit.kind, name=person.name, postal_code=person.postal_code,
                                  address=person.address, site=kit.site, round=plan.round,
                                  date=to_local(plan.letter_date).date(), sent_on=sent.date() if sent else None)


def run_letters(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    section = settings.section("reminders")
    after = args.after if args.after is not None else int(section.get("after_days", 14))
    spacing = int(section.get("days_between_rounds", 7))
    out: Path | None = args.out
    partial = out.with_name(f".{out.name}.partial") if out else None
    try:
        with db.session_scope(settings.db_url) as session:
            selection = reminders.select_letters(session, now=utc_now(), after_days=after,
                                                 days_between_rounds=spacing, round_=args.round, site=args.site,
                                                 lock=out is not None)
            if out is not None and selection.plans:
                reminders.record_letters(session, selection, actor=args.actor, file_name=out.name)
                out.parent.mkdir(parents=True, exist_ok=True)
                # Written before the transaction commits: if the PDF fails, no reminder is recorded.
                reminder_letter.write(settings, [_letter(p) for p in selection.plans], partial)
            rows = [{"kit": p.kit.code, "person_id": p.kit.person.person_id, "kind": p.kit.kind, "site": p.kit.site,
                     "sent_at": p.kit.sent_at, "round": p.round,
                     "action": ("letter" if p.new else "reprint") if out else ("due" if p.new else "reprint")}
                    for p in selection.plans]
        if partial is not None and partial.exists():
            os.replace(partial, out)
    finally:
        if partial is not None and partial.exists():
            partial.unlink()
    emit(rows, LETTER_COLUMNS, args.format, key="kits")
    if args.format == "table":
        new = sum(1 for p in selection.plans if p.new)
        summary = (f"{new} new letters, {len(selection.plans) - new} reprinted -> {out}" if out and selection.plans
                   else f"{len(selection.plans)} kits due for a letter" + ("" if out else " (nothing recorded: "
                                                                                      "give --out to print them)"))
        print(f"{summary}; {len(selection.not_due)} not due yet; {selection.refused} refused (never reminded)")
    return 0


def run_log(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        reminder = reminders.log_attempt(session, args.kit, method=args.method, note=args.note, at=args.at,
                                         round_=args.round, actor=args.actor)
        line = f"kit {args.kit}: {args.method} recorded (round {reminder.round}, by {args.actor}, at " \
               f"{to_local(reminder.at):%Y-%m-%d %H:%M})"
    print(line)
    return 0


def run_history(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        person, lines = reminders.history(session, args.person)
        rows = [{"at": line.at, "kit": line.kit, "what": line.what, "method": line.method, "by": line.by,
                 "round": line.round, "note": line.note} for line in lines]
        heading = f"{person.person_id} {person.name} ({person.kind}, {person.site})"
    if args.format == "table":
        print(heading)
    emit(rows, HISTORY_COLUMNS, args.format, key="history")
    return 0


def run_refusal(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        refusal, created = refusals.record_stated(session, args.kit, args.reason, actor=args.actor, note=args.note)
        when = to_local(refusal.recorded_at)
    if created:
        print(f"kit {args.kit}: refusal recorded by {args.actor}; the kit is not reminded any more")
    else:
        print(f"kit {args.kit}: the same refusal was already recorded on {when:%Y-%m-%d %H:%M}; nothing changed")
    return 0
