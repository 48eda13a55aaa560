"""Who may do what. One table, keyed by command path, enforced before any command runs (pipeline/cli.py).

Roles (a user may hold several, e.g. "handler,admin" in a small office):
- mailroom: receives, scans, checks, stores, transfers; never sees numbers;
- handler (事務取扱担当者): prints kits, reviews, reveals and exports numbers (appointed and trained);
- manager (責任者): appoints handlers, approves disposal, reads the audit log;
- auditor: reads the audit log and lists; never sees numbers;
- admin: manages users.
"""
from __future__ import annotations

ROLES = ("mailroom", "handler", "manager", "auditor", "admin")
EVERYONE = frozenset(ROLES)

PERMISSIONS: dict[str, frozenset[str]] = {
    "roster.import": frozenset({"handler"}),
    "kits.print": frozenset({"handler"}),
    "kits.send": frozenset({"mailroom", "handler"}),
    "kits.list": EVERYONE,
    "kits.status": EVERYONE,
    "kits.layout": EVERYONE,
    "kits.undeliverable": frozenset({"mailroom", "handler"}),
    "kits.lost": frozenset({"mailroom", "handler", "manager"}),
    "scan": frozenset({"mailroom", "handler"}),
    "review": frozenset({"handler"}),
    "numbers.export": frozenset({"handler"}),
    "numbers.reveal": frozenset({"handler"}),
    "redact": frozenset({"mailroom", "handler"}),
    "users.add": frozenset({"admin"}),
    "users.deactivate": frozenset({"admin"}),
    "users.appoint": frozenset({"manager"}),
    "users.train": frozenset({"manager", "admin"}),
    "users.list": frozenset({"admin", "manager", "auditor"}),
    "people.leave": frozenset({"handler", "admin"}),
    "documents.check": frozenset({"mailroom", "handler"}),
    "documents.list": EVERYONE,
    "store": frozenset({"mailroom", "handler"}),
    "transfer": frozenset({"mailroom", "handler"}),
    "transfer.list": EVERYONE,
    "transfer.overdue": EVERYONE,
    "remind": frozenset({"handler"}),
    "remind.history": frozenset({"handler", "manager", "auditor"}),
    "disposal.due": frozenset({"handler", "manager", "auditor"}),
    "disposal.run": frozenset({"manager"}),
    "disposal.mark": frozenset({"handler", "manager"}),
    "disposal.certificate": frozenset({"manager", "auditor"}),
    "documents.lost": frozenset({"mailroom", "handler", "manager"}),
    "audit": frozenset({"manager", "auditor"}),
    "serve": EVERYONE,
    "users.passwd": frozenset({"admin"}),
    # the web station's pages (pipeline/web): each view names one of these
    "web.home": EVERYONE,
    "web.review": frozenset({"handler"}),
    "web.dashboard": frozenset({"mailroom", "handler", "manager", "auditor"}),
    "web.kit": frozenset({"mailroom", "handler", "manager", "auditor"}),
    "web.upload": frozenset({"mailroom", "handler"}),
    "web.audit": frozenset({"manager", "auditor"}),
}
# Actions that reveal numbers: only for handlers with a current appointment and training.
REVEALING = frozenset({"numbers.export", "numbers.reveal", "review", "web.review"})
# Commands that work without a database or user (nothing to protect).
OPEN = frozenset({"init", "check"})


def permission_for(path: str) -> frozenset[str] | None:
    """Most specific entry for 'group.sub.subsub'; None when the command is not in the table."""
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in PERMISSIONS:
            return PERMISSIONS[key]
    return None


def roles_of(role_field: str) -> set[str]:
    return {r.strip() for r in role_field.split(",") if r.strip()}
