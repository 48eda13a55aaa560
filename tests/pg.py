"""A throwaway PostgreSQL server for tests and benchmarks (Debian's postgresql package, run as `postgres`).

`scripts/setup.sh` installs the package (the cluster service is never started); `server()` starts a cluster in
a private folder on a free port (once per process, stopped at exit) and returns a SQLAlchemy URL. Set
MYNUMBER_TEST_PG_URL to use a server you run instead (its user must be allowed to create databases).
"""
from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from functools import lru_cache

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def available() -> bool:
    return bool(os.environ.get("MYNUMBER_TEST_PG_URL")) or (_bin("initdb") is not None and _bin("pg_ctl") is not None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:  # initdb refuses to run as root
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def _remove_orphans(pg_ctl: str) -> None:
    """Stop and delete servers whose test process died without its exit handler (killed by a timeout)."""
    for folder in glob.glob("/tmp/mynumber-pg-*"):
        try:
            owner = int(open(os.path.join(folder, "owner")).read())
        except (OSError, ValueError):
            continue  # not ours, or still being set up
        try:
            os.kill(owner, 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # alive, someone else's
        try:
            _as_postgres([pg_ctl, "-D", os.path.join(folder, "data"), "-m", "immediate", "stop"])
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(folder, ignore_errors=True)


@lru_cache(maxsize=1)
def server() -> str:
    """URL of a running server with an empty database `mynumber` owned by the superuser `postgres`."""
    if os.environ.get("MYNUMBER_TEST_PG_URL"):
        return os.environ["MYNUMBER_TEST_PG_URL"]
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql; scripts/setup.sh does)")
    _remove_orphans(pg_ctl)
    # As root the server runs as `postgres`, which must be able to reach the folder: /tmp, not $TMPDIR.
    folder = tempfile.mkdtemp(prefix="mynumber-pg-", dir="/tmp" if os.geteuid() == 0 else None)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    with open(os.path.join(folder, "owner"), "w") as fh:
        fh.write(str(os.getpid()))
    data = os.path.join(folder, "data")
    port = _free_port()
    try:
        _as_postgres([initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        # Durability is pointless for a server that is deleted at exit; the C collation sorts like SQLite.
        _as_postgres([pg_ctl, "-D", data, "-l", os.path.join(folder, "log"), "-w", "-o",
                      f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                      "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", "start"])
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"could not start a throwaway PostgreSQL server: {exc.stderr or exc.stdout}") from exc

    def stop() -> None:
        _admin.cache_clear()
        try:
            _as_postgres([pg_ctl, "-D", data, "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    atexit.register(stop)
    base = f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    engine = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT", poolclass=NullPool)
    for attempt in range(50):
        try:
            with engine.connect() as conn:
                conn.execute(text("CREATE DATABASE mynumber"))
            break
        except Exception:
            if attempt == 49:
                raise
            time.sleep(0.1)
    engine.dispose()
    return f"{base}/mynumber"


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@lru_cache(maxsize=1)
def _admin() -> Engine:
    """Autocommit connection to the maintenance database, for CREATE/DROP DATABASE."""
    return create_engine(_with_database(server(), "postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)


def fresh_database() -> str:
    """A new, empty database on the server, for one test (`mynumber init` creates the schema, as on SQLite)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with _admin().connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return _with_database(server(), name)


def drop_database(url: str) -> None:
    """Drop the database behind url, closing whatever connections are still open to it."""
    from pipeline import db
    db.engine_for(url).dispose()
    name = make_url(url).database
    with _admin().connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def reset_database(url: str) -> None:
    """Drop everything in the database behind url (the schema is re-created by `mynumber init`)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
