"""Who may open which page: every view names its permission key (pipeline/track/roles.py), and one guard
(auth.guard) checks it with the same rule the CLI uses, before the view runs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from flask import current_app, g

from .. import config
from ..track.roles import permission_for

if TYPE_CHECKING:
    from .jobs import UploadRunner


def requires(permission: str) -> Callable:
    """Mark a view with its permission key; create_app refuses to start with a view that has none."""
    def mark(view: Callable) -> Callable:
        view.permission = permission
        return view
    return mark


@dataclass
class Station:
    """What the application keeps for its lifetime (one process)."""
    settings: config.Settings
    secure_cookies: bool
    uploads: "UploadRunner"
    last_verify: dict | None = None            # the latest chain verification (audit console)

    @property
    def training_months(self) -> int:
        return int(self.settings.section("handlers").get("training_valid_months", 12))

    @property
    def allow_same_operator(self) -> bool:
        return bool(self.settings.section("review").get("allow_same_operator", False))


def station() -> Station:
    return current_app.extensions["mynumber"]


def may(permission: str) -> bool:
    """For menus: does the logged-in user's role allow this page? (The guard still decides on opening it.)"""
    held = getattr(g, "roles", set())
    return bool(held & (permission_for(permission) or frozenset()))

