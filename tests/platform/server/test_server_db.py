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


def test_the_vanity_migration_keeps_existing_apps(database_url):
    """0004 on a database of 0003 with an app in it: the app stays, with no vanity path; two
    apps cannot share one; and it goes back down cleanly."""
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    db = Database(database_url)
    config = alembic_config(database_url)
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0003")
        conn.execute(
            text(
                "INSERT INTO users (id, guid, username, role, locked, created_at) "
                "VALUES (1, 'u1', 'alice', 'publisher', false, CURRENT_TIMESTAMP)"
            )
        )
        for n in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO apps (id, guid, name, slug, owner_id, access_type, replicas, "
                    f"created_at, updated_at) VALUES ({n}, 'a{n}', 'app-{n}', 'app-{n}', 1, 'acl', "
                    "1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
        command.upgrade(config, "head")
    with db.engine.begin() as conn:
        rows = conn.execute(text("SELECT name, vanity_path FROM apps ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("app-1", None), ("app-2", None)]
        conn.execute(text("UPDATE apps SET vanity_path = '/parity/' WHERE id = 1"))
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(text("UPDATE apps SET vanity_path = '/parity/' WHERE id = 2"))
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0003")
        assert "vanity_path" not in {c["name"] for c in inspect(conn).get_columns("apps")}
        assert conn.execute(text("SELECT count(*) FROM apps")).scalar() == 2
    db.dispose()
