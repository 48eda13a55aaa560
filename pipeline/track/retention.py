"""Retention rules: when a document's planned disposal date is fixed, and when it moves.

A rule per document type, in config.toml:

    [retention]
    provision_form = "7y after leave"     # until 7 years after the person leaves
    id_copy = "0d after checked"          # disposed of as soon as the check is done
    default = "7y after received"

A rule is `<N><y|m|d> after <received|checked|stored|leave>`. The planned date is fixed when the rule's event
has happened (the document was received, checked or first stored; the person left) and is empty, with the rule
recorded, while that event is still ahead. Whenever the event happens (or its date is corrected) the document
is planned again; every change of a planned date is a `document.disposal_planned` event with old and new.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import config
from ..errors import ConfigError
from . import audit
from .models import Document, Kit, Person

ANCHORS = ("received", "checked", "stored", "leave")
UNITS = {"y": "years", "m": "months", "d": "days"}
# Returned paper: every printed document type plus the untagged ID copies found next to them.
DOCUMENT_TYPES = ("provision_form", "delegation_agreement", "refusal_form", "id_copy_sheet", "id_copy",
                  "envelope_label", "cover_letter", "notice_letter", "filler")
FINAL_STATES = ("disposed", "lost")
_RULE = re.compile(r"^\s*(\d{1,3})\s*([ymd])\s+after\s+([a-z]+)\s*$")


@dataclass(frozen=True)
class Rule:
    key: str          # the config key it came from: a document type or "default"
    amount: int
    unit: str         # y | m | d
    anchor: str       # received | checked | stored | leave

    @property
    def text(self) -> str:
        return f"{self.amount}{self.unit} after {self.anchor}"

    @property
    def label(self) -> str:
        """What Document.retention_rule records: which rule, and what it says."""
        return f"{self.key}: {self.text}"

    def due(self, anchor_date: dt.date) -> dt.date:
        return add_period(anchor_date, self.amount, self.unit)


@dataclass(frozen=True)
class Rules:
    by_type: dict[str, Rule]
    default: Rule

    def for_document(self, document_type: str) -> Rule:
        return self.by_type.get(document_type, self.default)


def add_period(day: dt.date, amount: int, unit: str) -> dt.date:
    """`day` plus N years, months or days; the 29th-31st become the month's last day where it is shorter."""
    if unit == "d":
        return day + dt.timedelta(days=amount)
    months = amount * 12 if unit == "y" else amount
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def parse_rule(key: str, value: object) -> Rule:
    where = f"[retention] {key}"
    if not isinstance(value, str):
        raise ConfigError(f"{where}: must be a text like \"7y after leave\", not {value!r}")
    match = _RULE.match(value.lower())
    if match is None:
        raise ConfigError(f"{where} = {value!r} is not a retention rule; write <number><y|m|d> after "
                          f"<{'|'.join(ANCHORS)}>, e.g. \"7y after leave\" or \"0d after checked\"")
    amount, unit, anchor = int(match.group(1)), match.group(2), match.group(3)
    if anchor not in ANCHORS:
        raise ConfigError(f"{where} = {value!r}: {anchor!r} is not an event a rule can count from; "
                          f"use one of {', '.join(ANCHORS)}")
    return Rule(key, amount, unit, anchor)


def parse_rules(section: dict) -> Rules:
    """Validate a [retention] section: every key a known document type (or `default`), every value a rule."""
    by_type: dict[str, Rule] = {}
    for key, value in section.items():
        if key == "default":
            continue
        if key not in DOCUMENT_TYPES:
            raise ConfigError(f"[retention] {key}: not a document type; known types are "
                              f"{', '.join(DOCUMENT_TYPES)} (and default)")
        by_type[key] = parse_rule(key, value)
    if "default" not in section:
        raise ConfigError("[retention] needs a `default` rule for document types without their own "
                          "(e.g. default = \"7y after received\")")
    return Rules(by_type, parse_rule("default", section["default"]))


_cache: dict[tuple, Rules] = {}


def load_rules(settings: config.Settings | None = None) -> Rules:
    """The installation's rules, parsed once per version of config.toml."""
    settings = settings or config.load()
    path: Path = settings.config_path
    try:
        stat = path.stat()
        stamp = (str(path), stat.st_mtime_ns, stat.st_size)
    except FileNotFoundError:
        stamp = (str(path), None, None)
    rules = _cache.get(stamp)
    if rules is None:
        section = settings.section("retention") or tomllib.loads(config.DEFAULT_CONFIG)["retention"]
        rules = _cache[stamp] = parse_rules(section)
    return rules


def local_date(at: dt.datetime | None) -> dt.date | None:
    """Timestamps are stored in UTC; a retention date counts from the day as the office saw it."""
    if at is None:
        return None
    return at.replace(tzinfo=dt.timezone.utc).astimezone().date()


def anchor_date(session: Session, document: Document, kit: Kit, rule: Rule) -> dt.date | None:
    if rule.anchor == "received":
        return local_date(document.received_at)
    if rule.anchor == "checked":
        return local_date(document.checked_at)
    if rule.anchor == "stored":
        return local_date(document.stored_at)
    person = kit.person if kit.person is not None else session.get(Person, kit.person_id)
    return person.left_on


def plan(session: Session, document: Document, kit: Kit, *, actor: str, reason: str = "received",
         site: str | None = None, rules: Rules | None = None) -> bool:
    """Fix (or move) the document's planned disposal date from its rule. True when something changed."""
    if document.state in FINAL_STATES:
        return False
    rule = (rules or load_rules()).for_document(document.document)
    anchored = anchor_date(session, document, kit, rule)
    new_date = rule.due(anchored) if anchored is not None else None
    old_date, old_rule = document.disposal_due_on, document.retention_rule
    if new_date == old_date and rule.label == old_rule:
        return False
    document.retention_rule, document.disposal_due_on = rule.label, new_date
    details = {"kit": kit.code, "rule": rule.label, "reason": reason,
               "old": old_date.isoformat() if old_date else None,
               "new": new_date.isoformat() if new_date else None}
    if new_date is None:
        details["waiting_for"] = rule.anchor
    audit.append(session, actor=actor, action="document.disposal_planned", object_type="document",
                 object_id=document.code, site=site, details=details)
    return True


def replan_person(session: Session, person: Person, *, actor: str, reason: str) -> list[tuple[Document, str | None]]:
    """Plan again every open document of the person's kits; returns (document, old date) of those that moved."""
    rules = load_rules()
    moved = []
    rows = session.execute(select(Document, Kit).join(Kit, Document.kit_id == Kit.id)
                           .where(Kit.person_id == person.id, Document.state.not_in(FINAL_STATES))
                           .order_by(Document.code)).all()
    for document, kit in rows:
        old = document.disposal_due_on
        if plan(session, document, kit, actor=actor, reason=reason, rules=rules):
            moved.append((document, old.isoformat() if old else None))
    return moved
