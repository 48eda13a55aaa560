"""Login, logout, the start page, and the guard every request passes: CSRF on POST, a logged-in user, and the
page's permission checked with the CLI's rule (a refusal is logged, as on the command line)."""
from __future__ import annotations

from flask import (Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, session,
                   url_for)

from .. import db
from ..errors import PermissionDenied
from ..track import users
from ..track.roles import roles_of
from . import csrf
from .access import may, requires, station
from .credentials import ANONYMOUS, LOCK_AFTER, check_login
from .text import local_time, looks_like_number

bp = Blueprint("auth", __name__)
PUBLIC = frozenset({"auth.login", "static"})

# The start page's tiles: (endpoint, permission, title, what it is for)
STATIONS = (
    ("review.station_page", "web.review", "目視確認（ダブル入力）", "読み取りに自信のない番号欄を2人で入力して確定します"),
    ("dashboard.overview", "web.dashboard", "キット状況", "拠点ごとの発送・返送・不備・督促・移送の状況"),
    ("upload.form", "web.upload", "スキャン取込", "スキャンしたファイルをアップロードして取り込みます"),
    ("audit.console", "web.audit", "監査コンソール", "履歴の検索、イベントログ、改ざん検証、CSV、廃棄"),
)


def wants_json() -> bool:
    return request.path.endswith(".json") or request.headers.get("Accept", "").startswith("application/json")


def refuse(actor: str, what: str, reason: str, *, message: str):
    """Log the refusal (in its own transaction: it must stay recorded) and answer 403."""
    with db.session_scope(station().settings.db_url) as s:
        users.log_refusal(s, actor, what, reason)
    if wants_json():
        return jsonify({"error": message}), 403
    return render_template("error.html", title="アクセスできません", message=message, detail=reason), 403


def guard():
    endpoint = request.endpoint
    if endpoint is None:
        return None                      # no such page: the 404 handler answers
    name = session.get("user")
    if request.method == "POST" and not csrf.valid():
        return refuse(name or ANONYMOUS, f"web.{endpoint}", "POST without a valid CSRF token",
                      message="フォームの確認用トークンがないか正しくないため、送信を受け付けませんでした。"
                              "ページを開き直してからもう一度送信してください。")
    if endpoint in PUBLIC:
        return None
    if not name:
        if wants_json():
            return jsonify({"error": "ログインしてください"}), 401
        return redirect(url_for("auth.login"))
    permission = current_app.view_functions[endpoint].permission
    g.user = name
    st = station()
    try:
        with db.session_scope(st.settings.db_url) as s:
            user = users.authorise(s, name, permission, training_months=st.training_months)
            g.roles = roles_of(user.role)
    except PermissionDenied as refusal:
        with db.session_scope(st.settings.db_url) as s:
            known = users.get(s, name)
            g.roles = roles_of(known.role) if known is not None and known.active else set()
        return refuse(name, permission, refusal.message, message="このページを開く権限がありません。")
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return render_template("login.html", name="")
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    result = check_login(station().settings.db_url, name, password)
    del password
    if result.ok:
        session.restart()                # a new session id after login
        session["user"] = result.user
        csrf.renew()
        return redirect(url_for("auth.home"), 303)
    if result.problem == "locked":
        message = (f"パスワードを{LOCK_AFTER}回続けて間違えたため、{local_time(result.locked_until, seconds=False)} "
                   "までログインできません。管理者はパスワードを再設定してロックを解除できます。")
    elif result.problem == "inactive":
        message = "このユーザーは無効にされています。管理者に連絡してください。"
    else:
        message = "ユーザー名またはパスワードが違います。"
    shown = "" if looks_like_number(name) else name
    return render_template("login.html", name=shown, error=message), 401


@bp.post("/logout")
@requires("web.home")
def logout():
    from ..track import audit
    with db.session_scope(station().settings.db_url) as s:
        audit.append(s, actor=g.user, action="user.logout", object_type="user", object_id=g.user, details={})
    session.restart()
    flash("ログアウトしました。", "info")
    return redirect(url_for("auth.login"), 303)


@bp.get("/")
@requires("web.home")
def home():
    tiles = [t for t in STATIONS if may(t[1])]
    return render_template("home.html", tiles=tiles)
