"""`mynumber people leave PERSON_ID --date D`: someone left; the documents kept "until N years after leaving"
get their planned disposal date."""
from __future__ import annotations

from .. import config, db
from ..track import documents
from .listing import date_arg


def register(sub) -> None:
    p = sub.add_parser("people", help="people on the roster: record who left")
    psub = p.add_subparsers(dest="people_command", metavar="SUBCOMMAND", required=True)
    lv = psub.add_parser("leave", help="record the leaving date; moves the planned disposal of documents whose "
                                       "retention counts from leaving")
    lv.add_argument("person_id", metavar="PERSON_ID")
    lv.add_argument("--date", type=date_arg, required=True, help="the leaving date (YYYY-MM-DD)")
    lv.add_argument("--correct", action="store_true", help="change a leaving date recorded before")
    lv.set_defaults(handler=run_leave)


def run_leave(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        leaving = documents.person_left(session, args.person_id, args.date, actor=args.actor, correct=args.correct)
        moved = [(d.code, d.document, old, d.disposal_due_on.isoformat() if d.disposal_due_on else None)
                 for d, old in leaving.moved]
    if not leaving.changed:
        print(f"{args.person_id} left on {args.date.isoformat()}: already recorded, nothing changed")
        return 0
    was = f" (was {leaving.previous.isoformat()})" if leaving.previous else ""
    print(f"{args.person_id} left on {args.date.isoformat()}{was}")
    for code, kind, old, new in moved:
        print(f"  {code} {kind}: planned disposal {old or 'not fixed'} -> {new or 'not fixed'}")
    print(f"{len(moved)} documents re-planned")
    return 0
