"""Users, their roles, appointments and training, and the check every command passes first."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import NotFound, PermissionDenied, StateError, UsageError
from . import audit
from .models import User
from .roles import REVEALING, ROLES, permission_for, roles_of


def get(session: Session, name: str) -> User | None:
    return session.execute(select(User).where(User.name == name)).scalar_one_or_none()


def add(session: Session, name: str, roles: list[str], *, actor: str) -> User:
    audit.serialise_writers(session)
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise UsageError(f"unknown role(s) {', '.join(unknown) or '(none)'}; roles are {', '.join(ROLES)}")
    if get(session, name) is not None:
        raise StateError(f"user {name} already exists")
    user = User(name=name, role=",".join(sorted(set(roles))), active=True)
    session.add(user)
    audit.append(session, actor=actor, action="user.added", object_type="user", object_id=name,
                 details={"roles": sorted(set(roles))})
    return user


def _existing(session: Session, name: str) -> User:
    user = get(session, name)
    if user is None:
        raise NotFound(f"user {name} does not exist (add it with `mynumber users add`)")
    return user


def appoint(session: Session, name: str, date: dt.date, *, actor: str) -> User:
    audit.serialise_writers(session)
    user = _existing(session, name)
    if "handler" not in roles_of(user.role):
        raise StateError(f"{name} is not a handler; only handlers (事務取扱担当者) are appointed")
    user.appointed_on, user.appointed_by = date, actor
    audit.append(session, actor=actor, action="user.appointed", object_type="user", object_id=name,
                 details={"date": date.isoformat()})
    return user


def train(session: Session, name: str, date: dt.date, *, actor: str) -> User:
    audit.serialise_writers(session)
    user = _existing(session, name)
    user.trained_on = date
    audit.append(session, actor=actor, action="user.trained", object_type="user", object_id=name,
                 details={"date": date.isoformat()})
    return user


def deactivate(session: Session, name: str, *, actor: str) -> User:
    audit.serialise_writers(session)
    user = _existing(session, name)
    user.active = False
    audit.append(session, actor=actor, action="user.deactivated", object_type="user", object_id=name, details={})
    return user


def handler_problem(user: User, today: dt.date, training_months: int) -> str | None:
    """Why this handler may not reveal numbers now, or None."""
    if user.appointed_on is None:
        return "has no written appointment as handler (mynumber users appoint)"
    if user.trained_on is None:
        return "has no recorded training (mynumber users train)"
    expires = _add_months(user.trained_on, training_months)
    if expires < today:
        return f"training expired on {expires.isoformat()} (renew with mynumber users train)"
    return None


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, 28))


def authorise(session: Session, actor: str, command_path: str, *, training_months: int,
              today: dt.date | None = None) -> User:
    """Raise PermissionDenied (the caller logs it) unless `actor` may run `command_path`."""
    allowed = permission_for(command_path)
    user = get(session, actor)
    if user is None or not user.active:
        raise PermissionDenied(f"{actor} is not an active user of this installation; "
                               f"`{command_path.replace('.', ' ')}` refused")
    if allowed is None:
        raise PermissionDenied(f"`{command_path.replace('.', ' ')}` has no permission rule; refused")
    held = roles_of(user.role)
    if not held & allowed:
        raise PermissionDenied(f"{actor} ({', '.join(sorted(held))}) may not `{command_path.replace('.', ' ')}`; "
                               f"allowed for: {', '.join(sorted(allowed))}")
    if command_path in REVEALING or command_path.split(".")[0] in REVEALING:
        problem = handler_problem(user, today or dt.date.today(), training_months)
        if problem:
            raise PermissionDenied(f"{actor} {problem}; may not `{command_path.replace('.', ' ')}`")
    return user


def log_refusal(session: Session, actor: str, command_path: str, reason: str) -> None:
    audit.append(session, actor=actor, action="access.refused", object_type="command", object_id=command_path,
                 details={"reason": reason})


def due_list(session: Session, today: dt.date, training_months: int) -> list[dict]:
    out = []
    for user in session.execute(select(User).order_by(User.name)).scalars():
        held = roles_of(user.role)
        problem = handler_problem(user, today, training_months) if "handler" in held else None
        out.append({"name": user.name, "roles": sorted(held), "active": user.active,
                    "appointed_on": user.appointed_on.isoformat() if user.appointed_on else None,
                    "trained_on": user.trained_on.isoformat() if user.trained_on else None,
                    "due": problem})
    return out
