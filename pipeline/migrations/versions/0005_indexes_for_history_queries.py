"""indexes for history queries

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('kits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kits_person_id'), ['person_id'], unique=False)

    with op.batch_alter_table('transfer_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfer_items_document_id'), ['document_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_transfer_items_kit_id'), ['kit_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('transfer_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfer_items_kit_id'))
        batch_op.drop_index(batch_op.f('ix_transfer_items_document_id'))

    with op.batch_alter_table('kits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kits_person_id'))

