"""`mynumber users add|appoint|train|deactivate|list`."""
from __future__ import annotations

import datetime as dt
import json

from .. import config, db
from ..track import users


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        import argparse
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def register(sub) -> None:
    p = sub.add_parser("users", help="users, roles, handler appointments and training")
    us = p.add_subparsers(dest="users_command", metavar="SUBCOMMAND", required=True)
    add = us.add_parser("add", help="add a user with one or more roles (admin)")
    add.add_argument("name")
    add.add_argument("--role", action="append", required=True,
                     help="mailroom, handler, manager, auditor or admin; repeat for several")
    add.set_defaults(handler=run_add)
    ap = us.add_parser("appoint", help="record a handler's written appointment (manager)")
    ap.add_argument("name")
    ap.add_argument("--date", type=_date, default=dt.date.today())
    ap.set_defaults(handler=run_appoint)
    tr = us.add_parser("train", help="record that a user passed the training (manager)")
    tr.add_argument("name")
    tr.add_argument("--date", type=_date, default=dt.date.today())
    tr.set_defaults(handler=run_train)
    de = us.add_parser("deactivate", help="a user who left: can no longer act (admin)")
    de.add_argument("name")
    de.set_defaults(handler=run_deactivate)
    ls = us.add_parser("list", help="users, roles, and who is due for appointment or training")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=run_list)


def _months(settings) -> int:
    return int(settings.section("handlers").get("training_valid_months", 12))


def run_add(args) -> int:
    settings = config.load()
    with db.session_scope(settings.db_url) as s:
        users.add(s, args.name, args.role, actor=args.actor)
    print(f"added user {args.name} ({', '.join(sorted(set(args.role)))})")
    return 0


def run_appoint(args) -> int:
    settings = config.load()
    with db.session_scope(settings.db_url) as s:
        users.appoint(s, args.name, args.date, actor=args.actor)
    print(f"{args.name} appointed as handler on {args.date.isoformat()} by {args.actor}")
    return 0


def run_train(args) -> int:
    settings = config.load()
    with db.session_scope(settings.db_url) as s:
        users.train(s, args.name, args.date, actor=args.actor)
    print(f"{args.name} trained on {args.date.isoformat()}")
    return 0


def run_deactivate(args) -> int:
    settings = config.load()
    with db.session_scope(settings.db_url) as s:
        users.deactivate(s, args.name, actor=args.actor)
    print(f"{args.name} deactivated")
    return 0


def run_list(args) -> int:
    settings = config.load()
    with db.session_scope(settings.db_url) as s:
        rows = users.due_list(s, dt.date.today(), _months(settings))
    if args.json:
        print(json.dumps({"users": rows}, ensure_ascii=False, indent=1))
        return 0
    for r in rows:
        state = "" if r["active"] else " (inactive)"
        due = f"  DUE: {r['due']}" if r["due"] else ""
        print(f"{r['name']:<16} {','.join(r['roles']):<20} appointed {r['appointed_on'] or '-':<10} "
              f"trained {r['trained_on'] or '-':<10}{state}{due}")
    return 0
