"""person keys: who counts as one person for the booking limits

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 06:45:26.525597

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN, not batch mode: batch mode would copy the reservation table and
    # drop its SQLite overlap triggers.
    op.add_column('reservation', sa.Column('person_key', sa.String(length=254), nullable=True))
    op.add_column('reservation', sa.Column('client_key', sa.String(length=32), nullable=True))
    op.create_index('ix_reservation_client_key', 'reservation', ['client_key', 'end_at'], unique=False)
    op.create_index('ix_reservation_person_key', 'reservation', ['person_key', 'end_at'], unique=False)
    # Earlier reservations count by their address as it was written (without folding tags).
    op.execute("UPDATE reservation SET person_key = lower(email) WHERE email IS NOT NULL")


def downgrade():
    op.drop_index('ix_reservation_person_key', table_name='reservation')
    op.drop_index('ix_reservation_client_key', table_name='reservation')
    op.drop_column('reservation', 'client_key')
    op.drop_column('reservation', 'person_key')
