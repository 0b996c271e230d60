"""vanity paths: an app may also be served at a path of its own, such as /parity/

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vanity_path", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("vanity_created_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_unique_constraint("uq_apps_vanity_path", ["vanity_path"])


def downgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_constraint("uq_apps_vanity_path", type_="unique")
        batch_op.drop_column("vanity_created_at")
        batch_op.drop_column("vanity_path")
