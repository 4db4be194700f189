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
