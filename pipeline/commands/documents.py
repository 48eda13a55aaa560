"""`mynumber documents check|list|lost`: the returned paper, one document (form page or ID copy) at a time.

Also holds the small output helpers the lifecycle commands share (dates, table|csv|json).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json

from .. import config, db
from ..track import documents, retention
from ..track.models import Kit

FORMATS = ("table", "csv", "json")
LIST_COLUMNS = ("document", "kit", "person_id", "type", "page", "state", "location", "disposal_due_on",
                "retention_rule")




def today() -> dt.date:
    return dt.date.today()


def emit(rows: list[dict], columns: tuple[str, ...], fmt: str, *, key: str, extra: dict | None = None) -> None:
    """Print rows as an aligned table, CSV (header + rows) or JSON ({key: rows, **extra})."""
    if fmt == "json":
        print(json.dumps({key: rows, **(extra or {})}, ensure_ascii=False, indent=1))
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
        print(buffer.getvalue(), end="")
        return
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c)] + [_width(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(_pad(c, w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        print("  ".join(_pad(v, w) for v, w in zip(row, widths)).rstrip())


def _width(text: str) -> int:
    # Japanese characters take two columns in a terminal.
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def register(sub) -> None:
    p = sub.add_parser("documents", help="check returned documents against the checklist; list them")
    dsub = p.add_subparsers(dest="documents_command", metavar="SUBCOMMAND", required=True)

    ch = dsub.add_parser("check", help="the mailroom checked the contents against the checklist "
                                       "(received -> checked); a kit code checks all its received documents")
    ch.add_argument("codes", nargs="+", metavar="KIT|DOC")
    ch.add_argument("--note", help="what the check found (kept in the log)")
    ch.add_argument("--site", help="where the check was done (default: where the kit was received)")
    ch.set_defaults(handler=run_check)

    ls = dsub.add_parser("list", help="list documents with state, location and planned disposal date")
    ls.add_argument("--kit")
    ls.add_argument("--state")
    ls.add_argument("--person", help="person_id")
    ls.add_argument("--location", help="storage location code")
    ls.add_argument("--format", choices=FORMATS, default="table")
    ls.add_argument("--json", action="store_const", const="json", dest="format")
    ls.set_defaults(handler=run_list)

    lo = dsub.add_parser("lost", help="record documents as lost (a kit code: all its open documents)")
    lo.add_argument("codes", nargs="+", metavar="KIT|DOC")
    lo.add_argument("--note", required=True, help="what happened (kept in the log)")
    lo.set_defaults(handler=run_lost)


def run_check(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        checked = []
        for code in args.codes:
            checked += documents.check(session, code, actor=args.actor, site=args.site, note=args.note)
        lines = []
        kits = {}
        for d in checked:
            due = d.disposal_due_on.isoformat() if d.disposal_due_on else "not fixed yet"
            lines.append(f"checked {d.code} ({d.document}{f' p{d.doc_page}' if d.doc_page else ''}): "
                         f"disposal {due} ({d.retention_rule})")
            kits[d.kit_id] = session.get(Kit, d.kit_id)
        notes = [f"kit {k.code} is {k.state}: missing {'; '.join(k.missing)}" for k in kits.values()
                 if k.state == "incomplete" and k.missing]
    print("\n".join(lines + notes))
    print(f"{len(checked)} documents checked")
    return 0


def run_list(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        rows = documents.rows(session, kit=args.kit, state=args.state, person=args.person, location=args.location)
    emit(rows, LIST_COLUMNS, args.format, key="documents")
    if args.format == "table":
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["state"]] = counts.get(r["state"], 0) + 1
        print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no documents")
    return 0


def run_lost(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        lost = documents.mark_lost(session, args.codes, actor=args.actor, note=args.note)
        codes = [d.code for d in lost]
    print(f"recorded {len(codes)} documents as lost: {', '.join(codes)}")
    return 0


def local_day(value: dt.datetime | None) -> str | None:
    day = retention.local_date(value)
    return day.isoformat() if day else None
