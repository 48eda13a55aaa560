"""Sealed storage: numbers and files encrypted with their own data key, wrapped by the master key.

Files go to <home>/store/<kind>/<name>.bin as nonce || AES-GCM ciphertext; nothing is ever written in clear,
not even temporarily. Names are derived from the page they came from, so re-running a batch overwrites the
same file instead of leaving a second copy.
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import vault
from ..config import Settings
from ..errors import ConfigError
from .models import DataKey, NumberRecord, StoredFile, utcnow


class Sealer:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._master = vault.load_key(settings.keys_dir, "master")

    def new_key(self, session: Session, purpose: str) -> tuple[DataKey, bytes]:
        raw = vault.new_data_key()
        key = DataKey(purpose=purpose, wrapped=vault.wrap_key(self._master, raw, purpose))
        session.add(key)
        session.flush()
        return key, raw

    def _raw_key(self, key: DataKey) -> bytes:
        if key.wrapped is None:
            raise ConfigError(f"data key {key.id} was destroyed on {key.destroyed_at:%Y-%m-%d} (disposed of)")
        return vault.unwrap_key(self._master, key.wrapped, key.purpose)

    # numbers ----------------------------------------------------------------------------------------------
    def seal_number(self, session: Session, record: NumberRecord, digits: str) -> None:
        key, raw = self.new_key(session, "number")
        record.data_key_id = key.id
        record.ciphertext = vault.encrypt(raw, digits.encode(), f"number:{record.kit_id}:{record.field}")
        record.number_hash = vault.number_hash(self._master, digits)

    def open_number(self, session: Session, record: NumberRecord) -> str:
        key = session.get(DataKey, record.data_key_id)
        return vault.decrypt(self._raw_key(key), record.ciphertext, f"number:{record.kit_id}:{record.field}").decode()

    def number_hash(self, digits: str) -> str:
        return vault.number_hash(self._master, digits)

    # files ------------------------------------------------------------------------------------------------
    def store_file(self, session: Session, kind: str, name: str, data: bytes, *, kit_id: int | None) -> StoredFile:
        relpath = f"{kind}/{name}.bin"
        existing = session.execute(select(StoredFile).where(StoredFile.relpath == relpath)).scalar_one_or_none()
        if existing is not None and existing.data_key_id is not None:
            key = session.get(DataKey, existing.data_key_id)
            if key.wrapped is not None:
                raw = self._raw_key(key)
                self._write(relpath, vault.encrypt(raw, data, relpath))
                existing.size = len(data)
                return existing
        key, raw = self.new_key(session, "file")
        self._write(relpath, vault.encrypt(raw, data, relpath))
        stored = StoredFile(kind=kind, relpath=relpath, data_key_id=key.id, size=len(data), kit_id=kit_id)
        session.add(stored)
        session.flush()
        return stored

    def read_file(self, session: Session, stored: StoredFile) -> bytes:
        key = session.get(DataKey, stored.data_key_id)
        sealed = (self.settings.store_dir / stored.relpath).read_bytes()
        return vault.decrypt(self._raw_key(key), sealed, stored.relpath)

    def _write(self, relpath: str, sealed: bytes) -> None:
        path = self.settings.store_dir / relpath
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(sealed)
        os.replace(tmp, path)


def destroy_key(session: Session, key_id: int, actor: str) -> None:
    """Crypto-erasure: the wrapped key is overwritten; what it protected can never be decrypted again."""
    key = session.get(DataKey, key_id)
    if key is not None and key.wrapped is not None:
        key.wrapped, key.destroyed_at, key.destroyed_by = None, utcnow(), actor


def stored_path(settings: Settings, stored: StoredFile) -> Path:
    return settings.store_dir / stored.relpath
