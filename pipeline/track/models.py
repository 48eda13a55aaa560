"""SQLAlchemy models. Nothing here ever holds a My Number in clear (see pipeline/vault.py)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (JSON, BigInteger, Date, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Person(Base):
    """An employee or outside payee, as imported from the roster (person_id is the company's own id)."""
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_kana: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(400))
    site: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # employee | payee
    left_on: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    dependents: Mapped[list["Dependent"]] = relationship(
        back_populates="person", order_by="Dependent.ordinal", cascade="all, delete-orphan")
    kits: Mapped[list["Kit"]] = relationship(back_populates="person", order_by="Kit.id")


class Dependent(Base):
    """A dependent (扶養親族) listed on the roster; `ordinal` numbers the provision-form field dependentN."""
    __tablename__ = "dependents"
    __table_args__ = (UniqueConstraint("person_id", "ordinal"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    ordinal: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))

    person: Mapped[Person] = relationship(back_populates="dependents")


class Kit(Base):
    """One collection kit sent to one person. `code` (K0000001) is printed in clear and in every QR tag."""
    __tablename__ = "kits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    site: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(24), default="printed")
    carrier: Mapped[str | None] = mapped_column(String(40))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    printed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    received_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    received_site: Mapped[str | None] = mapped_column(String(100))
    received_by: Mapped[str | None] = mapped_column(String(100))
    missing: Mapped[list] = mapped_column(JSON, default=list)  # what an incomplete kit still lacks

    person: Mapped[Person] = relationship(back_populates="kits")
    pages: Mapped[list["KitPage"]] = relationship(
        back_populates="kit", order_by="KitPage.seq", cascade="all, delete-orphan")


class KitPage(Base):
    """A page the kit was printed with: what the scan intake expects to come back (or not: letters)."""
    __tablename__ = "kit_pages"
    __table_args__ = (UniqueConstraint("kit_id", "document", "page"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kit_id: Mapped[int] = mapped_column(ForeignKey("kits.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(String(32))
    page: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(16))

    kit: Mapped[Kit] = relationship(back_populates="pages")


class Event(Base):
    """An append-only, hash-chained record of one change: when, who, what, to which object, where.

    `details` never holds a number. `hash` = SHA-256 over the previous hash and this event's canonical form,
    so editing, inserting, deleting or reordering any event breaks every later hash.
    """
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_object", "object_type", "object_id"),
                      Index("ix_events_at", "at"), Index("ix_events_actor", "actor"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ChainHead(Base):
    """Single row holding the newest event's seq and hash; locked while appending so writers serialise."""
    __tablename__ = "chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class Counter(Base):
    """Named sequences (kit codes) that work the same on SQLite and PostgreSQL."""
    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class DataKey(Base):
    """A per-record data key, stored only wrapped by the master key. Destroying it is crypto-erasure."""
    __tablename__ = "data_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    destroyed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    destroyed_by: Mapped[str | None] = mapped_column(String(100))


class StoredFile(Base):
    """An encrypted file under <home>/store (a redacted ID copy, a field crop for review, a scanned form)."""
    __tablename__ = "stored_files"
    # a kit's files of one kind (the ID-copy check looks up a kit's sealed numbers on every page it brings)
    __table_args__ = (Index("ix_stored_files_kind_kit", "kind", "kit_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    relpath: Mapped[str] = mapped_column(String(200), unique=True)
    data_key_id: Mapped[int] = mapped_column(ForeignKey("data_keys.id"))
    size: Mapped[int] = mapped_column(Integer)
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ScannedPage(Base):
    """One page of one scanned file, whatever it turned out to be. (source_sha256, page_index) makes
    re-running the same batch a no-op."""
    __tablename__ = "scanned_pages"
    __table_args__ = (UniqueConstraint("source_sha256", "page_index"), Index("ix_scanned_pages_kit", "kit_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_name: Mapped[str] = mapped_column(String(300))
    page_index: Mapped[int] = mapped_column(Integer)
    # kit_page | id_copy | duplicate | foreign | rejected_tag | problem | unassigned
    status: Mapped[str] = mapped_column(String(24))
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"))
    document: Mapped[str | None] = mapped_column(String(32))
    doc_page: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(String(500))
    checks: Mapped[dict] = mapped_column(JSON, default=dict)   # consent ticked, signed, numbers covered ...
    stored_file_id: Mapped[int | None] = mapped_column(ForeignKey("stored_files.id"))
    operator: Mapped[str] = mapped_column(String(100))
    site: Mapped[str | None] = mapped_column(String(100))
    scanned_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class NumberRecord(Base):
    """The state of one number field of one kit. The number itself only as ciphertext + keyed hash."""
    __tablename__ = "number_records"
    __table_args__ = (UniqueConstraint("kit_id", "field"), Index("ix_number_records_hash", "number_hash"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kit_id: Mapped[int] = mapped_column(ForeignKey("kits.id"))
    field: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # accepted | review | miswritten | empty
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    number_hash: Mapped[str | None] = mapped_column(String(64))
    data_key_id: Mapped[int | None] = mapped_column(ForeignKey("data_keys.id"))
    confidence: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str | None] = mapped_column(String(16))  # reader | review
    scanned_page_id: Mapped[int | None] = mapped_column(ForeignKey("scanned_pages.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ReviewItem(Base):
    """A field the reader was not sure of: a person keys it (double entry) from the encrypted crop."""
    __tablename__ = "review_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number_record_id: Mapped[int] = mapped_column(ForeignKey("number_records.id"))
    crop_file_id: Mapped[int | None] = mapped_column(ForeignKey("stored_files.id"))
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | settled | closed
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    settled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ReviewEntry(Base):
    """One operator's keyed entry for a review item: only a keyed hash of what was typed, never the number."""
    __tablename__ = "review_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    operator: Mapped[str] = mapped_column(String(100))
    entry_hash: Mapped[str] = mapped_column(String(64))
    entered_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


# --- issue 6: users, documents, transfers, storage, reminders, refusals, disposal -------------------------

class User(Base):
    """A person who acts in the system. Roles: mailroom, handler (事務取扱担当者), manager (責任者), auditor,
    admin. Handlers must be appointed in writing and trained to reveal or export numbers."""
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    appointed_on: Mapped[dt.date | None] = mapped_column(Date)
    appointed_by: Mapped[str | None] = mapped_column(String(100))
    trained_on: Mapped[dt.date | None] = mapped_column(Date)
    password_hash: Mapped[str | None] = mapped_column(String(200))   # web login (memory-hard hash)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class StorageLocation(Base):
    """A locked cabinet, or a numbered box at an outside storage company."""
    __tablename__ = "storage_locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)     # e.g. CAB-本社-1, BOX-42
    kind: Mapped[str] = mapped_column(String(16))                   # cabinet | box
    site: Mapped[str | None] = mapped_column(String(100))
    provider: Mapped[str | None] = mapped_column(String(200))       # outside storage company, for boxes
    description: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Document(Base):
    """One returned paper document (a form page or an ID copy), from receipt to disposal.
    States: received -> checked -> stored -> disposal_due -> disposed (and lost)."""
    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_kit", "kit_id"), Index("ix_documents_due", "disposal_due_on"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)      # D0000001
    kit_id: Mapped[int] = mapped_column(ForeignKey("kits.id"))
    scanned_page_id: Mapped[int | None] = mapped_column(ForeignKey("scanned_pages.id"), unique=True)
    document: Mapped[str] = mapped_column(String(32))               # provision_form, ..., id_copy
    doc_page: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="received")
    location_id: Mapped[int | None] = mapped_column(ForeignKey("storage_locations.id"))
    retention_rule: Mapped[str | None] = mapped_column(String(64))
    disposal_due_on: Mapped[dt.date | None] = mapped_column(Date)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    checked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    stored_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    disposed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    disposal_batch_id: Mapped[int | None] = mapped_column(ForeignKey("disposal_batches.id"))


class Transfer(Base):
    """A package sent between sites. Confirmed on receipt; unconfirmed after N days it is overdue."""
    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)      # T0000001
    from_site: Mapped[str] = mapped_column(String(100))
    to_site: Mapped[str] = mapped_column(String(100))
    sender: Mapped[str] = mapped_column(String(100))
    carrier: Mapped[str] = mapped_column(String(40))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="in_transit")  # in_transit | received | lost
    sent_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    due_days: Mapped[int] = mapped_column(Integer, default=3)
    received_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    received_by: Mapped[str | None] = mapped_column(String(100))


class TransferItem(Base):
    __tablename__ = "transfer_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id"), index=True)
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"), index=True)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), index=True)


class Reminder(Base):
    """One attempt to get a kit back (督促): letter, e-mail, phone call or visit, in a numbered round."""
    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kit_id: Mapped[int] = mapped_column(ForeignKey("kits.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(16))                 # letter | email | phone | visit
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    by: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(500))


class Refusal(Base):
    """A person's refusal to provide the number, with the reason and the evidence document."""
    __tablename__ = "refusals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kit_id: Mapped[int] = mapped_column(ForeignKey("kits.id"), index=True)
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(String(500))
    evidence_page_id: Mapped[int | None] = mapped_column(ForeignKey("scanned_pages.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(100))


class DisposalBatch(Base):
    """One disposal (廃棄/削除) with who did it, under whose responsibility, and the contractor's certificate."""
    __tablename__ = "disposal_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)      # DB0000001
    method: Mapped[str] = mapped_column(String(24))                 # shredding | dissolving | deletion
    executor: Mapped[str] = mapped_column(String(100))
    manager: Mapped[str] = mapped_column(String(100))
    contractor: Mapped[str | None] = mapped_column(String(200))
    certificate_number: Mapped[str | None] = mapped_column(String(64))
    executed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    certificate_file: Mapped[str | None] = mapped_column(String(300))
    reconciliation: Mapped[dict] = mapped_column(JSON, default=dict)
