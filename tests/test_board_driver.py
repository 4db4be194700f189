"""The family A driver against the emulator through a real pseudo-terminal."""
import serial

import pytest

from hardware.drivers import NoResponseError, Timing
from hardware.drivers.family_a import FamilyADriver
from hardware import family_a
from hardware.emulator import BoardEmulator, EmulatedBoard

FAST = Timing(response_timeout=0.3, quiet_time=0.025, transaction_gap=0.005)


@pytest.fixture
def bus():
    with BoardEmulator([EmulatedBoard(1, 8), EmulatedBoard(2, 8)], pulse_seconds=0.02) as board:
        port = serial.serial_for_url(board.port, baudrate=9600)
        yield board, FamilyADriver(port, FAST)
        port.close()


def test_read_doors_of_two_boards_on_one_bus(bus):
    board, driver = bus
    board.open_door(3, board=2)
    assert all(driver.read_board(1).doors[lock] for lock in range(1, 9))
    doors = driver.read_board(2).doors
    assert doors[3] is False and doors[4] is True


def test_unlock_sends_one_frame_and_reports_the_door(bus):
    board, driver = bus
    assert driver.unlock(1, 6).door_closed is False  # the emulated door springs open
    assert board.unlocks_received() == [family_a.encode_unlock(1, 6)]
    assert driver.read_board(1).doors[6] is False


def test_a_missing_board_is_no_response_and_is_not_asked_twice(bus):
    board, driver = bus
    with pytest.raises(NoResponseError):
        driver.unlock(9, 1)
    assert board.unlocks_received() == [family_a.encode_unlock(9, 1)]
    # The line works for the next transaction.
    assert driver.read_board(1).doors[1] is True


def test_inverted_polarity(bus):
    board, driver = bus
    for b in board.boards.values():
        b.inverted_polarity = True
    inverted = FamilyADriver(driver.port, FAST, inverted_polarity=True)
    board.open_door(2, board=1)
    doors = inverted.read_board(1).doors
    assert doors[2] is False and doors[1] is True
