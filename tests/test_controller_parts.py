"""The controller's pure parts: scanner lines, door tracking, the offline decision, settings."""
from datetime import datetime, timedelta, timezone

import pytest

import signed_code
from controller.decide import decide
from controller.doors import DoorTracker
from controller.scanner import LineAssembler
from controller.settings import Settings
from controller.store import LocalReservation

# Scanner lines ----------------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_lines_end_with_cr_or_crlf_and_empty_ones_are_dropped():
    lines = LineAssembler(debounce=0).feed(b"abc\r\r\ndef\r\n\n  \rghi")
    assert lines == ["abc", "def"]


def test_a_line_split_across_reads_is_joined():
    assembler = LineAssembler()
    assert assembler.feed(b"https://x/r/") == []
    assert assembler.feed(b"TOKEN\r") == ["https://x/r/TOKEN"]


def test_overlong_and_binary_lines_are_dropped_and_the_next_line_counts():
    assembler = LineAssembler(max_length=10, debounce=0)
    assert assembler.feed(b"x" * 50 + b"\r" + b"\x00\xffabc\r" + b"ok\r") == ["ok"]


def test_an_overlong_line_without_cr_does_not_swallow_the_next_scan():
    """Issue 12: 600 bytes without a CR made the next real scan vanish."""
    clock = FakeClock()
    assembler = LineAssembler(max_length=512, debounce=0, clock=clock, quiet_gap=0.5)
    assert assembler.feed(b"x" * 600) == []
    clock.now += 0.6
    assert assembler.feed(b"") == []  # the port was quiet: the stale line goes
    assert assembler.take_refused() == ["too_long"]
    assert assembler.feed(b"https://x/r/TOKEN\r") == ["https://x/r/TOKEN"]


def test_a_half_code_is_dropped_after_a_quiet_gap_but_a_slow_code_is_joined():
    clock = FakeClock()
    assembler = LineAssembler(debounce=0, clock=clock, quiet_gap=0.5)
    assert assembler.feed(b"https://x/r/TO") == []
    clock.now += 0.2
    assert assembler.feed(b"KEN\r") == ["https://x/r/TOKEN"]  # within one burst
    assert assembler.feed(b"garbage") == []
    clock.now += 0.5
    assert assembler.feed(b"ok\r") == ["ok"]
    assert assembler.take_refused() == ["incomplete"]
    assert assembler.feed(b"\x01\x02\r") == [] and assembler.take_refused() == ["not_printable"]


def test_same_code_within_a_second_counts_once():
    clock = FakeClock()
    assembler = LineAssembler(debounce=1.0, clock=clock)
    assert assembler.feed(b"code\r") == ["code"]
    clock.now += 0.5
    assert assembler.feed(b"code\r") == []
    clock.now += 1.0
    assert assembler.feed(b"code\r") == ["code"]
    assert assembler.feed(b"other\r") == ["other"]


# Doors ------------------------------------------------------------------------------------


def feed(tracker, readings, start=0.0, timeout=20.0):
    kinds = []
    for i, closed in enumerate(readings):
        kinds += [o.kind for o in tracker.reading(closed, start + i * 0.5, timeout)]
    return kinds


def test_pickup_is_recorded_when_the_door_opens_after_an_unlock():
    door = DoorTracker()
    assert feed(door, [True, True]) == []
    door.unlock_sent(7, "pickup", 1.0)
    assert feed(door, [False, False, True, True], start=1.5) == [
        "door_opened", "pickup", "door_closed"]


def test_return_is_recorded_when_the_door_closes_again():
    door = DoorTracker()
    feed(door, [True, True])
    door.unlock_sent(7, "return", 1.0)
    assert feed(door, [False, False], start=1.5) == ["door_opened"]
    assert feed(door, [True, True], start=3.0) == ["door_closed", "return"]


def test_a_bouncing_contact_is_not_a_door_movement():
    door = DoorTracker()
    assert feed(door, [True, True, False, True, False, True, True]) == []


def test_a_door_opened_without_an_unlock_is_forced():
    door = DoorTracker()
    assert feed(door, [True, True, False, False]) == ["door_forced"]


def test_an_unlock_that_does_not_open_the_door_is_reported():
    door = DoorTracker()
    feed(door, [True, True])
    door.unlock_sent(7, "pickup", 1.0)
    observations = []
    for t in (2.0, 10.0, 21.5):
        observations += door.reading(True, t, 20.0)
    assert [(o.kind, o.reservation_id) for o in observations] == [("unlock_failed", 7)]
    assert door.pending is None


def test_a_door_already_reading_open_still_counts_for_the_pickup():
    door = DoorTracker()
    feed(door, [False, False])
    assert [o.kind for o in door.unlock_sent(7, "pickup", 1.0)] == ["door_opened", "pickup"]


# The offline decision -----------------------------------------------------------------------

KEY = signed_code.new_private_key()
START = datetime(2026, 6, 10, 8, 0, tzinfo=timezone.utc)
END = START + timedelta(hours=2)


def code(cabinet=1, compartment=3, key=KEY, key_id=1):
    claims = signed_code.CodeClaims(42, cabinet, compartment, START, END)
    return "https://locker.example/r/" + signed_code.sign(key, key_id, claims)


def run(text, *, local=None, now=START + timedelta(minutes=5), cabinet=1):
    return decide(text, public_keys={1: KEY.public_key()}, cabinet_id=cabinet,
                  lookup=lambda rid: local, now=now)


def local(server=None, here=None, compartment=None):
    return LocalReservation(42, server, here, compartment)


def test_valid_code_in_window_opens_its_compartment_for_pickup():
    decision = run(code())
    assert (decision.opens, decision.purpose, decision.compartment) == (True, "pickup", 3)


@pytest.mark.parametrize("now, reason", [
    (START - timedelta(minutes=1), "too_early"),
    (END, "expired"),
])
def test_outside_the_window_nothing_opens(now, reason):
    assert (run(code(), now=now).opens, run(code(), now=now).reason) == (False, reason)


def test_once_picked_up_the_code_opens_for_the_return_even_late():
    late = END + timedelta(days=3)
    for knowledge in (local(here="picked_up"), local(server="picked_up"), local(server="overdue")):
        decision = run(code(), local=knowledge, now=late)
        assert (decision.opens, decision.purpose) == (True, "return")


@pytest.mark.parametrize("knowledge, reason", [
    (local(server="cancelled"), "cancelled"),
    (local(server="no_show"), "no_show"),
    (local(server="returned"), "returned"),
    (local(server="booked", here="returned"), "returned"),
])
def test_synced_or_seen_endings_refuse(knowledge, reason):
    decision = run(code(), local=knowledge)
    assert (decision.opens, decision.reason) == (False, reason)


def test_a_synced_reassignment_overrides_the_compartment_in_the_code():
    assert run(code(), local=local(server="booked", compartment=6)).compartment == 6


@pytest.mark.parametrize("text, reason, cabinet", [
    ("hello", "not_a_code", 1),
    (code(key=signed_code.new_private_key()), "bad_signature", 1),
    (code(key_id=2), "unknown_key", 1),
    (code(cabinet=2), "other_cabinet", 1),
    (code(), "not_synced", None),
])
def test_refusals_say_why(text, reason, cabinet):
    decision = run(text, cabinet=cabinet)
    assert (decision.opens, decision.reason) == (False, reason)


# Settings ------------------------------------------------------------------------------------


def test_settings_from_file_and_environment(tmp_path):
    path = tmp_path / "controller.toml"
    path.write_text('[controller]\nboard_port = "/dev/ttyUSB3"\npoll_interval = 0.25\n'
                    'database = "state/ctl.sqlite"\n')
    settings = Settings.load(path, environ={"LOCKER_CONTROLLER_TOKEN": "abc",
                                            "LOCKER_CONTROLLER_POLL_INTERVAL": "0.75"})
    assert settings.board_port == "/dev/ttyUSB3"
    assert settings.poll_interval == 0.75 and settings.token == "abc"
    assert settings.database == str(tmp_path / "state" / "ctl.sqlite")


@pytest.mark.parametrize("content, message", [
    ('[controller]\nboard_prot = "x"\n', "unknown controller setting"),
    ('[controller]\npoll_interval = "often"\n', "poll_interval must be float"),
])
def test_bad_settings_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        Settings.load(path, environ={})


def test_the_example_config_loads_as_it_is():
    from pathlib import Path
    example = Path(__file__).resolve().parent.parent / "config" / "controller.example.toml"
    settings = Settings.load(example, environ={})
    assert settings.board_port == "/dev/ttyUSB0" and settings.poll_interval == 0.5


def test_a_little_early_opens_when_nobody_else_has_the_item():
    from controller.store import Store
    store = Store(":memory:")
    early_from = (START - timedelta(minutes=15)).isoformat()
    store.apply_sync({"cursor": 1, "cabinet": {"id": 1, "compartments": [
        {"number": 3, "board": 1, "lock": 3}]}, "keys": {}, "reservations": [
        {"id": 42, "state": "booked", "compartment": 3, "valid_from": START.isoformat(),
         "valid_until": END.isoformat(), "early_from": early_from}]})
    mine = store.reservation(42)
    assert mine.early_from == early_from

    def scan(now):
        return decide(code(), public_keys={1: KEY.public_key()}, cabinet_id=1,
                      lookup=store.reservation, now=now, taken=store.compartment_taken)
    ten_early = START - timedelta(minutes=10)
    assert (scan(ten_early).opens, scan(ten_early).reason) == (True, "early_pickup")
    assert scan(ten_early).purpose == "pickup"
    assert scan(START - timedelta(minutes=16)).reason == "too_early"
    # Someone else has the item out (or is in their own pickup window): not early.
    for other in ({"state": "picked_up", "valid_from": (START - timedelta(hours=2)).isoformat(),
                   "valid_until": (START - timedelta(hours=1)).isoformat()},
                  {"state": "booked", "valid_from": (START - timedelta(minutes=30)).isoformat(),
                   "valid_until": (START - timedelta(minutes=1)).isoformat()}):
        store.apply_sync({"cursor": 2, "cabinet": {"id": 1, "compartments": [
            {"number": 3, "board": 1, "lock": 3}]}, "keys": {}, "reservations": [
            {"id": 41, "compartment": 3, **other}]})
        assert scan(ten_early).reason == "too_early", other
    # Without what the controller knows (or without the rule synced), no early pickup.
    assert run(code(), now=ten_early).reason == "too_early"
    store.close()
