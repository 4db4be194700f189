"""A short soak through a faulty line, in CI (the long one: see README). It asserts that no
unlock was ever sent twice on its own, no wrong lock opened, every transaction is counted."""
import os
from collections import Counter

import pytest
import serial

from hardware.drivers import Timing, make_driver
from hardware.emulator import BoardEmulator, EmulatedBoard, Faults
from hardware.soak import run_soak

CYCLES = int(os.environ.get("LOCKER_SOAK_CYCLES", "3"))


@pytest.mark.parametrize("family, boards, locks, baud", [
    ("A", [1, 2], list(range(1, 9)), 9600),
    ("B", [0], list(range(1, 17)), 19200),
])
def test_soak_through_a_faulty_line(family, boards, locks, baud):
    faults = Faults(corrupt_probability=0.05, drop_probability=0.05,
                    unsolicited_probability=0.05)
    emulator = BoardEmulator([EmulatedBoard(b, len(locks)) for b in boards], family=family,
                             pulse_seconds=0.002, faults=faults, seed=7).start()
    port = serial.serial_for_url(emulator.port, baudrate=baud)
    timing = Timing(response_timeout=0.15, quiet_time=0.02, transaction_gap=0.002,
                    recovery_quiet=0.05)
    options = {"channels": len(locks)} if family == "A" else {"pulse_seconds": 0.002}
    driver = make_driver(family, port, timing, **options)
    try:
        report = run_soak(driver, {b: locks for b in boards}, CYCLES,
                          close_door=lambda board, lock: emulator.close_door(lock, board))
    finally:
        port.close()
        emulator.stop()
    asked = Counter(report.unlocks_requested)
    assert len(report.unlocks_requested) == CYCLES * len(boards) * len(locks)
    # No unlock sent twice on its own: the bus carried exactly one frame per request.
    decode = emulator.bus.decode_request
    on_the_wire = Counter()
    for frame in emulator.unlocks_received():
        request = decode(frame)[0]
        on_the_wire[(request.board, request.lock)] += 1
    assert on_the_wire == asked
    # No wrong lock opened: every pulse was asked for, and each request pulsed at most once.
    pulsed = Counter((board, lock) for board, locks_pulsed in emulator.pulses().items()
                     for lock in locks_pulsed)
    assert pulsed == asked
    # Every transaction is accounted for.
    stats = driver.stats
    assert stats.transactions == stats.ok + stats.timeouts + stats.framing_errors
    assert stats.transactions >= len(report.unlocks_requested) * 2
    assert report.doors_not_opened == []
    assert stats.timeouts + stats.framing_errors > 0, "the faults were not exercised"


def test_bench_commands_against_the_emulator(capsys):
    from hardware.bench import main
    assert main(["--emulate", "--timeout", "0.2", "find", "--addresses", "1-3"]) == 0
    assert "board 1: 1:zu" in capsys.readouterr().out
    assert main(["--emulate", "--family", "B", "unlock", "0", "5"]) == 0
    assert "5:AUF" in capsys.readouterr().out
    assert main(["--emulate", "--seed", "1", "soak", "--boards", "1", "--locks", "1-4",
                 "--cycles", "2"]) == 0
    out = capsys.readouterr().out
    assert "unlocks sent:         8" in out and "doors that did not open: 0" in out
    assert main(["--emulate", "watch", "1", "--count", "1", "--interval", "0"]) == 0
    assert main(["--port", "/dev/nonexistent-adapter", "find"]) == 2
    assert "Cannot open" in capsys.readouterr().err


def test_emulator_commands_switch_faults_and_actions():
    from hardware.emulator import ScannerEmulator
    from hardware.emulator_cli import run_command
    emulator = BoardEmulator([EmulatedBoard(1, 8)], pulse_seconds=0)
    scanner = ScannerEmulator()
    try:
        assert run_command("force 3", emulator, scanner) == "force 3: done"
        assert emulator.door_closed(3) is False
        run_command("take 3", emulator, scanner)
        assert "1/3:OPEN(empty)" in run_command("doors", emulator, scanner)
        run_command("drop 0.5", emulator, scanner)
        run_command("delay 0.2", emulator, scanner)
        run_command("power off", emulator, scanner)
        run_command("stick 2", emulator, scanner)
        assert (emulator.faults.drop_probability, emulator.faults.reply_delay) == (0.5, 0.2)
        assert not emulator.powered and 2 in emulator.boards[1].stuck_locks
        assert run_command("drop 7", emulator, scanner) == "a probability is between 0 and 1"
        assert run_command("close 99", emulator, scanner).startswith("not possible")
        assert run_command("nonsense", emulator, scanner).startswith("commands:")
    finally:
        emulator.stop()
        scanner.close()
