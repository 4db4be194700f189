"""Controller settings from a TOML file, overridden by ``LOCKER_CONTROLLER_<NAME>`` variables."""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path


@dataclass
class Settings:
    server_url: str = "http://127.0.0.1:5000"
    token: str = ""
    database: str = "instance/controller.sqlite"
    # Anything pyserial's serial_for_url opens: /dev/ttyUSB0, a pty, socket://host:port, loop://
    board_port: str = "/dev/ttyUSB0"
    board_baudrate: int = 0  # 0: the family's own (A 9600, B 19200)
    board_family: str = "A"
    scanner_port: str = "/dev/ttyACM0"
    scanner_baudrate: int = 9600
    poll_interval: float = 0.5
    response_timeout: float = 1.5
    quiet_time: float = 0.025
    transaction_gap: float = 0.005
    recovery_quiet: float = 0.25
    # A door that has not opened this long after an unlock is reported as not opened.
    unlock_open_timeout: float = 20.0
    sync_interval: float = 10.0
    http_timeout: float = 5.0
    max_backoff: float = 60.0
    # The longest pause between attempts to reach an unreachable server (outbox, commands).
    server_retry_max: float = 4.0
    scanner_max_line: int = 512
    scanner_debounce: float = 1.0
    # Bytes without an end of line, quiet this long, are dropped (and reported).
    scanner_quiet_gap: float = 0.5
    # A keypad for the numeric codes (digits and Enter on a serial line); empty: none.
    keypad_port: str = ""
    keypad_baudrate: int = 9600
    keypad_max_attempts: int = 3  # wrong codes in a row before the keypad locks
    keypad_lock_seconds: float = 30.0  # first lock; it doubles with every further lock
    # What the visitor reads and hears at the cabinet (docs/DISPLAY_PROTOCOL.md).
    display_port: str = ""  # a character display with a buzzer on a serial line; empty: none
    display_baudrate: int = 9600
    display_columns: int = 20
    display_rows: int = 4
    display_charset: str = "utf-8"  # or "ascii": umlauts written ae, oe, ue, ss
    display_http: str = ""  # host:port of the page for the cabinet's screen; empty: none
    health_http: str = ""  # host:port of /healthz and /readyz (controller/health.py); empty: none
    display_seconds: float = 8.0  # a message stays this long, then the idle text again
    display_page_seconds: float = 3.5  # each screen of a message longer than the display
    speech: bool = False  # say each message aloud (espeak-ng), after its tone
    speech_words_per_minute: int = 130  # slow and clear
    speech_player: str = ""  # plays a WAV from standard input, e.g. "aplay -q"
    # Alerts for staff.
    door_open_alert: float = 180.0  # a door open longer than this
    server_unreachable_alert: float = 600.0  # the server unreachable longer than this
    command_wait: float = 20.0  # long poll for remote commands
    # The message broker for remote commands and presence (docs/MQTT.md); empty: none, the
    # long poll above carries the commands.
    mqtt_url: str = ""  # mqtt://host:1883
    mqtt_topic_prefix: str = "locker"
    mqtt_keepalive: float = 30.0  # the broker declares the controller gone after 1.5 times this
    mqtt_username: str = ""
    mqtt_password: str = ""
    # With the broker connected: how often a short HTTP look still asks for missed commands.
    command_catchup: float = 60.0

    @classmethod
    def load(cls, path: str | os.PathLike | None = None,
             environ: dict[str, str] | None = None) -> "Settings":
        values: dict[str, object] = {}
        if path:
            with open(path, "rb") as handle:
                document = tomllib.load(handle)
            values.update(document.get("controller", document))
        environ = os.environ if environ is None else environ
        known = {f.name: f for f in fields(cls)}
        for name in known:
            raw = environ.get(f"LOCKER_CONTROLLER_{name.upper()}")
            if raw is not None:
                values[name] = raw
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"unknown controller setting(s): {', '.join(sorted(unknown))}")
        settings = cls()
        for name, value in values.items():
            kind = type(getattr(settings, name))
            if kind is bool and isinstance(value, str):  # from the environment: words
                value = value.strip().lower() in ("1", "true", "yes", "on")
            try:
                setattr(settings, name, kind(value))
            except (TypeError, ValueError):
                raise ValueError(f"setting {name} must be {kind.__name__}, not {value!r}") from None
        if path and not Path(settings.database).is_absolute():
            settings.database = str(Path(path).resolve().parent / settings.database)
        return settings
