"""The one thread that owns the board line: unlocks from a queue, state polls in between,
and each compartment's state machine. State is stored before the pulse and after every
change, so a restart (a crash, a power cut) carries on where the last run stopped."""
from __future__ import annotations

import logging
import queue
import time
from dataclasses import dataclass

import serial

from controller.doors import DoorTracker, Observation
from hardware.drivers import LinkError, Timing, default_baudrate, make_driver

logger = logging.getLogger(__name__)
OFFLINE_AFTER_FAILURES = 3
LOCAL_STATE_AFTER = {"pickup": "picked_up", "return": "returned"}


@dataclass(frozen=True)
class UnlockRequest:
    compartment: int
    reservation_id: int | None
    purpose: str  # "pickup", "return", "remote"
    command_id: str | None = None
    request_id: str | None = None  # the staff request's, back to the server in the event
    read_at: float | None = None  # when the scanned code was read (time.monotonic())


class BoardWorker:
    def __init__(self, controller) -> None:
        self.controller = controller
        self.settings = controller.settings
        self.store = controller.store
        self.unlocks: queue.Queue[UnlockRequest | None] = queue.Queue()
        self.doors: dict[int, DoorTracker] = {}
        self.failures: dict[int, int] = {}
        # Failed exchanges with any board since the start, for the monitoring.
        self.errors = 0
        self.retry_at: dict[int, float] = {}
        self._mismatch_reported: str | None = None
        self.driving_family: str | None = None  # the family the line is driven as now

    def _now(self) -> float:
        return self.controller.clock().timestamp()

    def family(self) -> str:
        """The board family: the cabinet's row on the server is the one source of truth;
        our own setting counts only until the first sync. A disagreement is logged and
        reported once, so staff can fix whichever is wrong."""
        cabinet = self.store.setting("board_family")
        configured = self.settings.board_family
        if cabinet and cabinet != configured and self._mismatch_reported != cabinet:
            self._mismatch_reported = cabinet
            logger.warning("board_family is %s in this controller's settings but %s for the "
                           "cabinet on the server; using %s", configured, cabinet, cabinet)
            self.controller.event("config_mismatch", detail={
                "setting": "board_family", "controller": configured, "cabinet": cabinet})
        return cabinet or configured

    def run(self, stop) -> None:
        self.doors = {number: DoorTracker.from_dict(state)
                      for number, state in self.store.doors().items()}
        while not stop.is_set():
            self._drive(stop, self.family())

    def _drive(self, stop, family: str) -> None:
        """Own the line with one family's driver until stopped or the family changes."""
        settings = self.settings
        baudrate = (settings.board_baudrate if family == settings.board_family else 0) \
            or default_baudrate(family)
        port = serial.serial_for_url(settings.board_port, baudrate=baudrate)
        timing = Timing(settings.response_timeout, settings.quiet_time, settings.transaction_gap,
                        settings.recovery_quiet)
        driver = make_driver(family, port, timing,
                             inverted_polarity=self.store.setting("inverted_polarity") == "1")
        if hasattr(driver, "unlock_replies"):
            # Learnt once and kept: a board that never answers unlocks is not waited for
            # again after a restart (the wait is time in which no door is read).
            driver.unlock_replies = {"1": True, "0": False}.get(
                self.store.setting(f"unlock_replies_{family}") or "")
        self.driving_family = family
        next_poll = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    request = self.unlocks.get(timeout=max(0.0, next_poll - time.monotonic()))
                except queue.Empty:
                    request = None
                if request is not None:
                    self.unlock(driver, request)
                    next_poll = time.monotonic()  # what the unlock did: read it at once
                if time.monotonic() >= next_poll:
                    self.poll(driver)
                    self.controller.heartbeat()
                    next_poll = time.monotonic() + settings.poll_interval
                    wanted = self.family()
                    if wanted != family:
                        logger.info("board family now %s (from the cabinet's settings)", wanted)
                        return
        finally:
            port.close()

    def unlock(self, driver, request: UnlockRequest) -> None:
        board, lock = self.store.compartments()[request.compartment]
        tracker = self.doors.setdefault(request.compartment, DoorTracker())
        observations = tracker.unlock_sent(request.reservation_id, request.purpose, self._now())
        detail = {"purpose": request.purpose}
        if request.command_id:
            detail["command_id"] = request.command_id
        if request.request_id:
            detail["request_id"] = request.request_id
        # Stored before the pulse: a crash right after it still knows the door was unlocked
        # for this reservation (and never pulses it again on its own).
        self.controller.event("unlock_sent", reservation_id=request.reservation_id,
                              compartment=request.compartment, detail=detail,
                              door=tracker.to_dict())
        learnt = getattr(driver, "unlock_replies", None)
        try:
            result = driver.unlock(board, lock)
        except LinkError as error:
            # Never pulse again on our own: the next state poll tells what happened.
            logger.warning("unlock of compartment %s: %s", request.compartment, error)
            self.controller.event("unlock_unanswered", reservation_id=request.reservation_id,
                                  compartment=request.compartment, detail={"error": str(error)})
        else:
            if request.read_at is not None:
                self.controller.unlocked_after(time.monotonic() - request.read_at)
            if result.replied:
                self._answered(board)  # the board is back: read it at once, not after back-off
            if result.replied and result.door_closed is True:
                logger.info("compartment %s still reads closed after its pulse", request.compartment)
        replies = getattr(driver, "unlock_replies", None)
        if replies is not None and replies != learnt:
            self.store.set_setting(f"unlock_replies_{self.driving_family}", "1" if replies else "0")
        self.record(request.compartment, observations)

    def poll(self, driver) -> None:
        by_board: dict[int, list[tuple[int, int]]] = {}
        for number, (board, lock) in self.store.compartments().items():
            by_board.setdefault(board, []).append((number, lock))
        for board, members in sorted(by_board.items()):
            if time.monotonic() < self.retry_at.get(board, 0.0):
                self._silent(members)  # offline: asked again only after its back-off
                continue
            # A reading that differs from what counts is confirmed by a second read at once
            # (rule 3), not a poll later: a door open for less than a poll interval is seen.
            for _ in range(2):
                if not self._read(driver, board, members):
                    break

    def _read(self, driver, board: int, members: list[tuple[int, int]]) -> bool:
        """Read one board and feed its doors; True when a reading waits for confirmation."""
        try:
            state = driver.read_board(board)
        except LinkError as error:
            self.board_failed(board, error)
            self._silent(members)
            return False
        self._answered(board)
        now = self._now()
        unconfirmed = False
        for number, lock in members:
            tracker = self.doors.setdefault(number, DoorTracker())
            item = state.items.get(lock) if state.items is not None else None
            self.record(number, tracker.reading(
                state.doors.get(lock, True), now, self.settings.unlock_open_timeout,
                item_present=item, left_open_after=self.settings.door_open_alert))
            unconfirmed = unconfirmed or tracker.unconfirmed
        return unconfirmed

    def _answered(self, board: int) -> None:
        if self.failures.get(board, 0) >= OFFLINE_AFTER_FAILURES:
            self.controller.event("board_online", detail={"board": board})
        self.failures[board] = 0
        self.retry_at.pop(board, None)

    def _silent(self, members: list[tuple[int, int]]) -> None:
        """Unlocks on a board that does not answer are reported once their time is up."""
        now = self._now()
        for number, _ in members:
            if number in self.doors:
                self.record(number, self.doors[number].board_silent(
                    now, self.settings.unlock_open_timeout))

    def board_failed(self, board: int, error: Exception) -> None:
        """Rule 5: report a board that stops answering and ask it again with back-off, so
        its timeouts do not hold up the other boards on the bus."""
        self.errors += 1
        failures = self.failures.get(board, 0) + 1
        self.failures[board] = failures
        if failures == OFFLINE_AFTER_FAILURES:
            self.controller.event("board_offline", detail={"board": board, "error": str(error)})
        if failures >= OFFLINE_AFTER_FAILURES:
            pause = min(self.settings.poll_interval * 2 ** (failures - OFFLINE_AFTER_FAILURES + 1),
                        self.settings.max_backoff)
            self.retry_at[board] = time.monotonic() + pause

    def pickup_door_open(self, compartment: int, reservation_id: int | None) -> bool:
        """Whether ``compartment`` was unlocked for the pickup of ``reservation_id`` and its
        door has not been shut since. Asked from the scanner's thread: it reads the
        tracker's current pending unlock, which this thread replaces whole."""
        tracker = self.doors.get(compartment)
        pending = tracker.pending if tracker is not None else None
        return (pending is not None and pending.purpose == "pickup"
                and pending.reservation_id == reservation_id)

    def record(self, compartment: int, observations: list[Observation]) -> None:
        tracker = self.doors[compartment]
        for observation in observations:
            self.controller.event(
                observation.kind, reservation_id=observation.reservation_id,
                compartment=compartment, detail=observation.detail, door=tracker.to_dict(),
                local_state=LOCAL_STATE_AFTER.get(observation.kind))

    def snapshot(self) -> dict:
        return {"board_family": self.driving_family, "board_errors": self.errors,
                "doors": {n: t.state for n, t in sorted(self.doors.items())},
                "boards_offline": sorted(b for b, f in self.failures.items()
                                         if f >= OFFLINE_AFTER_FAILURES)}
