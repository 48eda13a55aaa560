"""`mynumber roster import FILE.csv`."""
from __future__ import annotations

from pathlib import Path

from .. import config, db
from ..kit import roster
from ..track import service


def register(sub) -> None:
    p = sub.add_parser("roster", help="the people kits are printed for")
    rsub = p.add_subparsers(dest="roster_command", metavar="SUBCOMMAND", required=True)
    imp = rsub.add_parser("import", help="import a roster CSV (UTF-8, UTF-8 BOM or CP932); all or nothing")
    imp.add_argument("file", type=Path)
    imp.set_defaults(handler=run_import)


def run_import(args) -> int:
    settings = config.load()
    rows = roster.read(args.file)
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        summary = service.import_roster(session, rows, actor=args.actor, source=args.file.name)
    print(f"{args.file}: {len(rows)} people: {summary.created} new, {summary.updated} updated, "
          f"{summary.unchanged} unchanged")
    return 0
