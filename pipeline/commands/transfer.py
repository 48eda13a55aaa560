"""`mynumber transfer send|receive|lost|overdue|list`: packages of kits and documents between sites."""
from __future__ import annotations

from .. import config, db
from ..errors import PermissionDenied
from ..track import audit, states, transfers
from ..track.models import Transfer
from .listing import add_format_option, emit, parse_local, short, utc_now

COLUMNS = ("transfer", "state", "from_site", "to_site", "sender", "carrier", "tracking_number", "sent_at",
           "due_at", "received_at", "received_by", "kits", "documents")
OVERDUE_COLUMNS = ("transfer", "from_site", "to_site", "sender", "carrier", "tracking_number", "sent_at", "due_at",
                   "days_overdue", "kits", "documents")


def register(sub) -> None:
    p = sub.add_parser("transfer", help="packages of kits and documents between sites, confirmed on receipt")
    ts = p.add_subparsers(dest="transfer_command", metavar="SUBCOMMAND", required=True)

    se = ts.add_parser("send", help="record a package leaving a site (you are its sender)")
    se.add_argument("--from", dest="from_site", required=True, metavar="SITE")
    se.add_argument("--to", dest="to_site", required=True, metavar="SITE")
    se.add_argument("--carrier", required=True, help="簡易書留, レターパック, 社内便 or 手渡し")
    se.add_argument("--tracking", help="tracking number (required for 簡易書留 and レターパック)")
    se.add_argument("--due-days", type=int, default=None,
                    help="days until an unconfirmed package is overdue (default: [transfers] due_days, 3)")
    se.add_argument("--kits", nargs="+", default=[], metavar="KIT")
    se.add_argument("--documents", nargs="+", default=[], metavar="DOCUMENT")
    se.set_defaults(handler=run_send)

    rc = ts.add_parser("receive", help="confirm a package arrived (by someone at the receiving site)")
    rc.add_argument("transfer", metavar="TRANSFER")
    rc.add_argument("--site", help="the site confirming; refused unless it is the package's destination")
    rc.set_defaults(handler=run_receive)

    lo = ts.add_parser("lost", help="declare a package lost; its documents become lost")
    lo.add_argument("transfer", metavar="TRANSFER")
    lo.add_argument("--note", help="what is known (carrier's answer, search done)")
    lo.set_defaults(handler=run_lost)

    ov = ts.add_parser("overdue", help="packages not confirmed within their due days, with sender and carrier")
    ov.add_argument("--as-of", type=parse_local, default=None, metavar="DATETIME",
                    help="what was overdue at this local time (default: now)")
    add_format_option(ov)
    ov.set_defaults(handler=run_overdue)

    ls = ts.add_parser("list", help="all transfers")
    ls.add_argument("--state", choices=sorted(states.TRANSFER_TRANSITIONS))
    add_format_option(ls)
    ls.set_defaults(handler=run_list)


def _due_days(settings, given: int | None) -> int:
    return given if given is not None else int(settings.section("transfers").get("due_days", 3))


def run_send(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        transfer = transfers.send(session, from_site=args.from_site, to_site=args.to_site, carrier=args.carrier,
                                  tracking_number=args.tracking, due_days=_due_days(settings, args.due_days),
                                  kit_codes=args.kits, document_codes=args.documents, actor=args.actor)
        items = transfers.contents(session, transfer)
        code, due = transfer.code, transfers.due_at(transfer)
    print(f"transfer {code}: {len(items.kits)} kits, {len(items.documents)} documents from {args.from_site} to "
          f"{args.to_site} by {args.actor} ({args.carrier}{', ' + args.tracking if args.tracking else ''}); "
          f"to be confirmed by {short(due)}")
    return 0


def run_receive(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    try:
        with db.session_scope(settings.db_url) as session:
            transfer = transfers.receive(session, args.transfer, actor=args.actor, site=args.site)
            items = transfers.contents(session, transfer)
            to_site = transfer.to_site
    except PermissionDenied as refusal:
        with db.session_scope(settings.db_url) as session:   # the refused attempt itself is on record
            audit.append(session, actor=args.actor, action="transfer.receive_refused", object_type="transfer",
                         object_id=args.transfer, site=args.site, details={"reason": refusal.message})
        raise
    print(f"transfer {args.transfer} received at {to_site} by {args.actor}; check the contents against this list:")
    for code in items.kits + items.documents:
        print(f"  {code}")
    return 0


def run_lost(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        transfer = transfers.mark_lost(session, args.transfer, actor=args.actor, note=args.note)
        items = transfers.contents(session, transfer)
        line = (f"transfer {transfer.code} declared lost: sent by {transfer.sender} on {transfer.sent_at:%Y-%m-%d} "
                f"with {transfer.carrier}" + (f" (tracking {transfer.tracking_number})" if transfer.tracking_number
                                              else "")
                + f"; {len(items.kits)} kits, {len(items.documents)} documents (now lost)")
    print(line)
    return 0


def _row(transfer: Transfer, counts: tuple[int, int]) -> dict:
    return {"transfer": transfer.code, "state": transfer.state, "from_site": transfer.from_site,
            "to_site": transfer.to_site, "sender": transfer.sender, "carrier": transfer.carrier,
            "tracking_number": transfer.tracking_number, "sent_at": transfer.sent_at,
            "due_at": transfers.due_at(transfer), "received_at": transfer.received_at,
            "received_by": transfer.received_by, "kits": counts[0], "documents": counts[1]}


def run_overdue(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    as_of = args.as_of or utc_now()
    with db.session_scope(settings.db_url) as session:
        late = transfers.overdue(session, as_of)
        counts = transfers.item_counts(session, [t.id for t in late])
        rows = [_row(t, counts[t.id]) | {"days_overdue": (as_of - transfers.due_at(t)).days} for t in late]
    emit(rows, OVERDUE_COLUMNS, args.format, key="overdue")
    return 0


def run_list(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        found = transfers.listing(session, args.state)
        counts = transfers.item_counts(session, [t.id for t in found])
        rows = [_row(t, counts[t.id]) for t in found]
    emit(rows, COLUMNS, args.format, key="transfers")
    return 0
