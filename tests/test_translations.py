"""Every text a visitor can see has its German translation (German is the default)."""
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent


def test_every_message_in_the_code_is_translated_to_german(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run([str(Path(sys.executable).parent / "pybabel"), "extract", "-F", "babel.cfg",
                    "-k", "_l", "-k", "lazy_gettext", "--no-location", "-o", str(pot), "."],
                   cwd=ROOT, check=True, capture_output=True)
    with open(pot, "rb") as handle:
        wanted = {m.id for m in read_po(handle) if m.id}
    with open(ROOT / "locker_app/translations/de/LC_MESSAGES/messages.po", "rb") as handle:
        catalog = read_po(handle)
    assert not catalog.fuzzy, "a catalog marked fuzzy is not compiled at all"
    german = {m.id: m for m in catalog if m.id}
    missing = [m for m in wanted if m not in german]
    assert missing == [], "run scripts/translations and translate these"
    untranslated = [i for i in wanted if german[i].fuzzy or not all(
        german[i].string if isinstance(german[i].string, tuple) else [german[i].string])]
    assert untranslated == []
