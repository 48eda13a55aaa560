"""Web login credentials: Argon2id password hashes, the login check and the lock-out after repeated failures.

A failed login, a lock-out and a login are events like any other (who, when; never what was typed). The
password is verified outside the database transaction (Argon2 takes tens of milliseconds and 64 MiB on
purpose), then the outcome is recorded with the user's row locked, so parallel attempts are all counted.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import NotFound, UsageError
from ..track import audit
from ..track.models import User, utcnow

LOCK_AFTER = 5                         # failed logins in a row ...
LOCK_FOR = dt.timedelta(minutes=15)    # ... lock the account for this long
MIN_LENGTH = 10
ANONYMOUS = "anonymous"                # the actor of a failed login for a name that is no user


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    # argon2-cffi's default is RFC 9106's "low memory" profile: Argon2id, 64 MiB, 3 passes, 4 lanes.
    return PasswordHasher()


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    """Verified against when the name is unknown, so a wrong name takes as long as a wrong password."""
    return hasher().hash("decoy password that belongs to nobody")


def set_password(session: Session, name: str, password: str, *, actor: str) -> User:
    """An administrator sets (or resets) a user's password; this also lifts a lock-out."""
    user = session.execute(select(User).where(User.name == name).with_for_update()).scalar_one_or_none()
    if user is None:
        raise NotFound(f"user {name} does not exist (add it with `mynumber users add`)")
    if len(password) < MIN_LENGTH:
        raise UsageError(f"the password for {name} is too short: at least {MIN_LENGTH} characters are required")
    was_locked = user.locked_until is not None and user.locked_until > utcnow()
    user.password_hash = hasher().hash(password)
    user.failed_logins, user.locked_until = 0, None
    audit.append(session, actor=actor, action="user.password_set", object_type="user", object_id=name,
                 details={"unlocked": was_locked})
    return user


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    user: str | None = None
    problem: str | None = None          # bad_credentials | locked | inactive
    locked_until: dt.datetime | None = None   # naive UTC


def _verify(stored: str | None, password: str) -> bool:
    try:
        return hasher().verify(stored or _decoy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_login(db_url: str, name: str, password: str, *, site: str | None = None) -> LoginResult:
    """Verify a login and record its outcome (one event; a lock-out adds `user.locked`)."""
    from .. import db
    with db.session_scope(db_url) as session:
        user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
        stored = user.password_hash if user is not None else None
        now = utcnow()
        locked = user is not None and user.locked_until is not None and user.locked_until > now
    matches = False if locked else _verify(stored, password)
    with db.session_scope(db_url) as session:
        if user is None:
            # The typed name is not recorded: it could be anything, even a number typed into the wrong box.
            audit.append(session, actor=ANONYMOUS, action="user.login_failed", object_type="user",
                         object_id="(unknown)", site=site, details={"reason": "unknown user"})
            return LoginResult(False, problem="bad_credentials")
        user = session.execute(select(User).where(User.id == user.id).with_for_update()).scalar_one()
        now = utcnow()
        if user.locked_until is not None and user.locked_until > now:
            audit.append(session, actor=user.name, action="user.login_failed", object_type="user",
                         object_id=user.name, site=site, details={"reason": "locked"})
            return LoginResult(False, user.name, "locked", user.locked_until)
        if user.locked_until is not None:          # a lock that has run out: a fresh count
            user.locked_until, user.failed_logins = None, 0
        if matches and not user.active:
            audit.append(session, actor=user.name, action="user.login_failed", object_type="user",
                         object_id=user.name, site=site, details={"reason": "inactive"})
            return LoginResult(False, user.name, "inactive")
        if not matches:
            user.failed_logins = (user.failed_logins or 0) + 1
            reason = "wrong password" if stored else "no password set"
            audit.append(session, actor=user.name, action="user.login_failed", object_type="user",
                         object_id=user.name, site=site, details={"reason": reason, "failed": user.failed_logins})
            if user.failed_logins >= LOCK_AFTER:
                user.locked_until = now + LOCK_FOR
                audit.append(session, actor=user.name, action="user.locked", object_type="user",
                             object_id=user.name, site=site,
                             details={"failed": user.failed_logins, "minutes": int(LOCK_FOR.total_seconds() // 60)})
                return LoginResult(False, user.name, "locked", user.locked_until)
            return LoginResult(False, user.name, "bad_credentials")
        user.failed_logins = 0
        if hasher().check_needs_rehash(stored):
            user.password_hash = hasher().hash(password)
        audit.append(session, actor=user.name, action="user.login", object_type="user", object_id=user.name,
                     site=site, details={})
        return LoginResult(True, user.name)
