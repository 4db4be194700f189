"""Issue 32: the locker speaks for visitors who cannot read its screen. Every message in
both languages is made into sound by Debian's espeak-ng and checked with sox: speech of a
sensible length, not silence. Through the controller the sound comes after the tone and
never holds up the unlock."""
import os
import shutil
import subprocess
import time

import pytest

from controller.display import tone_wav
from controller.display_text import LANGUAGES, TEXTS, Message, common_params
from controller.speech import RATE, announcement, spoken_texts

SAMPLE = {"compartment": 12, "time": "09:00", **common_params("040 123 456 78", True)}
MISSING = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
if MISSING and os.environ.get("CI") == "true":
    pytest.fail(f"CI must run the speech tests: {', '.join(MISSING)} missing "
                "(scripts/ensure-test-services installs them)", pytrace=False)
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed "
                                "(scripts/ensure-test-services installs Debian's packages)")


def sox_figures_of(data: bytes, folder) -> tuple[float, float]:
    path = folder / "fetched.wav"
    path.write_bytes(data)
    return sox_figures(path)


def sox_figures(path) -> tuple[float, float]:
    """(seconds, RMS amplitude) as sox measures them."""
    seconds = float(subprocess.run(["sox", "--i", "-D", str(path)], capture_output=True,
                                   text=True, timeout=10, check=True).stdout)
    stat = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True,
                          timeout=10, check=True).stderr
    rms = next(float(line.split(":")[1]) for line in stat.splitlines()
               if line.startswith("RMS     amplitude"))
    return seconds, rms


@pytest.mark.parametrize("locale", LANGUAGES)
@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_message_is_said_as_speech_of_a_sensible_length(key, locale, tmp_path):
    message = Message(key, locale, tone="yes", params=SAMPLE)
    sound = announcement(message, {})
    path = tmp_path / f"{key}-{locale}.wav"
    path.write_bytes(sound)
    seconds, rms = sox_figures(path)
    characters = sum(len(text) for _, text in spoken_texts(message, {}))
    # Slow and clear, about 130 words a minute: at most 25 characters a second, and at least
    # 5 (a phone number is said digit group by digit group), plus the tone and the pauses;
    # never silence.
    assert characters / 25 < seconds < characters / 5 + 4, (key, locale, seconds, characters)
    assert rms > 0.02, (key, locale, rms)
    assert len(spoken_texts(message, {})) == (1 if locale == "de" else 2)


def test_the_sound_begins_with_the_tone(tmp_path):
    sound = announcement(Message("cancelled", tone="no", params=SAMPLE), {})
    tone = tone_wav("no", rate=RATE)
    assert sound[44:44 + 2000] == tone[44:44 + 2000]  # the same samples after the header


def test_the_controller_says_a_message_after_the_tone_without_holding_the_unlock(
        app, live_server, emulator, scanner, make_controller, tmp_path):
    """A slow speaker (a player that takes 5 s) does not delay the door: the unlock
    reaches the board while the message is still being said."""
    from tests.test_end_to_end import book, reservation_id_of
    played = tmp_path / "played.wav"
    controller = make_controller(speech=True, display_http="127.0.0.1:0",
                                 speech_player=f"sh -c 'cat > {played}; sleep 5'")
    url = book(live_server, "bollerwagen")
    controller.sync_now()
    deadline = time.monotonic() + 10
    while not controller.store.reservation(reservation_id_of(app, url)):
        assert time.monotonic() < deadline, "reservation synced"
        controller.sync_now()
    said = controller.display.speaker.said
    scanned = time.monotonic()
    scanner.scan(url)
    assert emulator.wait_for(lambda e: e.unlocks_received(), timeout=5)
    assert time.monotonic() - scanned < 3  # not after the 5 s of speaking
    deadline = time.monotonic() + 10
    while not (played.exists() and played.stat().st_size > 44):
        assert time.monotonic() < deadline, "the player got the sound"
        time.sleep(0.05)
    assert controller.display.speaker.said > said
    seconds, rms = sox_figures(played)
    assert seconds > 1 and rms > 0.02
    # The cabinet's screen page (the emulated locker's too) plays the same sound once.
    import re

    import requests
    from tests.conftest import wait_until
    speaker = controller.display.speaker
    wait_until(lambda: speaker.sound_for(controller.display.current()[0]) is not None,
               timeout=15, message="the message on the screen has its sound")
    base = controller.display.page.url
    page = requests.get(base + "/?seen=0", timeout=5).text
    said_at = re.search(r'<audio src="(/say/\d+\.wav)" autoplay>', page)
    assert said_at, page
    sound = requests.get(base + said_at[1], timeout=5)
    assert sound.headers["Content-Type"] == "audio/wav"
    assert sox_figures_of(sound.content, tmp_path)[1] > 0.02
