"""The QR tag on every kit page: which kit, document and page, the layout fingerprint, and a signature.

Payload (QR alphanumeric mode, so the code stays small): `MN1/K0000001/PF/1/3FA2B9C1/ISSUERID/SIGNATURE`.
It carries nothing personal. The signature is an HMAC (key in the data home) over everything before it, so a
forged or altered tag fails, and the issuer id tells a page of another company's kits from a forgery.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import zxingcpp

from . import vault
from .errors import TagError

PREFIX = "MN"
VERSION = "1"
_PAYLOAD = re.compile(r"^MN(?P<version>\d+)/(?P<kit>K\d{7,12})/(?P<doc>[A-Z]{2})/(?P<page>\d{1,2})/"
                      r"(?P<fp>[0-9A-F]{8})/(?P<issuer>[A-Z2-7]{8})/(?P<sig>[A-Z2-7]{16})$")


@dataclass(frozen=True)
class Tag:
    kit: str
    doc_code: str
    page: int
    fingerprint: str


class TagProblem(TagError):
    """A decoded code that is not a valid tag of ours. `reason` is one of:
    foreign (not our format), version, other_issuer, forged, layout_version."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def encode(tag: Tag, tag_key: bytes) -> str:
    body = f"{PREFIX}{VERSION}/{tag.kit}/{tag.doc_code}/{tag.page}/{tag.fingerprint}/{vault.issuer_id(tag_key)}"
    return f"{body}/{vault.sign(tag_key, body.encode())}"


def looks_like_tag(text: str) -> bool:
    return text.startswith(PREFIX) and "/" in text[:6]


def decode(text: str, tag_key: bytes) -> Tag:
    """Parse and verify a payload; raises TagProblem saying exactly why a code is not accepted."""
    text = text.strip()
    m = _PAYLOAD.match(text)
    if m is None:
        if looks_like_tag(text):
            version = text[len(PREFIX):text.index("/")]
            if version != VERSION:
                raise TagProblem("version", f"tag format version {version!r} is not supported by this reader")
            raise TagProblem("forged", "a code in our tag format but malformed (damaged or altered)")
        raise TagProblem("foreign", "a barcode that is not a kit tag (another system's code)")
    if m["version"] != VERSION:
        raise TagProblem("version", f"tag format version {m['version']!r} is not supported by this reader")
    if m["issuer"] != vault.issuer_id(tag_key):
        raise TagProblem("other_issuer", f"a kit tag signed by another key (issuer {m['issuer']}): "
                                         "a page of another company's or installation's kits")
    body = text[: text.rindex("/")]
    if not vault.verify_signature(tag_key, body.encode(), m["sig"]):
        raise TagProblem("forged", f"kit tag for {m['kit']} has a wrong signature (forged or altered)")
    return Tag(kit=m["kit"], doc_code=m["doc"], page=int(m["page"]), fingerprint=m["fp"])


def matrix(payload: str) -> list[bytes]:
    """The QR modules (rows of 0/1 bytes, no quiet zone) for printing. zxing-cpp encodes in C++ in ~0.1 ms;
    a pure-Python encoder spends ~9 ms per code searching masks, which alone would cap printing at ~100 pages/s."""
    code = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    modules = np.asarray(code.to_image(scale=1, add_quiet_zones=False)) < 128
    return [row.tobytes() for row in modules.astype(np.uint8)]
