"""``python -m controller --config config/controller.example.toml``"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from controller.service import LockerController
from controller.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller",
                                     description="The on-site locker controller.")
    parser.add_argument("command", nargs="?", default="run", choices=["run", "status"],
                        help="run the controller (default), or show the status of a running one")
    parser.add_argument("--config", help="TOML settings file (environment variables override it)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.command == "status":
        return show_status(args.config)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.load(args.config)
    except (OSError, ValueError) as error:
        print(f"controller: cannot read settings: {error}", file=sys.stderr)
        return 2
    if not settings.token:
        print("controller: no token set (token in the config file or LOCKER_CONTROLLER_TOKEN)",
              file=sys.stderr)
        return 2
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    controller = LockerController(settings).start()
    stopping.wait()
    controller.stop()
    return 0


def show_status(config: str | None) -> int:
    """Boards, doors, outbox and last sync, from the controller's local database (it may be
    running: SQLite's WAL lets us read beside it)."""
    import json

    from controller.store import Store
    try:
        settings = Settings.load(config)
    except (OSError, ValueError) as error:
        print(f"controller: cannot read settings: {error}", file=sys.stderr)
        return 2
    store = Store(settings.database)
    try:
        status = json.loads(store.setting("status") or "{}")
        print(f"status of:     {status.get('at', 'never written (is the controller running?)')}")
        print(f"last sync:     {store.setting('last_sync', 'never')}")
        print(f"outbox:        {store.outbox_length()} event(s) not yet at the server")
        print(f"server:        {'reachable' if status.get('server_reachable') else 'NOT reachable'}")
        print(f"scanner:       {'ready' if status.get('scanner_ready') else 'NOT ready'}")
        offline = status.get("boards_offline") or []
        print(f"boards:        {'offline: ' + ', '.join(map(str, offline)) if offline else 'all answering'}")
        if status.get("keypad_locked_until"):
            print(f"keypad:        locked until {status['keypad_locked_until']}")
        for number, state in sorted(status.get("doors", {}).items(), key=lambda kv: int(kv[0])):
            print(f"compartment {number}: {state}")
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
