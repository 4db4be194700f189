"""staff sessions kept on the server: logout and the idle limit end a session at once; a
booking's one-time key, so that a retried booking never books twice; the number of a
controller's broker connection, so that a replayed presence message is not believed; a
staff account's optional second factor (TOTP)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'staff_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('staff_user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('user_agent', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['staff_user_id'], ['staff_user.id'],
                                name=op.f('fk_staff_session_staff_user_id_staff_user')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_session')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_staff_session_token_hash')))
    op.create_index('ix_staff_session_user', 'staff_session', ['staff_user_id', 'ended_at'],
                    unique=False)
    # A plain column and a unique index: SQLite adds both without copying the table (a
    # copy would drop the overlap guard's triggers).
    op.add_column('reservation', sa.Column('booking_key', sa.String(length=64), nullable=True))
    op.create_index('uq_reservation_booking_key', 'reservation', ['booking_key'], unique=True)
    op.add_column('controller', sa.Column('presence_seq', sa.Integer(), nullable=False,
                                          server_default=sa.text('0')))
    op.add_column('staff_user', sa.Column('totp_secret', sa.String(length=64), nullable=True))
    op.add_column('staff_user', sa.Column('totp_last_step', sa.Integer(), nullable=True))


def downgrade():
    op.drop_column('staff_user', 'totp_last_step')
    op.drop_column('staff_user', 'totp_secret')
    op.drop_column('controller', 'presence_seq')
    op.drop_index('uq_reservation_booking_key', table_name='reservation')
    op.drop_column('reservation', 'booking_key')  # SQLite drops it in place (3.35 and later)
    op.drop_index('ix_staff_session_user', table_name='staff_session')
    op.drop_table('staff_session')
