"""`mynumber disposal due|mark|run|certificate`.

`due` only lists (it never changes a state); `mark` sets the due documents aside (state disposal_due); `run`
records a disposal batch, erases what the documents left in the system and writes the destruction certificate;
`certificate` prints a batch's certificate again from the record.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from sqlalchemy import select

from .. import config, db
from ..errors import MyNumberError, UsageError
from ..track import audit, disposal
from ..track.certificate import write_certificate
from ..track.models import DisposalBatch, Kit, Person, StorageLocation
from .documents import FORMATS, emit, today
from .listing import date_arg

DUE_COLUMNS = ("document", "kit", "person_id", "type", "page", "state", "location", "disposal_due_on",
               "retention_rule")


def register(sub) -> None:
    p = sub.add_parser("disposal", help="what is due for disposal; record a disposal with its certificate")
    dsub = p.add_subparsers(dest="disposal_command", metavar="SUBCOMMAND", required=True)

    du = dsub.add_parser("due", help="list documents due for disposal (changes nothing)")
    _selection_options(du)
    du.add_argument("--format", choices=FORMATS, default="table")
    du.add_argument("--json", action="store_const", const="json", dest="format")
    du.set_defaults(handler=run_due)

    mk = dsub.add_parser("mark", help="set the due documents aside for disposal (state disposal_due)")
    _selection_options(mk)
    mk.set_defaults(handler=run_mark)

    ru = dsub.add_parser("run", help="record a disposal batch: erase numbers and scans, write the certificate",
                         description="Disposes of the documents named with --documents, the due contents of the "
                                     "boxes named with --box (reconciled with their contents lists), or, when "
                                     "nothing is named, everything due by --before.")
    ru.add_argument("--method", choices=disposal.METHODS, required=True,
                    help="shredding (micro-cut), dissolving (by a contractor) or deletion")
    ru.add_argument("--executor", required=True, help="who did it")
    ru.add_argument("--manager", required=True, help="the responsible manager (user name)")
    ru.add_argument("--contractor", help="the contractor who destroyed the paper")
    ru.add_argument("--certificate-number", help="the number of the contractor's certificate")
    _selection_options(ru)
    ru.add_argument("--out", type=Path, required=True, metavar="CERT.pdf", help="the destruction certificate")
    ru.set_defaults(handler=run_run)

    ce = dsub.add_parser("certificate", help="print a batch's destruction certificate again")
    ce.add_argument("batch", metavar="BATCH")
    ce.add_argument("--out", type=Path, required=True, metavar="CERT.pdf")
    ce.set_defaults(handler=run_certificate)


def _selection_options(p) -> None:
    """Which documents: those named, the due contents of the boxes named, or (nothing named) all that is due."""
    p.add_argument("--before", type=date_arg, help="due on or before this date (default: today)")
    p.add_argument("--box", nargs="+", action="extend", default=[], metavar="CODE",
                   help="the due contents of these outside boxes (reconciled with their contents lists)")
    p.add_argument("--documents", nargs="+", action="extend", default=[], metavar="DOC|KIT",
                   help="these documents (a kit: its due documents); they must be due")


def _row(session, document) -> dict:
    kit = session.get(Kit, document.kit_id)
    location = session.get(StorageLocation, document.location_id) if document.location_id else None
    return {"document": document.code, "kit": kit.code, "person_id": session.get(Person, kit.person_id).person_id,
            "type": document.document, "page": document.doc_page, "state": document.state,
            "location": location.code if location else None,
            "disposal_due_on": document.disposal_due_on.isoformat() if document.disposal_due_on else None,
            "retention_rule": document.retention_rule}


def _differences(recon: dict) -> list[str]:
    lines = []
    for item in recon.get("listed_not_disposed", []):
        lines.append(f"difference: {item['document']} is in the contents list of box {item['box']} but is not "
                     f"disposed of: {item['reason']}")
    for item in recon.get("disposed_not_listed", []):
        lines.append(f"difference: {item['document']} is disposed of but not in the contents list of "
                     f"{'box ' + ', '.join(b['box'] for b in recon.get('boxes', []))} "
                     f"(location {item.get('location') or 'none'})")
    return lines


def run_due(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    before = args.before or today()
    with db.session_scope(settings.db_url) as session:
        selection = disposal.select_due(session, before, boxes=args.box, codes=args.documents)
        rows = [_row(session, d) for d in selection.documents]
        recon = disposal.reconcile(session, selection, before)
    emit(rows, DUE_COLUMNS, args.format, key="due",
         extra={"before": before.isoformat(), "reconciliation": recon})
    if args.format == "table":
        for line in _differences(recon):
            print(line.replace("is not disposed of", "would not be disposed of"))
        print(f"{len(rows)} documents due on or before {before.isoformat()}")
    return 0


def run_mark(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    before = args.before or today()
    with db.session_scope(settings.db_url) as session:
        selection = disposal.select_due(session, before, boxes=args.box, codes=args.documents)
        marked = [d.code for d in disposal.mark_due(session, selection, actor=args.actor)]
    print(f"{len(marked)} documents set aside for disposal" + (f": {', '.join(marked)}" if marked else ""))
    return 0


def run_run(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    if args.out.exists():
        raise UsageError(f"{args.out} already exists; a certificate is never overwritten, choose another name")
    before = args.before or today()
    with db.session_scope(settings.db_url) as session:
        outcome = disposal.run(session, method=args.method, executor=args.executor, manager=args.manager,
                               contractor=args.contractor, certificate_number=args.certificate_number,
                               boxes=args.box, codes=args.documents, before=before, actor=args.actor)
        code, count, recon = outcome.batch.code, len(outcome.documents), outcome.reconciliation
        files, numbers, early = list(outcome.files), outcome.numbers_erased, list(outcome.early)
    # The keys are destroyed (committed): the files can no longer be read. Removing them now, after the commit,
    # means a failed transaction never leaves a document recorded as kept whose scan is gone.
    left = []
    for relpath in files:
        path = settings.store_dir / relpath
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            left.append(f"{path}: {exc.strerror}")
    print(f"disposal batch {code}: {count} documents disposed of ({args.method}); executor {args.executor}, "
          f"manager {args.manager}" + (f", contractor {args.contractor}" if args.contractor else "")
          + (f", certificate {args.certificate_number}" if args.certificate_number else ""))
    print(f"erased {numbers} numbers and {len(files)} files (data keys destroyed, files deleted)")
    if early:
        print(f"note: {len(early)} documents were disposed of before their planned date (due by "
              f"{before.isoformat()} was asked for): {', '.join(early[:20])}{' ...' if len(early) > 20 else ''}")
    for box in recon.get("boxes", []):
        print(f"box {box['box']}: {box['listed']} in the contents list, {box['disposed']} disposed of")
    for line in _differences(recon):
        print(line)
    if recon:
        print(f"{recon.get('differences', 0)} differences with the box contents lists")
    for problem in left:
        print(f"mynumber: warning: could not delete {problem} (its key is destroyed; delete it by hand)",
              file=sys.stderr)
    try:
        pages = _certificate(settings, code, args.out, actor=args.actor)
    except MyNumberError as exc:
        exc.args = (f"{exc.message}; batch {code} is recorded: print its certificate with "
                    f"`mynumber disposal certificate {code} --out FILE.pdf`",)
        raise
    print(f"certificate: {args.out} ({pages} pages)")
    return 0


def _certificate(settings, code: str, out: Path, *, actor: str, reprint: bool = False) -> int:
    with db.session_scope(settings.db_url) as session:
        record = disposal.batch_record(session, code)
    pages = write_certificate(out, record, settings.company)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    with db.session_scope(settings.db_url) as session:
        batch = session.execute(select(DisposalBatch).where(DisposalBatch.code == code)).scalar_one()
        if not reprint:
            batch.certificate_file = str(out.resolve())
        audit.append(session, actor=actor, action="disposal.certificate_written", object_type="disposal_batch",
                     object_id=code, details={"file": out.name, "sha256": digest, "pages": pages,
                                              "reprint": reprint})
    return pages


def run_certificate(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    pages = _certificate(settings, args.batch, args.out, actor=args.actor, reprint=True)
    print(f"certificate of {args.batch}: {args.out} ({pages} pages)")
    return 0
