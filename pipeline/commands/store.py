"""`mynumber store`: put checked documents into a storage location; manage locations; print a box's contents.

    mynumber store DOC|KIT... --location CODE
    mynumber store locations add CODE --kind cabinet|box [--site S] [--provider NAME] [--description TEXT]
    mynumber store locations list [--format table|csv|json]
    mynumber store contents CODE [--out FILE.pdf | --format table|csv|json]

One parser takes all forms (the first word decides), so options may come anywhere on the line. Documents must
be checked before they are stored (`mynumber documents check`): storing never records a check on someone's
behalf. Storing a stored document elsewhere moves it.
"""
from __future__ import annotations

from pathlib import Path

from .. import config, db
from ..errors import UsageError
from ..track import documents
from ..track.certificate import write_contents_list
from ..track.models import Kit
from .documents import FORMATS, emit, local_day, today

USAGE = """mynumber store DOC|KIT... --location CODE
       mynumber store locations add CODE --kind cabinet|box [--site S] [--provider NAME] [--description TEXT]
       mynumber store locations list [--format table|csv|json]
       mynumber store contents CODE [--out FILE.pdf | --format table|csv|json]"""
CONTENTS_COLUMNS = ("document", "kit", "type", "page", "state", "stored_on", "disposal_due_on")
LOCATION_COLUMNS = ("code", "kind", "site", "provider", "documents")


def register(sub) -> None:
    p = sub.add_parser("store", usage=USAGE, help="store documents in a cabinet or box; locations; box contents",
                       description="Documents must be checked against the checklist first (mynumber documents "
                                   "check); storing a stored document in another location moves it.")
    p.add_argument("words", nargs="+", metavar="DOC|KIT|locations|contents",
                   help="document or kit codes to store; or `locations add|list`, `contents CODE`")
    p.add_argument("--location", help="where the documents go (a location code)")
    p.add_argument("--kind", choices=documents.LOCATION_KINDS, help="locations add: cabinet or box")
    p.add_argument("--site", help="locations add: the site the location is at")
    p.add_argument("--provider", help="locations add: the outside storage company keeping the box")
    p.add_argument("--description", help="locations add: free text (where the cabinet stands, ...)")
    p.add_argument("--out", type=Path, metavar="FILE.pdf", help="contents: write the printable list")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--json", action="store_const", const="json", dest="format")
    p.set_defaults(handler=run)


def _only(args, allowed: set[str], form: str) -> None:
    given = {name for name in ("location", "kind", "site", "provider", "description", "out")
             if getattr(args, name) is not None}
    stray = sorted(given - allowed)
    if stray:
        raise UsageError(f"`mynumber store {form}` does not take --{', --'.join(stray)}; usage:\n{USAGE}")


def run(args) -> int:
    first = args.words[0]
    if first == "locations":
        action = args.words[1] if len(args.words) > 1 else None
        if action == "add" and len(args.words) == 3:
            return run_add_location(args, args.words[2])
        if action == "list" and len(args.words) == 2:
            _only(args, set(), "locations list")
            return run_list_locations(args)
        raise UsageError(f"store locations: say `add CODE --kind cabinet|box` or `list`; usage:\n{USAGE}")
    if first == "contents":
        if len(args.words) != 2:
            raise UsageError(f"store contents takes one location code; usage:\n{USAGE}")
        return run_contents(args, args.words[1])
    return run_store(args, args.words)


def run_store(args, codes: list[str]) -> int:
    _only(args, {"location"}, "DOC...")
    if not args.location:
        raise UsageError(f"say where the documents go with --location CODE; usage:\n{USAGE}")
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        stored = documents.store(session, codes, args.location, actor=args.actor)
        lines = [f"{'moved' if s.previous else 'stored'} {s.document.code} ({s.document.document})"
                 + (f" from {s.previous}" if s.previous else "") for s in stored]
    print("\n".join(lines))
    print(f"{len(lines)} documents in {args.location}")
    return 0


def run_add_location(args, code: str) -> int:
    _only(args, {"kind", "site", "provider", "description"}, "locations add")
    if not args.kind:
        raise UsageError("store locations add: give --kind cabinet or --kind box")
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        documents.add_location(session, code, args.kind, site=args.site, provider=args.provider,
                               description=args.description, actor=args.actor)
    print(f"added {args.kind} {code}" + (f" at {args.site}" if args.site else "")
          + (f", kept by {args.provider}" if args.provider else ""))
    return 0


def run_list_locations(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        rows = documents.list_locations(session)
    emit(rows, LOCATION_COLUMNS, args.format, key="locations")
    return 0


def contents_rows(session, location) -> list[dict]:
    out = []
    for d in documents.contents(session, location):
        out.append({"document": d.code, "kit": session.get(Kit, d.kit_id).code, "type": d.document,
                    "page": d.doc_page, "state": d.state, "stored_on": local_day(d.stored_at),
                    "disposal_due_on": d.disposal_due_on.isoformat() if d.disposal_due_on else None})
    return out


def run_contents(args, code: str) -> int:
    _only(args, {"out"}, "contents")
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        location = documents.location_by_code(session, code)
        rows = contents_rows(session, location)
        session.expunge(location)
    if args.out is None:
        emit(rows, CONTENTS_COLUMNS, args.format, key="documents",
             extra={"location": {"code": location.code, "kind": location.kind, "site": location.site,
                                 "provider": location.provider}})
        if args.format == "table":
            print(f"{len(rows)} documents in {location.kind} {location.code}")
        return 0
    pages = write_contents_list(args.out, location, rows, settings.company, printed_on=today(),
                                printed_by=args.actor)
    print(f"contents list of {location.code}: {len(rows)} documents, {pages} pages -> {args.out}")
    return 0

