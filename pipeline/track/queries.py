"""Questions auditors ask of the event log: the history of one kit, person or document; events by time, actor
and action; who saw or exported whose number.

Every query selects plain columns (no ORM objects) and is driven by the indexes on events (object_type +
object_id, at, actor). An object's history first collects, from the ordinary tables, every object whose events
belong to it (a person's kits, their documents, review items, packages, scan pages), then fetches all their
events in one indexed query.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Iterator, Sequence

from sqlalchemy import Integer, String, and_, bindparam, cast, literal, null, or_, select, text, union_all
from sqlalchemy.orm import Session

from ..errors import NotFound, UsageError
from . import audit
from .models import (DisposalBatch, Document, Event, Kit, NumberRecord, Person, ReviewItem, ScannedPage, Transfer,
                     TransferItem)

KINDS = ("kit", "person", "document")
# Events that reveal a number to a person: exports (details.people lists whose), a handler revealing one
# person's numbers, and a review crop shown on screen (the handwritten number is visible in it).
ACCESS_ACTIONS = ("numbers.exported", "number.revealed", "review.crop_shown")

_COLUMNS = (Event.seq, Event.at, Event.actor, Event.action, Event.object_type, Event.object_id, Event.site,
            Event.details)


@dataclass(frozen=True)
class EventRow:
    seq: int
    at: dt.datetime                   # naive UTC, as stored
    actor: str
    action: str
    object_type: str
    object_id: str
    site: str | None
    details: dict

    @property
    def object(self) -> str:
        return f"{self.object_type} {self.object_id}"


@dataclass(frozen=True)
class Subject:
    kind: str                         # kit | person | document
    key: str                          # kit code, person_id or document code
    pk: int
    person_id: str | None             # whose it is (for kits and documents too)
    kit_ids: tuple[int, ...] = ()     # the kit itself, the document's kit, or the person's kits


@dataclass(frozen=True)
class AccessRow:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    person_id: str | None
    via: str                          # what was shown or written: export file, kit field, review item
    reason: str | None


def _rows(result) -> Iterator[EventRow]:
    for r in result:
        yield EventRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] or {})


# --- history -----------------------------------------------------------------------------------------------

def _subject_cte(kind: str | None):
    """(kind, pk, person_id, kit_id) for each kit, document or person named :key; a person has a row per kit."""
    key = bindparam("key", type_=String)
    parts = []
    if kind in (None, "kit"):
        parts.append(select(literal("kit").label("kind"), Kit.id.label("pk"), Person.person_id.label("person_id"),
                            Kit.id.label("kit_id")).join(Person, Kit.person_id == Person.id).where(Kit.code == key))
    if kind in (None, "document"):
        parts.append(select(literal("document").label("kind"), Document.id.label("pk"),
                            Person.person_id.label("person_id"), Document.kit_id.label("kit_id"))
                     .join(Kit, Document.kit_id == Kit.id).join(Person, Kit.person_id == Person.id)
                     .where(Document.code == key))
    if kind in (None, "person"):
        # kits.person_id has no index: this is the one scan of kits; everything else goes by kit id.
        parts.append(select(literal("person").label("kind"), Person.id.label("pk"), Person.person_id.label("person_id"),
                            Kit.id.label("kit_id"))
                     .outerjoin(Kit, Kit.person_id == Person.id).where(Person.person_id == key))
    return (union_all(*parts) if len(parts) > 1 else parts[0]).cte("subject")


def _subject_and_related(session: Session, key: str, kind: str | None):
    """One statement: which object `key` is, and every object whose events belong to its history:
    rows ('subject', kind, person_id, -, pk, kit_id) and ('related', object_type, object_id, file, page, -)."""
    if kind is not None and kind not in KINDS:
        raise UsageError(f"--kind {kind!r}: allowed are {', '.join(KINDS)}")
    return session.execute(_subject_and_related_statement(kind), {"key": key}).all()


@lru_cache(maxsize=len(KINDS) + 1)
def _subject_and_related_statement(kind: str | None):
    # Built once per kind (with :key bound at run time): constructing this union costs more than running it.
    subject = _subject_cte(kind)
    kit_ids = select(subject.c.kit_id).where(subject.c.kind.in_(["kit", "person"]))
    doc_ids = select(subject.c.pk).where(subject.c.kind == "document")
    docs_of_kits = select(Document.id).where(Document.kit_id.in_(kit_ids))
    none_s, none_i = _typed_null(String), _typed_null(Integer)

    def related(object_type: str, object_id, file=none_s, page=none_i):
        return select(literal("related"), literal(object_type), object_id, file, page, none_i)

    statement = union_all(
        select(literal("subject").label("row"), subject.c.kind.label("a"), subject.c.person_id.label("b"),
               none_s.label("c"), subject.c.pk.label("n"), subject.c.kit_id.label("m")),
        related("kit", Kit.code).where(Kit.id.in_(kit_ids)),
        # (no OR of two conditions in one part: each part stays an index lookup)
        related("document", Document.code).where(Document.kit_id.in_(kit_ids)),
        related("document", Document.code).where(Document.id.in_(doc_ids)),
        related("review_item", cast(ReviewItem.id, String))
        .join(NumberRecord, ReviewItem.number_record_id == NumberRecord.id).where(NumberRecord.kit_id.in_(kit_ids)),
        *[related("transfer", Transfer.code).join(TransferItem, TransferItem.transfer_id == Transfer.id).where(where)
          for where in (TransferItem.kit_id.in_(kit_ids), TransferItem.document_id.in_(docs_of_kits),
                        TransferItem.document_id.in_(doc_ids))],
        *[related("disposal_batch", DisposalBatch.code).join(Document, Document.disposal_batch_id == DisposalBatch.id)
          .where(where) for where in (Document.kit_id.in_(kit_ids), Document.id.in_(doc_ids))],
        related("scan", ScannedPage.source_sha256, ScannedPage.source_name, ScannedPage.page_index)
        .where(ScannedPage.kit_id.in_(kit_ids)),
        # a document: its scanned page (events of the scan and of its kit about that page)
        related("scan", ScannedPage.source_sha256, ScannedPage.source_name, ScannedPage.page_index)
        .join(Document, Document.scanned_page_id == ScannedPage.id).where(Document.id.in_(doc_ids)),
        related("kit_page", Kit.code, ScannedPage.source_name, ScannedPage.page_index)
        .select_from(Document).join(Kit, Document.kit_id == Kit.id)
        .outerjoin(ScannedPage, Document.scanned_page_id == ScannedPage.id).where(Document.id.in_(doc_ids)),
    )
    return statement


def resolve(session: Session, key: str, kind: str | None = None) -> Subject:
    """Which kit, person or document `key` names."""
    return _resolved(key, kind, _subject_and_related(session, key, kind))


def _resolved(key: str, kind: str | None, rows) -> Subject:
    """Kit and document codes and person ids are each unique, but a company's person id could look like a
    code: then `kind` must say which is meant."""
    found: dict[tuple[str, int], Subject] = {}
    for row, found_kind, person_id, _, pk, kit_id in rows:
        if row != "subject":
            continue
        subject = found.get((found_kind, pk)) or Subject(found_kind, key, pk, person_id)
        if kit_id is not None:
            subject = Subject(found_kind, key, pk, person_id, (*subject.kit_ids, kit_id))
        found[(found_kind, pk)] = subject
    if not found:
        what = kind or "kit, person or document"
        raise NotFound(f"no {what} {key!r}: give a kit code (K0000001), a person id from the roster or a "
                       "document code (D0000001)")
    if len(found) > 1:
        raise UsageError(f"{key!r} is both a {' and a '.join(s.kind for s in found.values())}; "
                         "say which with --kind")
    return next(iter(found.values()))


def _typed_null(type_):
    return cast(null(), type_)


def _related(subject: Subject, rows) -> tuple[dict[str, set[str]], set[tuple], set[tuple]]:
    """(object_type -> ids whose events all belong to the subject, scan pages (sha16, file, page) whose
    page-level events belong to it, kit pages (kit code, file, page) whose events are about a document's own
    page; a kit's events that name the document in details.document belong to it too)."""
    objects: dict[str, set[str]] = {"person": {subject.key}} if subject.kind == "person" else {}
    scans, kit_pages = set(), set()
    for row, object_type, object_id, file, page, _ in rows:
        if row != "related" or object_id is None:
            continue
        if object_type == "scan":
            scans.add((object_id[:16], file, page))
        elif object_type == "kit_page":
            kit_pages.add((object_id, file, page))
        else:
            objects.setdefault(object_type, set()).add(object_id)
    return objects, scans, kit_pages


def _mentions_person(session: Session, person_id: str):
    """SQL prefilter: the stored details text contains the person id as a JSON string (canonical storage, or
    the ASCII-escaped form of older rows). Cheap on big export events; callers confirm with `lists_person`."""
    needles = {audit.details_json(person_id), json.dumps(person_id)}
    find = "strpos(events.details::text, {}) > 0" if session.get_bind().dialect.name == "postgresql" \
        else "instr(events.details, {}) > 0"
    clauses = []
    for i, needle in enumerate(sorted(needles)):
        clauses.append(text(find.format(f":mentioned_{i}")).bindparams(**{f"mentioned_{i}": needle}))
    return or_(*clauses)


def _detail(row: EventRow, key: str):
    return row.details.get(key) if isinstance(row.details, dict) else None


def lists_person(row: EventRow, person_id: str) -> bool:
    people = _detail(row, "people")
    return isinstance(people, list) and person_id in people


def _page_of(row: EventRow) -> tuple | None:
    file, page = _detail(row, "file"), _detail(row, "page")
    return None if file is None or page is None else (file, page)


def history(session: Session, key: str, kind: str | None = None) -> tuple[Subject, list[EventRow]]:
    """Every event about the kit, person or document, in the order they happened (chain order)."""
    rows = _subject_and_related(session, key, kind)
    subject = _resolved(key, kind, rows)
    objects, scans, kit_pages = _related(subject, rows)
    conditions = [and_(Event.object_type == object_type, Event.object_id.in_(sorted(ids)))
                  for object_type, ids in sorted(objects.items())]
    scan_ids = {sha for sha, _, _ in scans}
    if scan_ids:
        conditions.append(and_(Event.object_type == "scan", Event.object_id.in_(sorted(scan_ids))))
    page_kits = {kit for kit, _, _ in kit_pages}
    if page_kits:
        conditions.append(and_(Event.object_type == "kit", Event.object_id.in_(sorted(page_kits))))
    if subject.kind == "person":
        conditions.append(and_(Event.object_type == "export", Event.action == "numbers.exported",
                               _mentions_person(session, subject.key)))
    result = session.execute(select(*_COLUMNS).where(or_(*conditions)).order_by(Event.seq))
    rows = []
    for row in _rows(result):
        if row.object_type == "scan" and (row.object_id, *(_page_of(row) or ("", -1))) not in scans:
            continue  # another page of the same scanned file
        if row.object_type == "kit" and row.object_id in page_kits \
                and (row.object_id, *(_page_of(row) or ("", -1))) not in kit_pages \
                and _detail(row, "document") != subject.key:
            continue  # the kit's other pages and documents: not this document's history
        if row.object_type == "export" and not lists_person(row, subject.key):
            continue  # the id appeared in the text, but not in the list of people exported
        rows.append(row)
    return subject, rows


# --- log ---------------------------------------------------------------------------------------------------

def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def action_condition(patterns: Sequence[str]):
    """'kit.sent' matches exactly; 'kit.' or 'kit.*' (or 'kit*') matches every action starting with it."""
    conditions = []
    for pattern in patterns:
        if pattern.endswith("*"):
            conditions.append(Event.action.like(_like_prefix(pattern[:-1]), escape="\\"))
        elif pattern.endswith("."):
            conditions.append(Event.action.like(_like_prefix(pattern), escape="\\"))
        else:
            conditions.append(Event.action == pattern)
    return or_(*conditions)


def _when_and_who(query, start: dt.datetime | None, end: dt.datetime | None, actors: Sequence[str]):
    """The time window (start inclusive, end exclusive, naive UTC) and actor filters log and access share."""
    if start is not None:
        query = query.where(Event.at >= start)
    if end is not None:
        query = query.where(Event.at < end)
    if actors:
        query = query.where(Event.actor.in_(list(actors)))
    return query


def log(session: Session, *, start: dt.datetime | None = None, end: dt.datetime | None = None,
        actors: Sequence[str] = (), actions: Sequence[str] = (), object_types: Sequence[str] = (),
        limit: int | None = None, batch: int = 2000) -> Iterator[EventRow]:
    """Events in chain order; `start` inclusive, `end` exclusive (naive UTC). Streamed in batches."""
    query = _when_and_who(select(*_COLUMNS), start, end, actors)
    if actions:
        query = query.where(action_condition(actions))
    if object_types:
        query = query.where(Event.object_type.in_(list(object_types)))
    query = query.order_by(Event.seq)
    if limit is not None:
        query = query.limit(limit)
    yield from _rows(session.execute(query.execution_options(yield_per=batch)))


def actions_between(session: Session, start: dt.datetime, end: dt.datetime) -> list[tuple[str, int]]:
    """How many events of each action happened in [start, end) (naive UTC)."""
    from sqlalchemy import func
    return [(a, n) for a, n in session.execute(
        select(Event.action, func.count()).where(Event.at >= start, Event.at < end)
        .group_by(Event.action).order_by(Event.action))]


def seq_range_between(session: Session, start: dt.datetime, end: dt.datetime) -> tuple[int | None, int | None]:
    from sqlalchemy import func
    return tuple(session.execute(select(func.min(Event.seq), func.max(Event.seq))
                                 .where(Event.at >= start, Event.at < end)).one())  # type: ignore[return-value]


# --- access ------------------------------------------------------------------------------------------------

def _review_item_people(session: Session, item_ids: Iterable[str]) -> dict[str, tuple[str, str, str]]:
    ids = [int(i) for i in item_ids if str(i).isdigit()]
    if not ids:
        return {}
    rows = session.execute(select(ReviewItem.id, Person.person_id, Kit.code, NumberRecord.field)
                           .join(NumberRecord, ReviewItem.number_record_id == NumberRecord.id)
                           .join(Kit, NumberRecord.kit_id == Kit.id).join(Person, Kit.person_id == Person.id)
                           .where(ReviewItem.id.in_(ids)))
    return {str(item): (person, kit, field) for item, person, kit, field in rows}


def access(session: Session, *, person: str | None = None, actors: Sequence[str] = (),
           start: dt.datetime | None = None, end: dt.datetime | None = None) -> list[AccessRow]:
    """Who revealed or exported which person's number, one row per (event, person), in chain order."""
    if person is not None:
        items = [str(i) for i in session.execute(
            select(ReviewItem.id).join(NumberRecord, ReviewItem.number_record_id == NumberRecord.id)
            .join(Kit, NumberRecord.kit_id == Kit.id).join(Person, Kit.person_id == Person.id)
            .where(Person.person_id == person)).scalars()]
        kinds = [and_(Event.object_type == "export", Event.action == "numbers.exported",
                      _mentions_person(session, person)),
                 and_(Event.object_type == "person", Event.object_id == person, Event.action == "number.revealed")]
        if items:
            kinds.append(and_(Event.object_type == "review_item", Event.object_id.in_(items),
                              Event.action == "review.crop_shown"))
    else:
        kinds = [and_(Event.object_type == "export", Event.action == "numbers.exported"),
                 and_(Event.object_type == "person", Event.action == "number.revealed"),
                 and_(Event.object_type == "review_item", Event.action == "review.crop_shown")]
    query = _when_and_who(select(*_COLUMNS).where(or_(*kinds)), start, end, actors)
    events = list(_rows(session.execute(query.order_by(Event.seq))))
    crops = _review_item_people(session, [e.object_id for e in events if e.action == "review.crop_shown"])
    out: list[AccessRow] = []
    for e in events:
        if person is not None and e.action == "numbers.exported" and not lists_person(e, person):
            continue
        details = e.details if isinstance(e.details, dict) else {}
        reason = details.get("reason")
        if e.action == "numbers.exported":
            people = details.get("people") or []
            count = details.get("count")
            via = f"export {e.object_id}" + (f" ({count} numbers)" if count is not None else "")
            for person_id in people if isinstance(people, list) else [people]:
                if person is None or person_id == person:
                    out.append(AccessRow(e.seq, e.at, e.actor, e.action, str(person_id), via, reason))
        elif e.action == "number.revealed":
            fields = details.get("fields")
            via = "shown on screen" + (f": {', '.join(map(str, fields))}" if isinstance(fields, list) else "")
            out.append(AccessRow(e.seq, e.at, e.actor, e.action, e.object_id, via, reason))
        else:
            owner = crops.get(e.object_id)
            via = (f"review item {e.object_id}: crop of kit {owner[1]} {owner[2]}" if owner
                   else f"review item {e.object_id}")
            out.append(AccessRow(e.seq, e.at, e.actor, e.action, owner[0] if owner else None, via, reason))
    return out
