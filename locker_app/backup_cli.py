"""``flask backup create|verify|restore``: the database and the signing keys in one file
(services/backup.py). Every refusal is a sentence, never a traceback."""
from __future__ import annotations

from pathlib import Path

import click
from flask import Flask

from locker_app.extensions import db


def register_backup_cli(app: Flask) -> None:
    from locker_app.services import backup

    def say(text: str) -> None:
        click.echo(text, err=True)

    def answered(work):
        try:
            return work()
        except backup.BackupError as error:
            raise click.ClickException(str(error)) from None

    @app.cli.group("backup")
    def backup_group():
        """Back up and restore the database with its signing keys."""

    @backup_group.command("create")
    @click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
    def create(file):
        """Write a backup to FILE (a new file; locker-backup-DATE-TIME.tar.gz by default),
        readable only by its owner: it holds the signing keys."""
        target = file or Path(backup.default_name())
        manifest = answered(lambda: backup.create(
            db.engine, Path(app.config["SIGNING_KEY_DIR"]), target, say,
            app.config["DATABASE_TIMEOUT_SECONDS"]))
        click.echo(f"Backup written to {target}: {manifest.summary()}.")

    @backup_group.command("verify")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    def verify(file):
        """Check FILE without restoring it."""
        manifest = answered(lambda: backup.verify(file))
        click.echo(f"{file} is a complete backup: {manifest.summary()}.")

    @backup_group.command("restore")
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--force", is_flag=True,
                  help="Replace what the database and the key folder hold.")
    def restore(file, force):
        """Restore FILE into the configured database (an empty one, unless --force) and
        its signing keys into SIGNING_KEY_DIR."""
        from alembic.script import ScriptDirectory
        known = {script.revision for script in
                 ScriptDirectory(app.extensions["migrate"].directory).walk_revisions()}
        manifest = answered(lambda: backup.restore(
            db.engine, Path(app.config["SIGNING_KEY_DIR"]), file, force=force, say=say,
            wait_seconds=app.config["DATABASE_TIMEOUT_SECONDS"], known_revisions=known))
        click.echo(f"Restored: {manifest.summary()}.")
        click.echo("Next: 'flask db upgrade' (the backup's schema is brought to this "
                   "version's), then start the web site, the scheduler and the controllers.")
