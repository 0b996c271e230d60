"""The schema comes from Alembic's migrations, and they match the models (both databases)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from plumbline.platform.server.db import Base, Database, alembic_config

pytestmark = pytest.mark.slow  # PostgreSQL


def test_migrations_create_the_schema_of_the_models(database_url):
    db = Database(database_url)
    db.migrate()
    db.migrate()  # twice is harmless: it is at head already
    with db.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) >= set(Base.metadata.tables)
        context = MigrationContext.configure(conn)
        heads = ScriptDirectory.from_config(alembic_config(database_url)).get_heads()
        assert len(heads) == 1, f"the migrations have several heads: {heads}"
        assert context.get_current_revision() == heads[0]
        assert compare_metadata(context, Base.metadata) == []
    db.dispose()
