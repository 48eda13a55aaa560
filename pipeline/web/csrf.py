"""CSRF protection: one random token per session, sent back with every POST (form field or header) and
compared in constant time. SameSite=Strict cookies already keep other sites' requests cookie-less; the token
also covers a same-site page that is not ours (another application on the same host)."""
from __future__ import annotations

import hmac
import secrets

from flask import request, session

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


def token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def renew() -> str:
    session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def valid() -> bool:
    expected = session.get("csrf")
    given = request.headers.get(HEADER) or request.form.get(FIELD)
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
