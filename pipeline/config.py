"""Where the data lives and what the company is called.

`MYNUMBER_HOME` (default ./mynumber-data) holds the SQLite database, the keys, the stored (encrypted) files
and config.toml; `MYNUMBER_DB_URL` points at another SQLAlchemy database instead of the embedded SQLite.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
KITS_DIR = Path(os.environ.get("MYNUMBER_KITS_DIR", REPO_ROOT / "kits"))

DEFAULT_CONFIG = """\
# Settings of this My Number installation. Edit and re-run commands; `mynumber init` never overwrites this file.

[company]
name = "株式会社サンプル商事"
department = "人事部 マイナンバー担当"
postal_code = "100-0001"
address = "東京都千代田区千代田1-1"
phone = "03-0000-0000"
# Where kits are returned; printed on the return-envelope label.
return_address = "〒100-0001 東京都千代田区千代田1-1 株式会社サンプル商事 人事部 行"

[kits]
# Employees with dependents get a second ID-copy page for copies of their dependents' number-check documents
# (optional for them): a handwritten dependent's number the reader is unsure of is then settled against it.
ask_for_dependents_copies = true

[review]
# Double entry: an item is settled when two entries agree. true lets one operator key both entries.
allow_same_operator = false
# When a handwritten number is accepted without review (both calibrated on held-out handwriting, see
# docs/ARCHITECTURE.md): "strict" accepted no miswritten number in calibration, and sends most handwritten
# fields to double entry; "balanced" accepts most fields as read, calibrated for at most 1 wrong number per
# 1,000 fields when 2 % of people miswrite theirs; about 1 miswritten number in 80 is accepted as the valid
# number the reader saw in it, and the handwriting benchmark measured 3 wrong in 1,000 (10 % miswritten).
handwriting_rule = "strict"
# A handwritten field left for review is settled when its boxes agree with the number printed on the kit's own
# number-check document (card back, notification card or residence certificate on the ID-copy sheet, or a loose
# copy scanned with the kit): at most two boxes may read otherwise, each one the reader was unsure of.
settle_with_id_copy = true

[handlers]
# A handler whose training is older than this cannot reveal or export numbers.
training_valid_months = 12

[transfers]
# A package between sites not confirmed on receipt within this many days is listed as overdue.
due_days = 3

[reminders]
# `mynumber remind` writes letters for kits sent at least this many days ago and not returned ...
after_days = 14
# ... and leaves a kit alone for this many days after its last reminder (letter, call, e-mail or visit).
days_between_rounds = 7

[retention]
# How long each returned document is kept: "<N>y|m|d after received|checked|stored|leave" (leave: the person
# leaving). The planned disposal date is fixed when that event happens and moves when it happens again
# (e.g. a corrected leaving date); until then the document has its rule but no date.
provision_form = "7y after leave"        # kept until 7 years after the person leaves
delegation_agreement = "7y after leave"
refusal_form = "7y after received"
id_copy = "0d after checked"             # ID copies are disposed of once the check is done
id_copy_sheet = "0d after checked"
envelope_label = "1y after received"
default = "7y after received"

[web]
# `mynumber serve`, the browser station. Login cookies are Secure: browsers send them over HTTPS, and over plain
# http only to this machine (127.0.0.1, localhost). Keep true and put HTTPS in front of the station.
secure_cookies = true
session_idle_minutes = 30        # a session unused this long ends (log in again)
session_max_hours = 12           # and none lasts longer than this
max_upload_mb = 200              # the scan upload page's limit per upload
"""


@dataclass(frozen=True)
class Company:
    name: str
    department: str
    postal_code: str
    address: str
    phone: str
    return_address: str


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    company: Company
    raw: dict = field(repr=False, default_factory=dict)

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def config_path(self) -> Path:
        return self.home / "config.toml"

    def section(self, name: str) -> dict:
        return dict(self.raw.get(name, {}))


def data_home() -> Path:
    return Path(os.environ.get("MYNUMBER_HOME", "mynumber-data")).resolve()


def database_url(home: Path) -> str:
    return os.environ.get("MYNUMBER_DB_URL") or f"sqlite:///{home / 'mynumber.sqlite3'}"


def load(home: Path | None = None) -> Settings:
    home = home or data_home()
    path = home / "config.toml"
    text = path.read_text(encoding="utf-8") if path.exists() else DEFAULT_CONFIG
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    defaults = tomllib.loads(DEFAULT_CONFIG)
    company_raw = {**defaults["company"], **raw.get("company", {})}
    try:
        company = Company(**{k: str(company_raw[k]) for k in Company.__dataclass_fields__})
    except KeyError as exc:
        raise ConfigError(f"{path}: [company] is missing {exc.args[0]!r}") from None
    merged = {**defaults, **raw}
    return Settings(home=home, db_url=database_url(home), company=company, raw=merged)


def write_default_config(home: Path) -> bool:
    """Create config.toml if absent. Returns True when it was created."""
    path = home / "config.toml"
    if path.exists():
        return False
    path.write_text(DEFAULT_CONFIG, encoding="utf-8")
    return True
