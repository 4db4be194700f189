"""The benchmarks' short versions: they run and report their figures (no timing asserted;
speed goals are read off the full runs, see README)."""
from bench.scan_to_unlock import main, measure


def test_scan_to_unlock_bench_runs_and_reports(capsys):
    figures = measure(samples=6, poll_interval=0.1)
    assert figures["samples"] == 6
    assert 0 < figures["median_ms"] <= figures["max_ms"]
    assert round(figures["wire_ms"], 2) == 5.21
    assert main(["--samples", "4", "--poll-interval", "0.1"]) == 0
    assert "estimate on a real line" in capsys.readouterr().out


def test_controller_resources_bench_runs_and_reports():
    from bench.controller_resources import measure
    figures = measure(seconds=2)
    assert figures["idle"]["rss_mb"] > 0 and figures["idle"]["requests"] >= 4
    assert figures["unlocks"] >= 1


def test_systemd_watchdog_gets_ready_and_alive_messages(tmp_path, controller, monkeypatch):
    import socket
    from controller.service import _sd_notify
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(path)
        listener.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        _sd_notify("READY=1")
        controller._last_heartbeat = 0.0
        controller.heartbeat()
        assert [listener.recv(64), listener.recv(64)] == [b"READY=1", b"WATCHDOG=1"]


def test_statistics_bench_runs_and_reports():
    from bench.statistics import measure, report
    figures = measure(2000, runs=2, quiet=True)
    assert figures["reservations"] == 2000 and figures["year_page_seconds"] > 0
    assert "statistics page, a year" in report(figures)


def test_city_scale_bench_runs_and_reports():
    """The short version: 2,000 past reservations on SQLite behind the real gunicorn."""
    from bench.city_scale import measure, report
    [figures] = measure(2000, rounds=3, bookings=8, quiet=True)
    assert figures["reservations"] == 2000 and figures["site_seconds"] > 0
    assert figures["availability_seconds"] > 0 and figures["first_sync_reservations"] >= 8
    assert figures["bookings_per_second_8"] > 0
    text = report([figures])
    assert "booking, 8 clients" in text and "availability API" in text
    # Growth as multiples of the bare endpoint: a machine twice as slow at the larger
    # size is no growth of the page's cost.
    slower = dict(figures, reservations=20000, site_seconds=figures["site_seconds"] * 2,
                  page_bare_seconds=figures["page_bare_seconds"] * 2)
    assert "site page growth 2,000 -> 20,000: 1.00x of bare (times alone 2.00x)" in report(
        [figures, slower])
    assert figures["reservation_seconds"] > 0 and "reservation page" in text


def test_booking_rush_bench_runs_and_reports(tmp_path):
    """The short version: 120 attempts for 10 items over two gunicorn instances on the
    test PostgreSQL; nothing may go wrong even here."""
    from tests.conftest import require_postgres
    require_postgres()
    from bench.booking_rush import measure, report
    figures = measure(attempts=120, items=10, postgres=True)
    assert (figures["booked"], figures["refused"], figures["errors"]) == (10, 110, 0), figures
    assert figures["active_in_database"] == 10 and figures["overlaps"] == 0
    assert "simultaneous attempts" in report(figures)


def test_many_cabinets_bench_runs_and_reports():
    """The short version: 20 controllers on the real broker for a few seconds."""
    from tests.test_broker import broker_problem
    from tests.conftest import IN_CI
    import pytest
    problem = broker_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"CI must run the broker tests, but {problem}")
        pytest.skip(problem)
    from bench.many_cabinets import measure, report
    figures = measure(controllers=20, seconds=4, long_poll=False, spread=1)
    assert figures["broker_samples"] > 10 and figures["alone_p95"] > 0
    assert "on the broker" in report(figures)


def test_the_fault_bench_short_run_meets_its_goal(capsys):
    """bench.faults --short: two gunicorn instances behind nginx on a PostgreSQL database of
    its own, its own Redis and broker; Redis stalls, the database stalls and is cut, a web
    instance is killed, while visitors book and controllers deliver events."""
    import shutil

    import pytest

    from bench import faults, nginx_front
    from tests.conftest import IN_CI, require_postgres
    require_postgres()
    missing = [name for name in ("redis-server", "mosquitto") if not shutil.which(name)]
    if not nginx_front.available():
        missing.append("nginx")
    if missing:
        if IN_CI:
            pytest.fail(f"CI must run the fault bench, but {', '.join(missing)} is missing")
        pytest.skip(f"the fault bench needs {', '.join(missing)}")
    figures = faults.measure(seconds=3.0, bookers=4, short=True)
    print(faults.report(figures))
    assert figures["requests"] > 100 and figures["booked"] > 10 and figures["events"] > 5
    assert figures["answers_503"] > 0  # the faults happened, and were answered so
    assert faults.met(figures), faults.report(figures)
