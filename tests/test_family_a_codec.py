"""Family A frames against the byte examples of BOARD_PROTOCOL.md, whole and byte by byte."""
import pytest

from hardware import family_a as fa

REQUESTS = [
    (fa.encode_unlock(1, 1), "8A 01 01 11 9B"),
    (fa.encode_state_all(1), "80 01 00 33 B2"),
    (fa.encode_state_one(1, 1), "80 01 01 33 B3"),
    (fa.encode_open_all(1), "8A 01 00 11 9A"),
]


@pytest.mark.parametrize("frame, expected", REQUESTS)
def test_request_bytes_match_the_protocol_file(frame, expected):
    assert frame == bytes.fromhex(expected)


def test_bcc_of_worked_example():
    assert fa.bcc(bytes.fromhex("8A 01 01 11")) == 0x9B


@pytest.mark.parametrize("frame, _", REQUESTS)
def test_request_decodes_whole_and_byte_by_byte(frame, _):
    assert fa.decode_request(frame) == (fa.Request(*frame[:4]), 5)
    buffer = b""
    for byte in frame[:-1]:
        buffer += bytes([byte])
        assert fa.decode_request(buffer) == (None, 0)
    buffer += frame[-1:]
    request, consumed = fa.decode_request(buffer)
    assert request.encode() == frame and consumed == 5


def test_request_after_garbage_and_bad_checksum():
    good = fa.encode_unlock(3, 7)
    corrupted = good[:-1] + bytes([good[-1] ^ 0xFF])
    buffer = b"\x00\xff\x13" + corrupted + good
    decoded = []
    while buffer:
        request, consumed = fa.decode_request(buffer)
        if consumed == 0:
            break
        buffer = buffer[consumed:]
        if request:
            decoded.append(request)
    assert decoded == [fa.Request(0x8A, 3, 7, 0x11)]


def test_state_all_reply_from_a_real_8_channel_capture():
    request = fa.Request(0x80, 1, 0, 0x33)
    reply, consumed = fa.decode_reply(bytes.fromhex("80 01 00 00 00 33 B2"), request)
    assert consumed == 7
    assert reply == fa.StateReply(1, 0)
    assert not any(reply.closed(lock) for lock in range(1, 25))


def test_state_all_bits_map_to_locks():
    frame = fa.encode_state_reply(2, 0b1000_0000_0000_0000_0000_0101)
    # S3 S2 S1 order on the wire: S1 (locks 1-8) comes last of the three.
    assert frame[2:5] == bytes([0x80, 0x00, 0x05])
    reply, _ = fa.decode_reply(frame, fa.Request(0x80, 2, 0, 0x33))
    assert [lock for lock in range(1, 25) if reply.closed(lock)] == [1, 3, 24]


def test_reply_byte_by_byte_needs_more_until_complete():
    request = fa.Request(0x8A, 1, 4, 0x11)
    frame = fa.encode_lock_reply(request, fa.FEEDBACK_OPEN)
    for cut in range(1, len(frame)):
        assert fa.decode_reply(frame[:cut], request) == (None, 0)
    assert fa.decode_reply(frame, request) == (fa.LockReply(1, 4, 0x00), 5)


def test_reply_skips_unsolicited_frames_and_other_boards():
    request = fa.Request(0x80, 1, 0, 0x33)
    unsolicited = bytes.fromhex("81 01 02 00 82")
    other_board = fa.encode_state_reply(2, 0xFF)
    good = fa.encode_state_reply(1, 0x0F)
    buffer = unsolicited + other_board + good
    while True:
        reply, consumed = fa.decode_reply(buffer, request)
        if reply is not None:
            break
        assert consumed > 0
        buffer = buffer[consumed:]
    assert reply == fa.StateReply(1, 0x0F)


def test_truncated_frame_that_passes_xor_is_not_a_reply():
    # A 5-byte prefix of a state reply whose XOR happens to match: 80 01 00 00 81.
    request = fa.Request(0x80, 1, 0, 0x33)
    truncated = bytes.fromhex("80 01 00 00 81")
    assert fa.bcc(truncated[:-1]) == truncated[-1]
    reply, _ = fa.decode_reply(truncated, request)
    assert reply is None


def test_reply_to_another_lock_is_refused():
    request = fa.Request(0x8A, 1, 2, 0x11)
    wrong_lock = fa.encode_lock_reply(fa.Request(0x8A, 1, 3, 0x11), 0x11)
    assert fa.decode_reply(wrong_lock, request)[0] is None


@pytest.mark.parametrize("board, lock", [(0, 1), (100, 1), (1, 0), (1, 256)])
def test_out_of_range_addresses_are_refused(board, lock):
    with pytest.raises(ValueError):
        fa.encode_unlock(board, lock)


def test_wire_time_at_9600_baud():
    assert fa.wire_seconds(5) == pytest.approx(5 * 10 / 9600)
