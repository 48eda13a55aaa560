"""Server-side sessions: the cookie holds only a random id; what the session knows stays in this process.

Logging out (or an administrator restarting the station) ends a session for good, which a signed cookie
could not. The cookie is HTTP-only, SameSite=Strict and, unless configured off for plain http on this
machine, Secure with the `__Host-` prefix (no Domain, Path=/). Idle and absolute time-outs end forgotten
sessions; the store is bounded so anonymous visitors (the login page needs a CSRF token) cannot fill memory.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict


class StationSession(CallbackDict, SessionMixin):
    def __init__(self, initial: dict | None = None, sid: str | None = None):
        def touched(self) -> None:
            self.modified = True
        super().__init__(initial or {}, touched)
        self.sid = sid
        self.modified = False
        self.renew = False       # set at login: a new id, so an id planted before login is worthless

    def restart(self) -> None:
        self.clear()
        self.renew = True


@dataclass
class _Entry:
    data: dict
    created: float
    seen: float = field(default=0.0)


class MemorySessions(SessionInterface):
    def __init__(self, *, secure: bool, idle_seconds: float, absolute_seconds: float, limit: int = 10000):
        self.secure = secure
        self.cookie = "__Host-mynumber" if secure else "mynumber_session"
        self.idle, self.absolute, self.limit = idle_seconds, absolute_seconds, limit
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _alive(self, entry: _Entry, now: float) -> bool:
        return now - entry.seen < self.idle and now - entry.created < self.absolute

    def open_session(self, app, request) -> StationSession:
        sid = request.cookies.get(self.cookie)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(sid) if sid else None
            if entry is not None and not self._alive(entry, now):
                del self._entries[sid]
                entry = None
            if entry is None:
                return StationSession()
            entry.seen = now
            return StationSession(dict(entry.data), sid)

    def save_session(self, app, session: StationSession, response) -> None:
        session.accessed = True
        response.vary.add("Cookie")
        with self._lock:
            if session.sid and (session.renew or not session):
                self._entries.pop(session.sid, None)
            if not session:
                if session.sid or session.renew:
                    response.delete_cookie(self.cookie, path="/", secure=self.secure, httponly=True,
                                           samesite="Strict")
                return
            now = time.monotonic()
            if session.sid is None or session.renew:
                self._prune(now)
                session.sid = secrets.token_urlsafe(32)
                self._entries[session.sid] = _Entry(dict(session), now, now)
            else:
                entry = self._entries.get(session.sid)
                if entry is None:                 # ended meanwhile (logout in another tab): stay ended
                    return
                entry.data, entry.seen = dict(session), now
        response.set_cookie(self.cookie, session.sid, path="/", secure=self.secure, httponly=True,
                            samesite="Strict")

    def _prune(self, now: float) -> None:
        for sid in [s for s, e in self._entries.items() if not self._alive(e, now)]:
            del self._entries[sid]
        if len(self._entries) >= self.limit:
            # Anonymous (not logged in) sessions go first, oldest first.
            order = sorted(self._entries.items(), key=lambda kv: ("user" in kv[1].data, kv[1].seen))
            for sid, _ in order[: len(self._entries) - self.limit + 1]:
                del self._entries[sid]
