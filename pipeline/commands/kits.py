"""`mynumber kits print|send|list|layout`."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import config, db, layout
from ..errors import InputError, MyNumberError
from ..kit.printing import print_kits
from ..track import receiving, service
from ..track.models import Kit


def register(sub) -> None:
    p = sub.add_parser("kits", help="print, send and list collection kits")
    ksub = p.add_subparsers(dest="kits_command", metavar="SUBCOMMAND", required=True)

    pr = ksub.add_parser("print", help="import a roster, register kits and write one print-ready PDF")
    pr.add_argument("roster", type=Path, metavar="ROSTER.csv")
    pr.add_argument("--out", type=Path, required=True, metavar="KITS.pdf")
    pr.add_argument("--manifest", type=Path, metavar="MANIFEST.csv")
    pr.add_argument("--site", help="only the people of this site")
    pr.set_defaults(handler=run_print)

    se = ksub.add_parser("send", help="record kits as sent: CSV with kit_id, carrier, tracking_number")
    se.add_argument("--manifest", type=Path, required=True, metavar="SENT.csv")
    se.set_defaults(handler=run_send)

    ls = ksub.add_parser("list", help="list kits")
    ls.add_argument("--state")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=run_list)

    st = ksub.add_parser("status", help="per kit: state, what is missing, and each number field's status")
    st.add_argument("--json", action="store_true")
    st.add_argument("--kit", help="only this kit")
    st.set_defaults(handler=run_status)

    lo = ksub.add_parser("layout", help="print the form geometry (mm) used for printing and reading")
    lo.add_argument("--json", action="store_true", default=True)
    lo.set_defaults(handler=run_layout)


def run_print(args) -> int:
    settings = config.load()
    result = print_kits(settings, args.roster, args.out, manifest=args.manifest, site=args.site, actor=args.actor)
    if result.imported:
        s = result.imported
        print(f"roster: {s.created} new, {s.updated} updated, {s.unchanged} unchanged")
    print(f"printed {result.kits} kits, {result.pages} pages -> {args.out}"
          + (f" (manifest {args.manifest})" if args.manifest else ""))
    for person_id, code, state in result.skipped:
        print(f"skipped {person_id}: kit {code} is already {state}")
    return 0


def read_send_manifest(path: Path) -> list[tuple[int, str, str, str | None]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        try:
            text = path.read_bytes().decode("cp932")
        except UnicodeDecodeError:
            raise InputError(f"{path}: neither UTF-8 nor CP932") from None
    reader = csv.DictReader(text.splitlines())
    need = {"kit_id", "carrier"}
    if not reader.fieldnames or not need <= {f.strip() for f in reader.fieldnames}:
        raise InputError(f"{path}: line 1: needs columns kit_id, carrier (and optional tracking_number)")
    rows, problems = [], []
    for rec in reader:
        line = reader.line_num
        rec = {k.strip(): (v or "").strip() for k, v in rec.items() if k}
        carrier = service.CARRIERS.get(rec.get("carrier", ""))
        if not rec.get("kit_id"):
            problems.append(f"line {line}: kit_id is empty")
        elif carrier is None:
            problems.append(f"line {line}, column carrier: {rec.get('carrier')!r} is not one of "
                            "簡易書留, レターパック, 社内便, 手渡し")
        else:
            rows.append((line, rec["kit_id"], carrier, rec.get("tracking_number") or None))
    if problems:
        raise InputError(f"{path}: nothing was recorded:\n  " + "\n  ".join(problems))
    return rows


def run_send(args) -> int:
    settings = config.load()
    rows = read_send_manifest(args.manifest)
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        for line, code, carrier, tracking in rows:
            try:
                service.record_sent(session, code, carrier=carrier, tracking_number=tracking, actor=args.actor)
            except MyNumberError as exc:  # same kind of error (same exit code), now naming the manifest line
                raise type(exc)(f"{args.manifest}: line {line}: {exc.message}; nothing was recorded",
                                exit_code=exc.exit_code) from None
    print(f"recorded {len(rows)} kits as sent")
    return 0


def run_list(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        q = select(Kit).options(selectinload(Kit.person)).order_by(Kit.site, Kit.code)
        if args.state:
            q = q.where(Kit.state == args.state)
        kits = session.execute(q).scalars().all()
        rows = [{"kit_id": k.code, "person_id": k.person.person_id, "kind": k.kind, "site": k.site,
                 "state": k.state, "carrier": k.carrier, "tracking_number": k.tracking_number,
                 "printed_at": k.printed_at.isoformat(timespec="seconds"),
                 "sent_at": k.sent_at.isoformat(timespec="seconds") if k.sent_at else None} for k in kits]
    if args.json:
        print(json.dumps({"kits": rows}, ensure_ascii=False, indent=1))
    else:
        print(f"{'kit':<10} {'person':<12} {'kind':<9} {'site':<12} {'state':<10} carrier")
        for r in rows:
            print(f"{r['kit_id']:<10} {r['person_id']:<12} {r['kind']:<9} {r['site']:<12} {r['state']:<10} "
                  f"{r['carrier'] or ''}")
        print(f"{len(rows)} kits")
    return 0


def run_layout(args) -> int:
    print(json.dumps(layout.load().to_json(), ensure_ascii=False, indent=1))
    return 0


def kit_statuses(settings, kit_code: str | None = None) -> list[dict]:
    with db.session_scope(settings.db_url) as session:
        q = select(Kit).options(selectinload(Kit.person), selectinload(Kit.pages)).order_by(Kit.site, Kit.code)
        if kit_code:
            q = q.where(Kit.code == kit_code)
        out = []
        for kit in session.execute(q).scalars():
            _, missing, fields, _ = receiving.kit_report(session, kit)
            out.append({"kit_id": kit.code, "person_id": kit.person.person_id, "site": kit.site, "state": kit.state,
                        "missing": kit.missing if kit.state in ("complete", "incomplete") else [],
                        "fields": fields,
                        "received_at": kit.received_at.isoformat(timespec="seconds") if kit.received_at else None})
        return out


def run_status(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    rows = kit_statuses(settings, args.kit)
    if args.json:
        print(json.dumps({"kits": rows}, ensure_ascii=False, indent=1))
        return 0
    for r in rows:
        fields = ", ".join(f"{k} {v}" for k, v in r["fields"].items())
        print(f"{r['kit_id']} {r['person_id']:<10} {r['site']:<10} {r['state']:<10} {fields}")
        for m in r["missing"]:
            print(f"    missing: {m}")
    counts = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no kits")
    return 0
