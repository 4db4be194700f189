"""The locker speaks, for visitors who cannot read its screen (issue 32). With ``speech =
true`` each message the display shows is said through the cabinet's speaker after its
tone: the title and the hint in German, then in the reservation's language when that is
English, in a slow, clear voice. espeak-ng (Debian's ``espeak-ng``) makes the sound; the
player (``speech_player``, e.g. ``aplay -q``) gets it as one WAV on its standard input.

Speaking runs in a thread of its own and never holds up the unlock: a message waits in a
queue of one (a newer message replaces one not yet said), and the synthesis and the player
each have a time-out. The cabinet's screen page plays the same WAV (the emulated locker
of ./run-demo plays it in the browser)."""
from __future__ import annotations

import io
import logging
import queue
import shlex
import subprocess
import threading
import wave

from controller.display_text import Message

logger = logging.getLogger(__name__)
RATE = 22050  # espeak-ng's own sample rate: the tone is made at it too, for one file
VOICES = {"de": "de", "en": "en-gb"}
SYNTHESIS_SECONDS = 10.0


def spoken_texts(message: Message, params: dict) -> list[tuple[str, str]]:
    """(language, what is said): German first, then the visitor's language."""
    full = Message(message.key, message.locale, message.tone, {**params, **message.params})
    return [(language, " ".join(full.text(language))) for language in full.languages()]


def synthesize(text: str, language: str, words_per_minute: int = 130,
               command: str = "espeak-ng") -> bytes:
    """The text said by espeak-ng as a WAV (mono, 16 bit, 22.05 kHz)."""
    done = subprocess.run([command, "-v", VOICES.get(language, "de"), "-s", str(words_per_minute),
                           "--stdout", text], capture_output=True, timeout=SYNTHESIS_SECONDS,
                          check=True)
    return done.stdout


def _frames(wav_bytes: bytes) -> bytes:
    with wave.open(io.BytesIO(wav_bytes)) as sound:
        if sound.getframerate() != RATE or sound.getsampwidth() != 2 or sound.getnchannels() != 1:
            raise ValueError("unexpected sound format from the synthesizer")
        return sound.readframes(sound.getnframes())


def announcement(message: Message, params: dict, *, words_per_minute: int = 130,
                 command: str = "espeak-ng") -> bytes:
    """One WAV: the message's tone, a short pause, then each language's text."""
    from controller.display import mono_wav, tone_wav
    pause = b"\x00\x00" * int(RATE * 0.3)
    frames = bytearray()
    if message.tone:
        frames += _frames(tone_wav(message.tone, rate=RATE)) + pause
    for language, text in spoken_texts(message, params):
        frames += _frames(synthesize(text, language, words_per_minute, command)) + pause
    return mono_wav(bytes(frames), RATE)


class Speaker:
    """Says the display's messages in a thread of its own (``speak`` never waits)."""

    def __init__(self, settings, params) -> None:
        self.settings = settings
        self.params = params  # the hotline and keypad words, as the display has them
        self._waiting: queue.Queue = queue.Queue(maxsize=1)
        self.last: tuple[int, bytes] | None = None  # (display sequence, WAV) for the page
        self.said = 0  # how many messages were made into sound (tests wait on it)
        self._lock = threading.Lock()

    def speak(self, seq: int, message: Message) -> None:
        """Queue ``message`` (the display's ``seq``); one not yet said is dropped."""
        try:
            self._waiting.get_nowait()
        except queue.Empty:
            pass
        try:
            self._waiting.put_nowait((seq, message))
        except queue.Full:
            pass  # another thread queued one between the two lines: that one is newer

    def run(self, stop) -> None:
        while not stop.is_set():
            try:
                seq, message = self._waiting.get(timeout=0.25)
            except queue.Empty:
                continue
            try:
                sound = announcement(message, self.params(),
                                     words_per_minute=self.settings.speech_words_per_minute)
            except (OSError, subprocess.SubprocessError, ValueError) as error:
                logger.error("speech: could not make the sound of %s: %s", message.key, error)
                continue
            with self._lock:
                self.last, self.said = (seq, sound), self.said + 1
            if self.settings.speech_player:
                self._play(sound)

    def _play(self, sound: bytes) -> None:
        seconds = len(sound) / (2 * RATE) + 5
        try:
            subprocess.run(shlex.split(self.settings.speech_player), input=sound,
                           capture_output=True, timeout=seconds, check=True)
        except (OSError, subprocess.SubprocessError) as error:
            logger.error("speech: the player failed: %s", error)

    def sound_for(self, seq: int) -> bytes | None:
        with self._lock:
            return self.last[1] if self.last and self.last[0] == seq else None
