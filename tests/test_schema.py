"""The migrations build exactly the schema the models describe: a model changed without a migration (a new
column, index or constraint) fails here, on SQLite and again in the PostgreSQL pass."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pipeline import db
from pipeline.track.models import Base


def test_the_migrated_schema_is_the_models_schema(home):
    with db.engine_for(home.db_url).connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
    assert db.current_revision(home.db_url) == db.head_revision()
