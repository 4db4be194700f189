"""Doors the controller could have missed: opened and shut while it waited for a reply that
never comes, or between two polls. The board's item sensors tell what happened behind a
door that never read open; a change is confirmed by a second read at once, not a poll later;
a board that never answers unlocks is remembered across a restart."""
import json
import time

import pytest

from controller.doors import CLOSED_AFTER_PICKUP, DoorTracker
from hardware.emulator import BoardEmulator, EmulatedBoard, Faults
from locker_app.extensions import db
from locker_app.models import ControllerEvent
from tests.conftest import (cabinet_on_family_b, controller_settings, wait_door_seen_shut,
                            wait_until)
from tests.test_end_to_end import book, kinds_seen, reservation_id_of, state_of


@pytest.fixture
def quiet_bus_b():
    """A KR-CU16 that says nothing to an unlock (the disputed variant)."""
    faults = Faults(unlock_without_reply=True)
    with BoardEmulator([EmulatedBoard(0, 16)], family="B", pulse_seconds=0.01,
                       faults=faults) as emulator:
        yield emulator


def start_controller(tmp_path, live_server, emulator, scanner, **overrides):
    from controller.service import LockerController
    settings = controller_settings(tmp_path, live_server, emulator, scanner, board_family="B",
                                   **overrides)
    controller = LockerController(settings).start()
    assert controller.synced.wait(10) and controller.scanner_ready.wait(10)
    return controller


def server_details(app, rid, kind):
    with app.app_context():
        return [json.loads(e.detail or "{}") for e in db.session.scalars(db.select(ControllerEvent).where(
            ControllerEvent.reservation_id == rid, ControllerEvent.kind == kind))]


def test_a_pickup_behind_a_door_that_never_read_open_is_read_from_the_item_sensor(
        app, live_server, quiet_bus_b, scanner, tmp_path):
    # The board says nothing to the unlock; the controller waits its full response time
    # (2 s here). The visitor is quicker: door open, rollator out, door shut, all before
    # the next state read. Before: no pickup recorded, and the return scan opened as a pickup.
    cabinet_on_family_b(app)
    controller = start_controller(tmp_path, live_server, quiet_bus_b, scanner,
                                  response_timeout=2.0)
    try:
        url = book(live_server)
        rid = reservation_id_of(app, url)
        # As the other scan tests do: the controller knows the reservation before the scan.
        # (No pickup within 10 s in two full runs in a row, and once in four runs of the
        # controller's test files; the cause is not established, as the controller's own
        # log is not in the failure.)
        wait_until(lambda: controller.store.reservation(rid), message="reservation synced")

        def quick_pickup(board, lock):
            board.items[lock], board.doors[lock] = False, True
        quiet_bus_b.after_pulse = quick_pickup
        scanner.scan(url)
        wait_until(lambda: state_of(app, rid) == "picked_up", message="pickup recorded")
        assert kinds_seen(controller)[-3:] == ["door_opened", "pickup", "door_closed"]
        assert server_details(app, rid, "door_opened")[0]["unseen"] == "item_sensor"
        assert controller.board.doors[1].state == CLOSED_AFTER_PICKUP

        def quick_return(board, lock):
            board.items[lock], board.doors[lock] = True, True
        quiet_bus_b.after_pulse = quick_return
        scanner.scan(url)  # the return: not taken for a second pickup
        wait_until(lambda: state_of(app, rid) == "returned", message="return recorded")
        assert kinds_seen(controller).count("pickup") == 1
        assert quiet_bus_b.pulses()[0] == [1, 1]
    finally:
        controller.stop()


def test_an_item_gone_behind_a_shut_door_without_an_unlock_is_an_alert(
        app, live_server, quiet_bus_b, scanner, tmp_path):
    cabinet_on_family_b(app)
    controller = start_controller(tmp_path, live_server, quiet_bus_b, scanner)
    try:
        wait_until(lambda: 3 in controller.board.doors and controller.board.doors[3].item is True,
                   message="the controller has seen the rollator in compartment 3")
        quiet_bus_b.take_item(3)  # the door never reads open (a forced latch, a bad contact)
        wait_until(lambda: "door_forced" in kinds_seen(controller))
        event = [e for e in controller.store.all_events() if e.kind == "door_forced"][0]
        assert event.compartment == 3 and event.detail == {"unseen": "item_sensor",
                                                            "item_present": False}
        assert "pickup" not in kinds_seen(controller)
    finally:
        controller.stop()


def test_a_board_that_never_answers_unlocks_is_remembered_after_a_restart(
        app, live_server, quiet_bus_b, scanner, tmp_path):
    # Before: the first unlock after every start waited out the full response time
    # (2 s here) in which no door was read.
    cabinet_on_family_b(app)
    first = start_controller(tmp_path, live_server, quiet_bus_b, scanner, response_timeout=2.0)
    try:
        url = book(live_server)
        rid = reservation_id_of(app, url)
        wait_until(lambda: first.store.reservation(rid), message="reservation synced")
        scanner.scan(url)
        wait_until(lambda: state_of(app, rid) == "picked_up", message="pickup")
        assert first.store.setting("unlock_replies_B") == "0"
    finally:
        first.stop()
    quiet_bus_b.close_door(1)
    quiet_bus_b.take_item(1)
    second = start_controller(tmp_path, live_server, quiet_bus_b, scanner, response_timeout=2.0)
    try:
        wait_door_seen_shut(second, 1)
        seen = len(quiet_bus_b.received())
        scanner.scan(url)  # the return

        def read_after_unlock():
            frames = [f for f in quiet_bus_b.frames() if f.direction == "rx"]
            unlocks = [f for f in frames if f.data[2] == 0x31]
            if len(quiet_bus_b.received()) <= seen or len(unlocks) < 2:
                return None
            later = [f for f in frames if f.data[2] == 0x30 and f.monotonic > unlocks[-1].monotonic]
            return (unlocks[-1], later[0]) if later else None
        unlock, next_read = wait_until(read_after_unlock, message="a state read after the unlock")
        # The board's pulse (0.5 s) is waited for, not the 2 s of a reply that never comes.
        assert next_read.monotonic - unlock.monotonic < 1.5
    finally:
        second.stop()


def test_a_change_is_confirmed_by_a_second_read_at_once(app, emulator, make_controller):
    # Polls 3 s apart: before, a door counted as opened only at the second poll that saw
    # it open, 3 s later, and a door open for less than that was never seen.
    controller = make_controller(poll_interval=3.0)
    wait_door_seen_shut(controller, 4)
    polls = emulator.requests_seen
    wait_until(lambda: emulator.requests_seen > polls, timeout=5, message="a poll")
    forced_at = time.monotonic()
    emulator.force_door(4)  # right after a poll: the next one is 3 s away
    wait_until(lambda: "door_forced" in kinds_seen(controller), timeout=5.5, message="forced door")
    opened = [e for e in controller.store.all_events() if e.kind == "door_forced"][0]
    assert opened.compartment == 4
    # The read that saw the door open and the one that confirmed it are moments apart.
    first, second = [f for f in emulator.frames()
                     if f.direction == "rx" and f.monotonic > forced_at][:2]
    assert second.monotonic - first.monotonic < 1.0

def test_a_controller_stops_at_once_between_two_slow_polls(tmp_path, live_server, emulator, scanner):
    # The board worker waited for its next poll before it looked at the stop flag: with polls
    # 3 s apart, stopping the controller took up to 3 s.
    from controller.service import LockerController
    settings = controller_settings(tmp_path, live_server, emulator, scanner, poll_interval=3.0)
    controller = LockerController(settings).start()
    assert controller.synced.wait(10)
    asked = time.monotonic()  # the board worker waits for its next poll, 3 s away
    controller.stop()
    assert time.monotonic() - asked < 1.5  # (the next poll was about 3 s away)
    assert not [t for t in controller._threads if t.is_alive() and t.name == "board-worker"]


# The tracker alone ---------------------------------------------------------------------------

def test_tracker_reads_an_unseen_return_and_ignores_a_flickering_item_sensor():
    tracker = DoorTracker()
    for now in (0.0, 0.5):
        assert tracker.reading(True, now, 20, item_present=False) == []
    tracker.unlock_sent(7, "return", 1.0)
    assert tracker.reading(True, 1.5, 20, item_present=True) == []  # one reading: not yet
    kinds = [o.kind for o in tracker.reading(True, 2.0, 20, item_present=True)]
    assert kinds == ["door_opened", "door_closed", "return"]
    assert tracker.to_dict()["item"] is True and DoorTracker.from_dict(tracker.to_dict()).item is True
    # A sensor that flickers for one reading changes nothing.
    assert tracker.reading(True, 2.5, 20, item_present=False) == []
    assert tracker.reading(True, 3.0, 20, item_present=True) == []


def test_the_first_reading_after_a_silent_board_does_not_end_the_wait_for_the_door():
    # Seen in the serial soak: the board came back after a power cut, its first reading
    # said "open" (the door had sprung open meanwhile); the unlock's time was up, so it was
    # reported as not opened and the opening a moment later as a forced door.
    tracker = DoorTracker()
    for now in (0.0, 0.5):
        tracker.reading(True, now, 1.0)
    tracker.unlock_sent(9, "pickup", 1.0)
    assert [o.kind for o in tracker.board_silent(2.5, 1.0)] == ["unlock_unanswered"]
    assert tracker.board_silent(3.0, 1.0) == []  # once
    assert tracker.reading(False, 5.0, 1.0) == []  # unconfirmed: no verdict yet
    assert tracker.unconfirmed
    assert [o.kind for o in tracker.reading(False, 5.05, 1.0)] == ["door_opened", "pickup"]
    # A door that stays shut is reported once two readings agree.
    tracker = DoorTracker()
    for now in (0.0, 0.5):
        tracker.reading(True, now, 1.0)
    tracker.unlock_sent(9, "pickup", 1.0)
    assert tracker.reading(True, 5.0, 1.0)[0].kind == "unlock_failed"
