"""Engine, sessions and schema migrations (Alembic), for SQLite (default) and PostgreSQL."""
from __future__ import annotations

import contextlib
import functools
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from .errors import ConfigError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# JSON columns are stored in the audit chain's canonical form (sorted keys, compact, UTF-8), so `audit verify`
# can hash an event's stored details as they are instead of parsing and re-encoding each one.
_JSON_TEXT = functools.partial(json.dumps, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=_JSON_TEXT)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            # Let SQLAlchemy emit BEGIN itself so a write transaction takes the lock up front.
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, json_serializer=_JSON_TEXT)


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    from alembic import command

    engine = engine_for(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@lru_cache(maxsize=1)
def head_revision() -> str:
    from alembic.script import ScriptDirectory
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(url: str) -> str | None:
    engine = engine_for(url)
    if not inspect(engine).has_table("alembic_version"):
        return None
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


@lru_cache(maxsize=8)
def require_schema(url: str) -> None:
    """Refuse to work on a database that is not initialised, or older than this program (checked once)."""
    engine = engine_for(url)
    if not inspect(engine).has_table("alembic_version"):
        raise ConfigError("the database is not initialised: run `mynumber init` first")
    with engine.connect() as conn:
        current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    if current != head_revision():
        raise ConfigError(f"the database schema is at revision {current}, this program needs {head_revision()}: "
                          "run `mynumber init` to upgrade it")


@contextlib.contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back on any exception."""
    factory = sessionmaker(bind=engine_for(url), expire_on_commit=False)
    with factory() as session:
        with session.begin():
            yield session
