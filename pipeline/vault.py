"""Keys and encryption at rest. The only module that holds a key, or a number in clear, beyond one call.

Keys live in <data home>/keys/ (mode 0600): `tag.key` signs the QR tags printed on kit pages; `master.key`
wraps the per-record data keys that encrypt numbers and scans (so one record can be crypto-erased by
destroying its wrapped key, without touching the others).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .errors import ConfigError

KEY_BYTES = 32


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def ensure_key(keys_dir: Path, name: str) -> bool:
    """Create keys_dir/name.key if missing. Returns True when a key was created."""
    path = keys_dir / f"{name}.key"
    if path.exists():
        return False
    _write_private(path, secrets.token_bytes(KEY_BYTES))
    return True


def load_key(keys_dir: Path, name: str) -> bytes:
    path = keys_dir / f"{name}.key"
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"key {path} is missing: run `mynumber init` (or restore the keys from backup)") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"key {path} is damaged (wrong length)")
    return key


def issuer_id(tag_key: bytes) -> str:
    """A short public name for a signing key, so a page from another company's kit is told apart from a forgery."""
    digest = hashlib.sha256(b"mynumber issuer\0" + tag_key).digest()
    return base64.b32encode(digest[:5]).decode()  # 8 characters, QR alphanumeric-safe


def sign(tag_key: bytes, message: bytes, length: int = 10) -> str:
    mac = hmac.new(tag_key, message, hashlib.sha256).digest()
    return base64.b32encode(mac[:length]).decode()


def verify_signature(tag_key: bytes, message: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(tag_key, message, length=len(signature) * 5 // 8), signature)
