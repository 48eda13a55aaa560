"""scan intake: pages, number records, review items, data keys, stored files

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('data_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('wrapped', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('destroyed_at', sa.DateTime(), nullable=True),
    sa.Column('destroyed_by', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('stored_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('relpath', sa.String(length=200), nullable=False),
    sa.Column('data_key_id', sa.Integer(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('kit_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['data_key_id'], ['data_keys.id'], ),
    sa.ForeignKeyConstraint(['kit_id'], ['kits.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('relpath')
    )
    op.create_table('scanned_pages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_sha256', sa.String(length=64), nullable=False),
    sa.Column('source_name', sa.String(length=300), nullable=False),
    sa.Column('page_index', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('kit_id', sa.Integer(), nullable=True),
    sa.Column('document', sa.String(length=32), nullable=True),
    sa.Column('doc_page', sa.Integer(), nullable=True),
    sa.Column('message', sa.String(length=500), nullable=True),
    sa.Column('checks', sa.JSON(), nullable=False),
    sa.Column('stored_file_id', sa.Integer(), nullable=True),
    sa.Column('operator', sa.String(length=100), nullable=False),
    sa.Column('site', sa.String(length=100), nullable=True),
    sa.Column('scanned_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['kit_id'], ['kits.id'], ),
    sa.ForeignKeyConstraint(['stored_file_id'], ['stored_files.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_sha256', 'page_index')
    )
    with op.batch_alter_table('scanned_pages', schema=None) as batch_op:
        batch_op.create_index('ix_scanned_pages_kit', ['kit_id'], unique=False)

    op.create_table('number_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kit_id', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('number_hash', sa.String(length=64), nullable=True),
    sa.Column('data_key_id', sa.Integer(), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=True),
    sa.Column('scanned_page_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['data_key_id'], ['data_keys.id'], ),
    sa.ForeignKeyConstraint(['kit_id'], ['kits.id'], ),
    sa.ForeignKeyConstraint(['scanned_page_id'], ['scanned_pages.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kit_id', 'field')
    )
    with op.batch_alter_table('number_records', schema=None) as batch_op:
        batch_op.create_index('ix_number_records_hash', ['number_hash'], unique=False)

    op.create_table('review_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number_record_id', sa.Integer(), nullable=False),
    sa.Column('crop_file_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('settled_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['crop_file_id'], ['stored_files.id'], ),
    sa.ForeignKeyConstraint(['number_record_id'], ['number_records.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('kits', schema=None) as batch_op:
        batch_op.add_column(sa.Column('received_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('received_site', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('received_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('missing', sa.JSON(), nullable=False, server_default='[]'))



def downgrade() -> None:
    with op.batch_alter_table('kits', schema=None) as batch_op:
        batch_op.drop_column('missing')
        batch_op.drop_column('received_by')
        batch_op.drop_column('received_site')
        batch_op.drop_column('received_at')

    op.drop_table('review_items')
    with op.batch_alter_table('number_records', schema=None) as batch_op:
        batch_op.drop_index('ix_number_records_hash')

    op.drop_table('number_records')
    with op.batch_alter_table('scanned_pages', schema=None) as batch_op:
        batch_op.drop_index('ix_scanned_pages_kit')

    op.drop_table('scanned_pages')
    op.drop_table('stored_files')
    op.drop_table('data_keys')
