"""`mynumber init`: create the data home, keys, config and database schema. Idempotent."""
from __future__ import annotations

from .. import config, db, vault
from sqlalchemy import select

from ..track import audit, users
from ..track.models import User


def register(sub) -> None:
    p = sub.add_parser("init", help="create (or upgrade) the data home and database; safe to re-run")
    p.set_defaults(handler=run)


def initialise(settings: config.Settings, actor: str) -> list[str]:
    """Returns what was created (empty when everything already existed)."""
    created = []
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.home.chmod(0o700)
    if config.write_default_config(settings.home):
        created.append(f"config {settings.config_path}")
    for name in ("tag", "master"):
        if vault.ensure_key(settings.keys_dir, name):
            created.append(f"key {name}")
    settings.store_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    before = db.current_revision(settings.db_url)
    db.migrate(settings.db_url)
    db.require_schema.cache_clear()
    if before != db.head_revision():
        created.append(f"schema {before or 'empty'} -> {db.head_revision()}")
    with db.session_scope(settings.db_url) as session:
        if session.execute(select(User.id).limit(1)).first() is None:
            users.add(session, actor, ["admin"], actor=actor)   # the first user administers the others
            created.append(f"first admin {actor}")
        if created:
            audit.append(session, actor=actor, action="system.initialised", object_type="system",
                         object_id="data_home", details={"created": created})
    return created


def run(args) -> int:
    settings = config.load()
    created = initialise(settings, args.actor)
    if created:
        print(f"initialised {settings.home}: created {', '.join(created)}")
    else:
        print(f"{settings.home} is already initialised (schema up to date)")
    return 0
