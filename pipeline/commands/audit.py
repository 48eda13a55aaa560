"""`mynumber audit verify|anchor|history|log|access`: check the hash chain, fix its head on paper, and answer
"when, who, which document, what was done" for any kit, person or document."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sys
import time
import unicodedata
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .. import config, db
from ..errors import IntegrityError, UsageError
from ..track import audit, digest, queries
from .listing import date_arg, parse_local

FORMATS = ("table", "csv", "json")
EVENT_COLUMNS = ("seq", "time", "actor", "action", "object", "site", "details")
ACCESS_COLUMNS = ("seq", "time", "actor", "action", "person_id", "via", "reason")


# --- argument types ----------------------------------------------------------------------------------------

def _start(text: str) -> dt.datetime:
    return parse_local(text)


def _end(text: str) -> dt.datetime:
    """--to: a date alone means up to the end of that (local) day."""
    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        return parse_local(text)
    return parse_local((day + dt.timedelta(days=1)).isoformat())


def register(sub) -> None:
    p = sub.add_parser("audit", help="verify the event log, anchor its head, query histories (manager, auditor)")
    asub = p.add_subparsers(dest="audit_command", metavar="SUBCOMMAND", required=True)

    ve = asub.add_parser("verify", help="check the whole hash chain (exit 4 naming the first bad event)")
    ve.add_argument("--anchor", action="append", default=[], metavar="FILE|SEQ:HASH",
                    help="an anchor file from `audit anchor`, or SEQ:HASH from a stamped digest; repeatable")
    ve.add_argument("--json", action="store_true")
    ve.set_defaults(handler=run_verify)

    an = asub.add_parser("anchor", help="write the chain head to a file and a daily digest PDF to stamp")
    an.add_argument("--out", type=Path, required=True, metavar="ANCHOR.json")
    an.add_argument("--digest", type=Path, metavar="DIGEST.pdf",
                    help="where the digest goes (default: beside --out, same name with .pdf)")
    an.add_argument("--date", type=date_arg, help="the day whose events the digest counts (default: today)")
    an.set_defaults(handler=run_anchor)

    hi = asub.add_parser("history", help="every event about one kit, person or document, in time order")
    hi.add_argument("key", metavar="KIT|PERSON|DOCUMENT")
    hi.add_argument("--kind", choices=queries.KINDS, help="when a person id looks like a kit or document code")
    hi.add_argument("--format", choices=FORMATS, default="table")
    hi.set_defaults(handler=run_history)

    lo = asub.add_parser("log", help="events by time, actor and action")
    lo.add_argument("--from", dest="start", type=_start, metavar="DATE", help="from this local date/time")
    lo.add_argument("--to", dest="end", type=_end, metavar="DATE", help="up to this local date (inclusive)/time")
    # dest is not "actor": that is the acting user (--as)
    lo.add_argument("--actor", dest="actors", action="append", default=[], help="only this user; repeatable")
    lo.add_argument("--action", action="append", default=[],
                    help="exact action (kit.sent) or prefix ending in '.' or '*' (kit.); repeatable")
    lo.add_argument("--object-type", action="append", default=[], help="kit, person, document, ...; repeatable")
    lo.add_argument("--limit", type=int)
    lo.add_argument("--format", choices=FORMATS, default="table")
    lo.set_defaults(handler=run_log)

    ac = asub.add_parser("access", help="who revealed or exported which person's number")
    ac.add_argument("--person", help="only this person id")
    ac.add_argument("--actor", dest="actors", action="append", default=[], help="only this user; repeatable")
    ac.add_argument("--from", dest="start", type=_start, metavar="DATE")
    ac.add_argument("--to", dest="end", type=_end, metavar="DATE")
    ac.add_argument("--format", choices=FORMATS, default="table")
    ac.set_defaults(handler=run_access)


def _settings() -> config.Settings:
    settings = config.load()
    db.require_schema(settings.db_url)
    return settings


# --- verify and anchor -------------------------------------------------------------------------------------

def verify_chain(settings: config.Settings, anchors: Sequence[audit.Anchor] = ()) -> tuple[audit.VerifyResult, float]:
    started = time.perf_counter()
    with db.session_scope(settings.db_url) as session:
        result = audit.verify(session, anchors=anchors)
    return result, time.perf_counter() - started


def _broken(result: audit.VerifyResult) -> IntegrityError:
    return IntegrityError(f"audit log broken at event seq {result.first_bad_seq}: {result.problem}")


def run_verify(args) -> int:
    settings = _settings()
    anchors = [audit.read_anchor(spec) for spec in args.anchor]
    result, seconds = verify_chain(settings, anchors)
    rate = result.events / seconds if seconds > 0 else 0.0
    if args.json:
        print(json.dumps({"ok": result.ok, "events": result.events, "head_seq": result.head_seq,
                          "head_hash": result.head_hash, "first_bad_seq": result.first_bad_seq,
                          "problem": result.problem, "anchors_checked": result.anchors_checked,
                          "seconds": round(seconds, 3)}, ensure_ascii=False))
    if not result.ok:
        raise _broken(result)
    if not args.json:
        print(f"audit log intact: {result.events:,} events, head seq {result.head_seq} hash {result.head_hash} "
              f"({seconds:.2f} s, {rate:,.0f} events/s)")
        for anchor in result.anchors_checked:
            print(f"  reaches {anchor}")
    return 0


def _zone_label() -> str:
    now = dt.datetime.now().astimezone()
    offset = now.isoformat()[-6:]
    return f"{offset} {now.tzname()}" if now.tzname() and now.tzname() != offset else offset


def _local_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return parse_local(day.isoformat()), parse_local((day + dt.timedelta(days=1)).isoformat())


def run_anchor(args) -> int:
    from ..kit.printing import FONT_PATH
    settings = _settings()
    out: Path = args.out
    pdf: Path = args.digest or out.with_suffix(".pdf")
    if pdf.resolve() == out.resolve():
        raise UsageError(f"--digest {pdf} is the anchor file itself; give another name")
    # Anchoring a broken chain would bless it: verify first.
    result, _ = verify_chain(settings)
    if not result.ok:
        raise _broken(result)
    day = args.date or dt.date.today()
    start, end = _local_day_bounds(day)
    anchored_at = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    tmp_json, tmp_pdf = out.with_name(f".{out.name}.partial"), pdf.with_name(f".{pdf.name}.partial")
    try:
        with db.session_scope(settings.db_url) as session:
            audit.append(session, actor=args.actor, action="audit.anchored", object_type="audit",
                         object_id=out.name, details={"digest": pdf.name, "day": day.isoformat(),
                                                      "verified_events": result.events})
            session.flush()
            head = audit.head(session)
            first, last = queries.seq_range_between(session, start, end)
            facts = digest.DigestFacts(
                company=settings.company.name, day=day, zone=_zone_label(), head_seq=head.seq, head_hash=head.hash,
                head_at=head.at_local, anchored_at=anchored_at, anchored_by=args.actor, total_events=head.count,
                day_first_seq=first, day_last_seq=last, actions=queries.actions_between(session, start, end),
                anchor_file=out.name)
            # Files are finished before the event commits, and put in place only after it did.
            audit.write_anchor(tmp_json, head, anchored_at=anchored_at, by=args.actor)
            pages = digest.write_digest(tmp_pdf, facts, FONT_PATH)
        os.replace(tmp_json, out)
        os.replace(tmp_pdf, pdf)
    finally:
        for leftover in (tmp_json, tmp_pdf):
            leftover.unlink(missing_ok=True)
    print(f"anchored head seq {head.seq} hash {head.hash} ({head.count:,} events) -> {out}")
    print(f"daily digest for {day.isoformat()} ({pages} page{'s' if pages > 1 else ''}) -> {pdf}: "
          "print it, have the responsible manager stamp it, keep it")
    return 0


# --- output ------------------------------------------------------------------------------------------------

def _local(value: dt.datetime, *, table: bool) -> str:
    local = value.replace(tzinfo=dt.timezone.utc).astimezone()
    if table:
        return local.strftime("%Y-%m-%d %H:%M:%S") + local.isoformat()[-6:]
    return local.isoformat(timespec="microseconds")


def _compact(details: dict) -> str:
    return json.dumps(details, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _event_record(row: queries.EventRow, fmt: str) -> dict:
    return {"seq": row.seq, "time": _local(row.at, table=fmt == "table"), "actor": row.actor, "action": row.action,
            "object": row.object, "site": row.site,
            "details": row.details if fmt == "json" else _compact(row.details)}


def _access_record(row: queries.AccessRow, fmt: str) -> dict:
    return {"seq": row.seq, "time": _local(row.at, table=fmt == "table"), "actor": row.actor, "action": row.action,
            "person_id": row.person_id, "via": row.via, "reason": row.reason}


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def emit(records: Iterable[dict], columns: Sequence[str], fmt: str, *, key: str, head: dict | None = None,
         out=None) -> int:
    """Stream records as a table (widths from the first 1,000 rows), CSV or JSON ({key: [...]}). Returns the
    number of records."""
    out = out or sys.stdout
    count = 0
    if fmt == "json":
        prefix = "{" + "".join(f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}, "
                               for k, v in (head or {}).items())
        out.write(prefix + json.dumps(key) + ": [")
        for record in records:
            out.write(("," if count else "") + "\n " + json.dumps(record, ensure_ascii=False))
            count += 1
        out.write("\n]}\n")
        return count
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for record in records:
            writer.writerow(["" if record.get(c) is None else record[c] for c in columns])
            count += 1
        return count
    iterator = iter(records)
    first = []
    for record in iterator:
        first.append(record)
        if len(first) >= 1000:
            break
    cell = lambda v: "" if v is None else str(v)
    widths = [max([_width(c)] + [_width(cell(r.get(c))) for r in first]) for c in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v + " " * max(0, w - _width(v)) for v, w in zip(values, widths)).rstrip()

    print(line(columns), file=out)
    for record in _chain(first, iterator):
        print(line([cell(record.get(c)) for c in columns]), file=out)
        count += 1
    return count


def _chain(first: list, rest: Iterator) -> Iterator:
    yield from first
    yield from rest


# --- queries -----------------------------------------------------------------------------------------------

def run_history(args) -> int:
    settings = _settings()
    with db.session_scope(settings.db_url) as session:
        subject, rows = queries.history(session, args.key, args.kind)
    head = {"subject": {"kind": subject.kind, "id": subject.key, "person_id": subject.person_id}}
    if args.format == "table":
        owner = f" (person {subject.person_id})" if subject.kind != "person" else ""
        print(f"history of {subject.kind} {subject.key}{owner}: {len(rows)} events")
    emit((_event_record(r, args.format) for r in rows), EVENT_COLUMNS, args.format, key="events",
         head=head if args.format == "json" else None)
    return 0


def run_log(args) -> int:
    settings = _settings()
    if args.start and args.end and args.end <= args.start:
        raise UsageError("--to must be after --from")
    with db.session_scope(settings.db_url) as session:
        rows = queries.log(session, start=args.start, end=args.end, actors=args.actors, actions=args.action,
                           object_types=args.object_type, limit=args.limit)
        emit((_event_record(r, args.format) for r in rows), EVENT_COLUMNS, args.format, key="events")
    return 0


def run_access(args) -> int:
    settings = _settings()
    with db.session_scope(settings.db_url) as session:
        rows = queries.access(session, person=args.person, actors=args.actors, start=args.start, end=args.end)
    emit((_access_record(r, args.format) for r in rows), ACCESS_COLUMNS, args.format, key="access")
    return 0
