"""The load of bench.faults: visitors who book (each booking with its Idempotency-Key,
tried again with it after an error), visitors who look at the site page, and controllers
that deliver events (each with its key, tried again until stored). Every answer is
counted with the fault it came under."""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import requests

TOKEN = "bench-faults-controller-token-0123456789"


@dataclass
class Tally:
    """Every answer (phase, status, seconds); every booking intent's key and final word."""
    answers: list[tuple[str, int, float]] = field(default_factory=list)
    bookings: dict[str, str] = field(default_factory=dict)  # key -> "ok <id>", "refused", "error"
    events: dict[str, bool] = field(default_factory=dict)  # key -> answered stored
    odd: list[str] = field(default_factory=list)  # the 5xx other than 503, in short
    phase: str = "warm-up"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, status: int, seconds: float) -> None:
        with self.lock:
            self.answers.append((self.phase, status, seconds))


def _request(tally: Tally, http: requests.Session, method: str, url: str, **kwargs):
    started = time.monotonic()
    try:
        response = http.request(method, url, timeout=30, **kwargs)
    except requests.RequestException:
        tally.answered(-1, time.monotonic() - started)  # no answer at all
        return None
    tally.answered(response.status_code, time.monotonic() - started)
    if response.status_code >= 500 and response.status_code != 503:
        with tally.lock:
            tally.odd.append(f"{response.status_code} {method} {url.split('/', 3)[-1]}: "
                             f"{response.text[:100]!r}")
    return response


def booker(base: str, tally: Tally, stop: threading.Event, number: int) -> None:
    """Books one window after the other, each with its own key; an error is tried again
    with the same key (up to 20 times, a second apart), as a visitor presses again."""
    http = requests.Session()
    n = 0
    while not stop.is_set():
        n += 1
        key = f"bench-{number}-{n}-{uuid.uuid4().hex[:12]}"
        day = date.today() + timedelta(days=1 + (number * 7 + n) % 28)
        hour = 7 + (n // 28) % 12
        body = {"site": "stadtpark", "item_type": "rollator" if n % 2 else "bollerwagen",
                "name": f"Bench {number}-{n}", "start": f"{day}T{hour:02d}:00",
                "end": f"{day}T{hour + 1:02d}:00"}
        final = "error"
        for _ in range(20):
            answer = _request(tally, http, "POST", f"{base}/api/v1/reservations", json=body,
                              headers={"Idempotency-Key": key})
            if answer is not None and answer.status_code == 201:
                final = f"ok {answer.json()['id']}"
                break
            if answer is not None and answer.status_code in (409, 422, 429):
                final = "refused"
                break
            time.sleep(1.0)  # tried again even while the bench stops: no intent left open
        with tally.lock:
            tally.bookings[key] = final
        stop.wait(0.2)


def viewer(base: str, tally: Tally, stop: threading.Event) -> None:
    http = requests.Session()
    while not stop.is_set():
        _request(tally, http, "GET", f"{base}/s/stadtpark/")
        stop.wait(0.2)


def controller(base: str, tally: Tally, stop: threading.Event) -> None:
    """Delivers one event a second, each retried with its key until the server stores it."""
    http = requests.Session()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    while not stop.is_set():
        key = f"fault-{uuid.uuid4().hex}"
        event = {"idempotency_key": key, "kind": "door_closed", "compartment": 1,
                 "occurred_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        stored = False
        for _ in range(60):
            answer = _request(tally, http, "POST", f"{base}/api/v1/controller/events",
                              json={"events": [event]}, headers=headers)
            if answer is not None and answer.status_code == 200:
                stored = True
                break
            time.sleep(0.5)  # the outbox's retry, even while stopping: nothing is dropped
        with tally.lock:
            tally.events[key] = stored
        stop.wait(1.0)
