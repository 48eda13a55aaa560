from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("MYNUMBER_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def shared(*parts: str) -> Path:
    """A path in ../shared/data; the test is skipped when that material is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"outside test material {path} is not present")
    return path


class CLI:
    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *argv: str, actor: str = "tester"):
        from pipeline.cli import main
        self.capsys.readouterr()
        code = main(["--as", actor, *map(str, argv)])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh, initialised data home (SQLite unless MYNUMBER_TEST_DB_URL names another database)."""
    data = tmp_path / "data"
    monkeypatch.setenv("MYNUMBER_HOME", str(data))
    url = os.environ.get("MYNUMBER_TEST_DB_URL")
    if url:
        monkeypatch.setenv("MYNUMBER_DB_URL", url)
        from tests.pg import reset_database
        reset_database(url)
    from pipeline import config
    from pipeline.commands.init import initialise
    settings = config.load()
    initialise(settings, "tester")
    return settings


@pytest.fixture
def cli(capsys):
    return CLI(capsys)


ROSTER_HEADER = "person_id,name,name_kana,postal_code,address,site,kind,dependents\n"
ROSTER_ROWS = (
    "E0001,山田 太郎,ヤマダ タロウ,100-0001,東京都千代田区千代田1-1,本社,employee,山田 花子;山田 一郎\n"
    "E0002,佐藤 次郎,サトウ ジロウ,5300001,大阪府大阪市北区梅田1-2-3,大阪支店,employee,\n"
    "P0001,鈴木 講師,スズキ コウシ,060-0001,北海道札幌市中央区北1条西2丁目,本社,payee,\n"
    "E0003,高橋 四郎,,812-0011,福岡県福岡市博多区博多駅前1-1,福岡支店,employee,高橋 花;高橋 葉;高橋 実;高橋 根\n"
)


@pytest.fixture
def roster_csv(tmp_path) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(ROSTER_HEADER + ROSTER_ROWS, encoding="utf-8")
    return path
