"""Benchmarks: each prints its figures; run them as ``python -m bench.<name>``."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def record(title: str, command: str, text: str) -> None:
    """Append a run's figures to bench/RESULTS.md (``--record``): a dated heading, the
    command that made them, and what it printed."""
    with open(RESULTS, "a", encoding="utf-8") as handle:
        handle.write(f"\n## {title}, {datetime.now():%Y-%m-%d %H:%M}\n\n"
                     f"`{command}`\n\n```\n{text}\n```\n")
