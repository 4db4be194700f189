"""The controller daemon: a scanner reader, a board worker that owns the serial line, and
an uplink that empties the outbox and syncs. Each is a named thread with a stop flag."""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import serial

import signed_code
from hardware.drivers import LinkError, Timing, default_baudrate, make_driver
from controller.decide import Decision, decide
from controller.doors import DoorTracker, Observation
from controller.scanner import LineAssembler
from controller.settings import Settings
from controller.store import Store
from controller.uplink import ServerClient, ServerError, Unauthorized

logger = logging.getLogger(__name__)
OFFLINE_AFTER_FAILURES = 3


@dataclass(frozen=True)
class UnlockRequest:
    compartment: int
    reservation_id: int | None
    purpose: str


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class LockerController:
    def __init__(self, settings: Settings, *, clock=utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self.store = Store(settings.database)
        self.client = ServerClient(settings.server_url, settings.token, settings.http_timeout)
        self._stop = threading.Event()
        self._wake_uplink = threading.Event()
        self._sync_requested = threading.Event()
        self._unlocks: queue.Queue[UnlockRequest] = queue.Queue()
        self._doors: dict[int, DoorTracker] = {}
        self._board_failures: dict[int, int] = {}
        self._board_retry_at: dict[int, float] = {}
        self._threads: list[threading.Thread] = []
        self.server_reachable = threading.Event()
        self.synced = threading.Event()
        self.scanner_ready = threading.Event()

    # Life cycle -----------------------------------------------------------------------
    def start(self) -> "LockerController":
        for name, target in (("board-worker", self._board_loop), ("scanner-reader", self._scanner_loop),
                             ("uplink", self._uplink_loop)):
            thread = threading.Thread(target=self._guarded(target), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("controller started: board %s, scanner %s, server %s", self.settings.board_port,
                    self.settings.scanner_port, self.settings.server_url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake_uplink.set()
        for thread in self._threads:
            thread.join(timeout)
        self.client.close()
        self.store.close()
        logger.info("controller stopped")

    def _guarded(self, target):
        def run():
            while not self._stop.is_set():
                try:
                    target()
                    return
                except Exception:  # thread boundary: log, pause, start the loop again
                    logger.exception("%s failed; restarting it", threading.current_thread().name)
                    self._stop.wait(1.0)
        return run

    def _event(self, kind: str, *, reservation_id: int | None = None, compartment: int | None = None,
               detail: dict | None = None) -> None:
        self.store.add_event(kind, occurred_at=self.clock(), reservation_id=reservation_id,
                             compartment=compartment, detail=detail)
        logger.info("event %s compartment=%s reservation=%s %s", kind, compartment, reservation_id,
                    detail or "")
        self._wake_uplink.set()

    # Scans --------------------------------------------------------------------------------
    def handle_scan(self, line: str) -> Decision:
        keys = {kid: signed_code.public_key_from_text(text)
                for kid, text in self.store.public_keys().items()}
        decision = decide(line, public_keys=keys, cabinet_id=self.store.cabinet_id(),
                          lookup=self.store.reservation, now=self.clock())
        if not decision.opens:
            logger.warning("scan refused: %s (reservation %s)", decision.reason, decision.reservation_id)
            self._event("scan_refused", reservation_id=decision.reservation_id,
                        compartment=decision.compartment, detail={"reason": decision.reason})
            return decision
        if decision.compartment not in self.store.compartments():
            logger.warning("scan refused: compartment %s unknown here", decision.compartment)
            self._event("scan_refused", reservation_id=decision.reservation_id,
                        compartment=decision.compartment, detail={"reason": "unknown_compartment"})
            return Decision(False, "unknown_compartment", decision.reservation_id, decision.compartment)
        self._unlocks.put(UnlockRequest(decision.compartment, decision.reservation_id, decision.purpose))
        return decision

    def _scanner_loop(self) -> None:
        assembler = LineAssembler(self.settings.scanner_max_line, self.settings.scanner_debounce)
        backoff = 1.0
        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(self.settings.scanner_port,
                                             baudrate=self.settings.scanner_baudrate, timeout=0.1)
            except (serial.SerialException, OSError) as error:
                logger.error("scanner port %s cannot be opened: %s", self.settings.scanner_port, error)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff)
                continue
            backoff = 1.0
            self.scanner_ready.set()
            try:
                while not self._stop.is_set():
                    data = port.read(max(1, port.in_waiting))
                    for line in assembler.feed(data):
                        self.handle_scan(line)
            except (serial.SerialException, OSError) as error:
                logger.error("scanner port lost: %s", error)
            finally:
                self.scanner_ready.clear()
                port.close()

    # The board line -------------------------------------------------------------------------
    def _board_loop(self) -> None:
        settings = self.settings
        port = serial.serial_for_url(settings.board_port, baudrate=settings.board_baudrate
                                     or default_baudrate(settings.board_family))
        timing = Timing(settings.response_timeout, settings.quiet_time, settings.transaction_gap,
                        settings.recovery_quiet)
        driver = make_driver(settings.board_family, port, timing,
                             inverted_polarity=self.store.setting("inverted_polarity") == "1")
        next_poll = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    request = self._unlocks.get(timeout=max(0.0, next_poll - time.monotonic()))
                except queue.Empty:
                    request = None
                if request is not None:
                    self._unlock(driver, request)
                if time.monotonic() >= next_poll:
                    self._poll(driver)
                    next_poll = time.monotonic() + settings.poll_interval
        finally:
            port.close()

    def _unlock(self, driver, request: UnlockRequest) -> None:
        board, lock = self.store.compartments()[request.compartment]
        tracker = self._doors.setdefault(request.compartment, DoorTracker())
        try:
            result = driver.unlock(board, lock)
            reply = ("none" if not result.replied else "unknown" if result.door_closed is None
                     else "closed" if result.door_closed else "open")
        except LinkError as error:
            # Never pulse again on our own: the next state poll tells what happened.
            logger.warning("unlock of compartment %s: %s", request.compartment, error)
            reply = "none"
        self._event("unlock_sent", reservation_id=request.reservation_id,
                    compartment=request.compartment,
                    detail={"purpose": request.purpose, "reply": reply})
        self._record(request.compartment,
                     tracker.unlock_sent(request.reservation_id, request.purpose, time.monotonic()))

    def _poll(self, driver) -> None:
        by_board: dict[int, list[tuple[int, int]]] = {}
        for number, (board, lock) in self.store.compartments().items():
            by_board.setdefault(board, []).append((number, lock))
        for board, members in sorted(by_board.items()):
            if time.monotonic() < self._board_retry_at.get(board, 0.0):
                continue  # offline: asked again only after its back-off
            try:
                doors = driver.read_board(board).doors
            except LinkError as error:
                self._board_failed(board, error)
                continue
            if self._board_failures.get(board, 0) >= OFFLINE_AFTER_FAILURES:
                self._event("board_online", detail={"board": board})
            self._board_failures[board] = 0
            self._board_retry_at.pop(board, None)
            now = time.monotonic()
            for number, lock in members:
                tracker = self._doors.setdefault(number, DoorTracker())
                self._record(number, tracker.reading(doors.get(lock, True), now,
                                                     self.settings.unlock_open_timeout))

    def _board_failed(self, board: int, error: Exception) -> None:
        """Rule 5: report a board that stops answering and ask it again with back-off, so
        its timeouts do not hold up the other boards on the bus."""
        failures = self._board_failures.get(board, 0) + 1
        self._board_failures[board] = failures
        if failures == OFFLINE_AFTER_FAILURES:
            self._event("board_offline", detail={"board": board, "error": str(error)})
        if failures >= OFFLINE_AFTER_FAILURES:
            pause = min(self.settings.poll_interval * 2 ** (failures - OFFLINE_AFTER_FAILURES + 1),
                        self.settings.max_backoff)
            self._board_retry_at[board] = time.monotonic() + pause

    def _record(self, compartment: int, observations: list[Observation]) -> None:
        for observation in observations:
            self._event(observation.kind, reservation_id=observation.reservation_id,
                        compartment=compartment, detail=observation.detail)
            if observation.reservation_id is None:
                continue
            if observation.kind == "pickup":
                self.store.set_local_state(observation.reservation_id, "picked_up")
            elif observation.kind == "return":
                self.store.set_local_state(observation.reservation_id, "returned")

    # The server ------------------------------------------------------------------------------
    def _uplink_loop(self) -> None:
        backoff = 1.0
        next_sync = 0.0
        while not self._stop.is_set():
            try:
                self._send_outbox()
                if time.monotonic() >= next_sync or self._sync_requested.is_set():
                    self._sync_requested.clear()
                    self._sync()
                    next_sync = time.monotonic() + self.settings.sync_interval
                self.server_reachable.set()
                backoff = 1.0
                self._wake_uplink.wait(max(0.0, next_sync - time.monotonic()))
                self._wake_uplink.clear()
            except Unauthorized as error:
                logger.error("%s; events are kept in the outbox", error)
                self._pause_after_failure(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff)
            except ServerError as error:
                logger.warning("%s; retrying in %.0f s", error, backoff)
                self._pause_after_failure(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff)

    def _pause_after_failure(self, seconds: float) -> None:
        self.server_reachable.clear()
        self._stop.wait(seconds)

    def _send_outbox(self) -> None:
        while not self._stop.is_set():
            batch = self.store.unsent_events(100)
            if not batch:
                return
            answer = self.client.post_events([event.as_json() for event in batch])
            acknowledged = set(answer.get("stored", [])) | set(answer.get("duplicates", []))
            self.store.mark_sent([e.idempotency_key for e in batch if e.idempotency_key in acknowledged],
                                 self.clock())
            if len(acknowledged) < len(batch):
                raise ServerError("server did not acknowledge every event")

    def sync_now(self) -> None:
        """Ask the uplink to sync at once (after a change the visitor is waiting for)."""
        self._sync_requested.set()
        self._wake_uplink.set()

    def _sync(self) -> None:
        more = True
        while more and not self._stop.is_set():
            document = self.client.sync(self.store.sync_cursor())
            self.store.apply_sync(document)
            more = bool(document.get("more"))
        self.synced.set()
