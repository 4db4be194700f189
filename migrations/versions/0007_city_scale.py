"""city scale: the free-item check reads an item's current and future reservations only;
PostgreSQL keeps the statistics of its small tables current; the broker's word on a
controller's connection

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22

"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# Tables of a few dozen rows that the planner must know as small: autovacuum analyses a
# table only after 50 changed rows, so these were never analysed, and PostgreSQL guessed
# them large and scanned the whole reservation table instead of using its indexes.
SMALL_TABLES = ("site", "cabinet", "compartment", "item_type", "item", "booking_rule",
                "opening_hours", "special_day", "controller", "staff_user")


def upgrade():
    # Past reservations end before any window asked about, so (item, end) skips all of
    # history; (item, start, end) walked every past reservation of the item.
    # Plain index operations, not a batch copy: the copy would drop the overlap guard's
    # triggers (SQLite).
    op.drop_index('ix_reservation_item_window', table_name='reservation')
    op.create_index('ix_reservation_item_end', 'reservation', ['item_id', 'end_at', 'start_at'],
                    unique=False)
    op.add_column('controller', sa.Column('broker_offline_at', sa.DateTime(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        for table in SMALL_TABLES:
            op.execute(f"ALTER TABLE {table} SET (autovacuum_analyze_threshold = 1, "
                       f"autovacuum_analyze_scale_factor = 0)")
            op.execute(f"ANALYZE {table}")


def downgrade():
    with op.batch_alter_table('controller') as batch_op:
        batch_op.drop_column('broker_offline_at')
    if op.get_bind().dialect.name == "postgresql":
        for table in SMALL_TABLES:
            op.execute(f"ALTER TABLE {table} RESET (autovacuum_analyze_threshold, "
                       f"autovacuum_analyze_scale_factor)")
    op.drop_index('ix_reservation_item_end', table_name='reservation')
    op.create_index('ix_reservation_item_window', 'reservation', ['item_id', 'start_at', 'end_at'],
                    unique=False)
