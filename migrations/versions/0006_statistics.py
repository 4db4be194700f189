"""statistics: daily aggregates of usage and cabinet events; whether a booking had an e-mail address

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('daily_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('cabinet_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['cabinet_id'], ['cabinet.id'], name=op.f('fk_daily_events_cabinet_id_cabinet')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_daily_events_site_id_site')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_daily_events')),
    sa.UniqueConstraint('day', 'cabinet_id', 'kind', 'reason', name='uq_daily_events')
    )
    with op.batch_alter_table('daily_events', schema=None) as batch_op:
        batch_op.create_index('ix_daily_events_site_day', ['site_id', 'day'], unique=False)

    op.create_table('daily_usage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('item_type_id', sa.Integer(), nullable=False),
    sa.Column('cabinet_id', sa.Integer(), nullable=False),
    sa.Column('compartment', sa.Integer(), nullable=False),
    sa.Column('bookings', sa.Integer(), nullable=False),
    sa.Column('bookings_phone', sa.Integer(), nullable=False),
    sa.Column('bookings_without_email', sa.Integer(), nullable=False),
    sa.Column('cancellations', sa.Integer(), nullable=False),
    sa.Column('cancel_lead_minutes', sa.Integer(), nullable=False),
    sa.Column('loans', sa.Integer(), nullable=False),
    sa.Column('loan_minutes', sa.Integer(), nullable=False),
    sa.Column('loan_minutes_max', sa.Integer(), nullable=False),
    sa.Column('loan_histogram', sa.Text(), nullable=False),
    sa.Column('minutes_lent', sa.Integer(), nullable=False),
    sa.Column('due', sa.Integer(), nullable=False),
    sa.Column('overdue', sa.Integer(), nullable=False),
    sa.Column('late_minutes', sa.Integer(), nullable=False),
    sa.Column('late_minutes_max', sa.Integer(), nullable=False),
    sa.Column('starts', sa.Integer(), nullable=False),
    sa.Column('no_shows', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['cabinet_id'], ['cabinet.id'], name=op.f('fk_daily_usage_cabinet_id_cabinet')),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_daily_usage_item_id_item')),
    sa.ForeignKeyConstraint(['item_type_id'], ['item_type.id'], name=op.f('fk_daily_usage_item_type_id_item_type')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_daily_usage_site_id_site')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_daily_usage')),
    sa.UniqueConstraint('day', 'item_id', name='uq_daily_usage_day_item')
    )
    with op.batch_alter_table('daily_usage', schema=None) as batch_op:
        batch_op.create_index('ix_daily_usage_site_day', ['site_id', 'day'], unique=False)

    # Plain ALTER, not a batch copy: the copy would drop the overlap guard's triggers (SQLite).
    op.add_column('reservation', sa.Column('booked_with_email', sa.Boolean(),
                                           server_default=sa.text('false'), nullable=False))
    op.execute("UPDATE reservation SET booked_with_email = (email IS NOT NULL)")
    op.create_index('ix_reservation_end', 'reservation', ['end_at'], unique=False)
    op.create_index('ix_reservation_state', 'reservation', ['state'], unique=False)
    op.create_index('ix_reservation_event_at', 'reservation_event', ['at'], unique=False)



def downgrade():
    op.drop_index('ix_reservation_event_at', table_name='reservation_event')
    op.drop_index('ix_reservation_state', table_name='reservation')
    op.drop_index('ix_reservation_end', table_name='reservation')
    op.drop_column('reservation', 'booked_with_email')

    with op.batch_alter_table('daily_usage', schema=None) as batch_op:
        batch_op.drop_index('ix_daily_usage_site_day')

    op.drop_table('daily_usage')
    with op.batch_alter_table('daily_events', schema=None) as batch_op:
        batch_op.drop_index('ix_daily_events_site_day')

    op.drop_table('daily_events')
