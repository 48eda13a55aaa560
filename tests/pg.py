"""A throwaway PostgreSQL server for tests and benchmarks (Debian's postgresql package, run as `postgres`).

`.ci/run` installs the package; `server()` starts a cluster in a private folder on a free port (once per
process, stopped at exit) and returns a SQLAlchemy URL. Set MYNUMBER_TEST_PG_URL to use a server you run.
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


@lru_cache(maxsize=1)
def server() -> str:
    """URL of a running server with an empty database `mynumber` owned by the superuser `postgres`."""
    if os.environ.get("MYNUMBER_TEST_PG_URL"):
        return os.environ["MYNUMBER_TEST_PG_URL"]
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not (initdb and pg_ctl):
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
    folder = tempfile.mkdtemp(prefix="mynumber-pg-")
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    data = os.path.join(folder, "data")
    port = _free_port()
    _as_postgres([initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
    _as_postgres([pg_ctl, "-D", data, "-l", os.path.join(folder, "log"), "-w", "-o",
                  f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                  "-c full_page_writes=off -c max_connections=200", "start"])

    def stop() -> None:
        try:
            _as_postgres([pg_ctl, "-D", data, "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    atexit.register(stop)
    admin = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    for _ in range(50):
        try:
            with engine.connect() as conn:
                conn.execute(text("CREATE DATABASE mynumber"))
            break
        except Exception:
            time.sleep(0.1)
    engine.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/mynumber"


def fresh_database() -> str:
    """A new, empty database on the server, for one test."""
    base = server()
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = base.rsplit("/", 1)[0] + "/postgres"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return base.rsplit("/", 1)[0] + f"/{name}"


def reset_database(url: str) -> None:
    """Drop everything in the database behind url (the schema is re-created by `mynumber init`)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
