"""cabinet location in English: the English pages say where the cabinet stands in English

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cabinet', schema=None) as batch_op:
        batch_op.add_column(sa.Column('location_en', sa.String(length=300), nullable=True))


def downgrade():
    with op.batch_alter_table('cabinet', schema=None) as batch_op:
        batch_op.drop_column('location_en')
