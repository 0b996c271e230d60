"""bundle tokens: short-lived, per-bundle tokens pods fetch their bundle with

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bundle_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bundle_id"], ["bundles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hash"),
    )
    with op.batch_alter_table("bundle_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bundle_tokens_bundle_id"), ["bundle_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_bundle_tokens_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("bundle_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bundle_tokens_expires_at"))
        batch_op.drop_index(batch_op.f("ix_bundle_tokens_bundle_id"))
    op.drop_table("bundle_tokens")
