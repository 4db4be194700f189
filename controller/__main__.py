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
    parser.add_argument("--config", help="TOML settings file (environment variables override it)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
