"""`mynumber users add|appoint|train|deactivate|list|passwd`."""
from __future__ import annotations

import datetime as dt
import json

from .. import config, db
from ..track import users
from .listing import date_arg


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
    ap.add_argument("--date", type=date_arg, default=dt.date.today())
    ap.set_defaults(handler=run_appoint)
    tr = us.add_parser("train", help="record that a user passed the training (manager)")
    tr.add_argument("name")
    tr.add_argument("--date", type=date_arg, default=dt.date.today())
    tr.set_defaults(handler=run_train)
    de = us.add_parser("deactivate", help="a user who left: can no longer act (admin)")
    de.add_argument("name")
    de.set_defaults(handler=run_deactivate)
    ls = us.add_parser("list", help="users, roles, and who is due for appointment or training")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=run_list)
    pw = us.add_parser("passwd", help="set a user's password for the web station; lifts a lock-out (admin)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    pw.set_defaults(handler=run_passwd)


def _months(settings) -> int:
    return int(settings.section("handlers").get("training_valid_months", 12))


def run_add(args) -> int:
    settings = config.load()
    with db.session_scope(settings.db_url) as s:
        users.add(s, args.name, args.role, actor=args.actor)
    print(f"added user {args.name} ({', '.join(sorted(set(args.role)))})")
    return 0


def _change(args, action, describe) -> int:
    settings = config.load()
    with db.session_scope(settings.db_url) as s:
        action(s, args)
    print(describe(args))
    return 0


def run_appoint(args) -> int:
    return _change(args, lambda s, a: users.appoint(s, a.name, a.date, actor=a.actor),
                   lambda a: f"{a.name} appointed as handler on {a.date.isoformat()} by {a.actor}")


def run_train(args) -> int:
    return _change(args, lambda s, a: users.train(s, a.name, a.date, actor=a.actor),
                   lambda a: f"{a.name} trained on {a.date.isoformat()}")


def run_deactivate(args) -> int:
    return _change(args, lambda s, a: users.deactivate(s, a.name, actor=a.actor), lambda a: f"{a.name} deactivated")


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


def run_passwd(args) -> int:
    import getpass
    import sys
    from ..errors import UsageError
    from ..web.credentials import set_password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"new password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise UsageError("the two passwords differ; nothing was changed")
    settings = config.load()
    with db.session_scope(settings.db_url) as s:
        set_password(s, args.name, password, actor=args.actor)
    print(f"password of {args.name} set")
    return 0
