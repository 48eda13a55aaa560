"""Audit console (auditor, manager): history of a kit, person or document; the event log by time, actor and
action; the hash chain's verification; CSV export; documents due for disposal and destruction certificates.

Searches are POSTed, not put in the URL: what someone types (perhaps a number, by mistake) must not end up in
browser history or server logs. Input that looks like a number is refused and not shown back.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, abort, g, redirect, render_template, request, send_file, url_for
from sqlalchemy import func, select

from .. import db
from ..commands.listing import parse_local
from ..errors import MyNumberError, NotFound, UsageError
from ..track import audit, disposal, queries
from ..track.models import DisposalBatch, Document, Event, Kit, Person, StorageLocation
from .access import requires, station
from .text import looks_like_number

bp = Blueprint("audit", __name__, url_prefix="/audit")
SHOWN = 500                 # events shown on a page; the CSV has them all
RECENT = 50                 # events shown when the console opens
CSV_CHUNK = 5000
EVENT_COLUMNS = ("seq", "time", "actor", "action", "object", "site", "details")


@dataclass
class LogFilter:
    start: dt.datetime | None = None      # naive UTC, inclusive
    end: dt.datetime | None = None        # naive UTC, exclusive
    actor: str = ""
    action: str = ""
    start_text: str = ""                  # as the form shows them again (datetime-local)
    end_text: str = ""

    @property
    def any(self) -> bool:
        return bool(self.start or self.end or self.actor or self.action)


def _time_field(name: str) -> tuple[dt.datetime | None, str]:
    text = request.form.get(name, "").strip()
    if not text:
        return None, ""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError("日時の形式が正しくありません（YYYY-MM-DD HH:MM）") from None
    return parse_local(value.isoformat()), value.strftime("%Y-%m-%dT%H:%M")


def _log_filter() -> tuple[LogFilter, list[str]]:
    try:
        start, start_text = _time_field("from")
        end, end_text = _time_field("to")
    except UsageError as exc:
        return LogFilter(), [exc.message]
    if end is not None:
        end += dt.timedelta(minutes=1)          # "to 14:30" includes 14:30
    problems = []
    typed = {"操作者": request.form.get("actor", "").strip(), "操作": request.form.get("action", "").strip()}
    for label, value in typed.items():
        if looks_like_number(value):
            problems.append(f"{label}欄の入力は番号のように見えるため、検索に使わず表示もしません。")
            typed[label] = ""
    if start and end and end <= start:
        problems.append("「まで」は「から」より後の日時にしてください。")
    return LogFilter(start, end, typed["操作者"], typed["操作"], start_text, end_text), problems


_COLUMNS = (Event.seq, Event.at, Event.actor, Event.action, Event.object_type, Event.object_id, Event.site,
            Event.details)


def _query(flt: LogFilter):
    """Events matching the filter, in chain order (the same conditions as `mynumber audit log`)."""
    query = select(*_COLUMNS)
    if flt.start is not None:
        query = query.where(Event.at >= flt.start)
    if flt.end is not None:
        query = query.where(Event.at < flt.end)
    if flt.actor:
        query = query.where(Event.actor == flt.actor)
    if flt.action:
        query = query.where(queries.action_condition([flt.action]))
    return query.order_by(Event.seq)


def _rows(result) -> list[queries.EventRow]:
    return [queries.EventRow(*row[:7], row[7] or {}) for row in result]


def _run_verify() -> dict:
    st = station()
    started = time.perf_counter()
    with db.session_scope(st.settings.db_url) as s:
        result = audit.verify(s)
    st.last_verify = {"ok": result.ok, "events": result.events, "head_seq": result.head_seq,
                      "head_hash": result.head_hash, "problem": result.problem, "first_bad_seq": result.first_bad_seq,
                      "at": dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                      "seconds": round(time.perf_counter() - started, 2), "by": g.user}
    return st.last_verify


def _console(*, history=None, subject=None, events=None, flt: LogFilter | None = None, problems=(),
             truncated=False, key="", kind="", recent=False):
    verification = station().last_verify or _run_verify()
    return render_template("audit.html", verification=verification, history=history, subject=subject,
                           events=events, flt=flt or LogFilter(), problems=list(problems), truncated=truncated,
                           key=key, kind=kind, kinds=queries.KINDS, shown=SHOWN, recent=recent)


@bp.get("")
@requires("web.audit")
def console():
    """The console opens on the newest events, in chain order."""
    with db.session_scope(station().settings.db_url) as s:
        head = s.execute(select(func.max(Event.seq))).scalar() or 0
        events = _rows(s.execute(select(*_COLUMNS).where(Event.seq > head - RECENT).order_by(Event.seq)))
    return _console(events=events, recent=True)


@bp.post("/verify")
@requires("web.audit")
def verify():
    _run_verify()
    return redirect(url_for(".console"), 303)


@bp.post("/history")
@requires("web.audit")
def history():
    key = request.form.get("key", "").strip()
    kind = request.form.get("kind", "") or None
    if kind not in (None, *queries.KINDS):
        kind = None
    if not key:
        return _console(problems=["キット番号（K…）、社員・支払先の ID、または書類番号（D…）を入力してください。"])
    if looks_like_number(key):
        return _console(problems=["入力が個人番号のように見えます。個人番号では検索できません"
                                  "（キット番号、社員 ID、書類番号で検索してください）。"])
    try:
        with db.session_scope(station().settings.db_url) as s:
            subject, rows = queries.history(s, key, kind)
    except MyNumberError as exc:
        return _console(problems=[exc.message], key=key, kind=kind or "")
    return _console(history=rows, subject=subject, key=key, kind=kind or "")


@bp.post("/log")
@requires("web.audit")
def event_log():
    flt, problems = _log_filter()
    if problems:
        return _console(flt=flt, problems=problems, events=[])
    with db.session_scope(station().settings.db_url) as s:
        rows = _rows(s.execute(_query(flt).limit(SHOWN + 1)))
    return _console(events=rows[:SHOWN], flt=flt, truncated=len(rows) > SHOWN)


def _csv_line(row: queries.EventRow) -> list:
    local = row.at.replace(tzinfo=dt.timezone.utc).astimezone().isoformat(timespec="microseconds")
    details = json.dumps(row.details, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return [row.seq, local, row.actor, row.action, row.object, row.site or "", details]


@bp.post("/log.csv")
@requires("web.audit")
def event_log_csv():
    flt, problems = _log_filter()
    if problems:
        return _console(flt=flt, problems=problems, events=[])
    db_url = station().settings.db_url

    def lines():
        # A BOM so that the spreadsheet programs of Japanese offices read the file as UTF-8.
        yield "\ufeff" + ",".join(EVENT_COLUMNS) + "\r\n"
        after = 0
        while True:
            # One short transaction per chunk: a long download must not hold the database (SQLite's write
            # lock) while scanners and handlers work.
            with db.session_scope(db_url) as s:
                rows = _rows(s.execute(_query(flt).where(Event.seq > after).limit(CSV_CHUNK)))
            if not rows:
                return
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\r\n").writerows(_csv_line(r) for r in rows)
            yield buffer.getvalue()
            after = rows[-1].seq

    name = f"audit-log-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}.csv"
    return Response(lines(), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.get("/disposal")
@requires("web.audit")
def disposal_page():
    before_text = request.args.get("before", "")
    try:
        before = dt.date.fromisoformat(before_text) if before_text else dt.date.today()
    except ValueError:
        before = dt.date.today()
    with db.session_scope(station().settings.db_url) as s:
        selection = disposal.select_due(s, before)
        due = [_due_row(s, d) for d in selection.documents]
        batches = s.execute(select(DisposalBatch).order_by(DisposalBatch.executed_at.desc())).scalars().all()
        counts = dict(s.execute(select(Document.disposal_batch_id, func.count()).where(
            Document.disposal_batch_id.is_not(None)).group_by(Document.disposal_batch_id)).all())
    return render_template("disposal.html", before=before, due=due, batches=batches, counts=counts)


def _due_row(session, document: Document) -> dict:
    kit = session.get(Kit, document.kit_id)
    location = session.get(StorageLocation, document.location_id) if document.location_id else None
    return {"document": document.code, "kit": kit.code, "person_id": session.get(Person, kit.person_id).person_id,
            "type": document.document, "page": document.doc_page, "state": document.state,
            "location": location.code if location else None, "due_on": document.disposal_due_on,
            "rule": document.retention_rule}


@bp.get("/disposal/<code>/certificate")
@requires("web.audit")
def certificate(code: str):
    settings = station().settings
    with db.session_scope(settings.db_url) as s:
        batch = s.execute(select(DisposalBatch).where(DisposalBatch.code == code)).scalar_one_or_none()
        if batch is None:
            abort(404)
        path = Path(batch.certificate_file) if batch.certificate_file else None
        if path is None or not path.is_file():
            raise NotFound(f"the destruction certificate of batch {batch.code} is not on file; print it again "
                           f"with `mynumber disposal certificate {batch.code} --out FILE.pdf`")
        audit.append(s, actor=g.user, action="disposal.certificate_downloaded", object_type="disposal_batch",
                     object_id=batch.code, details={"file": path.name})
        data = path.read_bytes()
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=f"{batch.code}-certificate.pdf")
