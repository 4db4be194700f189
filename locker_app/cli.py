"""``flask`` commands: keys, demo data, controllers."""
from __future__ import annotations

import click
from flask import Flask

from locker_app.extensions import db


def register_cli(app: Flask) -> None:
    @app.cli.group()
    def keys():
        """Signing keys for the codes in the QR."""

    @keys.command("new")
    def keys_new():
        """Create a new signing key; new codes are signed with it from now on."""
        from locker_app.services.signing import create_key
        click.echo(f"created signing key {create_key()}")

    @app.cli.command("demo-data")
    @click.option("--controller-token", envvar="LOCKER_DEMO_CONTROLLER_TOKEN", default=None,
                  help="Token for the demo controller (random when not given).")
    def demo_data(controller_token):
        """Site "Stadtpark" with one cabinet of 8 compartments (idempotent)."""
        from locker_app.demo_data import seed
        token = seed(db.session, controller_token)
        if token:
            click.echo(f"demo controller token: {token}")
        else:
            click.echo("demo data already present")

    @app.cli.command("add-controller")
    @click.argument("cabinet_id", type=int)
    @click.argument("name")
    def add_controller(cabinet_id, name):
        """Register a controller for a cabinet and print its token (shown once)."""
        from locker_app.models import Cabinet
        from locker_app.services.controllers import register_controller
        cabinet = db.session.get(Cabinet, cabinet_id)
        if cabinet is None:
            raise click.ClickException(f"there is no cabinet {cabinet_id}")
        _, token = register_controller(db.session, cabinet, name)
        click.echo(token)
