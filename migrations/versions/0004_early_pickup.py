"""early pickup: a visitor at the cabinet a little before the pickup time gets the item

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('booking_rule', sa.Column('early_pickup_minutes', sa.Integer(), nullable=False,
                                            server_default='15'))


def downgrade():
    with op.batch_alter_table('booking_rule') as batch_op:
        batch_op.drop_column('early_pickup_minutes')
