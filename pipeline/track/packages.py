"""What happens to a kit's outgoing envelope after it was sent: returned as undeliverable (宛所不明), or lost by
the carrier. Both are ends of a sending, not of the collection: the kit is sent again (`kits send`) with a
corrected address or a new envelope, and reminders are not sent to a kit that never reached its person."""
from __future__ import annotations

from sqlalchemy.orm import Session

from . import audit, notes, states
from .models import Kit
from .service import kit_by_code


def _outcome(session: Session, code: str, target: str, *, actor: str, note: str | None) -> Kit:
    audit.serialise_writers(session)
    note = notes.clean(note, "the note")
    kit = kit_by_code(session, code)
    states.require("kit", kit.code, kit.state, target, states.KIT_TRANSITIONS)
    previous, kit.state = kit.state, target
    audit.append(session, actor=actor, action=f"kit.{target}", object_type="kit", object_id=kit.code, site=kit.site,
                 details={"from_state": previous, "carrier": kit.carrier, "tracking_number": kit.tracking_number,
                          "note": note})
    return kit


def returned_undeliverable(session: Session, code: str, *, actor: str, note: str | None = None) -> Kit:
    return _outcome(session, code, "returned_undeliverable", actor=actor, note=note)


def lost(session: Session, code: str, *, actor: str, note: str | None = None) -> Kit:
    return _outcome(session, code, "lost", actor=actor, note=note)
