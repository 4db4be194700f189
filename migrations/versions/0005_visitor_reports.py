"""visitor reports: defects and feedback reach staff

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('visitor_report',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('reservation_id', sa.Integer(), nullable=True),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('page', sa.String(length=200), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('contact', sa.String(length=254), nullable=True),
    sa.Column('handled_at', sa.DateTime(), nullable=True),
    sa.Column('handled_by', sa.String(length=120), nullable=True),
    sa.CheckConstraint("kind IN ('defect', 'feedback')", name=op.f('ck_visitor_report_report_kind')),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], name=op.f('fk_visitor_report_item_id_item')),
    sa.ForeignKeyConstraint(['reservation_id'], ['reservation.id'], name=op.f('fk_visitor_report_reservation_id_reservation')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visitor_report'))
    )
    with op.batch_alter_table('visitor_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_visitor_report_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_visitor_report_reservation_id'), ['reservation_id'], unique=False)



def downgrade():
    with op.batch_alter_table('visitor_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visitor_report_reservation_id'))
        batch_op.drop_index(batch_op.f('ix_visitor_report_created_at'))

    op.drop_table('visitor_report')
