"""What the station says in Japanese, and how stored values are shown so no page carries a long digit run."""
from __future__ import annotations

import datetime as dt
import re

from .. import number

KIT_STATES = {
    "printed": "印刷済", "sent": "発送済", "received": "受領", "complete": "完了", "incomplete": "不備あり",
    "refused": "提供拒否", "returned_undeliverable": "宛先不明で返送", "lost": "紛失", "void": "無効",
}
DOCUMENT_STATES = {"received": "受領", "checked": "点検済", "stored": "保管中", "disposal_due": "廃棄待ち",
                   "disposed": "廃棄済", "lost": "紛失"}
DOCUMENTS = {"cover_letter": "送付状", "notice_letter": "お知らせ", "provision_form": "個人番号提供書",
             "delegation_agreement": "委託に関する合意書", "refusal_form": "提供拒否届", "id_copy_sheet": "本人確認書類台紙",
             "id_copy": "本人確認書類の写し", "envelope_label": "返信用封筒ラベル", "filler": "白紙"}
FIELD_STATES = {"accepted": "確定", "review": "確認待ち", "miswritten": "誤記", "empty": "未記入",
                "not received": "未着"}
KINDS = {"employee": "従業員", "payee": "支払先"}
METHODS = {"letter": "郵便", "phone": "電話", "email": "メール", "visit": "訪問",
           "shredding": "細断", "dissolving": "溶解", "deletion": "削除"}
TRANSFER_STATES = {"in_transit": "輸送中", "received": "受領済", "lost": "紛失"}
CARRIERS = {"simple_registered": "簡易書留", "letterpack": "レターパック", "internal_mail": "社内便",
            "hand_over": "手渡し"}


def field_name(name: str) -> str:
    if name == "self":
        return "本人"
    match = re.fullmatch(r"dependent(\d+)", name)
    return f"扶養親族{match.group(1)}" if match else name


_MISSING = [
    (re.compile(r"provision form page (\d+)"), lambda m: f"個人番号提供書 {m.group(1)}ページ"),
    (re.compile(r"delegation agreement"), lambda m: "委託に関する合意書"),
    (re.compile(r"ID copy"), lambda m: "本人確認書類の写し"),
    (re.compile(r"number (\w+): under review"), lambda m: f"番号（{field_name(m.group(1))}）: 目視確認待ち"),
    (re.compile(r"number (\w+): miswritten, ask the person again"),
     lambda m: f"番号（{field_name(m.group(1))}）: 誤記のため本人に再確認"),
    (re.compile(r"number (\w+): left empty"), lambda m: f"番号（{field_name(m.group(1))}）: 未記入"),
    (re.compile(r"provision form: consent box not ticked"), lambda m: "個人番号提供書: 同意欄にチェックなし"),
    (re.compile(r"provision form: not signed"), lambda m: "個人番号提供書: 署名なし"),
    (re.compile(r"delegation agreement: not signed"), lambda m: "委託に関する合意書: 署名なし"),
]


def missing_item(text: str) -> str:
    """kit_report's English phrases (stored on the kit) in Japanese; anything unknown as it is."""
    for pattern, say in _MISSING:
        match = pattern.fullmatch(text)
        if match:
            return say(match)
    return text


def under_review(missing: list[str] | None) -> bool:
    return any(m.endswith(": under review") for m in missing or [])


_REASONS = [
    (re.compile(r"(\d+) of 12 boxes empty"), lambda m: f"12枠中 {m.group(1)} 枠が空欄"),
    (re.compile(r"the reader is not sure of every digit"), lambda m: "読み取りに自信のない数字があります"),
    (re.compile(r"the same number was already accepted for kit (\w+) \((same|another) person\?\)"),
     lambda m: f"同じ番号がキット {m.group(1)} で確定済み（{'同一人物' if m.group(2) == 'same' else '別人'}？）"),
]


def review_reason(text: str) -> str:
    for pattern, say in _REASONS:
        match = pattern.fullmatch(text)
        if match:
            return say(match)
    return text


ENTRY_REFUSED = {
    "characters": "数字以外の文字が含まれています。12桁の数字を入力してください。",
    "length": "桁数が違います。個人番号は12桁です。",
    "check digit": "チェックデジット（最後の桁）が前の11桁と合いません。画像をよく見てもう一度入力してください。",
}


def refused_entry(typed: str) -> str:
    """Why an entry was refused, without repeating it."""
    return ENTRY_REFUSED.get(number.validate(typed).reason, "入力を受け付けられませんでした。")


# --- showing stored values ---------------------------------------------------------------------------------

_LONG_DIGITS = re.compile(r"\d{12,}")
_LONG_HEX = re.compile(r"\b[0-9a-f]{16,}\b")


def _hex(match: re.Match) -> str:
    text = match.group(0)
    return f"{text[:8]} {text[8:16]}" + ("…" if len(text) > 16 else "")


def breakup(value: object) -> str:
    """Hashes and other long codes as a person reads them: hex in groups of 8 (a file hash as its first 16
    characters and '…'), other long digit runs (tracking numbers) in groups of 4. No page then carries a run
    of twelve digits, which data-loss scanners (rightly) take for a My Number."""
    text = "" if value is None else str(value)
    text = _LONG_HEX.sub(_hex, text)
    return _LONG_DIGITS.sub(lambda m: "-".join(m.group(0)[i:i + 4] for i in range(0, len(m.group(0)), 4)), text)


def full_hash(value: str) -> str:
    """A whole hash (the chain head an auditor compares with the stamped digest), in groups of 8."""
    return " ".join(value[i:i + 8] for i in range(0, len(value), 8))


def looks_like_number(text: str) -> bool:
    """Typed into a search box: twelve digits or more once separators are gone. Such input is refused and
    never shown back, so a number typed into the wrong box does not end up on a page."""
    return bool(re.search(r"\d{12,}", number.normalise(text)))


def local_time(value: dt.datetime | None, seconds: bool = True) -> str:
    if value is None:
        return ""
    local = value.replace(tzinfo=dt.timezone.utc).astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
