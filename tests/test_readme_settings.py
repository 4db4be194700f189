"""Every setting the web site, the scheduler or gunicorn reads has its row in the README's
table (LOCKER_BIND and LOCKER_WORKERS had none)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def documented() -> set[str]:
    names = set()
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if not line.startswith("| `LOCKER_"):
            continue
        first_cell = line.split("|")[1]
        found = re.findall(r"`(LOCKER_\w+|_\w+)`", first_cell)
        prefix = found[0].rsplit("_", 1)[0]
        names |= {name if name.startswith("LOCKER_") else prefix + name for name in found}
    return names


def read_by_the_code() -> set[str]:
    names = {f"LOCKER_{name}" for name in re.findall(
        r'(?:_env|_flag)\("(\w+)"', (ROOT / "locker_app" / "config.py").read_text(encoding="utf-8"))}
    names |= set(re.findall(r'"(LOCKER_\w+)"', (ROOT / "config" / "gunicorn.conf.py").read_text(encoding="utf-8")))
    return names


def test_every_setting_has_its_row_in_the_readme():
    assert read_by_the_code() - documented() == set()
