"""Retention rules: when a document's planned disposal date is fixed, and when it moves.

(Placeholder rule set until the retention/disposal work lands: no date is planned.)
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from .models import Document, Kit


def plan(session: Session, document: Document, kit: Kit, *, actor: str) -> None:
    document.retention_rule = None
    document.disposal_due_on = None
