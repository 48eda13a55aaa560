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

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

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


# --- encryption at rest -------------------------------------------------------------------------------------
# Each number record and each stored file gets its own data key, kept only wrapped (AES-GCM under the master
# key) in the data_keys table. Destroying that row's wrapped key is crypto-erasure: the ciphertext left in
# backups or on disk can no longer be read by anyone, while every other record stays readable.

NONCE_BYTES = 12


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag:
        raise ConfigError("stored data does not decrypt with its key (damaged, or keys from another data home)") \
            from None


def wrap_key(master: bytes, data_key: bytes, purpose: str) -> bytes:
    return _seal(master, data_key, b"data-key:" + purpose.encode())


def unwrap_key(master: bytes, wrapped: bytes, purpose: str) -> bytes:
    return _open(master, wrapped, b"data-key:" + purpose.encode())


def encrypt(data_key: bytes, plaintext: bytes, purpose: str) -> bytes:
    return _seal(data_key, plaintext, purpose.encode())


def decrypt(data_key: bytes, sealed: bytes, purpose: str) -> bytes:
    return _open(data_key, sealed, purpose.encode())


def number_hash(master: bytes, digits: str) -> str:
    """Keyed hash of a number, to find the same number twice (two people, or a re-sent form) without
    storing it in clear. A plain hash of 12 digits would be reversed by trying all 10^11 candidates."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"mynumber number-hash").derive(master)
    return hmac.new(key, digits.encode(), hashlib.sha256).hexdigest()
