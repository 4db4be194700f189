"""The controller daemon: a scanner reader (and a keypad reader), the board worker that
owns the serial line, and the uplink that empties the outbox, syncs and takes remote
commands. Each is a named thread with a stop flag; an exception at a loop boundary is
logged and the loop starts again."""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from datetime import datetime, timezone

import serial

import signed_code
from controller import __version__ as VERSION
from controller.board_worker import BoardWorker, UnlockRequest
from controller.broker import BrokerLink
from controller.decide import Decision, decide
from controller.display import Display
from controller.keypad import Keypad
from controller.scanner import LineAssembler
from controller.settings import Settings
from controller.store import Store
from controller.uplink import ServerClient, Uplink

logger = logging.getLogger(__name__)
UNREADABLE_PER_MINUTE = 10


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class LockerController:
    def __init__(self, settings: Settings, *, clock=utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self.store = Store(settings.database)
        self.client = ServerClient(settings.server_url, settings.token, settings.http_timeout)
        self.board = BoardWorker(self)
        self.uplink = Uplink(self)
        self.broker = BrokerLink(self) if settings.mqtt_url else None
        self.keypad = Keypad(self)
        self.display = Display(self)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.server_reachable = threading.Event()
        self.synced = threading.Event()
        self.scanner_ready = threading.Event()
        self._last_heartbeat = 0.0
        self._last_poll = float("-inf")  # when the board worker last finished a poll
        self._last_status: dict | None = None
        self.health = None  # the /healthz and /readyz server (health_http), when started
        self._scan_to_unlock = [0, 0.0]  # count and sum of seconds since the start
        self._latency_lock = threading.Lock()
        self._unreadable_times: list[float] = []
        self._unreadable_suppressed = 0

    # Life cycle -----------------------------------------------------------------------
    def start(self) -> "LockerController":
        loops = [("board-worker", self.board.run), ("scanner-reader", self._scanner_loop),
                 ("uplink", self.uplink.run), ("remote-commands", self.uplink.run_commands)]
        if self.broker is not None:
            loops.append(("broker", self.broker.run))
        if self.settings.keypad_port:
            loops.append(("keypad-reader", self._keypad_loop))
        if self.settings.display_port:
            loops.append(("display-writer", self.display.run_serial))
        if self.display.speaker is not None:
            loops.append(("speech", self.display.speaker.run))
        if self.settings.display_http:
            self.display.start_page()
        if self.settings.health_http:
            from controller.health import HealthServer
            host, _, port = self.settings.health_http.rpartition(":")
            self.health = HealthServer(host or "127.0.0.1", int(port), self.readiness).start()
        for name, target in loops:
            thread = threading.Thread(target=self._guarded(target), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info("controller started: board %s (family %s), scanner %s, server %s",
                    self.settings.board_port, self.settings.board_family,
                    self.settings.scanner_port, self.settings.server_url)
        _sd_notify("READY=1")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.uplink.wake()
        self.board.unlocks.put(None)  # the board worker waits on its queue until the next poll
        for thread in self._threads:
            # The long poll may hang in its request for a while: it only reads, and it
            # looks at the stop flag before acting, so it is not waited for.
            thread.join(0.2 if thread.name == "remote-commands" else timeout)
        if self.display.page is not None:
            self.display.page.stop()
        if self.health is not None:
            self.health.stop()
        self.client.close()
        self.store.close()
        logger.info("controller stopped")

    def _guarded(self, target):
        def run():
            while not self._stop.is_set():
                try:
                    target(self._stop)
                    return
                except Exception as error:  # thread boundary: log, pause, start the loop again
                    if self._stop.is_set():
                        # Stopping closes the store and the connections under a thread that
                        # was still in a call: its failure is the stop's doing, not a fault
                        # (Ctrl-C on ./run-demo printed such a traceback, issue 32).
                        logger.debug("%s ended while stopping: %r",
                                     threading.current_thread().name, error)
                        return
                    logger.exception("%s failed; restarting it", threading.current_thread().name)
                    self._stop.wait(1.0)
        return run

    def event(self, kind: str, *, reservation_id: int | None = None, compartment: int | None = None,
              detail: dict | None = None, door: dict | None = None,
              local_state: str | None = None) -> None:
        """Every observation goes into the local outbox first (one line in the log too)."""
        self.store.add_event(kind, occurred_at=self.clock(), reservation_id=reservation_id,
                             compartment=compartment, detail=detail, door=door,
                             local_state=local_state)
        logger.info("event %s compartment=%s reservation=%s %s", kind, compartment, reservation_id,
                    json.dumps(detail, sort_keys=True) if detail else "")
        self.uplink.wake()
        if kind == "return":
            self.keypad.noticed_return(reservation_id, compartment)
        self.display.observe(kind, reservation_id, compartment, detail or {})

    def heartbeat(self) -> None:
        """Called by the board worker after each poll: the systemd watchdog every few
        seconds, and the status for ``python -m controller status`` whenever it changed."""
        status = {**self.board.snapshot(), "server_reachable": self.server_reachable.is_set(),
                  "scanner_ready": self.scanner_ready.is_set(), "synced": self.synced.is_set(),
                  "keypad_locked_until": self.keypad.locked_until_text()}
        now = self._last_poll = time.monotonic()
        if status == self._last_status and now - self._last_heartbeat < 5:
            return
        if now - self._last_heartbeat >= 5:
            self._last_heartbeat = now
            _sd_notify("WATCHDOG=1")
        self._last_status = status
        self.store.save_status({"at": self.clock().isoformat(), **status})

    def readiness(self) -> dict[str, str]:
        """What /readyz says: the boards answer the polls, the server answers the calls."""
        status = self._last_status or {}
        polled = time.monotonic() - self._last_poll
        offline = status.get("boards_offline")
        board = (f"not answering: board(s) {', '.join(map(str, offline))}" if offline else
                 "no poll yet" if polled == float("inf") else
                 f"no poll for {polled:.0f} s" if polled > max(5.0, 4 * self.settings.poll_interval)
                 else "ok")
        server = "ok" if self.server_reachable.is_set() else "not reachable"
        return {"board": board, "server": server}

    def status_report(self) -> dict:
        """What staff see of this cabinet: boards, open doors, outbox backlog."""
        status = self._last_status or {}  # what the board worker saw at its last poll
        doors = status.get("doors", {})
        return {"at": self.clock().isoformat(), "outbox": self.store.outbox_length(),
                "board_family": status.get("board_family", self.settings.board_family),
                "boards_offline": status.get("boards_offline", []),
                "board_errors": status.get("board_errors", 0), "version": VERSION,
                "scan_to_unlock": {"count": self._scan_to_unlock[0],
                                   "sum": round(self._scan_to_unlock[1], 4)},
                "doors_open": sorted(int(n) for n, state in doors.items() if state == "open"),
                "scanner_ready": self.scanner_ready.is_set(),
                "keypad_locked_until": self.keypad.locked_until_text()}

    # Codes from the scanner and the keypad ------------------------------------------------------
    def handle_scan(self, line: str) -> Decision:
        read_at = time.monotonic()  # the start of the scan-to-unlock time
        keys = {kid: signed_code.public_key_from_text(text)
                for kid, text in self.store.public_keys().items()}
        decision = decide(line, public_keys=keys, cabinet_id=self.store.cabinet_id(),
                          lookup=self.store.reservation, now=self.clock(),
                          taken=self.store.compartment_taken)
        return self.act_on(decision, source="scan", read_at=read_at)

    def act_on(self, decision: Decision, source: str, read_at: float | None = None) -> Decision:
        if decision.opens and decision.compartment not in self.store.compartments():
            decision = Decision(False, "unknown_compartment", decision.reservation_id,
                                decision.compartment)
        if decision.purpose == "return" and self.board.pickup_door_open(
                decision.compartment, decision.reservation_id):
            # The same visitor at the same moment (a scanner reading the phone twice): the
            # door of the pickup is still open. A return begins after it was shut.
            decision = Decision(False, "door_still_open", decision.reservation_id,
                                decision.compartment)
        if not decision.opens:
            logger.warning("%s refused: %s (reservation %s)", source, decision.reason,
                           decision.reservation_id)
            detail = {"reason": decision.reason, "source": source}
            if decision.valid_from is not None:  # the display says from when, offline too
                detail["valid_from"] = decision.valid_from.isoformat()
            self.event("scan_refused", reservation_id=decision.reservation_id,
                       compartment=decision.compartment, detail=detail)
            return decision
        self.board.unlocks.put(UnlockRequest(decision.compartment, decision.reservation_id,
                                             decision.purpose, read_at=read_at))
        return decision

    def unlocked_after(self, seconds: float) -> None:
        """A scanned code's door was pulsed ``seconds`` after the code was read (for the
        monitoring: the count and sum since the start, in the status report)."""
        with self._latency_lock:
            self._scan_to_unlock[0] += 1
            self._scan_to_unlock[1] += seconds

    def handle_command(self, command: dict) -> str:
        """A remote "open" from staff: carried out at most once (recorded before acting),
        refused when it arrives after its expiry."""
        try:
            command_id, seq = str(command["id"]), int(command["seq"])
            compartment = int(command["compartment"])
            expires = datetime.fromisoformat(str(command["expires_at"]).replace("Z", "+00:00"))
        except (KeyError, TypeError, ValueError):
            logger.warning("malformed remote command ignored: %r", command)
            return "malformed"
        now = self.clock()
        outcome = ("stale" if now >= expires else
                   "unknown_compartment" if compartment not in self.store.compartments() else "accepted")
        if not self.store.claim_command(command_id, seq, now, outcome):
            return "seen"
        # The staff request's id goes along and comes back in the event (the server's logs).
        request_id = str(command.get("request_id") or "")[:64] or None
        if outcome != "accepted":
            self.event("remote_refused", compartment=compartment,
                       detail={"command_id": command_id, "reason": outcome,
                               **({"request_id": request_id} if request_id else {})})
            return outcome
        self.board.unlocks.put(UnlockRequest(compartment, None, "remote", command_id,
                                             request_id))
        return outcome

    def _serial_lines(self, stop, port_name: str, baudrate: int, ready: threading.Event | None,
                      handle, what: str) -> None:
        assembler = LineAssembler(self.settings.scanner_max_line, self.settings.scanner_debounce,
                                  quiet_gap=self.settings.scanner_quiet_gap)
        backoff = 1.0
        lost_reported = False
        while not stop.is_set():
            try:
                port = serial.serial_for_url(port_name, baudrate=baudrate, timeout=0.1)
            except (serial.SerialException, OSError) as error:
                logger.error("%s port %s cannot be opened: %s", what, port_name, error)
                if not lost_reported:
                    self.event(f"{what}_lost", detail={"error": str(error)})
                    lost_reported = True
                stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff)
                continue
            if lost_reported:
                self.event(f"{what}_back")
                lost_reported = False
            backoff = 1.0
            if ready is not None:
                ready.set()
            try:
                while not stop.is_set():
                    data = port.read(max(1, port.in_waiting))
                    for line in assembler.feed(data):
                        handle(line)
                    for reason in assembler.take_refused():
                        self.unreadable(what, reason)
            except (serial.SerialException, OSError) as error:
                logger.error("%s port lost: %s", what, error)
                self.event(f"{what}_lost", detail={"error": str(error)})
                lost_reported = True
            finally:
                if ready is not None:
                    ready.clear()
                port.close()

    def unreadable(self, source: str, why: str) -> None:
        """A line nobody could read reaches the server like any refused scan, at most
        ``UNREADABLE_PER_MINUTE`` a minute (a babbling scanner must not fill the outbox).
        The visitor is told every time."""
        self.display.show("not_readable", tone="no")
        now = time.monotonic()
        self._unreadable_times = [t for t in self._unreadable_times if now - t < 60]
        if len(self._unreadable_times) >= UNREADABLE_PER_MINUTE:
            self._unreadable_suppressed += 1
            return
        self._unreadable_times.append(now)
        detail = {"reason": "not_readable", "why": why, "source": source}
        if self._unreadable_suppressed:
            detail["suppressed_before"] = self._unreadable_suppressed
            self._unreadable_suppressed = 0
        self.event("scan_refused", detail=detail)

    def _scanner_loop(self, stop) -> None:
        self._serial_lines(stop, self.settings.scanner_port, self.settings.scanner_baudrate,
                           self.scanner_ready, self.handle_scan, "scanner")

    def _keypad_loop(self, stop) -> None:
        self._serial_lines(stop, self.settings.keypad_port, self.settings.keypad_baudrate, None,
                           self.keypad.handle_line, "keypad")

    def sync_now(self) -> None:
        """Ask the uplink to sync at once."""
        self.uplink.request_sync()


def _sd_notify(message: str) -> None:
    """Tell systemd we are ready / alive, when it started us with a notify socket."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
    except OSError as error:
        logger.debug("sd_notify failed: %s", error)
