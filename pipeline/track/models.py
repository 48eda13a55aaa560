"""SQLAlchemy models. Nothing here ever holds a My Number in clear (see pipeline/vault.py)."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (JSON, BigInteger, Date, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint,
                        Index)
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
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(16))
    site: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(24), default="printed")
    carrier: Mapped[str | None] = mapped_column(String(40))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    printed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

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
