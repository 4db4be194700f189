"""The locker's display and sound: after every scan or keypad entry the visitor reads what
happened, in German and in the language of the reservation, and hears one tone for yes and
another for no.

Two outputs, each optional:
- a character display (with a buzzer) on a serial line, spoken to in the line protocol of
  docs/DISPLAY_PROTOCOL.md (``display_port``);
- a page for the cabinet's own screen, served by the controller (``display_http``). It
  updates itself without JavaScript (a meta refresh) and plays the tone in an ``<audio>``.

A message stays ``display_seconds``, then the display shows the idle text again.
"""
from __future__ import annotations

import html
import io
import logging
import math
import struct
import re
import textwrap
import threading
import time
import unicodedata
import wave
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import serial

from controller.display_text import REFUSAL_MESSAGES, Message, common_params, message_for_event
from hardware.http_thread import ServerThread

logger = logging.getLogger(__name__)
IDLE = Message("idle")
_ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})


def display_screens(message: Message, columns: int, rows: int, params: dict) -> list[list[str]]:
    """A message on a character display of ``rows`` x ``columns``, as screens shown one
    after the other: the German title, the visitor's language's title when it is not
    German, then the hint in the visitor's language and in German. Words are never split
    and a sentence stays on one screen where it fits one; the first screen alone was shown
    before, and hints were cut mid-sentence ("Bitte tippen Sie die / 8 Ziffern und dann",
    issue 32)."""
    message = Message(message.key, message.locale, message.tone, {**params, **message.params})
    languages = message.languages()
    blocks = [message.text(language)[0] for language in languages]
    for language in reversed(languages):
        # Sentences end in "." or "!"; "Kaputt? Dann Taste D drücken." stays one.
        blocks += re.split(r"(?<=[.!])\s+", message.text(language)[1].strip())
    # The hotline's number stays on one row: its spaces do not break while wrapping.
    number = message.params.get("hotline_de", "").removeprefix(": ")
    screens: list[list[str]] = [[]]
    for block in blocks:
        if number:
            block = block.replace(number, number.replace(" ", "\u00a0"))
        lines = [line.replace("\u00a0", " ")
                 for line in textwrap.wrap(block, columns, break_long_words=False)]
        if screens[-1] and len(screens[-1]) + len(lines) > rows:
            screens.append([])  # the next sentence whole on the next screen
        for line in lines:
            if len(screens[-1]) == rows:
                screens.append([])  # a sentence longer than a screen goes on
            screens[-1].append(line)
    return screens


def display_rows(message: Message, columns: int, rows: int, params: dict) -> list[str]:
    """The first screen of ``display_screens``."""
    return display_screens(message, columns, rows, params)[0]


def tone_wav(kind: str, rate: int = 8000) -> bytes:
    """Yes: two short rising beeps. No: one low, longer tone. 8 kHz mono, a few KB (the
    speech makes it at its own rate, to say the message after it in one file)."""
    parts = [(660, 0.12), (0, 0.05), (990, 0.18)] if kind == "yes" else [(220, 0.5)]
    frames = bytearray()
    for frequency, seconds in parts:
        for n in range(int(rate * seconds)):
            value = 0.4 * math.sin(2 * math.pi * frequency * n / rate) if frequency else 0.0
            frames += struct.pack("<h", int(value * 32767))
    return mono_wav(bytes(frames), rate)


def mono_wav(frames: bytes, rate: int) -> bytes:
    """16-bit mono samples as a WAV file (the tones, and the speech after them)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def _locale_of(local) -> str:
    """The language the reservation was made in; German when unknown."""
    return (local.locale if local else None) or "de"


class Display:
    def __init__(self, controller) -> None:
        self.controller = controller
        self.settings = controller.settings
        self._changed = threading.Condition()
        self._message = IDLE
        self._seq = 0
        self._shown_at = 0.0
        self._lasts = 0.0  # how long the message shown stays
        self._purpose: dict[int, str] = {}  # compartment -> what its last unlock was for
        self.page: DisplayPage | None = None
        self.speaker = None
        if self.settings.speech:
            from controller.speech import Speaker
            self.speaker = Speaker(self.settings, self.params)

    # What to show ------------------------------------------------------------------------------
    def show(self, key: str, *, locale: str = "de", tone: str | None = None, **params) -> None:
        message = Message(key, locale, tone, params)
        # Long enough to show each of its screens once; worked out once per message, not on
        # every look at the display (it reads the hotline from the store).
        lasts = max(self.settings.display_seconds,
                    self.settings.display_page_seconds * len(self.screens(message)))
        with self._changed:
            self._message, self._lasts = message, lasts
            self._seq += 1
            self._shown_at = time.monotonic()
            self._changed.notify_all()
            if self.speaker is not None:  # said in its own thread: nothing waits for it
                self.speaker.speak(self._seq, self._message)
        logger.info("display: %s %s%s", key, params or "", f" (tone {tone})" if tone else "")

    def current(self) -> tuple[int, Message]:
        """The sequence number and the message on the display now (idle after its time,
        which is long enough to show each of its screens once)."""
        with self._changed:
            if self._message is not IDLE and time.monotonic() - self._shown_at >= self._lasts:
                self._message = IDLE
                self._seq += 1
            return self._seq, self._message

    def screens(self, message: Message) -> list[list[str]]:
        return display_screens(message, self.settings.display_columns,
                               self.settings.display_rows, self.params())

    def params(self) -> dict:
        return common_params(self.controller.store.setting("hotline"),
                             bool(self.settings.keypad_port))

    def rendered(self, message: Message) -> dict[str, tuple[str, str]]:
        full = Message(message.key, message.locale, message.tone, {**self.params(), **message.params})
        return {language: full.text(language) for language in full.languages()}

    def observe(self, kind: str, reservation_id: int | None, compartment: int | None,
                detail: dict) -> None:
        """Called for every event the controller records."""
        try:
            if kind == "scan_refused":
                if detail.get("reason") == "not_readable":
                    return  # shown at once by the controller, also when not reported
                self._refused(detail.get("reason", ""), reservation_id, compartment, detail)
                return
            if kind == "unlock_sent" and compartment is not None:
                self._purpose[compartment] = detail.get("purpose", "")
            chosen = message_for_event(kind, compartment, detail, self._purpose.get(compartment))
            if chosen is not None:
                key, tone = chosen
                self.show(key, locale=self._locale(reservation_id), tone=tone,
                          compartment=compartment)
        except Exception:  # the display must never stop a door from opening
            logger.exception("display could not show event %s", kind)

    def _refused(self, reason: str, reservation_id: int | None, compartment: int | None,
                 detail: dict) -> None:
        key = REFUSAL_MESSAGES.get(reason, "not_readable")
        params: dict = {"compartment": compartment}
        local = self.controller.store.reservation(reservation_id) if reservation_id else None
        if key == "too_early":
            # The synced reservation, else the signed code's own valid-from (not synced yet).
            valid_from = (local.valid_from if local and local.valid_from
                          else detail.get("valid_from"))
            if not valid_from:
                key = "not_ready"
            else:
                params["time"] = self.local_time(datetime.fromisoformat(
                    valid_from.replace("Z", "+00:00")))
        elif key == "keypad_locked":
            until = self.controller.keypad.locked_until
            params["time"] = self.local_time(until) if until else "--:--"
        # Not a refusal to the visitor when their door is open: they only need to shut it.
        self.show(key, locale=_locale_of(local), tone=None if key == "close_door" else "no",
                  **params)

    def _locale(self, reservation_id: int | None) -> str:
        return _locale_of(self.controller.store.reservation(reservation_id)
                          if reservation_id is not None else None)

    def local_time(self, moment: datetime) -> str:
        try:
            zone = ZoneInfo(self.controller.store.setting("timezone") or "Europe/Berlin")
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("Europe/Berlin")
        return moment.astimezone(zone).strftime("%H:%M")

    def wait_for_change(self, seen: int, timeout: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._seq != seen, timeout)

    # The character display on a serial line --------------------------------------------------
    def run_serial(self, stop) -> None:
        """Writes every new message (and the idle text after it) to the display port; a
        port that fails is opened again with back-off."""
        backoff = 1.0
        while not stop.is_set():
            try:
                port = serial.serial_for_url(self.settings.display_port,
                                             baudrate=self.settings.display_baudrate, timeout=0.1)
            except (serial.SerialException, OSError) as error:
                logger.error("display port %s cannot be opened: %s", self.settings.display_port, error)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff)
                continue
            backoff, written, screens, screen, turned = 1.0, -1, [], 0, 0.0
            try:
                while not stop.is_set():
                    seq, message = self.current()
                    now = time.monotonic()
                    if seq != written:  # a new message: its first screen, with its tone
                        screens, screen, turned, written = self.screens(message), 0, now, seq
                        port.write(self.frame(screens[0], message.tone))
                        port.flush()
                    elif (len(screens) > 1
                          and now - turned >= self.settings.display_page_seconds):
                        screen, turned = (screen + 1) % len(screens), now
                        port.write(self.frame(screens[screen]))
                        port.flush()
                    self.wait_for_change(seq, 0.25)
            except (serial.SerialException, OSError) as error:
                logger.error("display port lost: %s", error)
            finally:
                port.close()

    def frame(self, rows: list[str], tone: str | None = None) -> bytes:
        """One screen of rows for the character display, with the message's tone when it
        is the message's first screen."""
        lines = ["CLEAR"] + [f"ROW {n} {text}" for n, text in enumerate(rows, 1)]
        if tone:
            lines.append(f"TONE {tone.upper()}")
        text = "\r\n".join(lines) + "\r\n"
        if self.settings.display_charset == "ascii":
            text = unicodedata.normalize("NFKD", text.translate(_ASCII)).encode(
                "ascii", "ignore").decode()
        return text.encode("utf-8")

    # The page for the cabinet's screen ---------------------------------------------------------
    def start_page(self) -> "DisplayPage":
        host, _, port = self.settings.display_http.rpartition(":")
        self.page = DisplayPage(self, host or "127.0.0.1", int(port)).start()
        return self.page


PAGE = """<!doctype html>
<html lang="de"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="1; url=/?seen={seq}">
<title>{title} – Schließfach</title>
<style>
 html {{ background: #0b0c0c; color: #fff; font: clamp(1.1rem, 4.5vw, 2.2rem)/1.3 system-ui, sans-serif; }}
 body {{ margin: 0; padding: 1rem; }}
 main {{ border-left: .5rem solid {band}; padding-left: 1rem; overflow-wrap: break-word; hyphens: auto; }}
 h1 {{ font-size: 1.45em; margin: 0 0 .6rem; }}
 p {{ margin: 0 0 1rem; }}
 .other {{ margin-top: 2rem; color: #e8e8e8; }}
 .other h2 {{ font-size: 1.25em; margin: 0 0 .4rem; }}
</style></head><body>
<main id="message" data-key="{key}" data-seq="{seq}">
{blocks}
</main>
{audio}
</body></html>"""


class DisplayPage(ServerThread):
    """A small HTTP server on the controller for the cabinet's screen (a kiosk browser)."""

    def __init__(self, display: Display, host: str, port: int) -> None:
        self.display = display
        super().__init__(host, port, self._handler(), "display-page")
        self.tones = {"yes": tone_wav("yes"), "no": tone_wav("no")}

    def render(self, seen: int | None) -> str:
        seq, message = self.display.current()
        texts = self.display.rendered(message)
        blocks = []
        for index, (language, (title, hint)) in enumerate(texts.items()):
            level, attributes = ("h1", "") if index == 0 else ("h2", f' class="other" lang="{language}"')
            blocks.append(f"<div{attributes}><{level}>{html.escape(title)}</{level}>"
                          f"<p>{html.escape(hint)}</p></div>")
        # The tone plays once: the page asks again with the number it has seen.
        fresh = seen is not None and seen != seq
        speaker = self.display.speaker
        if fresh and speaker is not None and speaker.sound_for(seq) is not None:
            audio = f'<audio src="/say/{seq}.wav" autoplay></audio>'  # the tone, then speech
        elif fresh and message.tone:
            audio = f'<audio src="/tone/{message.tone}.wav" autoplay></audio>'
        else:
            audio = ""
        band = {"yes": "#00a33b", "no": "#ff4f4f"}.get(message.tone or "", "#ffdd00")
        return PAGE.format(seq=seq, title=html.escape(texts["de"][0]), key=message.key,
                           blocks="\n".join(blocks), audio=audio, band=band)

    def _handler(self):
        page = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002 (the base class's name)
                logger.debug("display page: " + format, *args)

            def do_GET(self):  # noqa: N802 (http.server's naming)
                url = urlsplit(self.path)
                if url.path == "/":
                    raw = parse_qs(url.query).get("seen", [""])[0]
                    body = page.render(int(raw) if raw.isdigit() else None).encode()
                    kind = "text/html; charset=utf-8"
                elif url.path in ("/tone/yes.wav", "/tone/no.wav"):
                    body, kind = page.tones[url.path[6:-4]], "audio/wav"
                elif (url.path.startswith("/say/") and url.path.endswith(".wav")
                      and url.path[5:-4].isdigit() and page.display.speaker is not None
                      and page.display.speaker.sound_for(int(url.path[5:-4])) is not None):
                    body = page.display.speaker.sound_for(int(url.path[5:-4]))
                    kind = "audio/wav"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)
        return Handler
