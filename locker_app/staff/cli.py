"""``flask staff ...``: the first administrator on a new installation, and a way back in."""
from __future__ import annotations

import click
from flask import Flask

from locker_app.extensions import db


def register_staff_commands(app: Flask) -> None:
    @app.cli.group()
    def staff():
        """Staff accounts."""

    @staff.command("create-admin")
    @click.argument("username")
    @click.option("--name", "display_name", default=None, help="full name (default: the user name)")
    @click.password_option(help="at least 12 characters (asked for when not given)")
    def create_admin(username, display_name, password):
        """Create an administrator account (the first one on a new installation)."""
        from locker_app.services import staff_accounts
        from locker_app.services.errors import DomainError
        try:
            user = staff_accounts.create_account(db.session, username, display_name or username,
                                                 password, role="admin")
        except DomainError as error:
            db.session.rollback()
            raise click.ClickException(str(error)) from None
        staff_accounts.audit(db.session, None, "account_created", user.username,
                             {"role": "admin"}, actor="command line")
        db.session.commit()
        click.echo(f"administrator {user.username} created; log in at /staff/login")
