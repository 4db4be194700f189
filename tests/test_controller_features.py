"""The controller's duties beyond a scan: remote commands, the keypad with numeric codes,
item sensors, alerts, its status. All through real ptys and a real HTTP server."""
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from freezegun.api import FrozenDateTimeFactory

from hardware import family_a
from hardware.emulator import BoardEmulator, EmulatedBoard, ScannerEmulator
from locker_app.extensions import db
from locker_app.models import Cabinet, ControllerEvent, RemoteCommand, Reservation
from locker_app.services.commands import describe, request_open
from tests.conftest import serve, wait_door_seen_shut, wait_until
from tests.test_end_to_end import book, kinds_seen, reservation_id_of, state_of


def server_kinds(app):
    with app.app_context():
        return [e.kind for e in db.session.scalars(db.select(ControllerEvent).order_by(ControllerEvent.id))]


# Remote commands -----------------------------------------------------------------------------

def test_a_remote_open_arrives_within_two_seconds_and_is_carried_out_once(app, emulator, controller):
    wait_until(lambda: controller.uplink.client is not None and emulator.requests_seen > 2)
    with app.app_context():
        command = request_open(db.session, db.session.get(Cabinet, 1), 6, requested_by="Frau Weber")
        command_id, asked_at = command.uuid, time.monotonic()
    assert emulator.wait_for(lambda e: e.unlocks_received(), timeout=2.5), "not within ~2 s"
    assert time.monotonic() - asked_at < 2.5
    assert emulator.unlocks_received() == [family_a.encode_unlock(1, 6)]
    with app.app_context():
        wait_until(lambda: describe(db.session.get(RemoteCommand, 1)) == "unlock_sent" or
                   db.session.expire_all(), message="result on the server")
    # Delivered again (a retry, a duplicate): carried out once only.
    again = {"id": command_id, "seq": 1, "compartment": 6,
             "expires_at": (datetime.now(timezone.utc) + timedelta(minutes=1)).isoformat()}
    assert controller.handle_command(again) == "seen"
    assert len(emulator.unlocks_received()) == 1


def test_a_stale_remote_open_is_refused(app, emulator, make_controller):
    later = FrozenDateTimeFactory(datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(hours=1))
    controller = make_controller(clock=lambda: later().replace(tzinfo=timezone.utc))
    with app.app_context():
        request_open(db.session, db.session.get(Cabinet, 1), 2, requested_by="staff", ttl_seconds=60)
    # The controller's clock is an hour ahead: the command arrives long after its expiry.
    wait_until(lambda: "remote_refused" in kinds_seen(controller), message="refused")
    with app.app_context():
        wait_until(lambda: (db.session.expire_all(), db.session.get(RemoteCommand, 1).state)[1] == "refused")
    assert emulator.unlocks_received() == []


def test_a_command_to_an_offline_locker_is_pending_never_done(app):
    with app.app_context():
        command = request_open(db.session, db.session.get(Cabinet, 1), 2, requested_by="staff")
        assert describe(command) == "pending"
        assert describe(command, now=command.expires_at) == "expired"
    result = app.test_cli_runner().invoke(args=["open-compartment", "1", "2", "--wait", "0.3"])
    assert "pending: the locker has not answered yet" in result.output


# Keypad -------------------------------------------------------------------------------------

@pytest.fixture
def keypad():
    port = ScannerEmulator()
    yield port
    port.close()


def numeric_code_of(app, rid):
    with app.app_context():
        return db.session.get(Reservation, rid).numeric_code


def test_the_numeric_code_on_the_keypad_opens_the_same_door(app, live_server, emulator, keypad,
                                                            make_controller):
    url = book(live_server, "bollerwagen")
    rid = reservation_id_of(app, url)
    page = __import__("requests").get(url, timeout=5).text
    code = numeric_code_of(app, rid)
    assert f"{code[:4]} {code[4:]}" in page and len(code) == 8
    controller = make_controller(keypad_port=keypad.port)
    wait_until(lambda: controller.store.reservation(rid) and
               controller.store.reservation(rid).compartment == 5)
    keypad.scan(f"{code[:4]} {code[4:]}")  # digits and Enter, spaces as some keypads send
    assert emulator.wait_for(lambda e: e.unlocks_received(), timeout=5)
    assert emulator.unlocks_received() == [family_a.encode_unlock(1, 5)]
    wait_until(lambda: state_of(app, rid) == "picked_up", message="pickup by keypad")


def test_wrong_codes_lock_the_keypad_for_a_growing_time(app, live_server, emulator, keypad,
                                                       make_controller):
    url = book(live_server)
    code = numeric_code_of(app, reservation_id_of(app, url))
    clock = FrozenDateTimeFactory(datetime.now(timezone.utc).replace(tzinfo=None))
    controller = make_controller(clock=lambda: clock().replace(tzinfo=timezone.utc),
                                 keypad_port=keypad.port, keypad_lock_seconds=30)
    wrong = "00000000" if code != "00000000" else "11111111"
    for _ in range(3):
        controller.keypad.handle_line(wrong)
    assert kinds_seen(controller).count("keypad_locked") == 1
    # Even the right code is refused while locked.
    assert controller.keypad.handle_line(code).reason == "keypad_locked"
    clock.tick(31)
    for _ in range(3):
        controller.keypad.handle_line(wrong)
    assert controller.keypad.locked_until - clock().replace(tzinfo=timezone.utc) == timedelta(seconds=60)
    clock.tick(61)
    assert controller.keypad.handle_line(code).opens
    assert emulator.wait_for(lambda e: e.unlocks_received(), timeout=5)
    wait_until(lambda: "keypad_locked" in server_kinds(app), message="staff alert on the server")


# Item sensors (family B) -------------------------------------------------------------------------

@pytest.fixture
def bus_b():
    with BoardEmulator([EmulatedBoard(0, 16)], family="B", pulse_seconds=0.01) as emulator:
        yield emulator


def test_with_item_sensors_a_return_needs_the_item_inside(app, live_server, bus_b, scanner,
                                                         tmp_path):
    from controller.service import LockerController
    from tests.conftest import cabinet_on_family_b, controller_settings
    cabinet_on_family_b(app)
    settings = controller_settings(tmp_path, live_server, bus_b, scanner, board_family="B")
    controller = LockerController(settings).start()
    try:
        assert controller.synced.wait(10) and controller.scanner_ready.wait(10)
        url = book(live_server)
        rid = reservation_id_of(app, url)
        scanner.scan(url)
        wait_until(lambda: state_of(app, rid) == "picked_up")
        bus_b.take_item(1)
        bus_b.close_door(1)
        wait_until(lambda: kinds_seen(controller).count("door_closed") == 1)
        scanner.scan(url)  # return, but the door is shut again without the rollator
        wait_until(lambda: kinds_seen(controller).count("door_opened") == 2)
        bus_b.close_door(1)
        wait_until(lambda: "return_incomplete" in kinds_seen(controller))
        assert state_of(app, rid) == "picked_up"
        scanner.scan(url)  # the code still opens; this time the rollator goes in
        wait_until(lambda: kinds_seen(controller).count("door_opened") == 3)
        bus_b.put_item(1)
        bus_b.close_door(1)
        wait_until(lambda: state_of(app, rid) == "returned", message="return with the item")
    finally:
        controller.stop()


# Alerts and status -------------------------------------------------------------------------------

def test_door_left_open_and_forced_are_alerts(app, emulator, make_controller):
    controller = make_controller(door_open_alert=0.3)
    wait_door_seen_shut(controller, 4)
    emulator.force_door(4)
    wait_until(lambda: "door_forced" in kinds_seen(controller))
    wait_until(lambda: "door_left_open" in kinds_seen(controller))
    wait_until(lambda: {"door_forced", "door_left_open"} <= set(server_kinds(app)))
    result = app.test_cli_runner().invoke(args=["alerts"])
    assert "compartment 4: door_left_open" in result.output and "door_forced" in result.output
    emulator.close_door(4)
    wait_until(lambda: "door_closed" in server_kinds(app))
    result = app.test_cli_runner().invoke(args=["alerts"])
    assert "door_left_open" not in result.output and "door_forced" in result.output


def test_a_missing_scanner_is_an_alert(app, live_server, emulator, scanner, tmp_path):
    from controller.service import LockerController
    from tests.conftest import controller_settings
    settings = controller_settings(tmp_path, live_server, emulator, scanner,
                                   scanner_port=str(tmp_path / "no-scanner"))
    controller = LockerController(settings).start()
    try:
        wait_until(lambda: "scanner_lost" in server_kinds(app), message="scanner alert")
    finally:
        controller.stop()


def test_an_unreachable_server_is_an_alert_when_it_is_back(app, emulator, scanner, tmp_path):
    from controller.service import LockerController
    from tests.conftest import controller_settings
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = controller_settings(tmp_path, f"http://127.0.0.1:{port}", emulator, scanner,
                                   server_unreachable_alert=0.5, max_backoff=0.2)
    controller = LockerController(settings).start()
    try:
        wait_until(lambda: "server_unreachable" in kinds_seen(controller), message="alert stored")
        server, _ = serve(app, port)
        try:
            wait_until(lambda: {"server_unreachable", "server_back"} <= set(server_kinds(app)))
        finally:
            server.shutdown()
    finally:
        controller.stop()


def test_status_command_shows_boards_doors_outbox_and_sync(controller, tmp_path, capsys):
    from controller.__main__ import main
    config = tmp_path / "status.toml"
    config.write_text(f'[controller]\ndatabase = "{controller.settings.database}"\n')
    wait_until(lambda: '"1": "locked"' in (controller.store.setting("status") or ""))
    assert main(["status", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "outbox:" in out and "last sync:" in out and "compartment 1: locked" in out


# The cabinet row is the one source of truth for the board family ---------------------------

def test_the_cabinets_board_family_wins_over_the_controllers_own_setting(app, emulator, make_controller):
    # The emulated board speaks family A, as the cabinet row says; the controller's own
    # settings say B. It must drive the board as A, warn once, and tell staff.
    controller = make_controller(board_family="B")
    wait_until(lambda: "config_mismatch" in server_kinds(app), message="mismatch alert on the server")
    assert server_kinds(app).count("config_mismatch") == 1
    with app.app_context():
        event = db.session.scalars(db.select(ControllerEvent).where(
            ControllerEvent.kind == "config_mismatch")).one()
        assert '"cabinet": "A"' in event.detail and '"controller": "B"' in event.detail
    wait_until(lambda: emulator.requests_seen > 3, message="family-A polls answered")
    with app.app_context():
        request_open(db.session, db.session.get(Cabinet, 1), 4, requested_by="staff")
    assert emulator.wait_for(lambda e: e.unlocks_received(), timeout=5)
    assert emulator.unlocks_received() == [family_a.encode_unlock(1, 4)]
    # Staff see the controller's report on the cabinet page.
    wait_until(lambda: '"board_family": "A"' in (_reported(app) or ""), message="status report")
    assert controller.status_report()["outbox"] >= 0


def _reported(app):
    from locker_app.models import Controller
    with app.app_context():
        return db.session.get(Controller, 1).reported_status


def test_a_remote_open_can_be_followed_by_its_request_id_to_the_door(app, emulator, controller,
                                                                     caplog):
    """The staff request's id (from nginx) goes with the command to the controller, comes
    back in its unlock_sent event, and the server logs the outcome under it."""
    import logging
    from tests.conftest import log_in, make_account
    caplog.set_level(logging.INFO, logger="locker_app.services.controllers")
    wait_until(lambda: controller.uplink.client is not None and emulator.requests_seen > 2)
    make_account(app, "weber")
    staff = app.test_client()
    log_in(staff, "weber")
    asked = staff.post("/staff/cabinets/1/open", data={"confirmed": "yes", "compartment": "6", "reason": "Wartung"},
                       headers={"X-Request-ID": "follow-me-0123456789"})
    assert asked.status_code == 302
    assert emulator.wait_for(lambda e: e.unlocks_received(), timeout=5)

    def reported():
        with app.app_context():
            return db.session.scalars(db.select(ControllerEvent).where(
                ControllerEvent.kind == "unlock_sent")).first()
    event = wait_until(reported, message="the unlock_sent event on the server")
    assert json.loads(event.detail)["request_id"] == "follow-me-0123456789"
    lines = [r for r in caplog.records if "remote open of compartment 6" in r.getMessage()]
    assert lines and lines[0].request_id == "follow-me-0123456789"


def test_the_controllers_readiness_says_whether_board_and_server_answer(emulator,
                                                                        make_controller):
    """/healthz and /readyz, as the web site answers them (health_http)."""
    import requests
    controller = make_controller(health_http="127.0.0.1:0")
    url = controller.health.url
    assert requests.get(url + "/healthz", timeout=5).json() == {"status": "ok"}

    def readyz(status: int):
        answer = requests.get(url + "/readyz", timeout=5)
        return answer.json() if answer.status_code == status else None
    ready = wait_until(lambda: readyz(200), message="ready")
    assert ready == {"ready": True, "checks": {"board": "ok", "server": "ok"}}
    emulator.power_off()
    refused = wait_until(lambda: readyz(503), timeout=20, message="not ready")
    assert refused["checks"]["board"].startswith("not answering: board(s) 1")
    assert refused["checks"]["server"] == "ok"
    emulator.power_on()


def test_stopping_while_a_call_to_the_server_is_under_way_prints_no_traceback(
        app, make_controller, caplog):
    """Ctrl-C on ./run-demo stops the web site and the controller at once; the uplink,
    still waiting for a sync's answer, found the store closed under it and wrote a
    traceback. A thread that fails after the stop was asked for now ends quietly."""
    import threading
    gate, inside, armed = threading.Event(), threading.Event(), threading.Event()
    inner = app.wsgi_app

    def held(environ, start_response):
        if armed.is_set() and environ["PATH_INFO"] == "/api/v1/controller/sync":
            inside.set()
            gate.wait(10)
        return inner(environ, start_response)
    app.wsgi_app = held
    try:
        ctl = make_controller()
        armed.set()
        ctl.uplink.request_sync()
        assert inside.wait(10), "the uplink did not ask for a sync"
        caplog.clear()
        ctl.stop(timeout=0.2)  # the uplink is still in its call: not waited for long
        gate.set()
        uplink = next(t for t in ctl._threads if t.name == "uplink")
        uplink.join(10)
        assert not uplink.is_alive()
    finally:
        gate.set()
        app.wsgi_app = inner
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert not [r for r in caplog.records if r.levelno >= 40]
