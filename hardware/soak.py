"""A soak: many unlock cycles over every compartment, counting what went wrong. Used by the
bench command and, short, by the tests. Never repeats an unlock on its own: a lost reply is
answered by reading the state, as the protocol rules say."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from hardware.drivers import BoardDriver, LinkError, NoResponseError


@dataclass
class SoakReport:
    cycles: int = 0
    unlocks_requested: list[tuple[int, int]] = field(default_factory=list)
    unlock_timeouts: int = 0
    unlock_framing_errors: int = 0
    doors_not_opened: list[tuple[int, int]] = field(default_factory=list)
    state_read_failures: int = 0
    seconds: float = 0.0

    def lines(self, driver: BoardDriver) -> list[str]:
        stats = driver.stats
        times = stats.summary()
        return [
            f"cycles:               {self.cycles}",
            f"unlocks sent:         {len(self.unlocks_requested)}",
            f"transactions:         {stats.transactions} (ok {stats.ok}, timeouts {stats.timeouts}, "
            f"checksum/framing errors {stats.framing_errors})",
            f"unlocks unanswered:   {self.unlock_timeouts} timeouts, {self.unlock_framing_errors} bad replies",
            f"doors that did not open: {len(self.doors_not_opened)}"
            + (f" {sorted(set(self.doors_not_opened))}" if self.doors_not_opened else ""),
            f"time per transaction: median {times['median_ms']:.1f} ms, 95% {times['p95_ms']:.1f} ms, "
            f"max {times['max_ms']:.1f} ms",
            f"duration:             {self.seconds:.1f} s",
        ]


def _door_opened(driver: BoardDriver, board: int, lock: int, report: SoakReport,
                 attempts: int = 3) -> bool:
    for _ in range(attempts):
        try:
            if not driver.read_board(board).doors.get(lock, True):
                return True
        except LinkError:
            report.state_read_failures += 1
    return False


def run_soak(driver: BoardDriver, locks: dict[int, list[int]], cycles: int, *,
             close_door: Callable[[int, int], None] | None = None,
             progress: Callable[[int, SoakReport], None] | None = None) -> SoakReport:
    """``locks``: board -> lock numbers. ``close_door(board, lock)`` shuts a door again
    between cycles (the emulator can; on real hardware doors may simply stay open)."""
    report = SoakReport()
    started = time.monotonic()
    for cycle in range(cycles):
        for board, numbers in sorted(locks.items()):
            for lock in numbers:
                report.unlocks_requested.append((board, lock))
                try:
                    driver.unlock(board, lock)
                except NoResponseError:
                    report.unlock_timeouts += 1
                except LinkError:
                    report.unlock_framing_errors += 1
                if not _door_opened(driver, board, lock, report):
                    report.doors_not_opened.append((board, lock))
                if close_door is not None:
                    close_door(board, lock)
        report.cycles = cycle + 1
        if progress:
            progress(cycle + 1, report)
    report.seconds = time.monotonic() - started
    return report
