"""The controller without its server: 72 hours offline in simulated time, a server that
restarts in the middle of a sync, and a slow server that must not delay an unlock."""
import socket
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from flask import request
from freezegun.api import FrozenDateTimeFactory

from hardware import family_a
from locker_app.extensions import db
from locker_app.models import ControllerEvent, ItemType, Reservation, Site
from locker_app.services import booking, reservations
from tests.conftest import controller_settings, serve, wait_until


class RestartableServer:
    """The web app on a fixed port that can go away and come back."""

    def __init__(self, app):
        self.app = app
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = None

    def start(self):
        self._server, _ = serve(self.app, self.port)

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def server(app):
    server = RestartableServer(app)
    server.start()
    yield server
    server.stop()


def book_at(app, start: datetime, now: datetime, code="rollator") -> tuple[int, str]:
    with app.test_request_context():
        site = db.session.scalars(db.select(Site)).one()
        kind = db.session.scalars(db.select(ItemType).where(ItemType.code == code)).one()
        r = booking.create_reservation(db.session, site=site, item_type=kind, start=start,
                                            end=start + timedelta(hours=2), name="Erika", email=None,
                                            now=now)
        return r.id, r.code, r.compartment.number


def test_seventy_two_hours_offline(app, server, emulator, scanner, tmp_path):
    # The controller's clock runs 72 simulated hours ahead of the server's real one.
    app.config["EVENT_CLOCK_AHEAD_MINUTES"] = 5 * 24 * 60
    from controller.service import LockerController
    t0 = datetime.now(timezone.utc).replace(tzinfo=None, second=0, microsecond=0)
    clock = FrozenDateTimeFactory(t0)
    booked = {name: book_at(app, t0 + timedelta(hours=hours), t0, code)
              for name, hours, code in (("a", 1, "rollator"), ("b", 24, "rollator"),
                                        ("c", 48, "bollerwagen"), ("d", 70, "bollerwagen"))}
    with app.app_context():
        reservations.cancel_reservation(db.session, db.session.get(Reservation, booked["c"][0]),
                                        now=t0)
    controller = LockerController(controller_settings(
        tmp_path, server.url, emulator, scanner, max_backoff=0.2, server_unreachable_alert=0.2),
        clock=lambda: clock().replace(tzinfo=timezone.utc)).start()
    try:
        assert controller.synced.wait(10) and controller.scanner_ready.wait(10)
        wait_until(lambda: (controller.store.reservation(booked["c"][0]) or None)
                   and controller.store.reservation(booked["c"][0]).server_state == "cancelled")
        server.stop()  # the park loses its connection for three days

        def scan_at(hours: float, name: str) -> None:
            clock.move_to(t0 + timedelta(hours=hours))
            before = len(emulator.unlocks_received())
            refused_before = kinds().count("scan_refused")
            scanner.scan(booked[name][1])
            # Counted, not the last event: the server-unreachable alert may come after it.
            wait_until(lambda: len(emulator.unlocks_received()) > before or
                       kinds().count("scan_refused") > refused_before,
                       message=f"{name} decided")

        def kinds() -> list[str]:
            return [e.kind for e in controller.store.all_events()]

        def close(compartment: int) -> None:
            wait_until(lambda: not emulator.door_closed(compartment))
            wait_until(lambda: controller.board.doors[compartment].closed is False)
            closed_before = kinds().count("door_closed")
            emulator.close_door(compartment)
            wait_until(lambda: kinds().count("door_closed") > closed_before)

        compartment = {name: number for name, (_, _, number) in booked.items()}
        scan_at(1.1, "a")  # pickup of a
        close(compartment["a"])
        scan_at(24.5, "b")  # pickup of b (a is still out: another rollator)
        close(compartment["b"])
        scan_at(48.2, "c")  # cancelled before the outage: refused
        scan_at(70.1, "d")  # pickup of d
        close(compartment["d"])
        scan_at(71.9, "a")  # a comes back late: the code still opens for the return
        close(compartment["a"])
        wait_until(lambda: "return" in kinds())  # stored with the door_closed, just after it
        assert emulator.unlocks_received() == [family_a.encode_unlock(1, compartment[n])
                                               for n in ("a", "b", "d", "a")]
        local = controller.store.all_events()
        assert [e.kind for e in local if e.kind in ("pickup", "return", "scan_refused")] == [
            "pickup", "pickup", "scan_refused", "pickup", "return"]
        assert controller.store.outbox_length() == len(local)  # nothing could be sent

        server.start()  # the connection is back
        wait_until(lambda: "server_back" in [e.kind for e in controller.store.all_events()]
                   and controller.store.outbox_length() == 0, timeout=20)
        everything = controller.store.all_events()
        assert everything[:len(local)] == local  # what happened offline, then the alerts
        with app.app_context():
            arrived = db.session.scalars(db.select(ControllerEvent).order_by(ControllerEvent.id)).all()
            assert [e.idempotency_key for e in arrived] == [e.idempotency_key for e in everything]
            assert arrived[-1].occurred_at >= t0 + timedelta(hours=71.9)  # times as they happened
            states = {name: db.session.get(Reservation, rid).state for name, (rid, _, _) in booked.items()}
        assert states == {"a": "returned", "b": "picked_up", "c": "cancelled", "d": "picked_up"}
        assert "server_unreachable" in [e.kind for e in everything]
    finally:
        controller.stop()


def test_a_slow_server_does_not_delay_an_unlock(app, server, emulator, scanner, tmp_path):
    from controller.service import LockerController
    slow = threading.Event()

    @app.before_request
    def dawdle():
        if slow.is_set() and request.path.startswith("/api/v1/controller/events"):
            time.sleep(3)

    rid, code, _ = book_at(app, datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=1),
                           datetime.now(timezone.utc).replace(tzinfo=None))
    controller = LockerController(controller_settings(tmp_path, server.url, emulator, scanner,
                                                      http_timeout=10)).start()
    try:
        assert controller.synced.wait(10) and controller.scanner_ready.wait(10)
        wait_until(lambda: 3 in controller.board.doors and controller.board.doors[3].closed)
        slow.set()
        emulator.force_door(3)  # an event: the uplink is now stuck in a 3 s request
        wait_until(lambda: "door_forced" in [e.kind for e in controller.store.all_events()])
        scanner.scan(code)
        sent = scanner.last_write_monotonic
        assert emulator.wait_for(lambda e: e.unlocks_received(), timeout=5)
        frame = [f for f in emulator.frames() if f.direction == "rx" and f.data[0] == 0x8A][-1]
        assert frame.monotonic - sent < 0.5, "the unlock waited for the server"
        slow.clear()
        wait_until(lambda: controller.store.outbox_length() == 0, timeout=20)
    finally:
        controller.stop()
    del rid


def test_the_server_restarts_during_a_sync(app, server, emulator, scanner, tmp_path):
    from controller.service import LockerController
    in_sync = threading.Event()
    hold = threading.Event()

    @app.before_request
    def stall_sync():
        if hold.is_set() and request.path.startswith("/api/v1/controller/sync"):
            in_sync.set()
            time.sleep(1.0)

    controller = LockerController(controller_settings(tmp_path, server.url, emulator, scanner,
                                                      max_backoff=0.2)).start()
    try:
        assert controller.synced.wait(10) and controller.scanner_ready.wait(10)
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        rid, code, _ = book_at(app, now - timedelta(minutes=1), now)
        hold.set()
        controller.sync_now()
        assert in_sync.wait(10)
        server.stop()  # mid-sync
        hold.clear()
        server.start()
        wait_until(lambda: controller.store.reservation(rid) is not None, timeout=20,
                   message="synced after the restart")
        scanner.scan(code)
        assert emulator.wait_for(lambda e: e.unlocks_received(), timeout=5)
        wait_until(lambda: controller.store.outbox_length() == 0, timeout=20)
        with app.app_context():
            keys = db.session.scalars(db.select(ControllerEvent.idempotency_key)).all()
        assert sorted(keys) == sorted(e.idempotency_key for e in controller.store.all_events())
    finally:
        controller.stop()
