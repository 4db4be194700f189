"""active reservations: a partial index on (item, end, start) of those holding their item,
so a prepared statement's generic plan on PostgreSQL checks an item's active reservations
only instead of reading every reservation

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23

"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

ACTIVE = "state IN ('booked', 'picked_up', 'overdue')"


def upgrade():
    op.create_index('ix_reservation_active_item', 'reservation', ['item_id', 'end_at', 'start_at'],
                    unique=False, sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))


def downgrade():
    op.drop_index('ix_reservation_active_item', table_name='reservation',
                  sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))
