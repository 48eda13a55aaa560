"""The Flask application: sessions, the guard, security headers, error pages and the stations' blueprints."""
from __future__ import annotations

import json
import logging
import tempfile
import traceback
from pathlib import Path

from flask import Flask, Request, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from .. import config
from ..errors import MyNumberError, NotFound, PermissionDenied, StateError, UsageError
from . import csrf, text
from .access import Station, may, station
from .auth import STATIONS, guard, wants_json
from .sessions import MemorySessions

log = logging.getLogger(__name__)

CSP = ("default-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
NAV = (("auth.home", "web.home", "ホーム"),) + tuple((e, p, t) for e, p, t, _ in STATIONS)


def upload_root(settings: config.Settings) -> Path:
    """Where uploaded scans wait for the intake: inside the data home (0700), never in /tmp."""
    return settings.home / "web-uploads"


def _request_class(spool: Path) -> type[Request]:
    class StationRequest(Request):
        def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
            # Werkzeug spools uploads to an anonymous file in /tmp; a scan may show a number, so it is spooled
            # in the data home's private folder instead (still anonymous: gone when the request ends).
            return tempfile.SpooledTemporaryFile(max_size=1024 * 1024, mode="w+b", dir=spool)
    return StationRequest


def create_app(settings: config.Settings, *, secure_cookies: bool | None = None) -> Flask:
    web = settings.section("web")
    secure = bool(web.get("secure_cookies", True)) if secure_cookies is None else secure_cookies
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=int(web.get("max_upload_mb", 200)) * 1024 * 1024,
                      MAX_FORM_MEMORY_SIZE=1024 * 1024)
    app.json.ensure_ascii = False
    idle = float(web.get("session_idle_minutes", 30)) * 60
    app.session_interface = MemorySessions(secure=secure, idle_seconds=idle,
                                           absolute_seconds=float(web.get("session_max_hours", 12)) * 3600)
    root = upload_root(settings)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)
    (root / "spool").mkdir(mode=0o700, exist_ok=True)
    app.request_class = _request_class(root / "spool")

    from .jobs import UploadRunner
    app.extensions["mynumber"] = Station(settings, secure, uploads=UploadRunner(settings, root))

    from . import audit_console, auth, dashboard, review, upload
    for module in (auth, review, dashboard, upload, audit_console):
        app.register_blueprint(module.bp)
    app.before_request(guard)
    app.after_request(_headers)
    _errors(app)
    _templates(app)
    unguarded = [e for e, view in app.view_functions.items()
                 if e not in auth.PUBLIC and not getattr(view, "permission", None)]
    if unguarded:
        raise RuntimeError(f"views without a permission: {', '.join(sorted(unguarded))}")
    return app


def _headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.endpoint != "static":
        # Nothing a user was shown is kept by the browser: not the pages, not the review crop.
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    if station().secure_cookies:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


_STATUS = ((NotFound, 404), (PermissionDenied, 403), (StateError, 409), (UsageError, 400))


def _errors(app: Flask) -> None:
    def page(status: int, title: str, message: str, detail: str | None = None):
        if wants_json():
            return jsonify({"error": message, "detail": detail}), status
        return render_template("error.html", title=title, message=message, detail=detail), status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # The path is not repeated: a mistyped URL could hold anything.
        titles = {404: "ページが見つかりません", 405: "この操作はできません", 413: "ファイルが大きすぎます"}
        messages = {404: "指定されたページはありません。", 405: "このページはその方法では開けません。",
                    413: f"アップロードは合計 {app.config['MAX_CONTENT_LENGTH'] // (1024 * 1024)} MB までです。"}
        return page(exc.code or 500, titles.get(exc.code, "エラー"), messages.get(exc.code, exc.name))

    @app.errorhandler(MyNumberError)
    def product_error(exc: MyNumberError):
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)
        return page(status, "処理できません", "この操作は受け付けられませんでした。", exc.message)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        # Where it failed, not the exception's text: a library's message may quote the values it was given.
        log.error("internal error in %s: %s\n%s", request.endpoint, type(exc).__name__,
                  "".join(traceback.format_tb(exc.__traceback__)))
        return page(500, "内部エラー", "処理中にエラーが起きました。管理者に連絡してください。")


def _templates(app: Flask) -> None:
    app.jinja_env.filters.update(
        breakup=text.breakup, local_time=text.local_time, kit_state=lambda s: text.KIT_STATES.get(s, s),
        document_state=lambda s: text.DOCUMENT_STATES.get(s, s), document=lambda d: text.DOCUMENTS.get(d, d),
        field_name=text.field_name, field_state=lambda s: text.FIELD_STATES.get(s, s),
        missing_item=text.missing_item, method=lambda m: text.METHODS.get(m, m),
        transfer_state=lambda s: text.TRANSFER_STATES.get(s, s), kind=lambda k: text.KINDS.get(k, k),
        full_hash=text.full_hash, carrier=lambda c: text.CARRIERS.get(c, c),
        compact=lambda details: json.dumps(details, ensure_ascii=False, sort_keys=True, separators=(", ", ": ")))

    @app.context_processor
    def common() -> dict:
        user = getattr(g, "user", None)
        nav = [(e, t) for e, p, t in NAV if user and may(p)]
        return {"csrf_token": csrf.token, "user": user, "nav": nav, "company": station().settings.company.name}
