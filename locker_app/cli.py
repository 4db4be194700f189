"""``flask`` commands: keys, demo data, controllers."""
from __future__ import annotations

import click
from flask import Flask

from locker_app.extensions import db


def register_cli(app: Flask) -> None:
    from locker_app.backup_cli import register_backup_cli
    register_backup_cli(app)

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

    @app.cli.command("open-compartment")
    @click.argument("cabinet_id", type=int)
    @click.argument("compartment", type=int)
    @click.option("--by", "requested_by", default="staff (command line)")
    @click.option("--reason", default=None)
    @click.option("--ttl", default=60, help="seconds after which the locker must refuse it")
    @click.option("--wait", default=5.0, help="seconds to wait for the locker's answer")
    def open_compartment(cabinet_id, compartment, requested_by, reason, ttl, wait):
        """Open a compartment remotely; says only what the locker reported."""
        import time as clock
        from locker_app.models import Cabinet, RemoteCommand
        from locker_app.services.commands import describe, request_open
        from locker_app.services.errors import DomainError
        cabinet = db.session.get(Cabinet, cabinet_id)
        if cabinet is None:
            raise click.ClickException(f"there is no cabinet {cabinet_id}")
        try:
            command = request_open(db.session, cabinet, compartment, requested_by=requested_by,
                                   reason=reason, ttl_seconds=ttl)
        except DomainError as error:
            raise click.ClickException(str(error)) from None
        deadline = clock.monotonic() + wait
        while clock.monotonic() < deadline:
            db.session.expire_all()
            state = describe(db.session.get(RemoteCommand, command.id))
            if state != "pending":
                break
            clock.sleep(0.2)
        state = describe(db.session.get(RemoteCommand, command.id))
        texts = {"pending": "pending: the locker has not answered yet (offline?)",
                 "unlock_sent": "unlock sent by the locker", "refused": "refused by the locker",
                 "expired": "expired: the locker did not take it in time"}
        click.echo(texts.get(state, state))

    @app.cli.group()
    def statistics():
        """The statistics' daily aggregates."""

    @statistics.command("rebuild")
    @click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), required=True)
    @click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), required=True)
    def statistics_rebuild(first, last):
        """Recompute the daily aggregates of a range of days (a month at a time, with progress)."""
        from datetime import timedelta
        from locker_app.services import usage
        day, last = first.date(), last.date()
        if day > last:
            raise click.ClickException("--from must not be after --to")
        total_days, done, rows = (last - day).days + 1, 0, 0
        while day <= last:
            until = min(day + timedelta(days=30), last)
            rows += usage.rebuild(db.session, day, until)
            done += (until - day).days + 1
            click.echo(f"{done}/{total_days} days, {rows} rows", err=True)
            day = until + timedelta(days=1)

    @app.cli.command("open-data")
    @click.option("--format", "kind", type=click.Choice(["csv", "json"]), default="json")
    @click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), default=None)
    @click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), default=None)
    @click.option("--output", type=click.Path(dir_okay=False, writable=True), default="-")
    def open_data_command(kind, first, last, output):
        """The anonymous daily usage for the open-data platform (as /open-data/nutzung.*)."""
        from locker_app.services import open_data
        default_first, default_last = open_data.default_period()
        first = first.date() if first else default_first
        last = last.date() if last else default_last
        text = (open_data.as_json if kind == "json" else open_data.as_csv)(db.session, first, last)
        with click.open_file(output, "w", encoding="utf-8") as handle:
            handle.write(text)

    @app.cli.command("alerts")
    def alerts():
        """Alerts from the lockers that are still open (newest first)."""
        from locker_app.services.controllers import open_alerts
        found = open_alerts(db.session)
        for alert in found:
            where = f" compartment {alert.compartment}" if alert.compartment else ""
            click.echo(f"{alert.occurred_at:%Y-%m-%d %H:%M} UTC  controller {alert.controller_id}"
                       f"{where}: {alert.kind} {alert.detail or ''}")
        if not found:
            click.echo("no open alerts")

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


def register_rule_commands(app: Flask) -> None:
    """Booking rules and opening hours until the staff pages set them."""
    from datetime import date, time

    from locker_app.models import (RULE_DEFAULTS, BookingRule, ItemType, OpeningHours, Site,
                                   SpecialDay)

    def site_by_slug(slug: str) -> Site:
        site = db.session.scalars(db.select(Site).where(Site.slug == slug)).first()
        if site is None:
            raise click.ClickException(f"there is no site {slug!r}")
        return site

    def clock(text: str) -> time:
        try:
            return time.fromisoformat(text)
        except ValueError:
            raise click.ClickException(f"{text!r} is not a time like 08:00") from None

    @app.cli.group()
    def rules():
        """Booking rules per site and item type."""

    @rules.command("show")
    @click.argument("site_slug")
    def rules_show(site_slug):
        site = site_by_slug(site_slug)
        for rule in db.session.scalars(db.select(BookingRule).where(BookingRule.site_id == site.id)):
            click.echo(f"{rule.item_type.code}: loan {rule.min_loan_minutes}-{rule.max_loan_minutes} min, "
                       f"up to {rule.max_days_ahead} days ahead, lead {rule.lead_minutes} min, "
                       f"{rule.max_active_per_person} active per person, chain gap "
                       f"{rule.chain_gap_minutes} min, pickup window {rule.pickup_window_minutes} min")
        for hours in db.session.scalars(db.select(OpeningHours).where(
                OpeningHours.site_id == site.id).order_by(OpeningHours.weekday)):
            click.echo(f"weekday {hours.weekday}: {hours.opens:%H:%M}-{hours.closes:%H:%M}")
        for day in db.session.scalars(db.select(SpecialDay).where(SpecialDay.site_id == site.id)
                                      .order_by(SpecialDay.day)):
            hours = f"{day.opens:%H:%M}-{day.closes:%H:%M}" if day.opens else "closed"
            click.echo(f"{day.day}: {hours} {day.note or ''}")

    @rules.command("set")
    @click.argument("site_slug")
    @click.argument("item_type")
    @click.option("--min-loan-minutes", type=click.IntRange(1))
    @click.option("--max-loan-minutes", type=click.IntRange(1))
    @click.option("--max-days-ahead", type=click.IntRange(0))
    @click.option("--lead-minutes", type=click.IntRange(0))
    @click.option("--max-active-per-person", type=click.IntRange(1))
    @click.option("--chain-gap-minutes", type=click.IntRange(0))
    @click.option("--pickup-window-minutes", type=click.IntRange(1))
    def rules_set(site_slug, item_type, **values):
        site = site_by_slug(site_slug)
        kind = db.session.scalars(db.select(ItemType).where(ItemType.code == item_type)).first()
        if kind is None:
            raise click.ClickException(f"there is no item type {item_type!r}")
        rule = db.session.scalars(db.select(BookingRule).where(
            BookingRule.site_id == site.id, BookingRule.item_type_id == kind.id)).first()
        if rule is None:
            rule = BookingRule(site=site, item_type=kind, **RULE_DEFAULTS)
            db.session.add(rule)
        for name, value in values.items():
            if value is not None:
                setattr(rule, name, value)
        try:
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise click.ClickException("these values do not fit together (e.g. min above max)") from None
        click.echo("saved")

    @app.cli.command("hours")
    @click.argument("site_slug")
    @click.argument("weekday_or_date")
    @click.argument("opens", required=False)
    @click.argument("closes", required=False)
    @click.option("--note", default=None, help="why a date is special")
    def hours_command(site_slug, weekday_or_date, opens, closes, note):
        """Opening hours: WEEKDAY (0 = Monday) or DATE (2026-12-24), then OPENS CLOSES;
        without times the weekday or date is closed."""
        site = site_by_slug(site_slug)
        start, end = (clock(opens), clock(closes)) if opens and closes else (None, None)
        if (opens or closes) and not (opens and closes):
            raise click.ClickException("give both times, or none for closed")
        if start and end <= start:
            raise click.ClickException("closing must be after opening")
        if weekday_or_date.isdigit() and len(weekday_or_date) == 1:
            weekday = int(weekday_or_date)
            if weekday > 6:
                raise click.ClickException("weekday is 0 (Monday) to 6 (Sunday)")
            row = db.session.scalars(db.select(OpeningHours).where(
                OpeningHours.site_id == site.id, OpeningHours.weekday == weekday)).first()
            if start is None:
                if row:
                    db.session.delete(row)
            elif row:
                row.opens, row.closes = start, end
            else:
                db.session.add(OpeningHours(site=site, weekday=weekday, opens=start, closes=end))
        else:
            try:
                day = date.fromisoformat(weekday_or_date)
            except ValueError:
                raise click.ClickException("give a weekday 0-6 or a date like 2026-12-24") from None
            row = db.session.scalars(db.select(SpecialDay).where(
                SpecialDay.site_id == site.id, SpecialDay.day == day)).first() or SpecialDay(
                site_id=site.id, day=day)
            row.opens, row.closes, row.note = start, end, note
            db.session.add(row)
        db.session.commit()
        click.echo("saved")
