"""Which state changes are allowed. Every change goes through `require`, so an illegal move is refused
with a message that says what the object is, where it is, and what it cannot do."""
from __future__ import annotations

from ..errors import StateError

KIT_TRANSITIONS: dict[str, frozenset[str]] = {
    "printed": frozenset({"sent", "received", "void"}),   # received: handed over on site, never mailed
    "sent": frozenset({"received", "returned_undeliverable", "lost"}),
    "returned_undeliverable": frozenset({"sent", "void"}),
    "lost": frozenset({"received", "void"}),
    "received": frozenset({"complete", "incomplete", "refused"}),
    "incomplete": frozenset({"complete", "incomplete", "refused"}),
    "complete": frozenset({"incomplete"}),  # a later page can show a miswritten number
    "refused": frozenset({"complete", "incomplete"}),   # a person may change their mind
    "void": frozenset(),
}


def require(kind: str, code: str, current: str, target: str, table: dict[str, frozenset[str]]) -> None:
    if target not in table.get(current, frozenset()):
        allowed = ", ".join(sorted(table.get(current, ()))) or "nothing (final state)"
        raise StateError(f"{kind} {code} is {current}; it cannot become {target} (from {current}: {allowed})")

# Returned paper documents (pipeline/track/documents.py, disposal.py). A document exists only once received,
# so "disposing of what was never received" cannot name one; storing requires the mailroom's check first, so the
# checklist step is always an explicit, attributed act. stored -> stored moves it to another location.
DOCUMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    "received": frozenset({"checked", "disposal_due", "disposed", "lost"}),
    "checked": frozenset({"stored", "disposal_due", "disposed", "lost"}),
    "stored": frozenset({"stored", "disposal_due", "disposed", "lost"}),
    "disposal_due": frozenset({"stored", "disposed", "lost"}),   # stored: put back, the disposal was postponed
    "lost": frozenset({"checked"}),                               # found again: checked once more
    "disposed": frozenset(),
}

# Packages between sites (pipeline/track/transfers.py). Only the receiving site's confirmation ends a transfer;
# a package declared lost that turns up is received after all, so the loss and the find are both on record.
TRANSFER_TRANSITIONS: dict[str, frozenset[str]] = {
    "in_transit": frozenset({"received", "lost"}),
    "lost": frozenset({"received"}),
    "received": frozenset(),
}
