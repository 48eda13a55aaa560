"""`mynumber numbers export --out FILE.csv`: accepted numbers for payroll import. Each export is logged."""
from __future__ import annotations

import csv
import os
from pathlib import Path

from sqlalchemy import select

from .. import config, db
from ..track import audit
from ..track.models import Kit, NumberRecord, Person
from ..track.sealed import Sealer


def register(sub) -> None:
    p = sub.add_parser("numbers", help="accepted numbers (handlers only)")
    nsub = p.add_subparsers(dest="numbers_command", metavar="SUBCOMMAND", required=True)
    ex = nsub.add_parser("export", help="write person_id, field, number of accepted numbers to a CSV")
    ex.add_argument("--out", type=Path, required=True)
    ex.add_argument("--reason", default="payroll import", help="why the numbers are exported (logged)")
    ex.set_defaults(handler=run_export)
    rv = nsub.add_parser("reveal", help="show one person's accepted numbers (logged with the reason)")
    rv.add_argument("person_id")
    rv.add_argument("--reason", required=True, help="why the number is looked at (logged)")
    rv.set_defaults(handler=run_reveal)


def export_rows(settings, actor: str, reason: str, out: Path) -> int:
    sealer = Sealer(settings)
    with db.session_scope(settings.db_url) as session:
        records = session.execute(
            select(NumberRecord, Kit, Person).join(Kit, NumberRecord.kit_id == Kit.id)
            .join(Person, Kit.person_id == Person.id).where(NumberRecord.status == "accepted")
            .where(NumberRecord.ciphertext.is_not(None))   # erased by a disposal: no longer held
            .order_by(Person.person_id, NumberRecord.field)).all()
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["person_id", "field", "number"])
            for record, kit, person in records:
                writer.writerow([person.person_id, record.field, sealer.open_number(session, record)])
        audit.append(session, actor=actor, action="numbers.exported", object_type="export", object_id=out.name,
                     details={"reason": reason, "count": len(records),
                              "people": sorted({p.person_id for _, _, p in records})})
    return len(records)


def run_export(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    count = export_rows(settings, args.actor, args.reason, args.out)
    print(f"exported {count} accepted numbers to {args.out} (file mode 0600; the export is logged)")
    return 0


def run_reveal(args) -> int:
    settings = config.load()
    sealer = Sealer(settings)
    with db.session_scope(settings.db_url) as session:
        rows = session.execute(
            select(NumberRecord, Kit).join(Kit, NumberRecord.kit_id == Kit.id).join(Person, Kit.person_id == Person.id)
            .where(Person.person_id == args.person_id, NumberRecord.status == "accepted",
                   NumberRecord.ciphertext.is_not(None))
            .order_by(NumberRecord.field)).all()
        if not rows:
            from ..errors import NotFound
            raise NotFound(f"no accepted number for person {args.person_id}")
        shown = [(record.field, kit.code, sealer.open_number(session, record)) for record, kit in rows]
        audit.append(session, actor=args.actor, action="number.revealed", object_type="person",
                     object_id=args.person_id, details={"reason": args.reason, "fields": [f for f, _, _ in shown]})
    for field, kit, digits in shown:
        print(f"{args.person_id} {field} (kit {kit}): {digits}")
    return 0
