"""Family B (Kerong KR-CU16) frames against BOARD_PROTOCOL.md, whole and byte by byte."""
import pytest

from hardware import family_b as fb


@pytest.mark.parametrize("frame, expected", [
    (fb.encode_state(0), "02 00 30 03 35"),
    (fb.encode_unlock(1, 3), "02 12 31 03 48"),
    (fb.encode_unlock(15, 16), "02 FF 31 03 35"),
])
def test_request_bytes_match_the_protocol_file(frame, expected):
    assert frame == bytes.fromhex(expected)


def test_request_round_trip_byte_by_byte_with_garbage_around():
    frame = fb.encode_unlock(1, 3)
    buffer = b""
    for byte in frame[:-1]:
        buffer += bytes([byte])
        assert fb.decode_request(buffer) == (None, 0)
    request, consumed = fb.decode_request(b"\xff\x00" + frame + b"\x02")
    assert (request, consumed) == (fb.Request(1, 3, 0x31), 7)


def test_state_reply_doors_and_item_sensors():
    frame = fb.encode_state_reply(2, door_bits=0b1000_0000_0000_0101, item_bits=0b0000_0000_0100_0000)
    assert len(frame) == 9 and frame[2] == 0x35
    reply, consumed = fb.decode_state_reply(frame, board=2)
    assert consumed == 9
    assert [lock for lock in range(1, 17) if reply.closed(lock)] == [1, 3, 16]
    assert [lock for lock in range(1, 17) if reply.item_present(lock)] == [7]


def test_state_reply_byte_by_byte_and_after_garbage():
    frame = fb.encode_state_reply(0, 0xFFFF, 0x0000)
    for cut in range(1, 9):
        assert fb.decode_state_reply(frame[:cut], board=0) == (None, 0)
    buffer = b"\x55\x02\x99" + frame
    while True:
        reply, consumed = fb.decode_state_reply(buffer, board=0)
        if reply:
            break
        assert consumed
        buffer = buffer[consumed:]
    assert reply.door_bits == 0xFFFF


@pytest.mark.parametrize("mutate", [
    lambda f: f[:-1] + bytes([(f[-1] + 1) & 0xFF]),  # wrong sum
    lambda f: f[:7] + b"\x04" + f[8:],  # no ETX
    lambda f: f[:1] + b"\x30" + f[2:],  # another board
])
def test_broken_or_foreign_state_frames_are_not_replies(mutate):
    frame = mutate(fb.encode_state_reply(0, 0xFFFF, 0))
    reply, _ = fb.decode_state_reply(frame, board=0)
    assert reply is None


def test_a_truncated_frame_whose_sum_fits_is_not_a_reply():
    # 02 00 35 00 37: five bytes whose last is the sum of the first four.
    truncated = bytes.fromhex("02 00 35 00 37")
    assert fb.checksum(truncated[:-1]) == truncated[-1]
    assert fb.decode_state_reply(truncated, board=0)[0] is None


@pytest.mark.parametrize("board, lock", [(16, 1), (-1, 1), (0, 0), (0, 17)])
def test_out_of_range(board, lock):
    with pytest.raises(ValueError):
        fb.encode_unlock(board, lock)
