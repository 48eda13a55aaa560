from __future__ import annotations

import os
from pathlib import Path

import pytest

# Which database the `home` fixture gives tests: "sqlite" (default) or "postgresql" (scripts/test.sh runs both).
TEST_DB = os.environ.get("MYNUMBER_TEST_DB", "sqlite").lower()
if TEST_DB not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"MYNUMBER_TEST_DB={TEST_DB!r}: allowed values are sqlite and postgresql")

SHARED_DATA = Path(os.environ.get("MYNUMBER_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def pytest_configure(config):
    config.addinivalue_line("markers", "db: uses the product database; the PostgreSQL pass runs exactly these tests. "
                            "Every test using the `home` fixture is marked automatically.")
    config.addinivalue_line("markers", "sqlite_only(reason): uses the database but cannot or need not run on "
                            "PostgreSQL (e.g. copies a SQLite data home); left out of the PostgreSQL pass.")


def pytest_collection_modifyitems(config, items):
    """Mark database tests; in the PostgreSQL pass, run only those (the rest would repeat the SQLite pass)."""
    for item in items:
        if "home" in item.fixturenames and not item.get_closest_marker("sqlite_only"):
            item.add_marker(pytest.mark.db)
    if TEST_DB != "postgresql":
        return
    keep, drop = [], []
    for item in items:
        on_pg = item.get_closest_marker("db") is not None and item.get_closest_marker("sqlite_only") is None
        (keep if on_pg else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    if TEST_DB == "postgresql":
        from tests import pg
        return f"database: PostgreSQL (throwaway server {pg.server().rsplit('/', 1)[0]}; tests marked `db` only)"
    return "database: SQLite"


def shared(*parts: str) -> Path:
    """A path in ../shared/data; the test is skipped when that material is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"outside test material {path} is not present")
    return path


# The users every test data home has: one per role (hr is an appointed, trained handler).
TEST_USERS = {"tester": ["admin"], "hr": ["handler"], "mailroom": ["mailroom"], "manager": ["manager"],
              "auditor": ["auditor"]}
_DEFAULT_ORDER = ("hr", "mailroom", "manager", "auditor", "tester")


def add_users(settings, users: dict[str, list[str]]) -> None:
    """Create users (handlers appointed and trained today) in a data home, as its admin would."""
    import datetime as dt
    from pipeline import db
    from pipeline.track import users as users_mod
    with db.session_scope(settings.db_url) as session:
        for name, roles in users.items():
            if users_mod.get(session, name) is None:
                users_mod.add(session, name, roles, actor="tester")
            if "handler" in roles:
                users_mod.appoint(session, name, dt.date.today(), actor="manager")
                users_mod.train(session, name, dt.date.today(), actor="manager")


def default_actor(argv: list[str]) -> str:
    """A test user whose role may run this command (tests name an actor only when it matters)."""
    from pipeline.cli import build_parser
    from pipeline.track.roles import permission_for
    try:
        path = getattr(build_parser().parse_args(argv), "command_path", "")
    except SystemExit:
        return "tester"
    allowed = permission_for(path) or frozenset()
    for name in _DEFAULT_ORDER:
        if set(TEST_USERS[name]) & allowed:
            return name
    return "tester"


class CLI:
    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *argv: str, actor: str | None = None):
        from pipeline.cli import main
        argv = [str(a) for a in argv]
        actor = actor or default_actor(argv)
        self.capsys.readouterr()
        code = main(["--as", actor, *argv])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh, initialised data home. Its database is SQLite in the home, or, in the PostgreSQL pass
    (MYNUMBER_TEST_DB=postgresql), a new database on the throwaway server named by MYNUMBER_DB_URL."""
    data = tmp_path / "data"
    monkeypatch.setenv("MYNUMBER_HOME", str(data))
    url = None
    if TEST_DB == "postgresql":
        from tests import pg
        url = pg.fresh_database()
        monkeypatch.setenv("MYNUMBER_DB_URL", url)
    else:
        monkeypatch.delenv("MYNUMBER_DB_URL", raising=False)
    from pipeline import config
    from pipeline.commands.init import initialise
    settings = config.load()
    initialise(settings, "tester")
    add_users(settings, TEST_USERS)
    yield settings
    if url:
        from tests import pg
        pg.drop_database(url)


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
