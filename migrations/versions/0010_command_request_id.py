"""request ids: a remote command keeps the id of the staff request that asked for it, so
that one action can be followed in the logs from the staff page to the door

Revision ID: 0010
Revises: 0009
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('remote_command', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('remote_command', schema=None) as batch_op:
        batch_op.drop_column('request_id')
