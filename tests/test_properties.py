"""Property-based tests (hypothesis): the codecs, the code parser, the scanner's line reader
and the two HTTP APIs take any input without crashing and without a 5xx.

CI runs a short budget (300 examples each, derandomized: the same inputs every run). The
long run, a million inputs to the four pure properties plus 2,500 to each API, random
each time (about 15 minutes on two cores):
    LOCKER_FUZZ_EXAMPLES=250000 .venv/bin/python -m pytest tests/test_properties.py"""
import os
from datetime import datetime, timezone

from hypothesis import HealthCheck, given, settings, strategies as st

import signed_code
from controller.decide import decide
from controller.scanner import LineAssembler
from hardware import family_a, family_b
from tests.conftest import DEMO_TOKEN

EXAMPLES = int(os.environ.get("LOCKER_FUZZ_EXAMPLES", "300"))
FAST = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("LOCKER_FUZZ_EXAMPLES"))
SLOW = settings(max_examples=max(30, EXAMPLES // 100), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                derandomize=not os.environ.get("LOCKER_FUZZ_EXAMPLES"))


def consume_all(decode, buffer: bytes) -> int:
    """Feed a decoder the way the drivers do; it must always make progress or ask for more."""
    frames = 0
    while buffer:
        item, used = decode(buffer)
        assert 0 <= used <= len(buffer)
        if item is None and used == 0:
            break  # needs more bytes
        frames += item is not None
        buffer = buffer[used:]
    return frames


@FAST
@given(st.binary(max_size=300))
def test_codecs_take_any_bytes(data):
    consume_all(family_a.decode_request, data)
    consume_all(family_b.decode_request, data)
    consume_all(lambda b: family_b.decode_state_reply(b, 1), data)
    request = family_a.Request(0x80, 1, 1, 0x33)
    consume_all(lambda b: family_a.decode_reply(b, request), data)


noise = st.binary(max_size=20).map(
    lambda b: bytes(x for x in b if x not in family_a.KNOWN_REQUEST_HEADERS))


@FAST
@given(st.integers(1, 31), st.integers(1, 24), noise, st.binary(max_size=20))
def test_a_frame_is_found_behind_line_noise(board, lock, before, after):
    """Bytes that cannot start a frame are skipped; the request behind them is found."""
    buffer = before + family_a.encode_unlock(board, lock) + after
    request, used = family_a.decode_request(buffer)
    while request is None and used:
        buffer = buffer[used:]
        request, used = family_a.decode_request(buffer)
    assert request is not None and (request.board, request.lock) == (board, lock)


@FAST
@given(st.text(max_size=400))
def test_any_scanned_text_is_decided_never_crashes(text):
    key = signed_code.new_private_key()
    decision = decide(text, public_keys={1: key.public_key()}, cabinet_id=1,
                      lookup=lambda rid: None, now=datetime.now(timezone.utc))
    assert decision.opens is False  # nothing unsigned ever opens


@FAST
@given(st.lists(st.binary(max_size=80), max_size=20))
def test_the_line_reader_takes_any_chunks(chunks):
    assembler = LineAssembler(max_length=64, debounce=0)
    for chunk in chunks:
        for line in assembler.feed(chunk):
            assert line and len(line) <= 64 and line.isprintable() and line.isascii()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20)
booking_fields = st.fixed_dictionaries({}, optional={
    "site": st.sampled_from(["stadtpark", "", "x"]) | st.text(max_size=10),
    "item_type": st.sampled_from(["rollator", "bollerwagen"]) | json_values,
    "start": st.sampled_from(["2030-06-10T10:30", "0001-01-01T00:00", "9999-12-31T23:59-01:00"])
    | st.text(max_size=30) | json_values,
    "end": st.sampled_from(["2030-06-10T12:00", "2030-06-10T12:00+14:00"]) | st.text(max_size=30),
    "name": st.text(max_size=100) | json_values, "email": st.text(max_size=40) | st.none()})


@SLOW
@given(body=booking_fields)
def test_booking_api_never_answers_5xx(app, body):
    app.config["RATELIMIT_ENABLED"] = False
    response = app.test_client().post("/api/v1/reservations", json=body)
    assert response.status_code < 500, (body, response.get_data(as_text=True))


event_fields = st.fixed_dictionaries({
    "idempotency_key": st.text(min_size=8, max_size=70),
    "kind": st.sampled_from(["pickup", "return", "door_opened", "scan_refused"]) | st.text(max_size=10),
    "occurred_at": st.sampled_from(["2030-06-10T10:00:00Z", "0001-01-01T00:00:00Z",
                                    "9999-12-31T23:59:59-01:00"]) | st.text(max_size=30)},
    optional={"reservation_id": st.integers(-5, 2**70) | json_values,
              "compartment": st.integers(-5, 2**40) | json_values, "detail": json_values})


@SLOW
@given(events=st.lists(event_fields, max_size=5))
def test_controller_events_never_answer_5xx(app, events):
    response = app.test_client().post("/api/v1/controller/events", json={"events": events},
                                      headers={"Authorization": f"Bearer {DEMO_TOKEN}"})
    assert response.status_code < 500, (events, response.get_data(as_text=True))
