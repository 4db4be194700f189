"""The serial soak, short: scans through a line with 1 % garbled bytes and 5 % lost replies,
two board power cuts and one controller power cut (SIGKILL), on both board families. The
long run is ``python -m bench.serial_soak`` (README, "Hardware bench"); LOCKER_SERIAL_SOAK_OPS
sets the length here."""
import os

import pytest

from bench.serial_soak import SerialSoak

OPERATIONS = int(os.environ.get("LOCKER_SERIAL_SOAK_OPS", "60"))


@pytest.mark.parametrize("family", ["A", "B"])
def test_serial_soak_with_noise_drops_and_power_cuts(family, tmp_path):
    result = SerialSoak(OPERATIONS, family=family, seed=7, folder=tmp_path).run()
    report = "\n".join(result.lines())
    assert result.passed, report
    assert result.operations == OPERATIONS
    assert (result.board_cuts, result.controller_cuts) == (2, 1), report
    assert result.wrong_doors == 0 and result.unlocks_without_event == 0, report
    assert result.without_outcome == 0, report
    assert result.events_lost == 0 and result.events_twice == 0, report
    assert result.events_local == result.events_on_server > 0, report
    # The faults were exercised, and the visitors still got their items.
    assert result.replies_dropped > 0 and result.replies_garbled > 0, report
    assert result.pickups > 0 and result.returns > 0, report
    assert result.event_kinds["board_offline"] >= 1, report
    assert result.unreadable_refused > 0 and result.forged_refused > 0, report
