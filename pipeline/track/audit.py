"""The hash-chained event log: append inside the caller's transaction; verify the whole chain, and anchors.

Each event's hash is SHA-256 over the previous event's hash, a newline and the event's canonical form (compact
JSON, sorted keys, UTF-8, `at` with microseconds). Editing, deleting, inserting or reordering an event breaks
the chain at that event; cutting events off the end is caught by the chain-head row and, against an attacker
who rewrites that row too, by anchors: the head written to a file (and printed on a page a manager stamps).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _quote  # the C escaper json.dumps(ensure_ascii=False) uses
from pathlib import Path
from typing import Iterator, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import InputError
from .models import ChainHead, Event, utcnow

GENESIS = "0" * 64
ANCHOR_FORMAT = "mynumber-audit-anchor/1"

_DETAILS = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
# The canonical body with its keys in sorted order; strings are JSON-quoted, `at` and seq need no quoting.
_BODY = '{"action":%s,"actor":%s,"at":"%s","details":%s,"object_id":%s,"object_type":%s,"seq":%d,"site":%s}'


def canonical(event: Event) -> bytes:
    body = {
        "seq": event.seq, "at": event.at.isoformat(timespec="microseconds"), "actor": event.actor,
        "action": event.action, "object_type": event.object_type, "object_id": event.object_id,
        "site": event.site, "details": event.details or {},
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def link(prev_hash: str, event: Event) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(event)).hexdigest()


def details_json(details: dict | None) -> str:
    """The canonical text of `details` (also how the database stores JSON, see pipeline/db.py)."""
    return _DETAILS.encode(details or {})


def canonical_text(seq: int, at: str, actor: str, action: str, object_type: str, object_id: str,
                   site: str | None, details_text: str) -> str:
    """Same bytes as canonical() (once encoded), from plain values: `at` already in isoformat(microseconds),
    `details_text` already canonical JSON. This is what verification hashes without building objects."""
    return _BODY % (_quote(action), _quote(actor), at, details_text, _quote(object_id), _quote(object_type), seq,
                    "null" if site is None else _quote(site))


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def _normalised(details: dict | None) -> dict:
    # What is hashed must be what comes back from the database: a JSON round trip turns tuples into lists and
    # non-string keys into strings (which would otherwise sort differently), and refuses NaN (PostgreSQL would).
    try:
        return json.loads(json.dumps(details or {}, ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"event details must be plain JSON (strings, numbers, lists, objects): {exc}") from None


def _head(session: Session) -> ChainHead:
    # FOR UPDATE serialises concurrent writers on PostgreSQL; SQLite's BEGIN IMMEDIATE already does. The lock
    # lasts until the transaction ends, so the row is read once per transaction, not once per event.
    head = session.info.get("chain_head")
    if head is not None and head in session:
        return head
    head = session.execute(select(ChainHead).where(ChainHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = ChainHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    session.info["chain_head"] = head
    return head


def serialise_writers(session: Session) -> None:
    """Make this transaction the only writer until it ends: take the chain head's row lock before reading the
    state a change depends on (is the review item settled, is the transfer still open, is the page recorded).
    Without it two writers on PostgreSQL could decide from the same snapshot and, say, both settle one review
    item or both receive one transfer; the hash chain would stay intact but the state would not. SQLite's
    BEGIN IMMEDIATE already serialises writers."""
    _head(session)


def append(session: Session, *, actor: str, action: str, object_type: str, object_id: str,
           site: str | None = None, details: dict | None = None) -> Event:
    head = _head(session)
    event = Event(seq=head.seq + 1, at=utcnow(), actor=actor, action=action, object_type=object_type,
                  object_id=str(object_id), site=site, details=_normalised(details), prev_hash=head.hash)
    event.hash = link(head.hash, event)
    session.add(event)
    head.seq, head.hash = event.seq, event.hash
    return event


# --- reading the chain fast --------------------------------------------------------------------------------

# The database builds "prev_hash \n canonical body" itself, so verification fetches one string per event and
# hashes it: no per-event JSON parsing, formatting or object building in Python. The body is only used when it
# is the canonical form by construction: strings JSON-quoted by the database, `at` formatted to exactly 26
# characters, details as stored (canonical since pipeline/db.py stores JSON that way). A row whose built body
# does not give its hash (older rows with other JSON formatting, quoting the database does differently) is
# re-checked the careful way (row_matches) before it is called bad, so these shortcuts never pass a bad row.
# It comes as UTF-8 bytes (a blob, bytea), ready for hashlib without decoding and encoding again.
_MATERIAL = {
    "sqlite": """CAST(CASE WHEN length(at) = 26 THEN prev_hash || char(10) || '{"action":' || json_quote(action)
        || ',"actor":' || json_quote(actor) || ',"at":"' || replace(at, ' ', 'T') || '","details":' || details
        || ',"object_id":' || json_quote(object_id) || ',"object_type":' || json_quote(object_type)
        || ',"seq":' || seq || ',"site":' || json_quote(site) || '}' END AS BLOB)""",
    "postgresql": """convert_to(prev_hash || E'\\n' || '{"action":' || to_json(action)::text || ',"actor":'
        || to_json(actor)::text || ',"at":"' || to_char(at, 'YYYY-MM-DD"T"HH24:MI:SS.US') || '","details":'
        || details::text || ',"object_id":' || to_json(object_id)::text || ',"object_type":'
        || to_json(object_type)::text || ',"seq":' || seq::text || ',"site":' || coalesce(to_json(site)::text, 'null')
        || '}', 'UTF8')""",
}
_PARAM = {"sqlite": "?", "postgresql": "%s"}
_FULL = {"sqlite": "seq, at, actor, action, object_type, object_id, site, details, prev_hash, hash",
         "postgresql": """seq, to_char(at, 'YYYY-MM-DD"T"HH24:MI:SS.US'), actor, action, object_type, object_id,
                          site, details::text, prev_hash, hash"""}

# (seq, at text, actor, action, object_type, object_id, site, details text, prev_hash, hash): one event as stored
ChainRow = tuple


class ChainReader:
    """Plain-SQL reads of the events table on one DB-API connection (the session's, or a worker's own)."""

    def __init__(self, connection, dialect: str, batch: int = 20000):
        if dialect not in _MATERIAL:
            raise NotImplementedError(f"audit verification supports SQLite and PostgreSQL, not {dialect}")
        self.connection, self.dialect, self.batch = connection, dialect, batch
        self._p = _PARAM[dialect]

    @classmethod
    def of(cls, session: Session, batch: int = 20000) -> "ChainReader":
        connection = session.connection()
        return cls(connection.connection.dbapi_connection, connection.dialect.name, batch)

    def _query(self, sql: str, params: tuple):
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            cursor.close()

    def material(self, after: int, upto: int | None = None) -> Iterator[list[tuple]]:
        """(seq, what is hashed (bytes) or None, prev_hash, hash) for after < seq <= upto, in seq order, in batches,
        streamed (a server-side cursor on PostgreSQL)."""
        bound = "" if upto is None else f" AND seq <= {self._p}"
        params = (after,) if upto is None else (after, upto)
        if self.dialect == "postgresql":
            cursor = self.connection.cursor(name=f"audit_chain_{os.getpid()}_{id(self)}", binary=True)
            cursor.itersize = self.batch
        else:
            cursor = self.connection.cursor()
        try:
            cursor.execute(f"SELECT seq, {_MATERIAL[self.dialect]}, prev_hash, hash FROM events "
                           f"WHERE seq > {self._p}{bound} ORDER BY seq", params)
            while rows := cursor.fetchmany(self.batch):
                yield rows
        finally:
            cursor.close()

    def rows(self, first: int, last: int) -> dict[int, ChainRow]:
        """Events first <= seq <= last with their stored values, for the careful check."""
        return {r[0]: r for r in self._query(f"SELECT {_FULL[self.dialect]} FROM events "
                                             f"WHERE seq >= {self._p} AND seq <= {self._p}", (first, last))}

    def seq_by_hash(self, digest: str) -> int | None:
        # Only on the failure path: a full scan is fine there.
        found = self._query(f"SELECT seq FROM events WHERE hash = {self._p}", (digest,))
        return found[0][0] if found else None

    def last_seq(self) -> int:
        return self._query("SELECT max(seq) FROM events", ())[0][0] or 0

    def recorded_head(self) -> tuple[int, str] | None:
        found = self._query("SELECT seq, hash FROM chain_head WHERE id = 1", ())
        return (found[0][0], found[0][1]) if found else None

    def first_after(self, seq: int) -> int | None:
        found = self._query(f"SELECT min(seq) FROM events WHERE seq > {self._p}", (seq,))
        return found[0][0]


def chain_material(session: Session, after: int = 0, batch: int = 20000) -> Iterator[list[tuple]]:
    return ChainReader.of(session, batch).material(after)


def stored_row(session: Session, seq: int) -> ChainRow | None:
    return ChainReader.of(session).rows(seq, seq).get(seq)


def row_matches(row: ChainRow) -> bool:
    """Does the row's content, parsed strictly (any storage formatting), give its stored hash over its
    stored prev_hash?"""
    seq, at, actor, action, object_type, object_id, site, details, prev, stored = row
    try:
        at_text = (at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(at)).isoformat(
            timespec="microseconds")
        parsed = json.loads(details) if isinstance(details, (str, bytes)) else details
        body = canonical_text(seq, at_text, actor, action, object_type, object_id, site, details_json(parsed))
    except (TypeError, ValueError):
        return False  # a value no event can hold (NULL where text belongs, broken JSON, not a time): altered
    return chain_hash(prev, body) == stored


# --- anchors -----------------------------------------------------------------------------------------------

_INLINE_ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


@dataclass(frozen=True)
class Anchor:
    """A chain head recorded outside the database: `seq` must still exist and still have `hash`."""
    seq: int
    hash: str
    source: str                       # the file (or 'SEQ:HASH' typed from a stamped digest), for messages
    at: str | None = None             # when the head event happened (local time with offset)
    anchored_at: str | None = None
    count: int | None = None

    def describe(self) -> str:
        made = f", made {self.anchored_at}" if self.anchored_at else ""
        return f"anchor {self.source} (seq {self.seq}{made})"


def read_anchor(spec: str) -> Anchor:
    """An anchor file written by `audit anchor`, or 'SEQ:HASH' as printed on the daily digest."""
    inline = _INLINE_ANCHOR.match(spec.strip().lower())
    if inline and not Path(spec).exists():
        return Anchor(int(inline.group(1)), inline.group(2), source=f"{inline.group(1)}:{inline.group(2)[:12]}…")
    path = Path(spec)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"anchor {spec}: no such file (give a file written by `mynumber audit anchor`, "
                         "or SEQ:HASH from a digest)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"anchor {spec}: not an anchor file ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != ANCHOR_FORMAT:
        raise InputError(f"anchor {spec}: not an anchor file (format must be {ANCHOR_FORMAT!r})")
    seq, digest = data.get("seq"), str(data.get("hash", ""))
    if not isinstance(seq, int) or seq < 0 or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise InputError(f"anchor {spec}: seq must be a whole number and hash 64 hex digits")
    return Anchor(seq, digest, source=str(path), at=data.get("at"), anchored_at=data.get("anchored_at"),
                  count=data.get("count"))


def write_anchor(path: Path, head: "Head", *, anchored_at: str, by: str) -> dict:
    data = {"format": ANCHOR_FORMAT, "seq": head.seq, "hash": head.hash, "at": head.at_local, "count": head.count,
            "anchored_at": anchored_at, "anchored_by": by}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return data


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    at: dt.datetime | None             # naive UTC, as stored
    count: int

    @property
    def at_local(self) -> str | None:
        if self.at is None:
            return None
        return self.at.replace(tzinfo=dt.timezone.utc).astimezone().isoformat(timespec="microseconds")


def head(session: Session) -> Head:
    """The newest event as the events table has it (not the chain-head row, which verify compares)."""
    row = session.execute(select(Event.seq, Event.hash, Event.at).order_by(Event.seq.desc()).limit(1)).first()
    count = session.execute(select(func.count()).select_from(Event)).scalar_one()
    if row is None:
        return Head(0, GENESIS, None, 0)
    return Head(row.seq, row.hash, row.at, count)


# --- verification ------------------------------------------------------------------------------------------

@dataclass
class VerifyResult:
    ok: bool
    events: int
    head_seq: int
    head_hash: str
    problem: str | None = None
    first_bad_seq: int | None = None
    anchors_checked: list[str] = field(default_factory=list)


def _diagnose(reader: ChainReader, row: ChainRow, prev: str) -> tuple[int, str]:
    """Which seq is first to blame, and why, for `row`: the first event that does not continue the chain."""
    seq, prev_stored = row[0], row[8]
    content_ok = row_matches(row)
    if prev_stored == prev:
        return seq, (f"event seq {seq} was altered: its content ({row[3]} on {row[4]} {row[5]}) no longer matches "
                     "its hash")
    earlier = reader.seq_by_hash(prev_stored)
    if earlier is not None and earlier < seq - 1:
        moved = "" if content_ok else f" (and seq {seq} itself was renumbered or edited)"
        return earlier + 1, (f"event seq {seq} links back to seq {earlier}, not to seq {seq - 1}: event(s) seq "
                             f"{earlier + 1}..{seq - 1} were inserted after the fact{moved}")
    if content_ok and earlier is None:
        return seq - 1, (f"event seq {seq} does not link to event seq {seq - 1}: seq {seq - 1} was replaced or "
                         "altered and its hash recomputed")
    return seq, (f"event seq {seq} was altered or moved: its content no longer matches its hash and it does not "
                 f"link to event seq {seq - 1} (events edited, swapped or renumbered)")


@dataclass
class _Span:
    """What one pass over a seq range found. `first_prev` is the prev_hash the range starts from (checked
    against the previous range when ranges are verified in parallel)."""
    first_seq: int | None = None
    first_prev: str | None = None
    last_seq: int = 0
    last_hash: str = GENESIS
    count: int = 0
    problem: tuple[int, str] | None = None        # (first bad seq, what is wrong)
    anchors_checked: list[str] = field(default_factory=list)


def _walk(reader: ChainReader, after: int, upto: int | None, prev: str | None,
          anchors: dict[int, list[Anchor]]) -> _Span:
    """Check events after < seq <= upto. `prev` is the hash the first one must link to (None: not known here;
    recorded in first_prev for the caller). Stops at the first problem, in seq order."""
    span, expected, sha256 = _Span(last_seq=after, last_hash=prev or GENESIS), after + 1, hashlib.sha256
    for batch in reader.material(after, upto):
        misses: list[tuple[int, str]] = []       # rows the fast check did not pass, with the hash they follow
        hard: tuple[int, str] | None = None
        for seq, material, prev_stored, stored in batch:
            if seq != expected:
                gap = f"seq {expected}" if seq == expected + 1 else f"seq {expected}..{seq - 1}"
                hard = (expected, f"event {gap} is missing: seq {seq} follows seq {expected - 1} "
                                  "(events deleted or renumbered)")
                break
            if prev is None:
                span.first_seq, span.first_prev = seq, prev_stored
            elif prev_stored != prev:
                row = reader.rows(seq, seq)[seq]
                hard = _diagnose(reader, row, prev)
                break
            elif span.first_seq is None:
                span.first_seq, span.first_prev = seq, prev_stored
            if material is None or sha256(material).hexdigest() != stored:
                misses.append((seq, prev_stored))
            for anchor in anchors.get(seq, ()):
                if anchor.hash != stored:
                    hard = hard or (seq, f"event seq {seq} has hash {stored[:16]}… but {anchor.describe()} recorded "
                                         f"{anchor.hash[:16]}…: the chain was rewritten at or before seq {seq}")
                else:
                    span.anchors_checked.append(anchor.describe())
            if hard:
                break
            prev, expected = stored, expected + 1
            span.last_seq, span.last_hash, span.count = seq, stored, span.count + 1
        if misses:
            rows = reader.rows(misses[0][0], misses[-1][0])
            for seq, linked_to in misses:
                if not row_matches(rows[seq]):
                    span.problem = _diagnose(reader, rows[seq], linked_to)
                    return span
        if hard:
            span.problem = hard
            return span
    return span


def _parallel_walk(reader: ChainReader, engine_connect, last: int, workers: int,
                   anchors: dict[int, list[Anchor]]) -> _Span | None:
    """Check 1..last in `workers` ranges at once, each on its own connection (the database builds and sends the
    hashed text: that is most of the work, and it runs in parallel). Returns the combined span, or None when
    anything was wrong: the caller then walks the chain in order to name the first bad event exactly."""
    from concurrent.futures import ThreadPoolExecutor
    bounds = [round(last * i / workers) for i in range(workers + 1)]

    def one(i: int) -> _Span:
        connection = engine_connect()
        try:
            part = ChainReader(connection, reader.dialect, reader.batch)
            return _walk(part, bounds[i], bounds[i + 1], GENESIS if i == 0 else None, anchors)
        finally:
            connection.rollback()
            connection.close()

    with ThreadPoolExecutor(workers) as pool:
        spans = list(pool.map(one, range(workers)))
    total = _Span(last_seq=0, last_hash=GENESIS)
    for span in spans:
        expected_first = total.last_seq + 1
        if span.problem or span.count == 0 or span.first_seq != expected_first or span.first_prev != total.last_hash:
            return None
        total.last_seq, total.last_hash = span.last_seq, span.last_hash
        total.count += span.count
        total.anchors_checked += span.anchors_checked
    return total


PARALLEL_FROM = 100_000        # events; below this one pass is quicker than starting workers


def verify(session: Session, *, batch: int = 20000, anchors: Sequence[Anchor] = (),
           workers: int | None = None) -> VerifyResult:
    """Walk the whole chain (in parallel ranges when it is long). The result names the first bad event."""
    by_seq: dict[int, list[Anchor]] = {}
    for anchor in anchors:
        by_seq.setdefault(anchor.seq, []).append(anchor)
    reader = ChainReader.of(session, batch)
    span = None
    last = reader.last_seq()
    if workers is None:
        # PostgreSQL: the server builds the hashed text, one backend per range, so more ranges than cores still
        # help while this process hashes; SQLite: the work is in this process, one range per core.
        workers = 4 if reader.dialect == "postgresql" else max(2, os.cpu_count() or 1)
    if workers > 1 and last >= PARALLEL_FROM:
        engine = session.get_bind()
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        span = _parallel_walk(reader, lambda: engine.dialect.connect(*cargs, **cparams), last, workers, by_seq)
    if span is None:
        span = _walk(reader, 0, None, GENESIS, by_seq)

    def fail(bad: int, problem: str) -> VerifyResult:
        return VerifyResult(False, span.count, span.last_seq, span.last_hash, problem, bad, span.anchors_checked)

    while span.problem is None:
        # Events committed while we read (a writer went on): check them too before judging the end.
        more = _walk(reader, span.last_seq, None, span.last_hash, by_seq)
        span.problem = more.problem
        if more.count:
            span.last_seq, span.last_hash = more.last_seq, more.last_hash
            span.count += more.count
            span.anchors_checked += more.anchors_checked
        recorded = reader.recorded_head()
        if more.problem or more.count == 0 and (recorded is None or recorded[0] <= span.last_seq
                                                or reader.first_after(span.last_seq) is None):
            break
    if span.problem:
        return fail(*span.problem)
    last = span.last_seq
    beyond = sorted(seq for seq in by_seq if seq > last)
    if beyond:
        anchor = by_seq[beyond[0]][0]
        return fail(last + 1, f"the chain ends at seq {last} but {anchor.describe()} recorded head seq "
                              f"{anchor.seq}: events seq {last + 1}..{anchor.seq} were removed from the end")
    if recorded is not None and recorded[0] > last:
        return fail(last + 1, f"the chain ends at seq {last} but the recorded chain head is seq {recorded[0]}: "
                              f"events seq {last + 1}..{recorded[0]} were removed from the end")
    if recorded is not None and recorded[0] < last:
        return fail(recorded[0] + 1, f"events seq {recorded[0] + 1}..{last} follow the recorded chain head seq "
                                     f"{recorded[0]}: they were added outside the program")
    if recorded is not None and recorded[1] != span.last_hash:
        return fail(last, f"the recorded chain head hash differs from event seq {last}'s hash: seq {last} was "
                          "replaced")
    return VerifyResult(True, span.count, last, span.last_hash, anchors_checked=span.anchors_checked)
