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

    @app.cli.command("run-jobs")
    @click.argument("names", nargs=-1)
    def run_jobs_command(names):
        """Run the scheduled jobs once now (all, or those named)."""
        from locker_app.scheduler import JOBS, run_jobs
        unknown = set(names) - set(JOBS)
        if unknown:
            raise click.ClickException(f"unknown job(s): {', '.join(sorted(unknown))}; "
                                       f"known: {', '.join(JOBS)}")
        for name, count in run_jobs(app, tuple(names) or None).items():
            click.echo(f"{name}: {'failed (see log)' if count < 0 else count}")

    @app.cli.group()
    def item():
        """Items: take out of service, put back."""

    @item.command("out-of-service")
    @click.argument("item_id", type=int)
    @click.option("--reason", default="out of service")
    def out_of_service(item_id, reason):
        """Take an item out; its bookings move to a twin or are cancelled."""
        from locker_app.models import Item
        from locker_app.services.inventory import take_out_of_service
        found = db.session.get(Item, item_id)
        if found is None:
            raise click.ClickException(f"there is no item {item_id}")
        result = take_out_of_service(db.session, found, reason=reason)
        click.echo(f"moved: {result['moved']}  cancelled: {result['cancelled']}")

    @item.command("back-in-service")
    @click.argument("item_id", type=int)
    def back(item_id):
        """Put an item back into service."""
        from locker_app.models import Item
        from locker_app.services.inventory import back_in_service
        found = db.session.get(Item, item_id)
        if found is None:
            raise click.ClickException(f"there is no item {item_id}")
        back_in_service(db.session, found)
        click.echo("back in service")

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
