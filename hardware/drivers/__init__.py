"""Board drivers: one small interface, one module per board family.

A driver module registers its class with ``@register``; every module in this package is
imported here, so a third family is one new module (with its codec beside the others).
"""
from __future__ import annotations

import importlib
import pkgutil

from hardware.drivers.base import (REGISTRY, BoardDriver, BoardState, FramingError, LinkError,
                                   LinkStats, NoResponseError, Timing, UnlockResult, register)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


def make_driver(family: str, port, timing: Timing | None = None, **options) -> BoardDriver:
    """The driver for ``family`` ("A", "B", ...) on an open serial port."""
    try:
        driver_class = REGISTRY[family.upper()]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ValueError(f"unknown board family {family!r} (known: {known})") from None
    return driver_class(port, timing or Timing(), **options)


def default_baudrate(family: str) -> int:
    return REGISTRY[family.upper()].baudrate


__all__ = ["BoardDriver", "BoardState", "FramingError", "LinkError", "LinkStats",
           "NoResponseError", "Timing", "UnlockResult", "make_driver", "default_baudrate",
           "register", "REGISTRY"]
