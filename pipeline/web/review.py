"""Review station: the next field crop the reader was unsure of, keyed by two handlers (double entry).

Keyboard only: the entry box has the focus, Enter sends, the next item loads (Esc skips it). The crop comes
from its own endpoint, decrypted in memory and sent with no-store; the page never shows the scanned page. A
typed number lives only in the POST body: it is validated and hashed (pipeline/track/review.py), never
echoed, logged or put in a URL.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import func, select

from .. import db
from ..errors import NotFound, StateError
from ..track import review
from ..track.models import ReviewEntry, ReviewItem
from ..track.sealed import Sealer
from .access import requires, station
from .text import field_name, refused_entry, review_reason

bp = Blueprint("review", __name__, url_prefix="/review")


def _skipped() -> set[int]:
    return set(session.get("review_skipped", []))


@bp.get("")
@requires("web.review")
def station_page():
    st = station()
    with db.session_scope(st.settings.db_url) as s:
        item = review.next_for(s, g.user, allow_same_operator=st.allow_same_operator, skip=_skipped())
        open_items = s.execute(select(func.count()).select_from(ReviewItem)
                               .where(ReviewItem.state == "open")).scalar_one()
    shown = None
    if item is not None:
        shown = {"id": item.id, "kit": item.kit, "field": field_name(item.field), "reason": review_reason(item.reason),
                 "entries": item.entries, "operators": item.operators}
    return render_template("review.html", item=shown, open_items=open_items, skipped=len(_skipped()))


@bp.get("/items/<int:item_id>/crop")
@requires("web.review")
def crop(item_id: int):
    st = station()
    with db.session_scope(st.settings.db_url) as s:
        item = s.get(ReviewItem, item_id)
        if item is None or item.state != "open":
            abort(404)
        keyed = s.execute(select(ReviewEntry.id).where(ReviewEntry.review_item_id == item_id,
                                                       ReviewEntry.operator == g.user)).first()
        if keyed is not None and not st.allow_same_operator:
            abort(404)   # a second look after keying is not needed; the other operator keys from their own view
        png = review.crop_of(s, Sealer(st.settings), item_id, operator=g.user)
    response = Response(png, mimetype="image/png")
    response.headers["Cache-Control"] = "no-store, private, max-age=0"
    response.headers["Content-Disposition"] = "inline"
    return response


@bp.post("/items/<int:item_id>")
@requires("web.review")
def enter(item_id: int):
    st = station()
    if request.form.get("action") == "skip":
        session["review_skipped"] = sorted(_skipped() | {item_id})
        flash("この項目をスキップしました。", "info")
        return redirect(url_for(".station_page"), 303)
    typed = request.form.get("number", "")
    try:
        with db.session_scope(st.settings.db_url) as s:
            result = review.submit(s, Sealer(st.settings), item_id, typed, operator=g.user,
                                   allow_same_operator=st.allow_same_operator)
    except (StateError, NotFound) as exc:
        flash(f"登録できませんでした: {exc.message}", "error")
        return redirect(url_for(".station_page"), 303)
    if result.outcome == "refused":
        flash(refused_entry(typed), "error")
    else:
        flash({"settled": "確定しました: 2人の入力が一致し、番号を登録しました。",
               "waiting": "1人目の入力を登録しました。別の担当者がもう一度入力すると確定します。",
               "disagreement": "入力が前の入力と一致しません。3人目の担当者が入力します。"}[result.outcome],
              "ok" if result.outcome == "settled" else "info")
    del typed
    return redirect(url_for(".station_page"), 303)


@bp.post("/skipped/reset")
@requires("web.review")
def reset_skipped():
    session.pop("review_skipped", None)
    return redirect(url_for(".station_page"), 303)
